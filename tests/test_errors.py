"""Every bad input the course was tried with, and the message each one gets.

| bad input                                            | what the learner gets                                                     |
| ---------------------------------------------------- | ------------------------------------------------------------------------- |
| hub name with a typo, offline                        | ModelLoadError: tried the Hub repo; HF_HUB_OFFLINE=1 is set; COURSE_MODEL |
| hub name with a typo, online, set via COURSE_MODEL   | ModelLoadError: check the spelling, HF_TOKEN; COURSE_MODEL's value        |
| local path that does not exist (absolute, relative)  | ModelLoadError: the folder does not exist; current folder                 |
| existing folder without config.json                  | ModelLoadError: not a saved model, or the save/download was cut off       |
| model folder with config.json but no weights         | ModelLoadError: some of its files may be missing or cut off               |
| data path with a typo                                | DataError: file not found (before the model loads)                        |
| empty data file, blank-lines-only file               | DataError: no records (before the model loads)                            |
| empty dataset after a filter                         | EmptyDatasetError: no examples, nothing to train on                       |
| examples longer than max_seq_length                  | 'N of M examples are longer ... truncated to X tokens'                    |
| CUDA out of memory in the training step              | what to lower (batch, max_seq_length, r, checkpointing); re-raised        |
| out of memory as a RuntimeError text                 | the same advice; re-raised                                                |
| out of memory with batch 1, checkpointing off        | raise gradient_accumulation_steps; use 'unsloth' mode                     |
| another error under oom_advice                       | no advice; re-raised unchanged                                            |
| save that fails halfway (disk full)                  | error re-raised; old adapter intact; no partial folder                    |
| save whose process is killed halfway                 | old adapter intact; the next save removes the leftovers                   |
| crash between the two renames of a save              | old adapter put back                                                      |
| saved file that does not reload                      | SaveError: does not reload; old adapter intact                            |
| saved values that differ from the model              | SaveError: reloads with other values; old adapter intact                  |
| packages at other versions than the pins, or missing | each package named (warning + report); one pip command                    |
| a Hugging Face token printed, formatted or pickled   | a mask (hf_****), never the token; pickling refused                       |
| no token anywhere, but one required                  | MissingTokenError: set HF_TOKEN or a Colab secret                         |

Interrupted runs and checkpoints that do not fit the run are in test_resume.py; tokens from
Colab's secrets and notebooks free of tokens in test_secrets.py.
"""

import os
import pickle
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import unsloth  # noqa: F401  (before transformers, trl and peft)

from helpers import save as save_mod
from helpers import versions
from helpers.data import DataError, format_alpaca, load_alpaca
from helpers.errors import (
    EmptyDatasetError,
    ModelLoadError,
    check_lengths,
    explain_model_name,
    oom_advice,
)
from helpers.models import choose_model
from helpers.paths import TRAIN_FILE
from helpers.recipe import Recipe
from helpers.save import SaveError
from helpers.secrets import MissingTokenError, Token, hf_token
from helpers.train import add_lora, load_model, make_trainer, save_adapter, train_adapter

ROOT = Path(__file__).resolve().parent.parent
SECRET = "hf_" + "q7XbR2" * 6  # looks like a real token


@pytest.fixture(scope="module")
def tiny():
    name = choose_model("tiny")
    recipe = replace(
        Recipe.for_model(name),
        max_steps=2,
        max_seq_length=256,
        per_device_train_batch_size=2,
        gradient_accumulation_steps=4,
    )
    model, tokenizer = load_model(name, recipe)
    return name, recipe, add_lora(model, recipe), tokenizer


@pytest.fixture(scope="module")
def dataset(tiny):
    tokenizer = tiny[3]
    return (
        load_alpaca(TRAIN_FILE)
        .select(range(40))
        .map(lambda e: format_alpaca(e, tokenizer.eos_token))
    )


# --- a model that cannot be loaded ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, tried",
    [
        (
            "unsloth/llama-3-8b-bnb-4bitt",
            "Tried: the Hugging Face Hub repository 'unsloth/llama-3-8b-bnb-4bitt'",
        ),
        (
            "/no/such/folder/model",
            "Tried: a local folder, but /no/such/folder/model does not exist",
        ),
        ("./models/my-model", "does not exist (check the spelling and the current folder"),
    ],
    ids=["hub-typo", "absolute-path", "relative-path"],
)
def test_unloadable_model_name_says_what_was_tried(name, tried, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError) as info:
        load_model(name, Recipe())
    message = str(info.value)
    assert message.startswith(f"Could not load the model {name!r}.")
    assert tried in message
    assert "COURSE_MODEL" in message and "'tiny'" in message
    assert "Underlying error: OSError" in message
    if not name.startswith((".", "/")):
        assert "HF_HUB_OFFLINE=1 is set" in message


def test_folder_that_is_not_a_model_says_so(tmp_path):
    folder = tmp_path / "half-downloaded"
    folder.mkdir()
    (folder / "tokenizer.json").write_text("{}")
    with pytest.raises(ModelLoadError) as info:
        load_model(str(folder), Recipe())
    message = str(info.value)
    assert (
        f"Tried: the local folder {folder}, which holds ['tokenizer.json'] but no config.json"
        in message
    )
    assert "cut off" in message and "COURSE_MODEL" in message


def test_model_folder_without_weights_says_files_are_missing(tmp_path):
    folder = tmp_path / "cut-off-save"
    folder.mkdir()
    (folder / "config.json").write_text((Path(choose_model("tiny")) / "config.json").read_text())
    with pytest.raises(ModelLoadError) as info:
        load_model(str(folder), Recipe())
    message = str(info.value)
    assert (
        f"Tried: the local folder {folder}, which holds ['config.json']: some of its files may be missing"
        in message
    )


def test_online_typo_mentions_spelling_token_and_the_variable_that_set_it(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("COURSE_MODEL", "unsloth/llama-3-8b-bnb-4bitt")
    message = explain_model_name(choose_model(), OSError("401 Client Error"))
    assert "HF_HUB_OFFLINE" not in message
    assert "Check the spelling" in message and "HF_TOKEN" in message
    assert "(COURSE_MODEL is set to 'unsloth/llama-3-8b-bnb-4bitt' in the environment.)" in message
    assert message.endswith("Underlying error: OSError: 401 Client Error")


# --- no data ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content, expected",
    [
        (None, "file not found"),
        ("", "no records (the file is empty or has only blank lines)"),
        ("\n\n  \n", "no records (the file is empty or has only blank lines)"),
    ],
    ids=["missing-file", "empty-file", "blank-lines"],
)
def test_bad_data_file_fails_before_the_model_loads(content, expected, tmp_path, monkeypatch):
    data = tmp_path / "train.jsonl"
    if content is not None:
        data.write_text(content)
    monkeypatch.setattr(
        "helpers.train.load_model", lambda *a: pytest.fail("the model loaded before the data check")
    )
    with pytest.raises(DataError) as info:
        train_adapter("tiny", data, tmp_path / "lora_adapter", Recipe())
    assert str(info.value).startswith(f"{data}: {expected}")


def test_empty_dataset_after_a_filter(dataset, tiny):
    empty = dataset.filter(lambda e: False)
    with pytest.raises(
        EmptyDatasetError,
        match="the training dataset has no examples, so there is nothing to train on",
    ):
        check_lengths(empty, tiny[3], 256)
    assert issubclass(EmptyDatasetError, DataError)


# --- examples longer than max_seq_length ----------------------------------------------------------------------


def test_too_long_examples_are_counted_and_said_to_be_truncated(dataset, tiny, capsys):
    tokenizer = tiny[3]
    lengths = [len(tokenizer(t)["input_ids"]) for t in dataset["text"]]
    limit = sorted(lengths)[len(lengths) // 2]  # about half the examples are longer
    n_long = sum(n > limit for n in lengths)
    assert 0 < n_long < len(lengths)

    report = check_lengths(dataset, tokenizer, limit)

    assert (report.too_long, report.total, report.longest) == (n_long, len(lengths), max(lengths))
    printed = capsys.readouterr().out
    assert (
        f"{n_long} of {len(lengths)} examples are longer than max_seq_length={limit} tokens "
        f"(longest: {max(lengths)}). They will be truncated to {limit} tokens"
    ) in printed
    assert "Raise max_seq_length or shorten those examples." in printed


def test_examples_that_fit_are_reported_as_fitting(dataset, tiny, capsys):
    check_lengths(dataset, tiny[3], 2048)
    assert capsys.readouterr().out.startswith(
        f"All {len(dataset)} examples fit in max_seq_length=2048 tokens"
    )


# --- out of memory in the training step --------------------------------------------------------------------------


@pytest.fixture
def trainer(tiny, dataset, tmp_path):
    _, recipe, model, tokenizer = tiny
    return make_trainer(model, tokenizer, dataset, recipe, tmp_path / "checkpoints")


@pytest.mark.parametrize(
    "error",
    [
        torch.OutOfMemoryError(
            "CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 14.74 GiB"
        ),
        RuntimeError("CUDA error: out of memory"),
    ],
    ids=["OutOfMemoryError", "RuntimeError-text"],
)
def test_oom_in_training_step_prints_what_to_lower_and_reraises(
    error, trainer, tiny, capsys, monkeypatch
):
    def training_step(*args, **kwargs):
        raise error

    monkeypatch.setattr(trainer, "training_step", training_step)
    with pytest.raises(type(error)) as info:
        with oom_advice(trainer, tiny[1]):
            trainer.train()
    assert info.value is error, "the original error must be re-raised"
    advice = capsys.readouterr().err
    assert "\nOut of memory during training. Lower one of these" in advice
    assert (
        "per_device_train_batch_size 2 -> 1 and raise gradient_accumulation_steps 4 -> 8" in advice
    )
    assert "max_seq_length (SFTConfig max_length): 256 -> 128" in advice
    assert "r (LoRA rank): 16 -> 8" in advice
    assert 'gradient checkpointing mode: already "unsloth"' in advice
    assert "training resumes from the last checkpoint" in advice


def test_oom_advice_suggests_unsloth_checkpointing_when_off(capsys):
    recipe = replace(Recipe(), use_gradient_checkpointing=False, per_device_train_batch_size=1)
    with pytest.raises(torch.OutOfMemoryError):
        with oom_advice(recipe=recipe):
            raise torch.OutOfMemoryError("CUDA out of memory")
    advice = capsys.readouterr().err
    assert 'gradient checkpointing mode: False -> use_gradient_checkpointing="unsloth"' in advice
    assert "per_device_train_batch_size is 1; raise gradient_accumulation_steps instead" in advice


def test_other_errors_pass_through_without_advice(capsys):
    with pytest.raises(ValueError, match="not memory"):
        with oom_advice(recipe=Recipe()):
            raise ValueError("not memory")
    assert capsys.readouterr().err == ""


# --- saving never leaves a half-written adapter ------------------------------------------------------------


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.fixture
def saved(tiny, tmp_path):
    _, _, model, tokenizer = tiny
    path = save_adapter(model, tokenizer, tmp_path / "lora_adapter")
    return path, snapshot(path)


def test_save_writes_a_complete_checked_adapter(tiny, tmp_path, capsys):
    path = save_adapter(tiny[2], tiny[3], tmp_path / "lora_adapter")
    assert {"adapter_model.safetensors", "adapter_config.json", "tokenizer.json"} <= set(
        snapshot(path)
    )
    n_lora = sum("lora_" in name for name, _ in tiny[2].named_parameters())
    assert (
        capsys.readouterr().out
        == f"Saved the adapter to {path} ({n_lora} tensors reloaded and checked).\n"
    )
    assert sorted(p.name for p in path.parent.iterdir()) == ["lora_adapter"]


def test_crash_mid_save_keeps_the_old_adapter(saved, tiny, monkeypatch):
    path, before = saved
    _, _, model, tokenizer = tiny

    def half_save(folder, *args, **kwargs):
        Path(folder, "tokenizer.json").write_text('{"trunc')
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tokenizer, "save_pretrained", half_save)
    with pytest.raises(OSError, match="No space left on device"):
        save_adapter(model, tokenizer, path)
    assert snapshot(path) == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["lora_adapter"], (
        "no partial folder may be left"
    )


def test_killed_mid_save_keeps_the_old_adapter_and_next_save_tidies_up(saved, tiny):
    path, before = saved
    script = textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {str(ROOT)!r})
        from helpers.train import save_adapter

        class Model:
            def save_pretrained(self, folder):
                with open(os.path.join(folder, "adapter_model.safetensors"), "wb") as f:
                    f.write(b"half a file")
                    f.flush()
                os._exit(9)  # the runtime dies: no except, no finally

        save_adapter(Model(), None, {str(path)!r}, check=False)
    """)
    assert subprocess.run([sys.executable, "-c", script]).returncode == 9
    assert snapshot(path) == before
    leftovers = [p.name for p in path.parent.iterdir() if p != path]
    assert len(leftovers) == 1 and leftovers[0].startswith(".lora_adapter.tmp-")

    save_adapter(tiny[2], tiny[3], path)
    assert sorted(p.name for p in path.parent.iterdir()) == ["lora_adapter"]


def test_crash_between_the_renames_puts_the_old_adapter_back(saved, tiny, monkeypatch):
    path, before = saved
    calls = []
    real_replace = os.replace

    def flaky_replace(src, dst):
        calls.append((src, dst))
        if len(calls) == 2:
            raise OSError("interrupted rename")
        return real_replace(src, dst)

    monkeypatch.setattr(save_mod.os, "replace", flaky_replace)
    with pytest.raises(OSError, match="interrupted rename"):
        save_adapter(tiny[2], tiny[3], path)
    assert snapshot(path) == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["lora_adapter"]


def test_reload_check_rejects_a_truncated_file(saved, tiny, monkeypatch):
    path, before = saved
    model = tiny[2]
    real_save = type(model).save_pretrained

    def truncating_save(self, folder, *args, **kwargs):
        real_save(self, folder, *args, **kwargs)
        weights = Path(folder, "adapter_model.safetensors")
        weights.write_bytes(weights.read_bytes()[:100])

    monkeypatch.setattr(type(model), "save_pretrained", truncating_save)
    with pytest.raises(SaveError, match="the saved adapter does not reload"):
        save_adapter(model, tiny[3], path)
    assert snapshot(path) == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["lora_adapter"]


def test_reload_check_rejects_values_that_differ_from_the_model(saved, tiny, monkeypatch):
    path, before = saved
    model = tiny[2]
    real_save = type(model).save_pretrained
    lora = next(p for n, p in model.named_parameters() if "lora_B" in n)

    def save_then_train_on(self, folder, *args, **kwargs):
        real_save(self, folder, *args, **kwargs)
        with torch.no_grad():
            lora.add_(1.0)  # the model moves on after the files were written

    monkeypatch.setattr(type(model), "save_pretrained", save_then_train_on)
    try:
        with pytest.raises(SaveError, match="reloads with other values than the model holds"):
            save_adapter(model, tiny[3], path)
    finally:
        with torch.no_grad():
            lora.sub_(1.0)
    assert snapshot(path) == before


# --- version drift --------------------------------------------------------------------------------------------------


def test_version_drift_names_each_package_and_the_fix(tmp_path, monkeypatch, capsys):
    req = tmp_path / "req.txt"
    req.write_text("trl==0.0.1\npeft==0.21.0\nnotapkg==1.0\n")
    installed = {"trl": "1.15.0", "peft": "0.21.0", "torch": "2.13.0"}
    monkeypatch.setattr(versions, "installed_version", installed.get)
    with pytest.warns(UserWarning) as warned:
        drifted = versions.check_versions(req, gpu=False)
    assert [r.name for r in drifted] == ["trl", "notapkg"]
    assert [str(w.message) for w in warned] == [
        "trl: installed 1.15.0, pinned 0.0.1",
        "notapkg: installed nothing, pinned 1.0",
    ]
    report = capsys.readouterr().out
    assert "2 package(s) differ from the versions this course was tested with:" in report
    assert "  - trl: installed 1.15.0, pinned 0.0.1" in report
    assert "  - notapkg: installed nothing (not installed), pinned 1.0" in report
    assert "peft" not in report
    assert report.rstrip().endswith("pip install --no-deps trl==0.0.1 notapkg==1.0")


def test_no_drift_says_all_match(tmp_path, monkeypatch, capsys):
    req = tmp_path / "req.txt"
    req.write_text("peft==0.21.0\n")
    monkeypatch.setattr(versions, "installed_version", {"peft": "0.21.0"}.get)
    assert versions.check_versions(req, gpu=False) == []
    assert capsys.readouterr().out.strip() == "All pinned packages match."


# --- secrets ---------------------------------------------------------------------------------------------------------


def test_token_is_never_shown(monkeypatch, capsys):
    monkeypatch.setenv("HF_TOKEN", SECRET)
    token = hf_token()
    assert token.value == SECRET and token.source == "HF_TOKEN"
    print(token, repr(token), f"{token}", f"{token!r:>10}", [token], {"t": token})
    shown = capsys.readouterr().out
    assert SECRET not in shown and SECRET[3:] not in shown
    assert "hf_****" in shown and f"Token('hf_****', {len(SECRET)} chars, from HF_TOKEN)" in shown
    with pytest.raises(TypeError, match="not pickled"):
        pickle.dumps(token)


def test_missing_token_says_where_to_put_it(monkeypatch):
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "COLAB_RELEASE_TAG"):
        monkeypatch.delenv(name, raising=False)
    assert hf_token() is None
    with pytest.raises(MissingTokenError) as info:
        hf_token(required=True)
    message = str(info.value)
    assert "environment variable HF_TOKEN" in message and "Colab" in message and "secret" in message
    assert "Never paste a token into a cell" in message


def test_token_class_masks_other_strings_too():
    token = Token("secret-without-prefix", "test")
    assert str(token) == "****" and "secret" not in repr(token)
