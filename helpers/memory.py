"""Memory the process uses now, and what a model's weights and LoRA adapter take, from its config.

>>> round(llama_weight_memory(LLAMA3_8B).bytes_4bit / GIB, 2), lora_parameters(LLAMA3_8B, r=16)
(5.31, 41943040)
"""

import math
import resource
import sys
from dataclasses import dataclass
from typing import Any

GIB, MB = 1024**3, 1000**2
PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
LLAMA3_8B = dict(
    hidden_size=4096,
    num_hidden_layers=32,
    num_attention_heads=32,
    num_key_value_heads=8,
    intermediate_size=14336,
    vocab_size=128256,
    tie_word_embeddings=False,
)  # its config.json


@dataclass
class MemorySnapshot:
    """Memory in GiB at one moment: current use, peak so far, and the device total."""

    device: str
    current_gib: float
    peak_gib: float
    total_gib: float

    def __str__(self) -> str:
        what = "GPU reserved" if self.device == "cuda" else "process RSS"
        return (
            f"{what}: {self.current_gib:.3f} GiB now, {self.peak_gib:.3f} GiB peak, "
            f"of {self.total_gib:.1f} GiB ({self.device})"
        )


def memory_snapshot() -> MemorySnapshot:
    """torch.cuda reserved memory on a GPU, else the process's resident memory."""
    import psutil
    import torch

    if torch.cuda.is_available():
        return MemorySnapshot(
            "cuda",
            torch.cuda.memory_reserved() / GIB,
            torch.cuda.max_memory_reserved() / GIB,
            torch.cuda.get_device_properties(0).total_memory / GIB,
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    peak *= 1 if sys.platform == "darwin" else 1024
    return MemorySnapshot(
        "cpu",
        psutil.Process().memory_info().rss / GIB,
        peak / GIB,
        psutil.virtual_memory().total / GIB,
    )


def nf4_bytes(
    numel: int, blocksize: int = 64, double_quant: bool = True, nested_blocksize: int = 256
) -> int:
    """Bytes bitsandbytes 0.50's quantize_4bit keeps for a weight of ``numel`` numbers in NF4: the 4-bit values two
    per byte, one scale per block (float32; with double quantisation uint8, plus one float32 scale per 256 blocks
    and a float32 offset), and float32 code tables (16 NF4 levels; with double quantisation 256 scale codes)."""
    blocks, packed = -(-numel // blocksize), (numel + 1) // 2
    if not double_quant:
        return packed + 4 * blocks + 16 * 4
    return packed + blocks + 4 * -(-blocks // nested_blocksize) + 4 + (16 + 256) * 4


@dataclass(frozen=True)
class ModuleMemory:
    """One kind of weight (``count`` of them: one per layer for decoder modules), in 16-bit and as loaded in 4-bit."""

    name: str
    shape: tuple[int, ...]
    count: int
    quantized: bool
    bytes_4bit: int

    @property
    def params(self) -> int:
        return self.count * math.prod(self.shape)

    @property
    def bytes_16bit(self) -> int:
        return 2 * self.params


@dataclass(frozen=True)
class WeightMemory:
    """The per-module weight-memory table of a model, with totals for 16-bit and a 4-bit load."""

    rows: tuple[ModuleMemory, ...]

    @property
    def params(self) -> int:
        return sum(r.params for r in self.rows)

    @property
    def quantized_params(self) -> int:
        return sum(r.params for r in self.rows if r.quantized)

    @property
    def bytes_16bit(self) -> int:
        return sum(r.bytes_16bit for r in self.rows)

    @property
    def bytes_4bit(self) -> int:
        return sum(r.bytes_4bit for r in self.rows)

    @property
    def ratio(self) -> float:
        """How many times smaller the 4-bit load is."""
        return self.bytes_16bit / self.bytes_4bit

    @property
    def bits_per_quantized_weight(self) -> float:
        """Bits per weight of the quantised modules alone, scales and tables included."""
        return 8 * sum(r.bytes_4bit for r in self.rows if r.quantized) / self.quantized_params

    def table(self):
        """A pandas DataFrame: one row per module kind and a total, with parameters and GiB in 16-bit and 4-bit."""
        import pandas as pd

        rows = [
            (
                r.name,
                " x ".join(map(str, r.shape)),
                r.count,
                r.params,
                "NF4" if r.quantized else "16-bit",
                r.bytes_16bit / GIB,
                r.bytes_4bit / GIB,
            )
            for r in self.rows
        ]
        rows.append(
            ("total", "", None, self.params, "", self.bytes_16bit / GIB, self.bytes_4bit / GIB)
        )
        columns = [
            "module",
            "shape",
            "count",
            "parameters",
            "4-bit load",
            "16-bit GiB",
            "4-bit GiB",
        ]
        return pd.DataFrame(rows, columns=columns).set_index("module")


def llama_weight_memory(
    config: Any, blocksize: int = 64, double_quant: bool = True
) -> WeightMemory:
    """Weight memory of a Llama model from its config (a ``LlamaConfig`` or its dict), in 16-bit and as Unsloth
    loads it in 4-bit: transformers makes only the decoder's nn.Linear modules NF4 (double-quantised), not lm_head."""
    c = config if isinstance(config, dict) else config.to_dict()
    hidden, layers, vocab, inter = (
        c["hidden_size"],
        c["num_hidden_layers"],
        c["vocab_size"],
        c["intermediate_size"],
    )
    heads = c["num_attention_heads"]
    head_dim = c.get("head_dim") or hidden // heads
    q, kv = heads * head_dim, (c.get("num_key_value_heads") or heads) * head_dim
    shapes = {
        "q_proj": (q, hidden),
        "k_proj": (kv, hidden),
        "v_proj": (kv, hidden),
        "o_proj": (hidden, q),
        "gate_proj": (inter, hidden),
        "up_proj": (inter, hidden),
        "down_proj": (hidden, inter),
    }

    def plain(name, shape, count):  # kept in 16-bit by a 4-bit load too
        return ModuleMemory(name, shape, count, False, 2 * count * math.prod(shape))

    rows = [plain("embed_tokens", (vocab, hidden), 1)]
    for name, shape in shapes.items():
        rows.append(
            ModuleMemory(
                f"layers.*.{name}",
                shape,
                layers,
                True,
                layers * nf4_bytes(math.prod(shape), blocksize, double_quant),
            )
        )
        if c.get("mlp_bias" if name in ("gate_proj", "up_proj", "down_proj") else "attention_bias"):
            rows.append(
                plain(f"layers.*.{name}.bias", (shape[0],), layers)
            )  # a Linear4bit keeps its bias in 16-bit
    rows += [
        plain("layers.*.input_layernorm", (hidden,), layers),
        plain("layers.*.post_attention_layernorm", (hidden,), layers),
        plain("norm", (hidden,), 1),
    ]
    if not c.get("tie_word_embeddings", False):
        rows.append(plain("lm_head", (vocab, hidden), 1))
    return WeightMemory(tuple(rows))


def lora_parameters(
    config: Any, r: int, target_modules: tuple[str, ...] | list[str] = PROJECTIONS
) -> int:
    """Trainable LoRA parameters: ``r x (d_in + d_out)`` for each targeted projection of each layer."""
    rows = [row for row in llama_weight_memory(config).rows if row.quantized]
    return sum(
        row.count * r * sum(row.shape) for row in rows if row.name.split(".")[-1] in target_modules
    )


def adapter_file_bytes(
    config: Any, r: int, target_modules: tuple[str, ...] | list[str] = PROJECTIONS
) -> int:
    """Tensor bytes of ``adapter_model.safetensors`` (plus a JSON header of some kB): 4 per parameter, because
    Unsloth keeps trainable LoRA weights in float32 (``unsloth_zoo.training_utils``) and PEFT saves them so."""
    return 4 * lora_parameters(config, r, target_modules)
