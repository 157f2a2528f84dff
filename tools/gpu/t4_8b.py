"""Llama-3-8B's architecture (random weights, built locally by tools.bench) loaded and trained on a GPU the way
notebooks 01 to 04 do: memory after the 4-bit load beside helpers.memory's table, the precision chosen, and the
peak over a few steps of notebook 04's recipe on the course data, or on full 2,048-token rows (--packed).
Run it inside tools/t4_envelope (PYTHONPATH) to check a T4's float16 and 15 GiB.

    python tools/gpu/t4_8b.py --model-dir /tmp/m8b --steps 10 --out /tmp/t4-8b.json [--packed] [--batch 8 --grad-accum 1]
"""

import argparse
import json
import os
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument(
        "--packed", action="store_true", help="rows of 2,048 tokens (the course text packed)"
    )
    parser.add_argument("--batch", type=int, default=2, help="per-device batch (the recipe: 2)")
    parser.add_argument(
        "--grad-accum", type=int, default=4, help="gradient accumulation steps (the recipe: 4)"
    )
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    import torch
    import unsloth  # noqa: F401
    from datasets import load_dataset
    from trl import SFTConfig, SFTTrainer
    from unsloth import FastLanguageModel

    from helpers.data import format_alpaca
    from helpers.memory import GIB, llama_weight_memory
    from helpers.paths import TRAIN_FILE

    start = time.time()
    torch.cuda.reset_peak_memory_stats()
    model, tokenizer = FastLanguageModel.from_pretrained(
        model_name=args.model_dir, max_seq_length=2048, dtype=None, load_in_4bit=True
    )
    result = {
        "gpu": torch.cuda.get_device_name(0),
        "envelope": os.environ.get("T4_ENVELOPE", "none"),
        "load_seconds": round(time.time() - start, 1),
        "dtype": str(model.dtype),
        "linear4bit_layers": sum(type(m).__name__ == "Linear4bit" for m in model.modules()),
        "allocated_after_load_gib": round(torch.cuda.memory_allocated() / GIB, 3),
        "reserved_after_load_gib": round(torch.cuda.memory_reserved() / GIB, 3),
    }
    table = llama_weight_memory(model.config)
    result.update(
        table_4bit_gib=round(table.bytes_4bit / GIB, 3),
        table_16bit_gib=round(table.bytes_16bit / GIB, 3),
    )
    model = FastLanguageModel.get_peft_model(
        model,
        r=16,
        target_modules=[
            "q_proj",
            "k_proj",
            "v_proj",
            "o_proj",
            "gate_proj",
            "up_proj",
            "down_proj",
        ],
        lora_alpha=16,
        lora_dropout=0,
        bias="none",
        use_gradient_checkpointing="unsloth",
        random_state=3407,
    )
    if args.packed:
        from tools.bench import BenchConfig, packed_dataset

        dataset = packed_dataset(
            tokenizer,
            BenchConfig(
                seq_len=2048,
                batch=args.batch,
                grad_accum=args.grad_accum,
                warmup_steps=0,
                timed_steps=args.steps,
            ),
        )
    else:
        dataset = load_dataset("json", data_files=str(TRAIN_FILE), split="train")
        dataset = dataset.map(lambda e: format_alpaca(e, tokenizer.eos_token))
    trainer = SFTTrainer(
        model=model,
        processing_class=tokenizer,
        train_dataset=dataset,
        args=SFTConfig(
            dataset_text_field="text",
            max_length=2048,
            per_device_train_batch_size=args.batch,
            gradient_accumulation_steps=args.grad_accum,
            warmup_steps=5,
            max_steps=args.steps,
            learning_rate=2e-4,
            logging_steps=1,
            optim="adamw_8bit",
            weight_decay=0.001,
            lr_scheduler_type="linear",
            seed=3407,
            output_dir="/tmp/t4-8b-run",
            save_strategy="no",
            report_to="none",
        ),
    )
    stats = trainer.train()
    result.update(
        fp16=trainer.args.fp16,
        bf16=trainer.args.bf16,
        steps=args.steps,
        packed=args.packed,
        batch=f"{args.batch} x {args.grad_accum}",
        train_seconds=round(stats.metrics["train_runtime"], 1),
        peak_reserved_gib=round(torch.cuda.max_memory_reserved() / GIB, 3),
        peak_allocated_gib=round(torch.cuda.max_memory_allocated() / GIB, 3),
        losses=[round(h["loss"], 4) for h in trainer.state.log_history if "loss" in h],
    )
    FastLanguageModel.for_inference(model)
    inputs = tokenizer(["Is the number even or odd?"], return_tensors="pt").to(model.device)
    result["generated_tokens"] = int(
        model.generate(**inputs, max_new_tokens=8, do_sample=False).shape[1]
        - inputs["input_ids"].shape[1]
    )
    print(json.dumps(result))
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
