"""Memory reports: GPU reserved/peak memory on CUDA, process memory on CPU.

Example:
    >>> snap = memory_snapshot()
    >>> snap.device in ("cuda", "cpu")
    True
"""

from __future__ import annotations

import resource
import sys
from dataclasses import dataclass

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
