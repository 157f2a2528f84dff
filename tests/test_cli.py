"""The `course` command end to end on the CPU with the tiny model: train, infer, merge, baseline, export.

Each command runs in its own process (`python -m tools.cli`, what the `course` entry point calls),
so Unsloth's patches never leak into the other tests. Training is kept to 2 steps of 1 example.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # make test-fast leaves these out

ROOT = Path(__file__).resolve().parent.parent
TINY_TRAIN = [
    "--config",
    "configs/tiny.yaml",
    "--model",
    "tiny",
    "--max-steps",
    "2",
    "--save-steps",
    "1",
    "--save-total-limit",
    "1",  # an SFTConfig field the recipe leaves to TRL: passed through
    "--per-device-train-batch-size",
    "1",
    "--gradient-accumulation-steps",
    "1",
    "--max-seq-length",
    "256",
    "--device",
    "cpu",
    "--no-progress",
]


def course(
    *args: str,
    check: bool = True,
    timeout: int = 600,
    env: dict[str, str | None] | None = None,
    runner: Sequence[str] = ("-m", "tools.cli"),
) -> subprocess.CompletedProcess:
    """Run `course ARGS` (as python -m tools.cli, or another ``runner``) from the repository root, on the CPU,
    offline; ``env`` adds variables (None removes one)."""
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "CUDA_VISIBLE_DEVICES": "",
        "TOKENIZERS_PARALLELISM": "false",
        "PYTHONPATH": str(ROOT),
        "WORLD_SIZE": None,
        **(env or {}),
    }
    env = {k: v for k, v in env.items() if v is not None}
    proc = subprocess.run(
        [sys.executable, *runner, *args],
        cwd=ROOT,
        env=env,
        text=True,
        capture_output=True,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        pytest.fail(
            f"course {' '.join(args)} exited {proc.returncode}\n--- stdout\n{proc.stdout[-4000:]}"
            f"\n--- stderr\n{proc.stderr[-4000:]}"
        )
    return proc


@pytest.fixture
def before_torch(tmp_path) -> dict[str, str]:
    """An environment where `import torch` fails: a command stopped by its settings stops before it
    (and before Unsloth, which imports torch)."""
    fake = tmp_path / "no-torch" / "torch"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('torch loaded before the checks')\n")
    return {"PYTHONPATH": f"{fake.parent}{os.pathsep}{ROOT}"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    out = tmp_path_factory.mktemp("course-run")
    return out, course("train", *TINY_TRAIN, "--output-dir", str(out))


def test_entry_point_is_declared():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["scripts"]["course"] == "tools.cli:main"
    from tools.cli import COMMANDS

    assert set(COMMANDS) == {"train", "infer", "merge", "baseline", "export"}


def test_help_lists_commands_and_fields():
    top = course("--help")
    assert all(c in top.stdout for c in ("train", "infer", "merge", "baseline"))
    train = course("train", "--help")
    assert all(f in train.stdout for f in ("--max-steps", "--use-dora", "--lora-alpha", "--config"))
    assert "--formats" not in train.stdout and not train.stderr
    export = course("export", "--help")
    assert "--formats" in export.stdout and "--max-steps" not in export.stdout


def test_helpers_train_help_and_a_bad_step_count():
    """`python -m helpers.train`, the notebooks' catch-up: its options, and a bad value stops it before any import."""
    usage = course("--help", runner=("-m", "helpers.train"))
    assert all(
        f in usage.stdout for f in ("--model", "--output-dir", "--max-steps", "--no-progress")
    )
    bad = course("--max-steps", "0", runner=("-m", "helpers.train"), check=False)
    assert bad.returncode == 2 and "--max-steps must be at least 1, got 0" in bad.stderr


def test_bad_config_fails_fast_with_file_and_field(tmp_path, before_torch):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: tiny\nlora_dropout: 2\n")
    proc = course("train", "--config", str(bad), check=False, env=before_torch)
    assert proc.returncode == 2
    assert (
        f"course train: error: {bad}: field 'lora_dropout' must be in [0, 1), got 2.0"
        in proc.stderr
    )
    unknown = course("fly", check=False)
    assert unknown.returncode == 2 and "unknown command 'fly'" in unknown.stderr


def test_train_writes_adapter_config_metrics_and_logs(trained):
    out, proc = trained
    adapter = out / "lora_adapter"
    assert (adapter / "adapter_config.json").is_file() and (
        adapter / "adapter_model.safetensors"
    ).is_file()
    saved = (out / "course_config.yaml").read_text()
    assert (
        "max_steps: 2\n" in saved and "learning_rate: 0.005\n" in saved
    )  # the tiny recipe's rate, resolved
    assert "# device: cpu" in saved and "save_total_limit: 1\n" in saved
    assert [p.name for p in (out / "checkpoints").glob("checkpoint-*")] == ["checkpoint-2"]
    metrics = json.loads((out / "train_metrics.json").read_text())
    assert metrics["global_step"] == 2 and metrics["tokens"] > 0 and metrics["tokens_per_s"] > 0
    assert "tokens/s" in proc.stdout
    import importlib.util

    if importlib.util.find_spec("tensorboard"):
        assert list((out / "tensorboard").rglob("events.out.tfevents.*")), (
            "no TensorBoard event file"
        )
    else:
        assert "TensorBoard is not installed" in proc.stdout


def test_infer_one_prompt(trained):
    out, _ = trained
    proc = course(
        "infer",
        "--output-dir",
        str(out),
        "--instruction",
        "Is the number even or odd?",
        "--input",
        "67693",
        "--max-new-tokens",
        "8",
        "--no-progress",
    )
    assert proc.returncode == 0


def test_infer_prompts_file(trained, tmp_path):
    out, _ = trained
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(
        '{"instruction": "Is the number even or odd?", "input": "12"}\n'
        '{"instruction": "Which number is larger, the first or the second?", "input": "3, 9"}\n'
    )
    course(
        "infer",
        "--output-dir",
        str(out),
        "--prompts",
        str(prompts),
        "--max-new-tokens",
        "8",
        "--no-progress",
    )
    rows = [json.loads(line) for line in (out / "infer" / "answers.jsonl").read_text().splitlines()]
    assert [r["input"] for r in rows] == ["12", "3, 9"] and all("answer" in r for r in rows)


def test_infer_eval_scores_with_the_notebook_helpers(trained):
    out, proc = trained
    proc = course(
        "infer",
        "--output-dir",
        str(out),
        "--eval",
        "--eval-limit",
        "4",
        "--max-new-tokens",
        "8",
        "--no-progress",
    )
    report = json.loads((out / "infer" / "report.json").read_text())
    assert report["overall"]["n"] == 4 and 0.0 <= report["overall"]["exact_match"] <= 1.0
    assert "exact_match" in proc.stdout and (out / "infer" / "course_config.yaml").is_file()


def test_infer_without_adapter_says_how_to_get_one(tmp_path, before_torch):
    proc = course(
        "infer",
        "--model",
        "tiny",
        "--output-dir",
        str(tmp_path),
        "--instruction",
        "x",
        check=False,
        env=before_torch,
    )
    assert proc.returncode == 2 and "no adapter at" in proc.stderr and "course train" in proc.stderr


def test_baseline_scores_the_base_model(trained):
    out, _ = trained
    proc = course(
        "baseline",
        "--model",
        "tiny",
        "--output-dir",
        str(out),
        "--eval-limit",
        "4",
        "--max-new-tokens",
        "8",
        "--no-progress",
    )
    report = json.loads((out / "baseline" / "report.json").read_text())
    assert report["overall"]["n"] == 4 and set(report["families"]) <= {
        json.loads(line)["family"]
        for line in (ROOT / "data" / "eval.jsonl").read_text().splitlines()
    }
    floor = json.loads((out / "baseline" / "commonest_answer.json").read_text())
    assert floor["overall"]["n"] == 4 and "commonest answer" in proc.stdout
    answers = (out / "baseline" / "answers.jsonl").read_text().splitlines()
    assert (
        len(answers) == 4 and "model: tiny" in (out / "baseline" / "course_config.yaml").read_text()
    )


def test_merge_writes_16bit_model_that_matches_the_adapter(trained):
    out, _ = trained
    proc = course(
        "merge", "--output-dir", str(out), "--merge-check-prompts", "2", "--max-new-tokens", "8"
    )
    merged = out / "merged_16bit"
    assert (merged / "config.json").is_file() and list(merged.glob("*.safetensors"))
    results = json.loads((merged / "merge_check.json").read_text())
    assert len(results) == 2 and all(r["verdict"] in ("identical", "near-tie") for r in results)
    assert "matches the adapter" in proc.stdout


def test_merge_check_tells_a_tie_from_a_different_model():
    """compare_greedy on a fake model whose logits are fixed: a flipped near-tie passes, a clear miss fails."""
    torch = pytest.importorskip("torch")
    from tools.cli import compare_greedy

    class Fake:
        device = "cpu"

        def __init__(self, table, picks):
            self.table, self.picks = (
                table,
                picks,
            )  # logits per new position; tokens generate() returns

        def generate(self, input_ids, **_):
            return torch.cat([input_ids, torch.tensor([self.picks])], dim=1)

        def __call__(self, input_ids):
            n = input_ids.shape[1] - len(self.picks)
            logits = torch.zeros(1, input_ids.shape[1], 4)
            logits[0, n - 1 : -1] = torch.tensor(self.table)
            return type("Out", (), {"logits": logits})()

    class Batch(dict):
        def to(self, device):
            return self

    class Tok:
        pad_token_id = eos_token_id = 0

        def __call__(self, texts, return_tensors=None):
            ids = [[1, 2]]
            return Batch(input_ids=torch.tensor(ids)) if return_tensors else {"input_ids": ids}

    adapter_tokens = [1, 2, 2, 0]  # the prompt [1, 2], then the adapter chose 2, then 0
    near = Fake([[0.0, 0.0, 1.0, 1.01], [2.0, 0.0, 0.0, 0.0]], picks=[3, 0])  # 3 beats 2 by a hair
    tie = compare_greedy(near, Tok(), "p", adapter_tokens, 2, tolerance=0.1)
    assert tie["verdict"] == "near-tie" and tie["first_difference"] == 0
    far = Fake([[0.0, 0.0, 1.0, 5.0], [2.0, 0.0, 0.0, 0.0]], picks=[3, 0])  # 3 beats 2 by far
    assert (
        compare_greedy(far, Tok(), "p", adapter_tokens, 2, tolerance=0.1)["verdict"] == "mismatch"
    )
    same = Fake([[0.0, 0.0, 5.0, 0.0], [2.0, 0.0, 0.0, 0.0]], picks=[2, 0])
    assert (
        compare_greedy(same, Tok(), "p", adapter_tokens, 2, tolerance=0.1)["verdict"] == "identical"
    )


@pytest.mark.parametrize(
    "content, expected",
    [
        (
            '{"instruction": "Even or odd?", "input": "7"}\n{"instruction": "x",\n',
            "line 2: invalid JSON",
        ),
        ('{"instruction": "a", "instruction": "b"}\n', "line 1: "),
        (
            '\n["not", "an", "object"]\n',
            "line 2: expected an object with a non-empty string 'instruction'",
        ),
        ('{"instruction": "Even or odd?", "input": 7}\n', "line 1: field 'input' must be a string"),
        ("\n\n", "no prompts"),
    ],
)
def test_prompts_file_errors_name_the_line(tmp_path, content, expected):
    from helpers.data import DataError
    from tools.cli import read_prompts

    path = tmp_path / "prompts.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=expected):
        read_prompts(path)


def test_prompts_file_keeps_extra_keys_and_fills_input(tmp_path):
    from tools.cli import read_prompts

    path = tmp_path / "prompts.jsonl"
    path.write_text('\ufeff{"instruction": "Even or odd?", "id": 3}\n', encoding="utf-8")
    assert read_prompts(path) == [{"instruction": "Even or odd?", "id": 3, "input": ""}]
    with pytest.raises(Exception, match="file not found"):
        read_prompts(tmp_path / "missing.jsonl")


# --- export (notebook 08): formats, llama.cpp, failures that leave nothing behind, the Hub ---------------------

EXPORT = [
    "export",
    "--config",
    "configs/tiny.yaml",
    "--model",
    "tiny",
    "--device",
    "cpu",
    "--no-progress",
]
FAKE_TOKEN = "hf_FakeTokenOfTheExportTests0123456789"


def leftovers(folder: Path) -> list[str]:
    """Everything under ``folder`` (temporary siblings included), as relative paths."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


def stub_adapter(folder: Path) -> Path:
    """An adapter folder good enough for the checks that run before the model loads."""
    (folder / "lora_adapter").mkdir(parents=True)
    (folder / "lora_adapter" / "adapter_config.json").write_text("{}")
    return folder / "lora_adapter"


def test_export_unknown_quantization_names_it_and_the_accepted_ones(tmp_path, before_torch):
    stub_adapter(tmp_path)
    proc = course(
        *EXPORT,
        "--output-dir",
        str(tmp_path),
        "--formats",
        "merged_16bit",
        "q9_x",
        check=False,
        env=before_torch,
    )
    assert proc.returncode == 2, proc.stderr
    assert (
        "course export: error: the command line: field 'formats': unknown GGUF quantization method 'q9_x'"
        in proc.stderr
    )
    assert all(m in proc.stderr for m in ("q8_0", "q4_k_m", "merged_16bit", "ollama"))
    assert not (tmp_path / "export").exists()


def test_export_without_llama_cpp_names_the_folder_and_the_builder(tmp_path, before_torch):
    stub_adapter(tmp_path)
    empty = tmp_path / "llama.cpp"
    empty.mkdir()
    proc = course(
        *EXPORT,
        "--output-dir",
        str(tmp_path),
        "--formats",
        "merged_16bit",
        "q8_0",
        check=False,
        env={**before_torch, "UNSLOTH_LLAMA_CPP_PATH": str(empty)},
    )
    assert proc.returncode == 1, proc.stderr
    assert (
        f"course export: error: UNSLOTH_LLAMA_CPP_PATH={empty} is not usable: no executable {empty}/llama-quantize"
        in proc.stderr
    )
    assert "python -m tools.llama_cpp_build" in proc.stderr
    assert not (
        tmp_path / "export"
    ).exists()  # it stops before the slow part, merged_16bit included


def test_export_push_without_token_says_where_to_put_it(tmp_path, before_torch):
    stub_adapter(tmp_path)
    proc = course(
        *EXPORT,
        "--output-dir",
        str(tmp_path),
        "--push-to-hub",
        "learner/tiny",
        check=False,
        env={
            **before_torch,
            "HF_TOKEN": None,
            "HUGGING_FACE_HUB_TOKEN": None,
            "HOME": str(tmp_path),
        },
    )
    assert proc.returncode == 2, proc.stderr
    assert (
        "course export: error: the command line: field 'push_to_hub' is set, but: No Hugging Face token"
        in proc.stderr
    )
    assert all(
        w in proc.stderr
        for w in ("environment variable HF_TOKEN", "Colab", "Kaggle", "secret named HF_TOKEN")
    )
    assert not (tmp_path / "export").exists()


@pytest.mark.parametrize(
    "mode, expected",
    [
        (
            "reject",
            "the export failed (RuntimeError: NotImplementedError: BPE pre-tokenizer was not recognized",
        ),
        ("enospc", "the disk filled up during the export"),
    ],
)
def test_export_failed_conversion_leaves_no_gguf(trained, tmp_path, mode, expected):
    from export_fakes import fake_llama_cpp

    out, _ = trained
    run = tmp_path / "run"
    proc = course(
        *EXPORT,
        "--adapter",
        str(out / "lora_adapter"),
        "--output-dir",
        str(run),
        "--formats",
        "q8_0",
        "ollama",
        check=False,
        env={
            "UNSLOTH_LLAMA_CPP_PATH": str(fake_llama_cpp(tmp_path / "llama.cpp")),
            "FAKE_CONVERT": mode,
        },
    )
    assert proc.returncode == 1, proc.stderr
    assert f"course export: error: {run / 'export' / 'gguf'}: {expected}" in proc.stderr
    assert "nothing was kept" in proc.stderr
    assert leftovers(run) == ["export"]  # no gguf/, no half-written file, no temporary folder


def test_export_push_to_hub_uploads_and_never_shows_the_token(trained, tmp_path):
    """The Hub's HTTP layer stubbed (tests/export_fakes.py): every upload carries the token, and it appears in no
    output, log record or file; a fake llama.cpp writes the GGUF file (its content is not what is tested here)."""
    from export_fakes import fake_llama_cpp

    from helpers.llama_cpp import parse_modelfile
    from helpers.tiny import cache_dir

    out, _ = trained
    run, home = tmp_path / "run", tmp_path / "home"
    home.mkdir()
    requests, log = tmp_path / "requests.json", tmp_path / "log.txt"
    proc = course(
        *EXPORT,
        "--adapter",
        str(out / "lora_adapter"),
        "--output-dir",
        str(run),
        "--formats",
        "merged_16bit",
        "q8_0",
        "ollama",
        "--push-to-hub",
        "learner/tiny",
        runner=["tests/export_fakes.py", str(requests), str(log)],
        env={
            "HF_TOKEN": FAKE_TOKEN,
            "HF_HUB_OFFLINE": "0",
            "HOME": str(home),
            "HF_HOME": str(home / "hf"),
            "COURSE_CACHE": str(cache_dir()),
            "FAKE_CONVERT": "ok",
            "UNSLOTH_LLAMA_CPP_PATH": str(fake_llama_cpp(tmp_path / "llama.cpp")),
        },
    )
    seen = json.loads(requests.read_text())
    committed = [set(r["files"]) for r in seen if "files" in r]
    assert {"model.safetensors", "config.json"} <= committed[0] and "tokenizer.json" in committed[1]
    assert committed[2] == {"gguf/model/model.Q8_0.gguf", "gguf/model/Modelfile"}
    assert all(r["auth_has_token"] for r in seen if r["path"] != "/api/agent-harnesses")
    modelfile = run / "export" / "gguf" / "model" / "Modelfile"
    assert (modelfile.parent / parse_modelfile(modelfile.read_text())["FROM"]).is_file()
    assert "Uploaded to https://huggingface.co/learner/tiny" in proc.stdout
    assert [r["visibility"] for r in seen if r["path"] == "/api/repos/create"][:1] == ["private"], (
        "created private"
    )
    assert log.stat().st_size > 0  # DEBUG records were written
    for where, text in [("stdout", proc.stdout), ("stderr", proc.stderr)]:
        assert FAKE_TOKEN not in text, f"the token is in {where}"
    for path in [p for p in tmp_path.rglob("*") if p.is_file()]:
        assert FAKE_TOKEN.encode() not in path.read_bytes(), f"the token is in {path}"


@pytest.fixture(scope="module")
def exported(trained) -> tuple[Path, bool, subprocess.CompletedProcess]:
    """`course export` of the trained adapter with the real llama.cpp: merged_16bit, and q8_0 + ollama where the
    tiny model's tokenizer is one llama.cpp converts (a SentencePiece tokenizer.model)."""
    from helpers.llama_cpp import cached_dir, problem
    from helpers.tiny import tiny_model_path

    out, _ = trained
    gguf = (tiny_model_path() / "tokenizer.model").is_file() and problem(cached_dir()) is None
    formats = ["merged_16bit", *(["q8_0", "ollama"] if gguf else [])]
    return out / "export", gguf, course(*EXPORT, "--output-dir", str(out), "--formats", *formats)


@pytest.mark.filterwarnings("ignore:WARNING. Unsloth should be imported before")
def test_export_end_to_end_merged_16bit(exported):
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoTokenizer

    from helpers.tiny import tiny_model_path
    from tools.bench import count_parameters

    folder, _, proc = exported
    merged = folder / "merged_16bit"
    # every tensor, none half-written
    assert count_parameters(merged) == count_parameters(tiny_model_path())
    import unsloth  # noqa: F401  (unsloth_zoo needs it first; run alone, nothing has imported it)
    from unsloth_zoo.cpu.runtime import cpu_bf16_supported

    # a CPU with bf16 (AVX-512 BF16) merges to bf16, else fp16
    half = "torch.bfloat16" if cpu_bf16_supported() else "torch.float16"
    assert all(str(t.dtype) == half for t in load_file(str(merged / "model.safetensors")).values())
    assert (
        AutoConfig.from_pretrained(merged).model_type == "llama"
        and len(AutoTokenizer.from_pretrained(merged)) > 0
    )
    assert not [p for p in folder.iterdir() if ".tmp-" in p.name or ".old-" in p.name]
    assert str(merged) in proc.stdout and (folder / "course_config.yaml").is_file()


def test_export_end_to_end_gguf_q8_0(exported):
    from llama_cpp import Llama

    from helpers.data import prompt_for
    from helpers.llama_cpp import cached_dir, parse_modelfile, problem
    from helpers.tiny import tiny_model_path

    folder, gguf, proc = exported
    if not (tiny_model_path() / "tokenizer.model").is_file():
        pytest.skip(
            "the tiny model's tokenizer has no tokenizer.model (the byte-level BPE one, which llama.cpp's "
            "converter rejects: 'BPE pre-tokenizer was not recognized'); its SentencePiece successor converts"
        )
    if not gguf:
        pytest.skip(
            f"no usable llama.cpp in {cached_dir()} ({problem(cached_dir())}): python -m tools.llama_cpp_build"
        )
    files = {p.name: p for p in (folder / "gguf").rglob("*") if p.is_file()}
    assert set(files) == {"model.Q8_0.gguf", "Modelfile"}, files
    q8 = files["model.Q8_0.gguf"]
    assert q8.read_bytes()[:4] == b"GGUF" and str(q8) in proc.stdout
    llm = Llama(model_path=str(q8), n_ctx=256, n_threads=1, seed=0, verbose=False)
    answer = llm(
        prompt_for("Is the number even or odd?", "12"), max_tokens=4, temperature=0.0, top_k=1
    )
    llm.close()
    # llama.cpp loads the whole file, reads the prompt and generates (the tiny model may stop at once)
    assert answer["usage"]["prompt_tokens"] > 10 and isinstance(answer["choices"][0]["text"], str)
    assert (
        files["Modelfile"].parent / parse_modelfile(files["Modelfile"].read_text())["FROM"]
    ).resolve() == q8


def test_train_under_two_processes_shares_the_data_and_saves_one_adapter(tmp_path):
    """`course train` under torchrun with 2 processes (the DDP path of issue 15, here on the CPU over gloo): each
    process trains on its own batches (one process alone would cover half as much of an epoch), and rank 0 alone
    writes one adapter, which reloads. (torch's "destroy_process_group() was not called" warning is NCCL's: the GPU
    run checks that one.)"""
    from safetensors.torch import load_file

    from helpers.paths import TRAIN_FILE

    out = tmp_path / "ddp"
    proc = course(
        "train",
        "--model",
        "tiny",
        "--max-steps",
        "2",
        "--output-dir",
        str(out),
        "--report-to",
        "none",
        "--no-progress",
        env={"OMP_NUM_THREADS": "1"},
        runner=("-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "tools.cli"),
    )
    metrics = json.loads((out / "train_metrics.json").read_text())
    assert metrics["world_size"] == 2 and metrics["global_step"] == 2, metrics
    examples = sum(1 for line in TRAIN_FILE.read_text().splitlines() if line.strip())
    seen = (
        2 * (2 * 4) * 2
    )  # steps x (per-device batch x accumulation) x processes: distinct batches per process
    assert json.loads((out / "trainer_state.json").read_text())["epoch"] == pytest.approx(
        seen / examples, rel=1e-3
    )
    adapters = [p for p in out.rglob("adapter_model.safetensors") if "checkpoints" not in p.parts]
    assert adapters == [out / "lora_adapter" / "adapter_model.safetensors"], adapters
    assert len(load_file(adapters[0])) == 56  # 7 projections x 4 layers x (A, B)
    assert "2 process(es)" in proc.stdout


def test_the_notebooks_catch_up_cell_trains_with_helpers_train_then_reuses_it(
    tmp_path, monkeypatch, capsys
):
    """Notebooks 05-08 started without notebook 04's adapter run `python -m helpers.train` (what `course train`
    runs) from their stamped adapter cell (tools/notebook_template/adapter.py) and load what it saved; run again,
    the cell uses that adapter."""
    for name, value in {
        "COURSE_OUTPUT": str(tmp_path),
        "HF_HUB_OFFLINE": "1",
        "CUDA_VISIBLE_DEVICES": "",
        "TOKENIZERS_PARALLELISM": "false",
    }.items():
        monkeypatch.setenv(name, value)  # for the cell's `python -m helpers.train` process
    cell = (ROOT / "tools" / "notebook_template" / "adapter.py").read_text()
    first = {"COURSE_MODEL": "tiny", "COURSE_DIR": str(ROOT)}
    exec(cell, first)
    out = capsys.readouterr().out
    assert "No adapter at" in out and "Saved the adapter to" in out and "Adapter saved to" in out, (
        out[-3000:]
    )
    assert (
        first["adapter"] == tmp_path / "lora_adapter"
        and (first["adapter"] / "adapter_model.safetensors").is_file()
    )
    assert (
        json.loads((tmp_path / "train_metrics.json").read_text())["global_step"] == 100
    )  # the tiny model's recipe
    again = {"COURSE_MODEL": "tiny", "COURSE_DIR": str(ROOT)}
    exec(cell, again)
    assert (
        "Using the adapter notebook 04 saved" in capsys.readouterr().out
        and again["adapter"] == first["adapter"]
    )
