"""The export helpers of notebook 08 and `course export` (helpers/llama_cpp.py, helpers/save.py), on the CPU.

Fast checks of the helpers themselves, plus a full disk in the middle of a real merged export (the tiny
model, in this process). The GGUF routes through Unsloth run in their own processes in tests/test_cli.py,
because Unsloth reads its llama.cpp folder once per process.
"""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path

import pytest
from export_fakes import fake_llama_cpp

from helpers.data import ALPACA_PROMPT, prompt_for
from helpers.llama_cpp import (
    LlamaCppError,
    alpaca_modelfile,
    check_quantization,
    export_errors,
    gguf_files,
    llama_cpp_dir,
    parse_modelfile,
    render_template,
)
from helpers.save import atomic_folder

pytestmark = pytest.mark.slow  # make test-fast leaves these out

ROOT = Path(__file__).resolve().parent.parent
STOPS = ["<|end_of_text|>", "### Instruction:"]


def leftovers(folder: Path) -> list[str]:
    """Everything under ``folder`` (temporary siblings included), as relative paths."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


# --- quantization methods -----------------------------------------------------------------------------


def test_unknown_quantization_names_the_method_and_the_accepted_ones():
    with pytest.raises(LlamaCppError) as caught:
        check_quantization(["q8_0", "q9_x"])
    message = str(caught.value)
    assert message.startswith("unknown GGUF quantization method 'q9_x'. Unsloth knows: ")
    assert all(m in message for m in ("q8_0", "q4_k_m", "f16")), message  # the list Unsloth accepts
    with pytest.raises(
        LlamaCppError, match="unknown GGUF quantization method 'q4_km'; did you mean 'q4_k_m'"
    ):
        check_quantization(["q4_km"])
    check_quantization(["q8_0", "q4_k_m", "f16"])  # known ones pass


# --- finding llama.cpp --------------------------------------------------------------------------------


@pytest.fixture
def no_llama_cpp(tmp_path, monkeypatch):
    """No UNSLOTH_LLAMA_CPP_PATH, no ~/.unsloth/llama.cpp, an empty course cache; not on Colab."""
    # setenv first, so pytest restores the variable's absence afterwards: llama_cpp_dir() sets it, and a leaked
    # value would send every later notebook kernel of the session to this test's fake llama.cpp
    monkeypatch.setenv("UNSLOTH_LLAMA_CPP_PATH", "")
    monkeypatch.delenv("UNSLOTH_LLAMA_CPP_PATH")
    monkeypatch.delenv("COLAB_RELEASE_TAG", raising=False)
    monkeypatch.setattr(
        "helpers.llama_cpp.UNSLOTH_DEFAULT", tmp_path / "home" / ".unsloth" / "llama.cpp"
    )
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path / "cache"))
    return tmp_path


def test_llama_cpp_path_to_an_empty_folder_names_it_and_the_builder(no_llama_cpp, monkeypatch):
    empty = no_llama_cpp / "empty"
    empty.mkdir()
    monkeypatch.setenv("UNSLOTH_LLAMA_CPP_PATH", str(empty))
    with pytest.raises(LlamaCppError) as caught:
        llama_cpp_dir()
    message = str(caught.value)
    assert f"UNSLOTH_LLAMA_CPP_PATH={empty}" in message and f"{empty}/llama-quantize" in message
    assert "python -m tools.llama_cpp_build" in message
    assert os.environ["UNSLOTH_LLAMA_CPP_PATH"] == str(empty)  # the user's choice is never replaced


def test_empty_cache_folder_names_it_and_the_builder(no_llama_cpp):
    cache = no_llama_cpp / "cache" / "llama.cpp-0.3.36"
    cache.mkdir(parents=True)
    with pytest.raises(LlamaCppError) as caught:
        llama_cpp_dir()
    message = str(caught.value)
    assert (
        str(cache) in message
        and "python -m tools.llama_cpp_build" in message
        and "make setup" in message
    )
    assert "UNSLOTH_LLAMA_CPP_PATH" not in os.environ


def test_a_usable_cache_is_found_and_given_to_unsloth(no_llama_cpp, monkeypatch):
    cache = fake_llama_cpp(no_llama_cpp / "cache" / "llama.cpp-0.3.36")
    monkeypatch.delitem(
        sys.modules, "unsloth_zoo.llama_cpp", raising=False
    )  # Unsloth has not read it yet
    assert llama_cpp_dir() == cache and os.environ["UNSLOTH_LLAMA_CPP_PATH"] == str(cache)


def test_builder_reuses_a_usable_cache_and_builds_an_empty_one(no_llama_cpp, monkeypatch, capsys):
    import tools.llama_cpp_build as builder

    built = []
    monkeypatch.setattr(builder, "build", lambda dest: built.append(dest) or dest)
    cache = no_llama_cpp / "cache" / "llama.cpp-0.3.36"
    cache.mkdir(parents=True)
    assert builder.main() == 0 and built == [cache]  # empty: built
    fake_llama_cpp(cache)
    assert builder.main() == 0 and built == [cache]  # usable: printed, not rebuilt
    assert capsys.readouterr().out.splitlines() == [str(cache)] * 2


def test_make_setup_builds_llama_cpp_before_looking_for_it():
    recipe = (ROOT / "Makefile").read_text().split("$(STAMP):", 1)[1].split("\nsetup:", 1)[0]
    assert "-m tools.llama_cpp_build" in recipe
    assert recipe.index("-m tools.llama_cpp_build") < recipe.index("llama_cpp_dir()")


# --- all or nothing: a failed export leaves nothing that looks complete --------------------------------------


def test_atomic_folder_removes_a_failed_write_and_keeps_the_previous_folder(tmp_path):
    target = tmp_path / "gguf"
    with atomic_folder(target) as staging:
        (staging / "model.Q8_0.gguf").write_bytes(b"old")
    with pytest.raises(RuntimeError, match="converter died"):
        with atomic_folder(target) as staging:
            (staging / "model.Q8_0.gguf").write_bytes(b"half")
            raise RuntimeError("converter died")
    assert leftovers(tmp_path) == ["gguf", "gguf/model.Q8_0.gguf"]
    assert (target / "model.Q8_0.gguf").read_bytes() == b"old"


def test_export_errors_turn_a_failed_conversion_into_one_clear_error(tmp_path):
    target = tmp_path / "gguf"
    with pytest.raises(LlamaCppError) as caught:
        with export_errors(target), atomic_folder(target) as staging:
            (staging / "model.Q8_0.gguf").write_bytes(b"GGUF half")
            raise RuntimeError(
                "Unsloth: conversion failed\nNotImplementedError: BPE pre-tokenizer was not recognized"
            )
    message = str(caught.value)
    assert (
        str(target) in message
        and "BPE pre-tokenizer was not recognized" in message
        and "nothing was kept" in message
    )
    assert leftovers(tmp_path) == []
    with pytest.raises(KeyError):  # other errors pass through untouched
        with export_errors(target):
            raise KeyError("x")


@pytest.mark.parametrize(
    "error",
    [
        OSError(errno.ENOSPC, "No space left on device", "model.safetensors"),
        RuntimeError(
            "Unsloth: the converter failed\nOSError: [Errno 28] No space left on device: 'model.Q8_0.gguf'"
        ),
    ],
    ids=["write", "converter"],
)
def test_export_errors_say_the_disk_is_full(tmp_path, error):
    target = tmp_path / "merged_16bit"
    with pytest.raises(LlamaCppError) as caught:
        with export_errors(target), atomic_folder(target) as staging:
            (staging / "model.safetensors").write_bytes(b"\0" * 100)
            raise error
    message = str(caught.value)
    assert str(target) in message and "disk filled up" in message and "nothing was kept" in message
    assert leftovers(tmp_path) == []


def test_gguf_files_by_method(tmp_path):
    for name in ("model/model.Q8_0.gguf", "model/model.Q4_K_M.gguf", "model/Modelfile"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"GGUF")
    assert gguf_files(tmp_path) == {
        "q4_k_m": tmp_path / "model/model.Q4_K_M.gguf",
        "q8_0": tmp_path / "model/model.Q8_0.gguf",
    }


# --- the Ollama Modelfile -------------------------------------------------------------------------


def test_modelfile_round_trip_rebuilds_the_training_prompt():
    text = alpaca_modelfile("model.Q8_0.gguf", ALPACA_PROMPT, stops=STOPS)
    parsed = parse_modelfile(text)
    assert (
        parsed["FROM"] == "./model.Q8_0.gguf"
        and parsed["stop"] == STOPS
        and parsed["temperature"] == "0"
    )
    for instruction, given in [
        ("Is the number even or odd?", "67693"),
        ("Name a prime.", ""),
        ('Reply with JSON: {"a": 1}', "  two  spaces\nand a line\n"),
    ]:
        ollama_prompt = (
            f"{instruction}\n\n### Input:\n{given}"  # how a question with its input reaches .Prompt
        )
        assert render_template(parsed["TEMPLATE"], ollama_prompt) == prompt_for(instruction, given)
    assert (
        parse_modelfile(text.replace("\n", "\n# a comment\n\n", 1)) == parsed
    )  # comments, blank lines


def test_modelfile_samples_as_notebook_08_scored_the_gguf():
    """Ollama's defaults (temperature 0.8, top_k 40, repeat_penalty 1.1) would answer otherwise: the Modelfile sets
    the values of notebook 08's llama.cpp call, read from the notebook's code."""
    import ast
    import json

    cells = json.loads((ROOT / "notebooks" / "08_export_and_run.ipynb").read_text())["cells"]
    code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    (call,) = [
        n
        for n in ast.walk(ast.parse(code))
        if isinstance(n, ast.Call) and any(k.arg == "repeat_penalty" for k in n.keywords)
    ]
    scored = {
        k.arg: ast.literal_eval(k.value)
        for k in call.keywords
        if k.arg in ("temperature", "top_k", "repeat_penalty")
    }
    parsed = parse_modelfile(alpaca_modelfile("m.gguf", ALPACA_PROMPT, stops=STOPS, num_predict=21))
    assert set(scored) == {"temperature", "top_k", "repeat_penalty"}
    assert {name: float(parsed[name]) for name in scored} == {
        name: float(v) for name, v in scored.items()
    }
    assert parsed["num_predict"] == "21" and "num_predict" not in parse_modelfile(
        alpaca_modelfile("m.gguf", ALPACA_PROMPT, stops=STOPS)
    )


@pytest.mark.parametrize(
    "text, line",
    [
        ('FROM ./m.gguf\nTEMPLAT """x"""\n', 2),
        ('FROM ./m.gguf\n\nTEMPLATE """no closing quotes\nPARAMETER stop "x"\n', 3),
        ('FROM\nPARAMETER stop "x"\n', 1),
        ("FROM ./m.gguf\nPARAMETER temperature 0\njunk here\n", 3),
    ],
)
def test_malformed_modelfile_names_the_line(text, line):
    with pytest.raises(ValueError, match=f"Modelfile line {line}: "):
        parse_modelfile(text)


def test_render_template_refuses_other_template_actions():
    with pytest.raises(ValueError, match=r"\.System"):
        render_template("{{ .System }} {{ .Prompt }}", "x")


# --- a full disk in the middle of a real export (the tiny model, in this process) -----------------------------


@pytest.fixture(scope="module")
def adapter(tmp_path_factory) -> Path:
    """An untrained LoRA adapter on the tiny model (B = 0: merging it gives the base weights; enough to export)."""
    import unsloth  # noqa: F401
    from unsloth import FastLanguageModel

    from helpers.tiny import tiny_model_path

    model, tokenizer = FastLanguageModel.from_pretrained(
        str(tiny_model_path()), max_seq_length=256, load_in_4bit=False
    )
    model = FastLanguageModel.get_peft_model(
        model, r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"]
    )
    out = tmp_path_factory.mktemp("export") / "lora_adapter"
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    return out


def test_full_disk_mid_export_names_the_folder_and_leaves_nothing(
    adapter, tmp_path, monkeypatch, capsys
):
    import transformers.modeling_utils as modeling_utils
    from safetensors.torch import save

    from tools.cli import main

    def half_then_full(
        tensors, filename, metadata=None
    ):  # the shard writer runs out of space halfway
        data = save(tensors, metadata)
        with open(filename, "wb") as f:
            f.write(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device", filename)

    monkeypatch.setattr(modeling_utils, "safe_save_file", half_then_full)
    for name, value in {"UNSLOTH_FORCE_CPU": "1", "TOKENIZERS_PARALLELISM": "false"}.items():
        monkeypatch.setenv(name, value)  # main() sets them; undone after the test
    out = tmp_path / "run"
    code = main(
        [
            "export",
            "--model",
            "tiny",
            "--device",
            "cpu",
            "--adapter",
            str(adapter),
            "--output-dir",
            str(out),
            "--formats",
            "merged_16bit",
            "--no-progress",
        ]
    )
    err = capsys.readouterr().err
    assert code == 1, err
    assert f"course export: error: {out / 'export' / 'merged_16bit'}: the disk filled up" in err
    assert leftovers(out) == [
        "export"
    ]  # no merged_16bit, no temporary folder, no half-written shard


def test_course_export_writes_merged_4bit_after_the_exports_that_need_the_adapter(
    adapter, tmp_path, monkeypatch
):
    """Unsloth's merged_4bit_forced folds the adapter into the loaded model in place (PEFT's merge_and_unload); a
    GGUF or 16-bit export after it holds the base model alone (seen on an H200: GGUF answers 0% like the adapter's).
    `course export` therefore writes it last, whatever order --formats gives. The GPU steps are stand-ins here."""
    import helpers.llama_cpp
    import helpers.tiny
    import tools.cli as cli
    from tools.cli import Placement

    calls = []

    class Model:
        def save_pretrained_merged(self, path, tokenizer, save_method):
            calls.append(save_method)
            Path(path, "model.safetensors").write_bytes(b"weights")

        def save_pretrained_gguf(self, path, tokenizer, quantization_method):
            calls.append("gguf")
            Path(path).mkdir(parents=True, exist_ok=True)
            for method in quantization_method:
                Path(path, f"model.{method.upper()}.gguf").write_bytes(b"GGUF")

    class Tokenizer:
        eos_token = "<|end_of_text|>"

    monkeypatch.setattr(
        cli,
        "placement_for",
        lambda cfg: Placement(device="cuda", precision="bf16", gpu_name="stand-in"),
    )
    monkeypatch.setattr(cli, "load_for_inference", lambda *args, **kwargs: (Model(), Tokenizer()))
    monkeypatch.setattr(helpers.llama_cpp, "llama_cpp_dir", lambda: "stand-in llama.cpp")
    monkeypatch.setattr(helpers.llama_cpp, "check_quantization", lambda methods: None)
    monkeypatch.setattr(helpers.tiny, "carry_sentencepiece_model", lambda *args: None)
    code = cli.main(
        [
            "export",
            "--model",
            "tiny",
            "--adapter",
            str(adapter),
            "--output-dir",
            str(tmp_path / "run"),
            "--formats",
            "merged_4bit",
            "q8_0",
            "merged_16bit",
            "--no-progress",
        ]
    )
    assert code == 0
    assert calls == ["merged_16bit", "gguf", "merged_4bit_forced"], calls
