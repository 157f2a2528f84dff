"""Train the course's LoRA adapter in one call: notebook 04's steps with ``tools.recipe``'s numbers, for the
``course train`` command (which notebooks 05 to 08 run when they start without an adapter) and the benchmark."""

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from helpers.checkpoints import last_checkpoint, resume_checkpoint
from helpers.data import format_alpaca
from helpers.errors import check_lengths, explain_load_errors, oom_advice
from helpers.paths import TRAIN_FILE, adapter_dir
from helpers.runtime import has_cuda
from helpers.save import atomic_folder, check_adapter
from tools.datafiles import load_alpaca
from tools.recipe import Recipe


def is_main_process() -> bool:
    """True unless this is a non-zero rank of a torchrun/accelerate launch (that one writes and prints)."""
    return int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0"))) == 0


def load_model(model_name: str, recipe: Recipe, **kwargs):
    """``FastLanguageModel.from_pretrained`` in 4-bit (16-bit on CPU); ``kwargs`` override; a bad name raises ModelLoadError."""
    from unsloth import FastLanguageModel
    args = dict(model_name=model_name, max_seq_length=recipe.max_seq_length, dtype=None, load_in_4bit=True)
    with explain_load_errors(model_name):
        return FastLanguageModel.from_pretrained(**{**args, **kwargs})


def add_lora(model, recipe: Recipe):
    """``FastLanguageModel.get_peft_model`` with the recipe: adapters on the seven projections of every layer."""
    from unsloth import FastLanguageModel
    return FastLanguageModel.get_peft_model(
        model, r=recipe.r, target_modules=list(recipe.target_modules), lora_alpha=recipe.lora_alpha,
        lora_dropout=recipe.lora_dropout, bias="none", use_gradient_checkpointing=recipe.use_gradient_checkpointing,
        random_state=recipe.seed, use_dora=recipe.use_dora)


def sft_config(recipe: Recipe, output_dir: Path, **overrides):
    """TRL's ``SFTConfig`` with the recipe, as notebook 04 writes it; ``overrides`` add to it."""
    from trl import SFTConfig
    settings = dict(
        dataset_text_field="text", max_length=recipe.max_seq_length, packing=recipe.packing,
        padding_free=recipe.padding_free, per_device_train_batch_size=recipe.per_device_train_batch_size,
        gradient_accumulation_steps=recipe.gradient_accumulation_steps, warmup_steps=recipe.warmup_steps,
        max_steps=recipe.max_steps, learning_rate=recipe.learning_rate, logging_steps=1, optim=recipe.optim,
        weight_decay=recipe.weight_decay, lr_scheduler_type=recipe.lr_scheduler_type, seed=recipe.seed,
        output_dir=str(output_dir), save_steps=recipe.save_steps, save_total_limit=2, report_to=recipe.report_to,
        gradient_checkpointing=bool(recipe.use_gradient_checkpointing))
    return SFTConfig(**{**settings, **overrides})


def make_trainer(model, tokenizer, dataset, recipe: Recipe, output_dir: Path, callbacks: list | None = None,
                 **config_kwargs):
    """A TRL ``SFTTrainer`` with :func:`sft_config`."""
    from trl import SFTTrainer
    return SFTTrainer(model=model, processing_class=tokenizer, train_dataset=dataset, callbacks=callbacks,
                      args=sft_config(recipe, output_dir, **config_kwargs))


def train_adapter(model_name: str, data: Path | Any = TRAIN_FILE, out: Path | None = None,
                  recipe: Recipe | None = None, resume: bool = True, callbacks: list | None = None,
                  load_kwargs: dict | None = None, trainer_kwargs: dict | None = None) -> Path:
    """Load, attach LoRA, train on ``data`` (a .jsonl file or a checked ``datasets.Dataset``) and save the
    adapter to ``out``, all or nothing and checked.

    Checkpoints go every ``recipe.save_steps`` steps to ``out.parent / "checkpoints"`` and a new call resumes
    from the last complete one; the loss history goes to ``out.parent / "trainer_state.json"``. ``load_kwargs``
    go to ``from_pretrained``, ``trainer_kwargs`` to ``SFTConfig``. Under several processes (torchrun/accelerate)
    only the main one moves checkpoints, prints and saves."""
    recipe = recipe or Recipe.for_model(model_name)
    if not has_cuda():  # as notebook 04: on a CPU, recomputing layers saves no memory and costs a third more time
        recipe = replace(recipe, use_gradient_checkpointing=False)
    out = Path(out or adapter_dir())
    main = is_main_process()
    records = load_alpaca(data) if isinstance(data, (str, Path)) else data  # a bad file fails here, before the model loads
    model, tokenizer = load_model(model_name, recipe, **(load_kwargs or {}))
    model = add_lora(model, recipe)
    dataset = records.map(lambda e: format_alpaca(e, tokenizer.eos_token))
    check_lengths(dataset, tokenizer, recipe.max_seq_length, quiet=not main)
    checkpoints = out.parent / "checkpoints"
    checkpoint = resume_checkpoint(checkpoints, model_name, recipe.max_steps, resume=resume, quiet=not main)
    trainer = make_trainer(model, tokenizer, dataset, recipe, checkpoints, callbacks=callbacks, **(trainer_kwargs or {}))
    try:
        with oom_advice(trainer, recipe):
            trainer.train(resume_from_checkpoint=checkpoint)
    except KeyboardInterrupt:  # the stop button; a Colab disconnect just ends the process
        last = last_checkpoint(checkpoints)
        print(f"Interrupted at step {trainer.state.global_step}. "
              + (f"Run again to resume from {last.name}." if last else "No checkpoint yet: a new run starts over."))
        raise
    if trainer.args.should_save:  # the main process
        save_adapter(model, tokenizer, out)
        state = out.parent / ".trainer_state.json.tmp"  # the loss history, read by the course runner
        trainer.state.save_to_json(str(state))
        os.replace(state, out.parent / "trainer_state.json")
    trainer.accelerator.wait_for_everyone()
    return out


def save_adapter(model: Any, tokenizer: Any, path: str | Path, check: bool = True) -> Path:
    """``save_pretrained`` the model and tokenizer into ``path`` all or nothing, checked before the swap."""
    with atomic_folder(path) as tmp:
        model.save_pretrained(str(tmp))
        if tokenizer is not None:
            tokenizer.save_pretrained(str(tmp))
        checked = check_adapter(model, tmp, quiet=True) if check else None
    print(f"Saved the adapter to {path}" + (f" ({checked} tensors reloaded and checked)." if check else "."))
    return Path(path)
