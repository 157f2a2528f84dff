"""Train the course's LoRA adapter with the course recipe: the code path behind the commands, and the
catch-up step of notebooks 05 and 06 when they run alone (Colab gives each notebook a fresh runtime).

Notebook 04 teaches the same steps cell by cell; this module runs them in one call.

Example:
    >>> path = ensure_adapter()   # doctest: +SKIP  (trains only if outputs/lora_adapter is missing)
"""

from __future__ import annotations

from pathlib import Path

from helpers.data import format_alpaca, load_alpaca
from helpers.paths import TRAIN_FILE, adapter_dir
from helpers.recipe import Recipe


def load_model(model_name: str, recipe: Recipe):
    """``FastLanguageModel.from_pretrained`` in 4-bit (16-bit on CPU, where Unsloth falls back)."""
    from unsloth import FastLanguageModel

    return FastLanguageModel.from_pretrained(
        model_name=model_name, max_seq_length=recipe.max_seq_length, dtype=None, load_in_4bit=True
    )


def add_lora(model, recipe: Recipe):
    """Attach LoRA adapters to the seven projection matrices of every layer."""
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


def make_trainer(model, tokenizer, dataset, recipe: Recipe, output_dir: Path):
    """A TRL SFTTrainer with the course's SFTConfig."""
    from trl import SFTConfig, SFTTrainer

    return SFTTrainer(
        model=model,
        processing_class=tokenizer,
        train_dataset=dataset,
        args=SFTConfig(
            dataset_text_field="text",
            max_length=recipe.max_seq_length,
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
            report_to=recipe.report_to,
        ),
    )


def train_adapter(model_name: str, data_path: Path = TRAIN_FILE, out: Path | None = None,
                  recipe: Recipe | None = None) -> Path:
    """Load, attach LoRA, train on ``data_path`` and save the adapter (and tokenizer) to ``out``."""
    recipe = recipe or Recipe.for_model(model_name)
    out = Path(out or adapter_dir())
    model, tokenizer = load_model(model_name, recipe)
    model = add_lora(model, recipe)
    dataset = load_alpaca(data_path).map(lambda e: format_alpaca(e, tokenizer.eos_token))
    trainer = make_trainer(model, tokenizer, dataset, recipe, out.parent / "checkpoints")
    trainer.train()
    trainer.state.save_to_json(str(out.parent / "trainer_state.json"))
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def ensure_adapter(model_name: str, out: Path | None = None) -> Path:
    """Return the saved adapter, training it first (with the course recipe) if it is not there yet."""
    import json

    out = Path(out or adapter_dir())
    config = out / "adapter_config.json"
    if config.exists():
        base = json.loads(config.read_text()).get("base_model_name_or_path")
        if base == model_name:
            print(f"Using the adapter saved by notebook 04: {out}")
            return out
        print(f"The adapter at {out} was trained on {base!r}, not {model_name!r}: training a new one.")
    else:
        print(f"No adapter at {out} yet: training one with the course recipe (notebook 04's steps).")
    return train_adapter(model_name, out=out)
