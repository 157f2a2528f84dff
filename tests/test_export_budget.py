"""Notebook 08 within a free Colab runtime: estimates before the long steps, room on the disk, what goes to
Drive (helpers/export.py, helpers/paths.export_dir, helpers.train.TimeLeft)."""

import ast
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from helpers.export import DRIVE_MARGIN_BYTES, REFERENCE_S_PER_GB, Pace, check_room, drive_plan
from helpers.memory import LLAMA3_8B, adapter_file_bytes, llama_weight_memory
from helpers.paths import DRIVE_ROOT, export_dir
from helpers.train import TimeLeft

ROOT = Path(__file__).resolve().parent.parent
DRIVE_FREE = 15e9  # a free Google account's storage


def notebook_08_code() -> list[str]:
    cells = json.loads((ROOT / "notebooks" / "08_export_and_run.ipynb").read_text())["cells"]
    return ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]


def test_the_estimate_is_printed_before_the_step_and_the_pace_is_then_measured(capsys):
    pace = Pace()
    with pace.step("write", 2.0):
        printed_before = capsys.readouterr().out
    assert f"about {2.0 * REFERENCE_S_PER_GB:.0f} s estimated for 2.00 GB" in printed_before
    assert "took" not in printed_before
    assert "write: took" in capsys.readouterr().out
    assert pace.s_per_gb < REFERENCE_S_PER_GB and "measured in this runtime (write)" in pace.basis


def test_a_faster_step_does_not_lower_a_measured_pace():
    pace = Pace()
    pace.s_per_gb, pace.basis = 30.0, "measured in this runtime (slow)"
    with pace.step("fast", 1.0):
        pass
    assert pace.s_per_gb == 30.0 and pace.basis.endswith("(slow)")


def test_check_room_names_the_folder_and_the_sizes(tmp_path):
    with pytest.raises(OSError, match=rf"merged 16-bit needs about 1000000\.0 GB at {tmp_path}"):
        check_room(tmp_path, 1e15, "merged 16-bit")
    check_room(tmp_path, 1, "a byte")


def test_exports_leave_drive_for_the_runtime_disk(monkeypatch, tmp_path):
    monkeypatch.delenv("COURSE_EXPORT", raising=False)
    monkeypatch.setenv("COURSE_OUTPUT", str(tmp_path / "out"))
    assert export_dir() == tmp_path / "out"
    monkeypatch.setenv("COURSE_EXPORT", str(tmp_path / "exports"))
    assert export_dir() == tmp_path / "exports"
    monkeypatch.delenv("COURSE_EXPORT")
    made = []
    monkeypatch.setattr(Path, "mkdir", lambda self, **kw: made.append(self))
    monkeypatch.setenv("COURSE_OUTPUT", str(DRIVE_ROOT / "MyDrive" / "unsloth-course"))
    assert export_dir() == Path("/content/exports") and made[-1] == Path("/content/exports")


def test_use_drive_at_the_8b_shape_needs_less_than_a_free_drive():
    """What USE_DRIVE = True puts on Drive for Llama-3-8B: the adapter, two checkpoints (adapter and AdamW's two
    moments, counted in float32 as an upper bound), notebook 07's two chat adapters and the q4_k_m file, at most
    Q6_K's bits per weight (the widest type q4_k_m uses), with the gguf package's block sizes."""
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

    weights, bytes_per_block = GGML_QUANT_SIZES[GGMLQuantizationType.Q6_K]
    q4_k_m_at_most = llama_weight_memory(LLAMA3_8B).params * bytes_per_block / weights
    adapter = adapter_file_bytes(LLAMA3_8B, r=16)
    checkpoints = 2 * (adapter + 2 * adapter)
    outputs = adapter + checkpoints + 2 * adapter
    to_drive, stay = drive_plan({"q4_k_m.gguf": q4_k_m_at_most}, DRIVE_FREE - outputs)
    assert to_drive == ["q4_k_m.gguf"] and not stay
    assert outputs + q4_k_m_at_most + DRIVE_MARGIN_BYTES < DRIVE_FREE
    # the 16-bit merge alone would not fit
    assert drive_plan({"merged": llama_weight_memory(LLAMA3_8B).bytes_16bit}, DRIVE_FREE) == (
        [],
        ["merged"],
    )


def test_notebook_08_copies_only_the_q4_k_m_file_to_drive():
    (call,) = [
        n
        for cell in notebook_08_code()
        for n in ast.walk(ast.parse(cell))
        if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "drive_plan"
    ]
    offered = call.args[0]
    assert isinstance(offered, ast.Dict) and len(offered.keys) == 1
    assert ast.unparse(offered.keys[0]) == "laptop.name"
    assert any('laptop = files["q4_k_m"]' in cell for cell in notebook_08_code())


LONG_STEPS = {"save_pretrained_merged", "save_pretrained_gguf", "upload_folder", "from_pretrained"}


def test_every_long_step_of_notebook_08_prints_its_estimate_first():
    """Each call that writes, converts, loads or uploads a model runs inside ``pace.step`` (estimate first) or
    after a print of its estimate in the same block; the adapter's own 4-bit load is notebook 05's."""
    checked = []
    for cell in notebook_08_code():
        tree = ast.parse(cell)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or getattr(node.func, "attr", "") not in LONG_STEPS:
                continue
            name = ast.unparse(node.func)
            if name == "AutoTokenizer.from_pretrained" or "adapter" in ast.unparse(node):
                continue  # a tokenizer, or the adapter's own 4-bit load (notebook 05's, before any export)
            in_pace = any(
                isinstance(w, ast.With)
                and any("pace.step" in ast.unparse(i.context_expr) for i in w.items)
                and node in list(ast.walk(w))
                for w in ast.walk(tree)
            )
            printed = any(
                isinstance(p, ast.Call)
                and getattr(p.func, "id", "") == "print"
                and "about" in ast.unparse(p)
                and p.lineno < node.lineno
                for p in ast.walk(tree)
            )
            assert in_pace or printed, f"{name} (line {node.lineno}) runs without an estimate"
            checked.append(name)
    assert {
        "model.save_pretrained_merged",
        "model.save_pretrained_gguf",
        "hub.upload_folder",
    } <= set(checked)
    assert "FastLanguageModel.from_pretrained" in checked  # the merged model's load
    scoring = next(c for c in notebook_08_code() if "Llama(" in c)
    assert "the first answer took" in scoring and "about {minutes(" in scoring


def test_the_catch_up_training_prints_the_time_left(capsys, monkeypatch):
    clock = iter([100.0, 106.0, 112.0, 124.0])
    monkeypatch.setattr("helpers.train.time.perf_counter", lambda: next(clock))
    callback = TimeLeft()
    state = SimpleNamespace(max_steps=8, global_step=0)
    callback.on_train_begin(None, state, None)
    for step in (1, 2, 4):
        state.global_step = step
        callback.on_step_end(None, state, None)
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "step 2 of 8 after 6 s: about 18 s to go",
        "step 4 of 8 after 12 s: about 12 s to go",
    ]
    assert callback.on_log(None, state, None) is None  # every other event is a no-op
