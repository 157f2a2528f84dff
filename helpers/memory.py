"""Memory reports: GPU reserved/peak memory on CUDA, process memory on CPU.

Example:
    >>> snap = memory_snapshot()
    >>> snap.device in ("cuda", "cpu")
    True
"""

from __future__ import annotations

import math
import resource
import sys
from dataclasses import dataclass
from typing import Any

GIB = 1024**3


@dataclass
class MemorySnapshot:
    """Memory in GiB at one moment: current use, peak so far, and the device total."""

    device: str
    current_gib: float
    peak_gib: float
    total_gib: float

    def __str__(self) -> str:
        what = "GPU reserved" if self.device == "cuda" else "process RSS"
        return (f"{what}: {self.current_gib:.3f} GiB now, {self.peak_gib:.3f} GiB peak, "
                f"of {self.total_gib:.1f} GiB ({self.device})")


def memory_snapshot() -> MemorySnapshot:
    """Take a snapshot: torch.cuda reserved memory on a GPU, else the process's resident memory."""
    import psutil
    import torch

    if torch.cuda.is_available():
        return MemorySnapshot(
            "cuda",
            torch.cuda.memory_reserved() / GIB,
            torch.cuda.max_memory_reserved() / GIB,
            torch.cuda.get_device_properties(0).total_memory / GIB,
        )
    rss = psutil.Process().memory_info().rss
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    peak = peak_kib if sys.platform == "darwin" else peak_kib * 1024
    return MemorySnapshot("cpu", rss / GIB, peak / GIB, psutil.virtual_memory().total / GIB)


def training_memory_report(before: MemorySnapshot, after: MemorySnapshot) -> str:
    """Unsloth-style summary: peak memory, the part used by training, and shares of the total."""
    used_by_training = max(after.peak_gib - before.peak_gib, 0.0)
    return "\n".join([
        f"Peak {'reserved' if after.device == 'cuda' else 'resident'} memory = {after.peak_gib:.3f} GiB",
        f"Peak memory for training = {used_by_training:.3f} GiB",
        f"Peak memory % of total = {100 * after.peak_gib / after.total_gib:.2f} %",
        f"Peak memory for training % of total = {100 * used_by_training / after.total_gib:.2f} %",
    ])


def weight_memory_gib(n_params: float, bits: float) -> float:
    """Memory for ``n_params`` weights stored at ``bits`` each, in GiB (weights only, no overhead)."""
    return n_params * bits / 8 / GIB


# ------------------------------------------------------------------------------- weight arithmetic
#
# What a Llama's weights cost, computed from its config, module by module. Which modules bitsandbytes
# quantises, and how many bytes a quantised one takes, follow the pinned libraries' code:
#
# * transformers 5.17.0 ``integrations/bitsandbytes.py: replace_with_bnb_linear`` swaps only modules
#   that are ``nn.Linear`` (``type(module) is nn.Linear``) for ``bnb.nn.Linear4bit``; the embedding
#   is an ``nn.Embedding`` and the norms are ``LlamaRMSNorm``, so they stay in 16-bit.
# * The output head is an ``nn.Linear`` but is kept out: ``quantizers/base.py: get_keys_to_not_convert``
#   skips the output embedding and tied weights, and Unsloth adds ``lm_head`` to
#   ``llm_int8_skip_modules`` (``unsloth_zoo.peft_utils.SKIP_QUANTIZATION_MODULES``).
# * Unsloth's ``BitsAndBytesConfig`` (``unsloth/models/llama.py``): ``bnb_4bit_quant_type="nf4"``,
#   ``bnb_4bit_use_double_quant=True``; bitsandbytes' default block size is 64.
# * bitsandbytes 0.50 ``functional.py: quantize_4bit`` with ``compress_statistics=True`` and the
#   CUDA op ``backends/cuda/ops.py: quantize_4bit`` give, for a weight of n numbers:
#   the packed 4-bit data, ``(n + 1) // 2`` bytes of uint8; one absmax per block of 64, float32, then
#   quantised by ``quantize_blockwise(absmax - offset, blocksize=256)`` to uint8 (1 byte per block)
#   with one float32 absmax per 256 blocks, the float32 ``offset`` (the mean absmax), the 256-entry
#   float32 code of that second quantisation (``QuantState.state2.code``) and the 16-entry float32
#   NF4 code (``QuantState.code``, from ``get_4bit_type``). ``nf4_bytes`` adds exactly these.

MB = 1000**2
PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
LLAMA3_8B = dict(hidden_size=4096, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8,
                 intermediate_size=14336, vocab_size=128256, tie_word_embeddings=False)
"""The shape of Llama-3-8B (``unsloth/llama-3-8b-bnb-4bit``'s config.json), for the arithmetic below."""


@dataclass(frozen=True)
class NF4Bytes:
    """Bytes of one weight matrix stored by bitsandbytes as NF4, split by what they hold."""

    packed: int
    """the 4-bit values, two per byte"""
    absmax: int
    """one scale per block: uint8 with double quantisation, float32 without"""
    nested_absmax: int = 0
    """double quantisation: one float32 scale per ``nested_blocksize`` blocks"""
    offset: int = 0
    """double quantisation: the float32 mean subtracted from the scales before quantising them"""
    code_tables: int = 0
    """lookup tables stored with every matrix: the NF4 levels (16 x float32) and, with double
    quantisation, the 8-bit code of the scales (256 x float32)"""

    @property
    def total(self) -> int:
        return self.packed + self.absmax + self.nested_absmax + self.offset + self.code_tables


def nf4_bytes(numel: int, blocksize: int = 64, double_quant: bool = True, nested_blocksize: int = 256) -> NF4Bytes:
    """Bytes bitsandbytes 0.50 keeps for a weight of ``numel`` numbers in NF4 (uint8 storage).

    Example:
        >>> nf4_bytes(4096 * 4096).total      # q_proj of Llama-3-8B: 8 MiB of 4-bit data + scales
        8655940
    """
    blocks = -(-numel // blocksize)
    packed = (numel + 1) // 2
    if not double_quant:
        return NF4Bytes(packed=packed, absmax=4 * blocks, code_tables=16 * 4)
    return NF4Bytes(packed=packed, absmax=blocks, nested_absmax=4 * -(-blocks // nested_blocksize), offset=4,
                    code_tables=16 * 4 + 256 * 4)


@dataclass(frozen=True)
class ModuleMemory:
    """One kind of weight in the model (``count`` of them, one per layer for decoder modules)."""

    name: str
    shape: tuple[int, ...]
    count: int
    quantized: bool
    """True where a 4-bit load stores it in NF4 (the decoder's linear layers)"""
    bytes_16bit: int
    bytes_4bit: int
    """as a 4-bit load keeps it: NF4 bytes (``nf4_bytes``) if quantised, else 16-bit"""

    @property
    def params(self) -> int:
        return self.count * math.prod(self.shape)


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
        """How many times smaller the 4-bit load is than the 16-bit weights."""
        return self.bytes_16bit / self.bytes_4bit

    @property
    def bits_per_quantized_weight(self) -> float:
        """Bits per weight of the quantised modules alone, scales and tables included."""
        return 8 * sum(r.bytes_4bit for r in self.rows if r.quantized) / self.quantized_params

    def table(self) -> str:
        """The table as Markdown: module, shape, how many, parameters, 16-bit and 4-bit MiB."""
        lines = ["| module | shape | count | parameters | 4-bit? | 16-bit MiB | 4-bit load MiB |",
                 "| --- | --- | ---: | ---: | --- | ---: | ---: |"]
        for r in self.rows:
            lines.append(f"| {r.name} | {' x '.join(map(str, r.shape))} | {r.count} | {r.params:,} | "
                         f"{'NF4' if r.quantized else '16-bit'} | {r.bytes_16bit / 1024**2:,.1f} | "
                         f"{r.bytes_4bit / 1024**2:,.1f} |")
        lines.append(f"| **total** | | | **{self.params:,}** | | **{self.bytes_16bit / GIB:.2f} GiB** | "
                     f"**{self.bytes_4bit / GIB:.2f} GiB** |")
        return "\n".join(lines)


def _config_dict(config: Any) -> dict:
    return config if isinstance(config, dict) else config.to_dict()


def llama_weight_memory(config: Any, blocksize: int = 64, double_quant: bool = True) -> WeightMemory:
    """Weight memory of a Llama-architecture model from its config (a ``LlamaConfig`` or its dict).

    16-bit: every weight at 2 bytes. 4-bit load (``load_in_4bit=True``): the seven projections of each
    decoder layer in NF4 (``nf4_bytes``), the embedding, the norms and the output head in 16-bit.

    Example:
        >>> m = llama_weight_memory(LLAMA3_8B)
        >>> m.params, round(m.bytes_16bit / GIB, 2), round(m.bytes_4bit / GIB, 2), round(m.ratio, 2)
        (8030261248, 14.96, 5.31, 2.82)
    """
    c = _config_dict(config)
    hidden, layers, vocab = c["hidden_size"], c["num_hidden_layers"], c["vocab_size"]
    heads = c["num_attention_heads"]
    kv_heads = c.get("num_key_value_heads") or heads
    head_dim = c.get("head_dim") or hidden // heads
    inter = c["intermediate_size"]
    shapes = {"q_proj": (heads * head_dim, hidden), "k_proj": (kv_heads * head_dim, hidden),
              "v_proj": (kv_heads * head_dim, hidden), "o_proj": (hidden, heads * head_dim),
              "gate_proj": (inter, hidden), "up_proj": (inter, hidden), "down_proj": (hidden, inter)}
    biased = {"q_proj": c.get("attention_bias"), "k_proj": c.get("attention_bias"), "v_proj": c.get("attention_bias"),
              "o_proj": c.get("attention_bias"), "gate_proj": c.get("mlp_bias"), "up_proj": c.get("mlp_bias"),
              "down_proj": c.get("mlp_bias")}

    def plain(name, shape, count):
        size = 2 * count * math.prod(shape)
        return ModuleMemory(name, shape, count, False, size, size)

    rows = [plain("embed_tokens", (vocab, hidden), 1)]
    for name, shape in shapes.items():
        size = math.prod(shape)
        rows.append(ModuleMemory(f"layers.*.{name}", shape, layers, True, 2 * layers * size,
                                 layers * nf4_bytes(size, blocksize, double_quant).total))
        if biased[name]:  # a Linear4bit keeps its bias unquantised
            rows.append(plain(f"layers.*.{name}.bias", (shape[0],), layers))
    rows.append(plain("layers.*.input_layernorm", (hidden,), layers))
    rows.append(plain("layers.*.post_attention_layernorm", (hidden,), layers))
    rows.append(plain("norm", (hidden,), 1))
    if not c.get("tie_word_embeddings", False):
        rows.append(plain("lm_head", (vocab, hidden), 1))
    return WeightMemory(tuple(rows))


def lora_parameters(config: Any, r: int, target_modules: tuple[str, ...] | list[str] = PROJECTIONS) -> int:
    """Trainable LoRA parameters: ``r x (d_in + d_out)`` for each targeted projection of each layer.

    Example:
        >>> lora_parameters(LLAMA3_8B, r=16)
        41943040
    """
    rows = {r_.name.split(".")[-1]: r_ for r_ in llama_weight_memory(config).rows if r_.quantized}
    return sum(row.count * r * sum(row.shape) for name, row in rows.items() if name in target_modules)


def adapter_file_bytes(config: Any, r: int, target_modules: tuple[str, ...] | list[str] = PROJECTIONS,
                       bytes_per_param: int = 4) -> int:
    """Bytes of tensor data in ``adapter_model.safetensors`` (the file adds a JSON header of some kB).

    ``bytes_per_param`` is 4 because Unsloth keeps trainable LoRA weights in float32
    (``unsloth_zoo.training_utils.prepare_model_for_training`` upcasts ``lora_A`` / ``lora_B``) and PEFT
    saves them as they are.

    Example:
        >>> adapter_file_bytes(LLAMA3_8B, r=16) / MB    # about 168 MB, 160 MiB
        167.77216
    """
    return bytes_per_param * lora_parameters(config, r, target_modules)


def lora_shapes(config: Any, r: int, target_modules: tuple[str, ...] | list[str] = PROJECTIONS) -> list[tuple[int, int]]:
    """The shape of every LoRA tensor (``A``: r x d_in, ``B``: d_out x r), one pair per targeted module."""
    rows = [row for row in llama_weight_memory(config).rows if row.quantized and row.name.split(".")[-1] in target_modules]
    return [shape for row in rows for _ in range(row.count) for shape in ((r, row.shape[1]), (row.shape[0], r))]


@dataclass(frozen=True)
class OptimizerState:
    """Bytes of an optimizer's state, and how many of them a paged optimizer could move to CPU RAM."""

    bytes: int
    pageable_bytes: int


def adamw_8bit_state(shapes: list[tuple[int, ...]], paged: bool = False) -> OptimizerState:
    """State of bitsandbytes' ``adamw_8bit`` (``paged_adamw_8bit`` with ``paged=True``) for these tensors.

    bitsandbytes 0.50.2 ``optim/optimizer.py``: ``Optimizer2State.init_state`` keeps Adam's two moments
    as uint8 (1 byte each) plus one float32 absmax per block of 256 values for each moment, and float32
    moments for tensors under ``min_8bit_size=4096`` values; ``get_state_buffer`` puts a moment in paged
    (CPU-evictable) memory only when the optimizer is paged and the tensor has at least 1e5 values.
    """
    total = pageable = 0
    for shape in shapes:
        n = math.prod(shape)
        size = 2 * 4 * n if n < 4096 else 2 * n + 2 * 4 * -(-n // 256)
        total += size
        if paged and n >= 1e5:
            pageable += 2 * (4 * n if n < 4096 else n)  # the two moment buffers; absmax stays on the GPU
    return OptimizerState(total, pageable)
