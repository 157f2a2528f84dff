"""Generation speed, measured rather than quoted: notebook 05 times Unsloth's inference path in its own
process and plain transformers + PEFT in another (``python -m helpers.speed``), since importing Unsloth
patches transformers for the whole process. Both answer the same prompt greedily, batch 1, with exactly
the same number of new tokens (EOS held off by ``min_new_tokens``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from helpers.paths import REPO_ROOT


def generation_speed(
    model: Any, tokenizer: Any, prompt: str, new_tokens: int = 32, runs: int = 2
) -> float:
    """Greedy new tokens per second for ``prompt`` (batch 1): the fastest of ``runs`` timed runs after a
    warm-up. Notebook 05 and the benchmark (``tools/bench.py``, one run) both time generation here."""
    import torch

    inputs = tokenizer([prompt], return_tensors="pt").to(model.device)
    common = dict(do_sample=False, pad_token_id=tokenizer.pad_token_id)
    speeds = []
    with torch.inference_mode():
        # a warm-up run first: first-call setup is not speed
        model.generate(**inputs, max_new_tokens=4, **common)
        for _ in range(runs):
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            start = time.perf_counter()
            out = model.generate(
                **inputs, max_new_tokens=new_tokens, min_new_tokens=new_tokens, **common
            )
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            seconds = time.perf_counter() - start
            made = out.shape[1] - inputs["input_ids"].shape[1]
            if made != new_tokens:
                raise RuntimeError(f"asked for {new_tokens} new tokens, generate made {made}")
            speeds.append(new_tokens / seconds)
    return max(speeds)


def plain_generation_speed(adapter: str | Path, prompt: str, new_tokens: int, dtype: str) -> float:
    """:func:`generation_speed` of ``adapter`` on plain transformers + PEFT, without Unsloth, in a new process.

    ``dtype`` is the notebook model's (``str(model.dtype)``), so both runs compute in the same precision; on a
    GPU the base is loaded in 4-bit (NF4) through bitsandbytes, as Unsloth loads it.
    """
    command = [sys.executable, "-m", "helpers.speed", str(adapter), "--prompt", prompt,
               "--new-tokens", str(new_tokens), "--dtype", dtype]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT)
    if done.returncode != 0:
        raise RuntimeError(
            f"`python -m helpers.speed` failed (exit {done.returncode}):\n{done.stderr[-3000:]}"
        )
    return json.loads(done.stdout.strip().splitlines()[-1])["tokens_per_s"]


def main(argv: list[str] | None = None) -> None:
    """``python -m helpers.speed ADAPTER --prompt P --new-tokens N --dtype D``: print {"tokens_per_s": ...}."""
    parser = argparse.ArgumentParser(prog="python -m helpers.speed", description=main.__doc__)
    parser.add_argument("adapter", type=Path, help="a saved LoRA adapter folder (notebook 04's)")
    parser.add_argument("--prompt", required=True)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument(
        "--dtype", default="torch.float32", help="the notebook model's, e.g. torch.float16"
    )
    args = parser.parse_args(argv)
    if "unsloth" in sys.modules:
        raise RuntimeError(
            "helpers.speed measures transformers without Unsloth: run it in its own process"
        )
    import torch
    from peft import AutoPeftModelForCausalLM
    from transformers import AutoTokenizer, BitsAndBytesConfig

    dtype = getattr(torch, args.dtype.removeprefix("torch."))
    load: dict[str, Any] = {"dtype": dtype}
    if torch.cuda.is_available():
        nf4 = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=dtype
        )
        load.update(device_map={"": 0}, quantization_config=nf4)
    model = AutoPeftModelForCausalLM.from_pretrained(str(args.adapter), **load).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(args.adapter))
    speed = generation_speed(model, tokenizer, args.prompt, args.new_tokens)
    print(json.dumps({"tokens_per_s": speed}))


if __name__ == "__main__":
    main()
