"""Notebook 08's budget for a free runtime: a time estimate before each step that takes minutes, room on
the disk before each large write, and what of the exports may go to Google Drive.

A free Colab runtime has about 15 GB of Drive and a disk that vanishes with the runtime. The large exports
(merged 16-bit, GGUF) stay on the runtime's disk (``helpers.paths.export_dir``); only the files that fit
go to Drive.

>>> pace = Pace()
>>> round(pace.seconds(16.06))  # Llama-3-8B's 16-bit weights at the reference pace
101
>>> drive_plan({"q4_k_m.gguf": 4.9e9, "q8_0.gguf": 8.5e9}, free_bytes=12e9)
(['q4_k_m.gguf'], ['q8_0.gguf'])
"""

import shutil
import time
from contextlib import contextmanager
from pathlib import Path

# Unsloth's Ollama notebook on a free Colab T4 merged Llama-3-8B (16.06 GB of 16-bit weights) and wrote
# it in 1 min 41 s (unslothai/notebooks, nb/Llama3_(8B)-Ollama.ipynb at 8081c7e, save_pretrained_gguf's
# output): the pace an estimate starts from, before this runtime has measured its own.
REFERENCE_S_PER_GB = 101 / 16.06
REFERENCE = "a Colab T4 merging Llama-3-8B in Unsloth's Ollama notebook"
DRIVE_MARGIN_BYTES = 1e9  # left free on Drive after a copy, for the files a later notebook writes


def minutes(seconds: float) -> str:
    """'45 s' or '3.2 min'.

    >>> minutes(45), minutes(192)
    ('45 s', '3.2 min')
    """
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


class Pace:
    """Seconds per GB of data a step reads or writes, for estimates: the reference pace until a step has
    run here, then the slowest pace measured in this runtime (an estimate should not promise too little)."""

    def __init__(self):
        self.s_per_gb, self.basis = REFERENCE_S_PER_GB, REFERENCE

    def seconds(self, gb: float) -> float:
        return gb * self.s_per_gb

    @contextmanager
    def step(self, label: str, gb: float):
        """Print the estimate for ``label`` (``gb`` of data at the current pace), run the block, print the
        time it took and keep the pace it measured."""
        print(
            f"{label}: about {minutes(self.seconds(gb))} estimated for {gb:.2f} GB "
            f"(at {self.s_per_gb:.1f} s per GB: {self.basis})"
        )
        start = time.perf_counter()
        yield
        took = time.perf_counter() - start
        print(f"{label}: took {minutes(took)}")
        measured = took / max(gb, 1e-9)
        if gb >= 0.05 and (self.basis == REFERENCE or measured > self.s_per_gb):
            self.s_per_gb, self.basis = measured, f"measured in this runtime ({label})"


def folder_bytes(folder: str | Path) -> int:
    """Bytes of the files under ``folder``."""
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())


def check_room(folder: str | Path, need_bytes: float, what: str) -> None:
    """Stop before a write of ``need_bytes`` into ``folder`` that its disk has no room for."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(folder).free
    print(f"{what}: needs about {need_bytes / 1e9:.1f} GB; {free / 1e9:.1f} GB free at {folder}")
    if free < need_bytes:
        raise OSError(
            f"{what} needs about {need_bytes / 1e9:.1f} GB at {folder}, where {free / 1e9:.1f} GB are free: "
            "delete older exports there (or use a runtime with a larger disk) and run the cell again."
        )


def drive_plan(sizes: dict[str, float], free_bytes: float) -> tuple[list[str], list[str]]:
    """Split files (name: bytes, in order of preference) into those that go to Drive and those that stay
    on the runtime's disk: each goes while ``free_bytes`` keeps ``DRIVE_MARGIN_BYTES`` after it."""
    to_drive, stay = [], []
    for name, size in sizes.items():
        if size + DRIVE_MARGIN_BYTES <= free_bytes:
            to_drive.append(name)
            free_bytes -= size
        else:
            stay.append(name)
    return to_drive, stay


def lora_parts(layer) -> tuple:
    """A LoRA layer's frozen weight W (dequantised when it is 4-bit) and its update (alpha / r) B A, both
    float32 on the CPU: what a merge adds up, for checking a merged or converted copy."""
    import torch

    weight = layer.base_layer.weight
    if hasattr(weight, "quant_state"):  # bitsandbytes 4-bit, on a GPU
        from bitsandbytes.functional import dequantize_4bit

        weight = dequantize_4bit(weight.data, weight.quant_state)
    with torch.no_grad():
        delta = layer.get_delta_weight(layer.active_adapters[0])
    return weight.float().cpu(), delta.float().cpu()


def saved_weight(folder: str | Path, name: str):
    """One tensor of a saved model folder (its safetensors shards), float32."""
    from safetensors import safe_open

    for shard in sorted(Path(folder).glob("*.safetensors")):
        with safe_open(str(shard), "pt") as tensors:
            if name in tensors.keys():
                return tensors.get_tensor(name).float()
    raise KeyError(f"{name} is in no safetensors file of {folder}")


def gguf_weight(path: str | Path, name: str):
    """One tensor of a GGUF file, dequantised to float32 (the gguf package, llama.cpp's own reader; where it is
    not installed, as on Colab, the copy beside llama.cpp's converter)."""
    import importlib.util
    import sys

    import torch

    if importlib.util.find_spec("gguf") is None:
        from helpers.llama_cpp import UNSLOTH_DEFAULT, llama_cpp_dir

        sys.path.append(str((llama_cpp_dir() or UNSLOTH_DEFAULT) / "gguf-py"))
    from gguf import GGUFReader
    from gguf.quants import dequantize

    for tensor in GGUFReader(str(path)).tensors:
        if tensor.name == name:
            return torch.from_numpy(dequantize(tensor.data, tensor.tensor_type).copy()).float()
    raise KeyError(f"{name} is not a tensor of {path}")


def merge_errors(saved, weight, delta) -> tuple[float, float]:
    """Mean absolute difference of a saved weight from W + delta (the merge) and from W alone: a copy that
    holds the adapter is closer to the first, whatever the rounding of its format.

    >>> import torch
    >>> w, d = torch.zeros(2, 2), torch.full((2, 2), 0.5)
    >>> merge_errors(w + d, w, d), merge_errors(w, w, d)
    ((0.0, 0.5), (0.5, 0.0))
    """
    saved = saved.reshape(weight.shape)
    return (saved - weight - delta).abs().mean().item(), (saved - weight).abs().mean().item()
