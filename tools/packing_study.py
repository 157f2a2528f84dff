"""Packing and padding-free batching on the course data: tokens/s and notebook 06's score, against the course's
padded batches, at the same number of training tokens.

- padded: the recipe as notebook 04 runs it (each batch padded to its longest example);
- padding_free: the same batches with the padding removed (TRL's ``padding_free=True``): the same examples and
  optimizer steps, less compute where examples differ in length;
- packing: examples packed into rows of ``max_length`` tokens (TRL's ``packing=True``), with the step count cut so
  the run trains on the same number of tokens as the padded one.

    python -m tools.packing_study --model tiny --out outputs/packing      # CPU or GPU; scores the adapters
    python -m tools.packing_study --model /tmp/m8b --no-score             # the 8B shape: speed only
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import tyro


def run(model: str = "tiny", out: Path = Path("outputs/packing"), modes: tuple[str, ...] = ("padded", "padding_free", "packing"),
        max_steps: int | None = None, score: bool = True) -> int:
    """Train one adapter per mode and print tokens/s and exact match per family.

    Args:
        model: "tiny", "auto", a hub name or a local folder.
        out: where adapters and results.json go.
        modes: padded, padding_free, packing.
        max_steps: steps of the padded run (default: the recipe's); the others match its training tokens.
        score: answer the held-out set with each adapter (notebook 06's scoring).
    """
    import unsloth  # noqa: F401

    from transformers import TrainerCallback

    from helpers.models import choose_model
    from helpers.paths import EVAL_FILE
    from tools.recipe import Recipe
    from tools.train import train_adapter

    class Chosen(TrainerCallback):  # what the trainer ran with: Unsloth may turn padding_free or packing off
        flags: dict = {}

        def on_train_begin(self, args, state, control, **kwargs):
            self.flags = {"padding_free": bool(args.padding_free), "packing": bool(args.packing)}

    model_name = choose_model(model)
    base = Recipe.for_model(model_name)
    base = dataclasses.replace(base, max_steps=max_steps or base.max_steps, save_steps=10**6)
    results, padded_tokens = {}, None
    for mode in modes:
        recipe = dataclasses.replace(base, padding_free=mode != "padded")  # TRL's packing implies padding-free
        extra = {"include_num_input_tokens_seen": "non_padding", "disable_tqdm": True}
        if mode == "packing":
            if padded_tokens is None:
                raise SystemExit("packing matches the padded run's tokens: list padded first")
            per_step = base.per_device_train_batch_size * base.gradient_accumulation_steps * base.max_seq_length
            recipe = dataclasses.replace(recipe, packing=True, max_steps=max(1, round(padded_tokens / per_step)),
                                         warmup_steps=min(base.warmup_steps, 1))
        folder = out / mode
        start = time.time()
        chosen = Chosen()
        train_adapter(model_name, out=folder / "lora_adapter", recipe=recipe, resume=False, trainer_kwargs=extra,
                      callbacks=[chosen])
        state = json.loads((folder / "trainer_state.json").read_text())
        runtime = next(h["train_runtime"] for h in reversed(state["log_history"]) if "train_runtime" in h)
        tokens = state.get("num_input_tokens_seen") or 0
        padded_tokens = tokens if mode == "padded" else padded_tokens
        row = {**chosen.flags, "steps": recipe.max_steps, "tokens": tokens, "train_seconds": round(runtime, 1),
               "tokens_per_s": round(tokens / runtime, 1), "wall_seconds": round(time.time() - start, 1),
               "last_loss": next(h["loss"] for h in reversed(state["log_history"]) if "loss" in h)}
        if score:
            row["exact_match"] = evaluate(folder / "lora_adapter", EVAL_FILE)
        results[mode] = row
        print(mode, json.dumps(row), flush=True)
    (out / "results.json").write_text(json.dumps({"model": model_name, "results": results}, indent=1) + "\n")
    print(f"\n| mode | steps | tokens | tokens/s | overall exact match |\n| --- | ---: | ---: | ---: | ---: |")
    for mode, r in results.items():
        print(f"| {mode} | {r['steps']} | {r['tokens']} | {r['tokens_per_s']} | "
              f"{r['exact_match']['overall'] if score else '-'} |")
    return 0


def evaluate(adapter: Path, eval_file: Path) -> dict[str, float]:
    """Exact match per family and overall, as notebook 06 scores the adapter."""
    from unsloth import FastLanguageModel

    from helpers.data import read_records
    from helpers.scoring import answer_token_budget, generate_answers, score

    model, tokenizer = FastLanguageModel.from_pretrained(model_name=str(adapter), max_seq_length=2048, dtype=None,
                                                         load_in_4bit=True)
    FastLanguageModel.for_inference(model)
    records = read_records(eval_file, extra_keys=["family"])
    report = score(records, generate_answers(model, tokenizer, records, progress=False,
                                             max_new_tokens=answer_token_budget(tokenizer, records)))
    return {f: round(s["exact_match"], 3) for f, s in {**report.by_family(), "overall": report.overall}.items()}


if __name__ == "__main__":
    raise SystemExit(tyro.cli(run))
