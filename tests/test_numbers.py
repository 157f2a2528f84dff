"""Every number the docs teach that code can compute is computed here and checked against the prose.

The weight-memory table comes from ``helpers.memory`` (a Llama config in, bytes out, following
transformers' and bitsandbytes' code), the adapter size from a real saved adapter, MFU from
``helpers.bench.flops_per_token``, the Python floor from the pinned packages' metadata, and
``repetition_penalty``'s reach from transformers' own ``generate``. A docs page that drifts from the
code fails here, and so does code that drifts from the libraries.
"""

from __future__ import annotations

import json
import math
import re
import struct
import tomllib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from helpers.memory import (
    GIB,
    LLAMA3_8B,
    MB,
    PROJECTIONS,
    adapter_file_bytes,
    llama_weight_memory,
    lora_parameters,
    nf4_bytes,
)

try:  # the benchmark moves from helpers/ to tools/
    from tools.bench import ARCH, PEAK_BF16_TFLOPS, flops_per_token
except ImportError:
    from helpers.bench import ARCH, PEAK_BF16_TFLOPS, flops_per_token

ROOT = Path(__file__).resolve().parent.parent


def weight_memory_gib(n_params: float, bits: float) -> float:
    """Memory for ``n_params`` weights stored at ``bits`` each, in GiB (weights only)."""
    return n_params * bits / 8 / GIB


# The optimizer arithmetic behind the docs' paging figures (docs/concepts/qlora.md, troubleshooting.md).
def lora_shapes(
    config: Any, r: int, target_modules: tuple[str, ...] | list[str] = PROJECTIONS
) -> list[tuple[int, int]]:
    """The shape of every LoRA tensor (``A``: r x d_in, ``B``: d_out x r), one pair per targeted module."""
    rows = [
        row
        for row in llama_weight_memory(config).rows
        if row.quantized and row.name.split(".")[-1] in target_modules
    ]
    return [
        shape
        for row in rows
        for _ in range(row.count)
        for shape in ((r, row.shape[1]), (row.shape[0], r))
    ]


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
            pageable += 2 * (
                4 * n if n < 4096 else n
            )  # the two moment buffers; absmax stays on the GPU
    return OptimizerState(total, pageable)


DOCS = ROOT / "docs"


def test_benchmark_shape_is_llama3_8b():
    assert {k: ARCH["8b"][k] for k in LLAMA3_8B} == LLAMA3_8B


def page(name: str) -> str:
    """A docs page with its line breaks folded, so a phrase may wrap anywhere."""
    return " ".join((DOCS / name).read_text(encoding="utf-8").split())


def table_cells(line: str) -> list[str]:
    """The cells of one Markdown table row, stripped."""
    return [c.strip() for c in line.strip("|").split("|")]


def gib(n_bytes: float) -> str:
    return f"{n_bytes / GIB:.2f} GiB"


# --------------------------------------------------------------------------- the 4-bit weight table


def test_llama3_8b_parameters_match_transformers():
    """The table's modules are the model's parameters, shape for shape (built on the meta device: no memory)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    with torch.device("meta"):
        model = LlamaForCausalLM(LlamaConfig(**LLAMA3_8B))
    table = llama_weight_memory(LLAMA3_8B)
    assert table.params == sum(p.numel() for p in model.parameters()) == 8_030_261_248
    shapes = {name: tuple(p.shape) for name, p in model.named_parameters()}
    for row in table.rows:
        leaf = row.name.removeprefix("layers.*.").replace(".", r"\.")
        pattern = re.compile(
            r"lm_head\.weight$"
            if row.name == "lm_head"
            else rf"model\.layers\.\d+\.(\w+\.)?{leaf}(\.weight)?$"
            if row.name.startswith("layers.")
            else rf"model\.{leaf}\.weight$"
        )
        matched = [shape for name, shape in shapes.items() if pattern.match(name)]
        assert len(matched) == row.count and set(matched) == {row.shape}, row.name


def test_tiny_model_parameters_match_its_file():
    """The same function counts the embedded tiny model, whose tied embeddings have no separate head."""
    from transformers import AutoConfig

    from helpers.models import choose_model
    from tools.bench import count_parameters

    path = Path(choose_model("tiny"))
    table = llama_weight_memory(AutoConfig.from_pretrained(path))
    assert table.params == count_parameters(path)
    assert "lm_head" not in {row.name for row in table.rows}


def test_pages_state_the_tiny_model_size():
    """README and docs state the tiny model's parameter count as the config gives it (built on the meta device)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from helpers.tiny import CONFIG, VOCAB_SIZE

    with torch.device("meta"):
        model = LlamaForCausalLM(LlamaConfig(vocab_size=VOCAB_SIZE, **CONFIG))
    n = sum(p.numel() for p in model.parameters())  # tied: the head is the embedding, counted once
    stated = f"{n:,}"
    for name in ["concepts/index.md", "concepts/tokens-and-parameters.md", "start-here.md"]:
        assert stated in page(name), name
    assert stated in (ROOT / "README.md").read_text()
    assert f"about {n * 2 / 1e6:.2f} MB ({stated} x 2 bytes)" in page("concepts/qlora.md")
    assert f"about {round(n, -3) // 1000} thousand parameters" in page("index.md")


def nf4_parts(numel: int, blocksize: int = 64) -> tuple[int, ...]:
    """bitsandbytes 0.50 quantize_4bit(compress_statistics=True), read from its source: uint8 pairs, a uint8
    absmax per 64, a float32 absmax per 256 blocks, a float32 offset, and the 16- and 256-entry float32 codes."""
    blocks = -(-numel // blocksize)
    return (numel + 1) // 2, blocks, 4 * -(-blocks // 256), 4, (16 + 256) * 4


def test_nf4_bytes_follow_bitsandbytes_quantize_4bit():
    assert nf4_parts(4096 * 4096) == (8_388_608, 262_144, 4096, 4, 1088)
    assert nf4_bytes(4096 * 4096) == sum(nf4_parts(4096 * 4096))
    assert (
        nf4_bytes(4096 * 4096, double_quant=False) == 8_388_608 + 4 * 262_144 + 16 * 4
    )  # float32 absmax
    assert (
        nf4_bytes(344 * 128) == sum(nf4_parts(344 * 128)) == 22_016 + 688 + 4 * 3 + 4 + 1088
    )  # not x 256 blocks


def test_nf4_bytes_match_a_real_quant_state():
    """Where bitsandbytes is installed (GPU machines; it runs on a CPU too), count a real QuantState."""
    bnb_functional = pytest.importorskip("bitsandbytes.functional")
    import torch

    for shape in [(1024, 4096), (344, 128), (64, 128)]:
        packed, state = bnb_functional.quantize_4bit(
            torch.randn(*shape, dtype=torch.bfloat16),
            blocksize=64,
            compress_statistics=True,
            quant_type="nf4",
        )
        size = lambda t: t.numel() * t.element_size()  # noqa: E731
        real = (
            size(packed),
            size(state.absmax),
            size(state.state2.absmax),
            size(state.offset),
            size(state.code) + size(state.state2.code),
        )
        assert real == nf4_parts(math.prod(shape)) and sum(real) == nf4_bytes(math.prod(shape)), (
            shape
        )


def test_llama3_8b_in_4bit():
    table = llama_weight_memory(LLAMA3_8B)
    quantized = [r for r in table.rows if r.quantized]
    assert {r.name.split(".")[-1] for r in quantized} == set(PROJECTIONS)
    assert {r.name for r in table.rows if not r.quantized} >= {"embed_tokens", "lm_head", "norm"}
    assert table.quantized_params == 6_979_321_856
    assert round(table.bits_per_quantized_weight, 3) == 4.127
    assert gib(table.bytes_16bit) == "14.96 GiB" and gib(table.bytes_4bit) == "5.31 GiB"
    assert round(table.ratio, 2) == 2.82


def test_qlora_page_states_the_computed_table():
    table = llama_weight_memory(LLAMA3_8B)
    quantized = [r for r in table.rows if r.quantized]
    big = [r for r in table.rows if r.name in ("embed_tokens", "lm_head")]
    norms = [r for r in table.rows if "norm" in r.name]
    no_double_quant = llama_weight_memory(LLAMA3_8B, double_quant=False)
    expected = [
        f"| 7 projections per layer (NF4, double-quantised scales) | {table.quantized_params:,} | "
        f"{gib(sum(r.bytes_16bit for r in quantized))} | {gib(sum(r.bytes_4bit for r in quantized))} |",
        f"| `embed_tokens` and `lm_head` (16-bit) | {sum(r.params for r in big):,} | "
        f"{gib(sum(r.bytes_16bit for r in big))} | {gib(sum(r.bytes_4bit for r in big))} |",
        f"| {sum(r.count for r in norms)} RMS norms (16-bit) | {sum(r.params for r in norms):,} |",
        f"| **the whole model** | **{table.params:,}** | **{gib(table.bytes_16bit)}** | **{gib(table.bytes_4bit)}** |",
        f"so the model takes {gib(table.bytes_4bit)}, {table.ratio:.2f}x less",
        "2.82x smaller than the 16-bit weights",
        f"it would be {gib(no_double_quant.bytes_4bit)}",
        f"The {gib(table.bytes_4bit)} is {table.bytes_4bit / 1e9:.2f} GB",
        f"the {round(100 * (table.params - table.quantized_params) / table.params)} % of the parameters that stay "
        f"in 16-bit hold {round(100 * (table.bytes_4bit - sum(r.bytes_4bit for r in quantized)) / table.bytes_4bit)} % "
        f"of the 4-bit bytes",
        f"{big[0].params:,} parameters",
        f"the adapters alone are {adapter_file_bytes(LLAMA3_8B, r=16) / GIB:.2f} GiB in float32",
    ]
    text = page("concepts/qlora.md")
    for phrase in expected:
        assert phrase in text, phrase


def test_other_pages_state_the_4bit_load():
    table = llama_weight_memory(LLAMA3_8B)
    n = table.params
    uniform = page("concepts/tokens-and-parameters.md")
    for label, bits in [("float32", 32), ("bfloat16 / float16", 16), ("int8", 8)]:
        assert f"| {label} | {bits} | {weight_memory_gib(n, bits):.2f} GiB |" in uniform
    assert f"| Llama-3-8B (`unsloth/llama-3-8b-bnb-4bit`) | {n:,} |" in uniform
    for name in [
        "concepts/tokens-and-parameters.md",
        "start-here.md",
        "troubleshooting.md",
        "concepts/kinds-of-fine-tuning.md",
        "index.md",
    ]:
        assert gib(table.bytes_4bit) in page(name), name
    assert f"the {table.bytes_4bit / 1e9:.2f} GB ({gib(table.bytes_4bit)}) of a 4-bit load" in page(
        "benchmarks.md"
    )
    big = sum(
        r.params for r in table.rows if r.name in ("embed_tokens", "lm_head")
    )  # float32 after PEFT's kbit prep
    assert f"is {gib(4 * big)} instead of {gib(2 * big)} in bf16" in page("benchmarks.md")
    full = page("concepts/kinds-of-fine-tuning.md")
    assert round(n * 16 / 2**30) == 120 and "about 120 GiB" in full


STALE = [
    "825,216",
    "3.86 GiB",
    "3.9x",
    "3.9 GiB",
    "4.21 GiB",
    "80 MB",
    "80 MiB",
    "3.74 GiB",
    "Python 3.10",
]


@pytest.mark.parametrize("name", sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")))
def test_no_page_keeps_a_corrected_number(name):
    text = page(name)
    assert not [s for s in STALE if s in text]


# ------------------------------------------------------------------------------ adapter and optimizer


def test_llama3_8b_adapter_size():
    assert lora_parameters(LLAMA3_8B, r=16) == 41_943_040
    assert sum(math.prod(s) for s in lora_shapes(LLAMA3_8B, r=16)) == 41_943_040
    assert adapter_file_bytes(LLAMA3_8B, r=16) == 167_772_160
    text = page("concepts/peft.md")
    assert (
        f"{adapter_file_bytes(LLAMA3_8B, r=16):,} bytes of tensors, about {round(adapter_file_bytes(LLAMA3_8B, r=16) / MB)} MB "
        f"({adapter_file_bytes(LLAMA3_8B, r=16) / 2**20:.0f} MiB)" in text
    )
    assert f"{lora_parameters(LLAMA3_8B, r=16):,}" in page("concepts/lora.md")


def _safetensors(path: Path) -> tuple[dict, int]:
    """The header of a safetensors file and the size of its data section (the file minus the header)."""
    raw = path.read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + length])
    header.pop("__metadata__", None)
    return header, len(raw) - 8 - length


def test_a_saved_adapter_is_float32_and_the_predicted_size(tmp_path):
    """No training: attach the course's adapters to the tiny model, save them, and weigh the file."""
    from unsloth import FastLanguageModel

    from helpers.models import choose_model

    model, _ = FastLanguageModel.from_pretrained(
        model_name=choose_model("tiny"), max_seq_length=2048, dtype=None, load_in_4bit=True
    )
    model = FastLanguageModel.get_peft_model(
        model,
        r=16,
        target_modules=list(PROJECTIONS),
        lora_alpha=16,
        lora_dropout=0,
        bias="none",
        use_gradient_checkpointing="unsloth",
        random_state=3407,
    )
    model.save_pretrained(tmp_path)
    header, data_bytes = _safetensors(tmp_path / "adapter_model.safetensors")
    assert {entry["dtype"] for entry in header.values()} == {"F32"}
    assert sorted(tuple(e["shape"]) for e in header.values()) == sorted(
        lora_shapes(model.config, r=16)
    )
    assert data_bytes == adapter_file_bytes(model.config, r=16)
    assert model.get_nb_trainable_parameters()[0] == lora_parameters(model.config, r=16)


def test_paged_optimizer_saves_little_with_lora():
    state = adamw_8bit_state(lora_shapes(LLAMA3_8B, r=16), paged=True)
    assert round(state.bytes / MB) == 85 and round(state.pageable_bytes / MB) == 44
    assert f"so **{round(state.bytes / MB)} MB**" in page("concepts/qlora.md")
    gradients_and_state = (
        adapter_file_bytes(LLAMA3_8B, r=16) + state.bytes
    )  # float32 gradients + Adam state
    assert f"their 8-bit Adam state are {gradients_and_state / GIB:.2f} GiB" in page(
        "concepts/qlora.md"
    )
    assert f": {round(state.pageable_bytes / MB)} MB that could leave the GPU" in page(
        "concepts/qlora.md"
    )
    assert f"{round(state.bytes / MB)} MB of 8-bit Adam state" in page("troubleshooting.md")
    assert f"could move off the GPU is {round(state.pageable_bytes / MB)} MB" in page(
        "troubleshooting.md"
    )


# ------------------------------------------------------------------------------------------- MFU


def test_flops_per_token_lora_and_full():
    n = 32 * (2 * 4096 * 4096 + 2 * 4096 * 1024 + 3 * 4096 * 14336)
    attention = 12 * 32 * 4096 * 2048
    assert flops_per_token(LLAMA3_8B, 2048, lora_r=None) == 6 * n + attention
    assert flops_per_token(LLAMA3_8B, 2048, lora_r=16) == 4 * n + 6 * 41_943_040 + attention


def test_benchmarks_mfu_column_is_recomputed_from_tokens_per_second():
    """Every table row with tokens/s and MFU on the benchmarks page agrees with flops_per_token."""
    per_token = flops_per_token(LLAMA3_8B, 2048, lora_r=16)
    peak = PEAK_BF16_TFLOPS["H100"] * 1e12
    text = (DOCS / "benchmarks.md").read_text(encoding="utf-8")
    rows = [
        line
        for line in text.splitlines()
        if line.startswith("| ") and re.search(r"\| [\d.]+ % \|", line)
    ]
    assert len(rows) == 6
    for line in rows:
        cells = table_cells(line)
        tokens = float(cells[1].replace(",", ""))
        mfu = next(c for c in cells if c.endswith(" %"))
        assert mfu == f"{100 * tokens * per_token / peak:.1f} %", line
    flat = page("benchmarks.md")
    assert f"{per_token:.2e}".replace("e+", "e") in flat
    old = flops_per_token(LLAMA3_8B, 2048, lora_r=None)
    assert f"overstated MFU by {round(100 * (old / per_token - 1))} %" in flat


def test_benchmarks_mfu_and_hfu_pairs_are_recomputed_from_tokens_per_second():
    """Rows with 'MFU / HFU' cells (both paths) agree with flops_per_token, without and with the recomputed forward."""
    model = flops_per_token(LLAMA3_8B, 2048, lora_r=16)
    hardware = flops_per_token(LLAMA3_8B, 2048, lora_r=16, recompute=True)
    peak = PEAK_BF16_TFLOPS["H100"] * 1e12
    rows = [
        line
        for line in (DOCS / "benchmarks.md").read_text(encoding="utf-8").splitlines()
        if line.startswith("| ") and line.count(" % / ") == 2
    ]
    assert len(rows) == 4
    for line in rows:
        cells = table_cells(line)
        tokens = [float(c.replace(",", "").strip("*")) for c in cells[2:4]]
        pairs = [c for c in cells if " % / " in c]
        for t, pair in zip(tokens, pairs):
            assert pair == f"{100 * t * model / peak:.1f} % / {100 * t * hardware / peak:.1f} %", (
                line
            )
        assert cells[4].strip("*") == f"{tokens[0] / tokens[1]:.2f}x", line
    assert f"{hardware:.2e} per token against the model's {model:.2e}".replace("e+", "e") in page(
        "benchmarks.md"
    )
    plain = 5702.5  # the plain path's tokens/s in the 8x1 padded row
    assert (
        f"{plain:,} tokens/s means {2 * plain:,.0f} tokens/s, {100 * 2 * plain * hardware / peak:.1f} % HFU"
        in page("benchmarks.md")
    )


def test_batch_shape_speedup_is_the_ratio_of_the_course_row_runs():
    """Notebook 04 and the commands page teach 8 x 1 against 2 x 4 on the course rows: their ratio, memory difference
    and T4-envelope peak are the benchmarks and validation pages' recorded figures."""
    rows = {}
    text = (DOCS / "benchmarks.md").read_text(encoding="utf-8")
    section = text[text.index("**The course's own rows**") :]
    for line in section[: section.index("\n\n", section.index("| config |"))].splitlines():
        cells = table_cells(line)
        if line.startswith("| 2x4:") or line.startswith("| 8x1:"):
            rows[cells[0].split()[0]] = (float(cells[1].replace(",", "")), float(cells[4]))
    assert set(rows) == {"2x4:unsloth", "8x1:unsloth"}
    (slow, slow_gib), (fast, fast_gib) = rows["2x4:unsloth"], rows["8x1:unsloth"]
    speedup, extra = f"{fast / slow:.2f}x", f"{fast_gib - slow_gib:.1f} GiB"
    envelope = re.search(
        r"course data, batch 8 x 1 .*? \| ([\d.]+) GiB \| 10 steps",
        (DOCS / "validation.md").read_text(),
    )
    peak = f"{float(envelope.group(1)):.2f} GiB"
    cells = json.loads((ROOT / "notebooks" / "04_sft_training.ipynb").read_text())["cells"]
    notebook = " ".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    assert (
        f"the 8B shape trained them {speedup} faster as 8 x 1, for {extra} more memory" in notebook
    )
    assert f"8 x 1 peaked at {peak}" in notebook
    commands = page("commands.md")
    assert (
        f"{speedup} faster on one H100 ({fast:,} against {slow:,} tokens/s) for {extra} more"
        in commands
    )
    assert f"8 x 1 peaked at {peak} on the course rows" in commands


# -------------------------------------------------------------------------------- repetition_penalty


def test_repetition_penalty_penalises_prompt_tokens():
    """transformers' generate() builds RepetitionPenaltyLogitsProcessor without prompt_ignore_length, so a
    token that appears only in the prompt is penalised at the first generated position."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    model = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=64,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=1,
            pad_token_id=0,
        )
    )
    prompt = torch.tensor([[5, 9, 17]])
    out = model.generate(
        prompt,
        attention_mask=torch.ones_like(prompt),
        max_new_tokens=1,
        do_sample=False,
        repetition_penalty=1.5,
        output_logits=True,
        output_scores=True,
        return_dict_in_generate=True,
    )
    raw, processed = out.logits[0][0], out.scores[0][0]
    for token in range(64):
        if token in (5, 9, 17):
            expected = raw[token] / 1.5 if raw[token] > 0 else raw[token] * 1.5
            assert processed[token] == pytest.approx(expected.item())
        else:
            assert processed[token] == raw[token]


# ------------------------------------------------------------------------------------ Python floor


def _pins(path: Path) -> list[str]:
    return [
        line.split("==")[0]
        for line in path.read_text().splitlines()
        if "==" in line and not line.startswith("#")
    ]


def test_python_floor_is_what_the_pins_need():
    """pyproject's requires-python is the highest minimum among the installed pinned packages."""
    from packaging.specifiers import SpecifierSet

    floor = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert floor == ">=3.11"
    needs = {}
    for name in _pins(ROOT / "requirements" / "cpu.txt") + _pins(
        ROOT / "requirements" / "unsloth.txt"
    ):
        try:
            spec = SpecifierSet(metadata.metadata(name).get("Requires-Python") or "")
        except metadata.PackageNotFoundError:
            continue
        needs[name] = min(v for v in ("3.9", "3.10", "3.11", "3.12") if v in spec)
    lowest = max(needs.values(), key=lambda v: tuple(map(int, v.split("."))))
    assert lowest == "3.11" and needs["trl"] == "3.11" and needs["numpy"] == "3.11"


# ---------------------------------------------------------------------------------- every notebook


def test_every_notebook_is_in_the_nav_and_the_notebooks_page():
    notebooks = sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    nav = (ROOT / "mkdocs.yml").read_text()
    index = (DOCS / "notebooks" / "index.md").read_text()
    for name in notebooks:
        assert f"- notebooks/{name}" in nav, name
        assert f"]({name})" in index, name
