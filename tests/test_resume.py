"""An interrupted training run resumes from its last checkpoint and ends exactly where an uninterrupted one does.

Two runs of the tiny model with the same seed: one straight through, one stopped by an exception at
step ``STOP`` (checkpoints every ``SAVE`` steps) and then started again. Their adapters and loss
histories must agree.
"""

import unsloth  # noqa: F401, I001  (before transformers, trl and peft)

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import TrainerCallback

from helpers.checkpoints import last_checkpoint, list_checkpoints, resume_checkpoint
from helpers.paths import use_drive, warn_if_drive_missing
from helpers.models import choose_model
from helpers.paths import TRAIN_FILE
from helpers.recipe import Recipe
from helpers.train import train_adapter

pytestmark = pytest.mark.slow  # make test-fast leaves these out

MAX_STEPS, SAVE, STOP = 6, 3, 5


class StopAt(TrainerCallback):
    """A real interruption: raise KeyboardInterrupt (the notebook's stop button) at the end of step ``step``."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise KeyboardInterrupt(f"simulated disconnect at step {self.step}")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    data = root / "train.jsonl"
    data.write_text("\n".join(TRAIN_FILE.read_text().splitlines()[:48]) + "\n")
    model = choose_model("tiny")
    recipe = replace(
        Recipe.for_model(model),
        max_steps=MAX_STEPS,
        save_steps=SAVE,
        warmup_steps=2,
        per_device_train_batch_size=2,
        gradient_accumulation_steps=1,
        max_seq_length=256,
    )
    return root, data, model, recipe


def losses(state_file):
    history = json.loads(state_file.read_text())["log_history"]
    return [(h["step"], h["loss"]) for h in history if "loss" in h]


def test_interrupted_run_resumes_and_matches_an_uninterrupted_one(setup, capsys):
    root, data, model, recipe = setup

    straight = train_adapter(model, data, root / "straight" / "lora_adapter", recipe)
    assert "Starting fresh" in capsys.readouterr().out

    out = root / "interrupted" / "lora_adapter"
    with pytest.raises(KeyboardInterrupt):
        train_adapter(model, data, out, recipe, callbacks=[StopAt(STOP)])
    said = capsys.readouterr().out
    assert f"Interrupted at step {STOP}. Run again to resume from checkpoint-{SAVE}." in said
    assert not out.exists(), "an interrupted run must not leave an adapter behind"
    assert last_checkpoint(out.parent / "checkpoints").name == f"checkpoint-{SAVE}"

    train_adapter(model, data, out, recipe)
    said = capsys.readouterr().out
    assert f"Resuming from checkpoint-{SAVE} (step {SAVE} of {MAX_STEPS})" in said
    assert "Starting fresh" not in said

    a, b = (
        load_file(str(straight / "adapter_model.safetensors")),
        load_file(str(out / "adapter_model.safetensors")),
    )
    assert a.keys() == b.keys() and a
    for key in a:
        assert torch.allclose(a[key].float(), b[key].float(), rtol=1e-4, atol=1e-6), key
    start = load_file(
        str(list_checkpoints(out.parent / "checkpoints")[0] / "adapter_model.safetensors")
    )
    assert any(not torch.equal(start[k], b[k]) for k in b), (
        "the adapter must have trained past the checkpoint"
    )

    la, lb = (
        losses(straight.parent / "trainer_state.json"),
        losses(out.parent / "trainer_state.json"),
    )
    assert [s for s, _ in la] == [s for s, _ in lb] == list(range(1, MAX_STEPS + 1))
    assert [x for _, x in lb] == pytest.approx([x for _, x in la], rel=1e-4)


# --- which checkpoint to resume from (fake checkpoint folders, no training) ---------------------------------------


def fake_checkpoint(folder, step, base="tiny-model", max_steps=MAX_STEPS, complete=True):
    ckpt = folder / f"checkpoint-{step}"
    ckpt.mkdir(parents=True)
    (ckpt / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": base}))
    state = json.dumps({"global_step": step, "max_steps": max_steps, "log_history": []})
    (ckpt / "trainer_state.json").write_text(state if complete else state[:20])  # cut off mid-write
    return ckpt


def test_resumes_from_the_highest_complete_checkpoint(tmp_path, capsys):
    folder = tmp_path / "checkpoints"
    fake_checkpoint(folder, 2)
    fake_checkpoint(folder, 4)
    fake_checkpoint(folder, 6, complete=False)
    assert resume_checkpoint(folder, "tiny-model", MAX_STEPS) == str(folder / "checkpoint-4")
    assert (
        capsys.readouterr().out
        == f"Resuming from checkpoint-4 (step 4 of {MAX_STEPS}) in {folder}.\n"
    )


def test_a_finished_run_is_not_resumed(tmp_path, capsys):
    fake_checkpoint(tmp_path / "checkpoints", MAX_STEPS)
    assert resume_checkpoint(tmp_path / "checkpoints", "tiny-model", MAX_STEPS) is None
    said = capsys.readouterr().out
    assert (
        f"Starting fresh: checkpoint-{MAX_STEPS} does not continue this run: it is the end of a finished run "
        f"({MAX_STEPS} of {MAX_STEPS} steps)."
    ) in said


def test_checkpoint_of_another_model_is_not_resumed_but_kept(tmp_path, capsys):
    folder = tmp_path / "checkpoints"
    fake_checkpoint(folder, 4, base="unsloth/llama-3-8b-bnb-4bit")
    assert resume_checkpoint(folder, "tiny-model", MAX_STEPS) is None
    said = capsys.readouterr().out
    assert (
        "Starting fresh: checkpoint-4 does not continue this run: it was trained from "
        "'unsloth/llama-3-8b-bnb-4bit', not 'tiny-model'."
    ) in said
    assert f"The old checkpoints are kept in {tmp_path / 'checkpoints-previous'}." in said
    assert not folder.exists() and (tmp_path / "checkpoints-previous" / "checkpoint-4").is_dir()


def test_checkpoint_of_another_step_count_is_not_resumed(tmp_path, capsys):
    fake_checkpoint(tmp_path / "checkpoints", 4, max_steps=60)
    assert resume_checkpoint(tmp_path / "checkpoints", "tiny-model", MAX_STEPS) is None
    assert f"it belongs to a run of max_steps=60, not {MAX_STEPS}" in capsys.readouterr().out


def test_resume_false_and_empty_folder_start_fresh(tmp_path, capsys):
    assert resume_checkpoint(tmp_path / "none") is None
    assert capsys.readouterr().out == f"Starting fresh: no checkpoint in {tmp_path / 'none'}.\n"
    fake_checkpoint(tmp_path / "checkpoints", 4)
    assert resume_checkpoint(tmp_path / "checkpoints", "tiny-model", resume=False) is None
    assert capsys.readouterr().out.startswith(
        "Starting fresh: resume=False. The old checkpoints are kept in"
    )


def test_drive_is_explicit_and_colab_only(monkeypatch):
    monkeypatch.delenv("COLAB_RELEASE_TAG", raising=False)
    with pytest.raises(
        RuntimeError, match="use_drive\\(\\) works on Colab only; elsewhere set COURSE_OUTPUT"
    ):
        use_drive()
    monkeypatch.setenv("COURSE_OUTPUT", "/content/drive/MyDrive/unsloth-course")
    assert not Path("/content/drive/MyDrive").exists()
    with pytest.warns(UserWarning, match="is on Google Drive, but Drive is not mounted"):
        warn_if_drive_missing()
