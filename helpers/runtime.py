"""What is this machine? Colab or not, GPU name, compute capability, memory, bf16 support.

Example:
    >>> info = runtime_info()
    >>> info.device in ("cuda", "cpu", "mps")
    True
"""

from __future__ import annotations

import os
import platform
import sys
from dataclasses import asdict, dataclass


@dataclass
class RuntimeInfo:
    """A summary of the runtime, printable as a table."""

    colab: bool
    python: str
    os: str
    device: str
    gpu_name: str | None
    compute_capability: str | None
    vram_gib: float | None
    bf16: bool
    cpu_threads: int

    @property
    def dtype_name(self) -> str:
        """The half-precision type to train in: bf16 where supported (Ampere and newer), else fp16."""
        return "bfloat16" if self.bf16 else ("float16" if self.device == "cuda" else "float32/bfloat16 (CPU)")

    def rows(self) -> list[tuple[str, str]]:
        """(label, value) pairs for display."""
        return [(k, "-" if v is None else str(v)) for k, v in asdict(self).items()]


def in_colab() -> bool:
    """True inside Google Colab."""
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


def has_cuda() -> bool:
    """True when torch sees a CUDA GPU (torch is imported lazily)."""
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def runtime_info() -> RuntimeInfo:
    """Collect facts about this runtime. A T4 (compute capability 7.5) has no bf16, so it trains in fp16."""
    import torch

    gpu_name = cc = vram = None
    bf16 = False
    if torch.cuda.is_available():
        device = "cuda"
        props = torch.cuda.get_device_properties(0)
        gpu_name = props.name
        cc = f"{props.major}.{props.minor}"
        vram = round(props.total_memory / 1024**3, 2)
        bf16 = torch.cuda.is_bf16_supported(including_emulation=False)  # a T4 emulates bf16 slowly: report no
    elif getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        device = "mps"
    else:
        device = "cpu"
    return RuntimeInfo(
        colab=in_colab(),
        python=platform.python_version(),
        os=f"{platform.system()} {platform.machine()}",
        device=device,
        gpu_name=gpu_name,
        compute_capability=cc,
        vram_gib=vram,
        bf16=bf16,
        cpu_threads=torch.get_num_threads(),
    )
