"""Train the course's LoRA adapter in one call: notebook 04's steps with :mod:`helpers.recipe`'s numbers. Notebooks
05 to 08 run it when they start without an adapter; ``course train`` and the benchmark call it too.

Usage (the notebooks' catch-up; ``course train`` has every other option, docs/commands.md):
    python -m helpers.train --model MODEL --output-dir DIR [--max-steps N] [--no-progress]
"""

import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from helpers.checkpoints import last_checkpoint, resume_checkpoint
from helpers.data import DataError, format_alpaca, load_alpaca
from helpers.errors import ModelLoadError, check_lengths, explain_load_errors, oom_advice
from helpers.paths import TRAIN_FILE, adapter_dir, output_dir
from helpers.recipe import Recipe
from helpers.runtime import has_cuda
from helpers.save import atomic_folder, check_adapter


def is_main_process() -> bool:
    """True unless this is a non-zero rank of a torchrun/accelerate launch (that one writes and prints)."""
    return int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0"))) == 0


def load_model(model_name: str, recipe: Recipe, **kwargs):
    """``FastLanguageModel.from_pretrained`` in 4-bit (16-bit on CPU); ``kwargs`` override; a bad name raises ModelLoadError."""
    from unsloth import FastLanguageModel

    args = dict(
        model_name=model_name, max_seq_length=recipe.max_seq_length, dtype=None, load_in_4bit=True
    )
    with explain_load_errors(model_name):
        return FastLanguageModel.from_pretrained(**{**args, **kwargs})


def add_lora(model, recipe: Recipe):
    """``FastLanguageModel.get_peft_model`` with the recipe: adapters on the seven projections of every layer."""
    from unsloth import FastLanguageModel

    return FastLanguageModel.get_peft_model(
        model,
        r=recipe.r,
        target_modules=list(recipe.target_modules),
        lora_alpha=recipe.lora_alpha,
        lora_dropout=recipe.lora_dropout,
        bias="none",
        use_gradient_checkpointing=recipe.use_gradient_checkpointing,
        random_state=recipe.seed,
        use_dora=recipe.use_dora,
    )


def sft_config(recipe: Recipe, output_dir: Path, **overrides):
    """TRL's ``SFTConfig`` with the recipe, as notebook 04 writes it; ``overrides`` add to it."""
    from trl import SFTConfig

    settings = dict(
        dataset_text_field="text",
        max_length=recipe.max_seq_length,
        packing=recipe.packing,
        padding_free=recipe.padding_free,
        per_device_train_batch_size=recipe.per_device_train_batch_size,
        gradient_accumulation_steps=recipe.gradient_accumulation_steps,
        warmup_steps=recipe.warmup_steps,
        max_steps=recipe.max_steps,
        learning_rate=recipe.learning_rate,
        logging_steps=1,
        optim=recipe.optim,
        weight_decay=recipe.weight_decay,
        lr_scheduler_type=recipe.lr_scheduler_type,
        seed=recipe.seed,
        output_dir=str(output_dir),
        save_steps=recipe.save_steps,
        save_total_limit=2,
        report_to=recipe.report_to,
        gradient_checkpointing=bool(recipe.use_gradient_checkpointing),
    )
    return SFTConfig(**{**settings, **overrides})


def make_trainer(
    model,
    tokenizer,
    dataset,
    recipe: Recipe,
    output_dir: Path,
    callbacks: list | None = None,
    **config_kwargs,
):
    """A TRL ``SFTTrainer`` with :func:`sft_config`."""
    from trl import SFTTrainer

    return SFTTrainer(
        model=model,
        processing_class=tokenizer,
        train_dataset=dataset,
        callbacks=callbacks,
        args=sft_config(recipe, output_dir, **config_kwargs),
    )


def train_adapter(
    model_name: str,
    data: Path | Any = TRAIN_FILE,
    out: Path | None = None,
    recipe: Recipe | None = None,
    resume: bool = True,
    callbacks: list | None = None,
    load_kwargs: dict | None = None,
    trainer_kwargs: dict | None = None,
) -> Path:
    """Load, attach LoRA, train on ``data`` (a .jsonl file or a checked ``datasets.Dataset``) and save the
    adapter to ``out``, all or nothing and checked.

    Checkpoints go every ``recipe.save_steps`` steps to ``out.parent / "checkpoints"`` and a new call resumes
    from the last complete one; the loss history goes to ``out.parent / "trainer_state.json"``. ``load_kwargs``
    go to ``from_pretrained``, ``trainer_kwargs`` to ``SFTConfig``. Under several processes (torchrun/accelerate)
    only the main one moves checkpoints, prints and saves."""
    recipe = recipe or Recipe.for_model(model_name)
    if (
        not has_cuda()
    ):  # as notebook 04: on a CPU, recomputing layers saves no memory and costs a third more time
        recipe = replace(recipe, use_gradient_checkpointing=False)
    out = Path(out or adapter_dir())
    main = is_main_process()
    # a bad file fails here, before the model loads
    records = load_alpaca(data) if isinstance(data, (str, Path)) else data
    model, tokenizer = load_model(model_name, recipe, **(load_kwargs or {}))
    model = add_lora(model, recipe)
    dataset = records.map(lambda e: format_alpaca(e, tokenizer.eos_token))
    check_lengths(dataset, tokenizer, recipe.max_seq_length, quiet=not main)
    checkpoints = out.parent / "checkpoints"
    checkpoint = resume_checkpoint(
        checkpoints, model_name, recipe.max_steps, resume=resume, quiet=not main
    )
    trainer = make_trainer(
        model,
        tokenizer,
        dataset,
        recipe,
        checkpoints,
        callbacks=callbacks,
        **(trainer_kwargs or {}),
    )
    try:
        with oom_advice(trainer, recipe):
            trainer.train(resume_from_checkpoint=checkpoint)
    except KeyboardInterrupt:  # the stop button; a Colab disconnect just ends the process
        last = last_checkpoint(checkpoints)
        print(
            f"Interrupted at step {trainer.state.global_step}. "
            + (
                f"Run again to resume from {last.name}."
                if last
                else "No checkpoint yet: a new run starts over."
            )
        )
        raise
    if trainer.args.should_save:  # the main process
        save_adapter(model, tokenizer, out)
        state = out.parent / ".trainer_state.json.tmp"  # the loss history, for the course runner
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
    print(
        f"Saved the adapter to {path}"
        + (f" ({checked} tensors reloaded and checked)." if check else ".")
    )
    return Path(path)


class TimeLeft:
    """A Trainer callback for runs without progress bars (a catch-up cell's output): after the second step
    (the first includes compiling) and every quarter of the run, the steps done and the time the rest will
    take at the pace so far."""

    def __init__(self):
        self.start, self.every = None, 1

    def __getattr__(self, name):  # the Trainer calls every on_* event; only two matter here
        if name.startswith("on_"):
            return lambda *args, **kwargs: None
        raise AttributeError(name)

    def on_train_begin(self, args, state, control, **kwargs):
        self.start, self.every = time.perf_counter(), max(1, state.max_steps // 4)

    def on_step_end(self, args, state, control, **kwargs):
        step, total = state.global_step, state.max_steps
        if step == 2 or (step % self.every == 0 and step < total):
            took = time.perf_counter() - self.start
            left = took / step * (total - step)
            print(
                f"step {step} of {total} after {took:.0f} s: about {left:.0f} s to go", flush=True
            )


def train_run(
    model_name: str,
    data: Path | Any,
    out_dir: str | Path,
    recipe: Recipe,
    run: dict[str, Any],
    resume: bool = True,
    progress: bool = True,
    load_kwargs: dict | None = None,
    trainer_kwargs: dict | None = None,
    callbacks: list | None = None,
) -> Path:
    """:func:`train_adapter` into ``out_dir / "lora_adapter"``, then (main process) ``out_dir / "train_metrics.json"``
    and a summary: what ``course train`` and ``python -m helpers.train`` do. ``run`` holds :func:`train_metrics`'s
    device, precision, gpu and world_size."""
    out_dir = Path(out_dir)
    # the Trainer counts the non-padding tokens: Unsloth's GPU path logs no num_tokens
    trainer_kwargs = {
        "disable_tqdm": not progress,
        "include_num_input_tokens_seen": "non_padding",
        **(trainer_kwargs or {}),
    }
    adapter = train_adapter(
        model_name,
        data,
        out_dir / "lora_adapter",
        recipe,
        resume=resume,
        callbacks=callbacks if callbacks is not None else ([] if progress else [TimeLeft()]),
        load_kwargs=load_kwargs,
        trainer_kwargs=trainer_kwargs,
    )
    if is_main_process():
        metrics = train_metrics(out_dir / "trainer_state.json", **run)
        (out_dir / "train_metrics.json").write_text(
            json.dumps(metrics, indent=2) + "\n", encoding="utf-8"
        )
        print(f"Adapter saved to {adapter}")
        print(
            f"{metrics['global_step']} steps in {metrics['train_runtime_s']:.1f} s on {metrics['world_size']} "
            f"process(es): {metrics['tokens']} tokens, {metrics['tokens_per_s']:.0f} tokens/s; "
            f"loss {metrics['first_loss']:.3f} -> {metrics['last_loss']:.3f}"
        )
    return adapter


def train_metrics(
    state_path: Path, device: str, precision: str, gpu: str | None = None, world_size: int = 1
) -> dict[str, Any]:
    """Steps, runtime, tokens and tokens/s of the run, from the trainer_state.json that train_adapter saves."""
    state = json.loads(Path(state_path).read_text())
    history = state.get("log_history", [])
    losses = [e["loss"] for e in history if "loss" in e]
    # Non-padding tokens over all processes: TRL's num_tokens where it logs them (CPU), else the Trainer's count.
    tokens = max((e.get("num_tokens", 0) for e in history), default=0) or state.get(
        "num_input_tokens_seen", 0
    )
    runtime = next(
        (e["train_runtime"] for e in reversed(history) if "train_runtime" in e), float("nan")
    )
    return {
        "global_step": state.get("global_step"),
        "world_size": world_size,
        "device": device,
        "gpu": gpu,
        "precision": precision,
        "train_runtime_s": runtime,
        "tokens": int(tokens),
        "tokens_per_s": tokens / runtime if runtime and runtime == runtime else float("nan"),
        "peak_reserved_gib_this_gpu": _peak_gib(),
        "first_loss": losses[0] if losses else float("nan"),
        "last_loss": losses[-1] if losses else float("nan"),
    }


def _peak_gib() -> float | None:
    """Peak reserved memory of this process's GPU (each DDP process holds a whole copy on its own), or None."""
    import torch

    return (
        round(torch.cuda.max_memory_reserved() / 1024**3, 2) if torch.cuda.is_available() else None
    )


def parse_args(argv: list[str] | None = None):
    """``python -m helpers.train``'s arguments; --max-steps defaults to $COURSE_MAX_STEPS (0 or unset: the
    recipe's), the variable notebooks 04 and 07 read as their MAX_STEPS parameter."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m helpers.train", description=main.__doc__)
    parser.add_argument(
        "--model",
        help="a hub name, a local folder, auto, smollm2 or tiny (default: $COURSE_MODEL, else auto)",
    )
    parser.add_argument(
        "--output-dir",
        help="where lora_adapter/, checkpoints/ and train_metrics.json go "
        "(default: $COURSE_OUTPUT, else outputs/)",
    )
    steps = os.environ.get("COURSE_MAX_STEPS", "").strip()
    parser.add_argument(
        "--max-steps",
        type=int,
        default=None if steps in ("", "0") else steps,
        help="optimizer steps (default: $COURSE_MAX_STEPS, else the model's recipe)",
    )
    parser.add_argument(
        "--no-progress", action="store_true", help="no progress bars (a notebook cell's output)"
    )
    args = parser.parse_args(argv)
    if args.max_steps is not None and args.max_steps < 1:
        parser.error(f"--max-steps must be at least 1, got {args.max_steps}")
    return args


def main(argv: list[str] | None = None) -> int:
    """``python -m helpers.train``: train on data/train.jsonl with the model's recipe, as ``course train`` does."""
    args = parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import unsloth  # noqa: F401  (first: it patches transformers, TRL and PEFT)

    from helpers.models import choose_model
    from helpers.runtime import runtime_info

    model_name = choose_model(args.model)
    recipe = Recipe.for_model(model_name)
    recipe = replace(recipe, max_steps=args.max_steps) if args.max_steps else recipe
    # the precision Unsloth picks for dtype=None: bf16 where the GPU has it, else fp16
    hw = runtime_info()
    run = {
        "device": hw.device,
        "gpu": hw.gpu_name,
        "precision": ("bf16" if hw.bf16 else "fp16") if hw.device == "cuda" else "auto",
    }
    out_dir = Path(args.output_dir) if args.output_dir else output_dir()
    print(
        f"Training {model_name} for {recipe.max_steps} steps (learning rate {recipe.learning_rate:g}) on "
        f"{hw.device} into {out_dir / 'lora_adapter'}"
    )
    try:
        train_run(model_name, TRAIN_FILE, out_dir, recipe, run, progress=not args.no_progress)
    except (DataError, ModelLoadError) as err:
        print(f"python -m helpers.train: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
