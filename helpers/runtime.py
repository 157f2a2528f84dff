"""What is this machine? Colab, Kaggle or your own; GPU name, compute capability, memory, bf16 support.

>>> runtime_info().device in ("cuda", "cpu", "mps")
True
"""

import os
import platform
import sys
from dataclasses import asdict, dataclass


@dataclass
class RuntimeInfo:
    device: str  # "cuda" | "mps" | "cpu"
    host: str = "local"  # "colab" | "kaggle" | "local"
    python: str = platform.python_version()
    gpu_name: str | None = None
    compute_capability: str | None = None
    vram_gib: float | None = None
    bf16: bool = False
    cpu_threads: int = 1

    @property
    def dtype_name(self) -> str:
        """The half-precision type to train in: bf16 where supported (Ampere and newer), else fp16."""
        return (
            "bfloat16"
            if self.bf16
            else ("float16" if self.device == "cuda" else "float32/bfloat16 (CPU)")
        )

    def rows(self) -> list[tuple[str, str]]:
        """(label, value) pairs for display."""
        return [(k, "-" if v is None else str(v)) for k, v in asdict(self).items()]


def in_colab() -> bool:
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


def in_kaggle() -> bool:
    return "KAGGLE_KERNEL_RUN_TYPE" in os.environ


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

    host = "colab" if in_colab() else "kaggle" if in_kaggle() else "local"
    info = RuntimeInfo(device="cpu", host=host, cpu_threads=torch.get_num_threads())
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.device, info.gpu_name = "cuda", props.name
        # as Unsloth reads it (a T4's 7.5 inside tools/t4_envelope)
        major, minor = torch.cuda.get_device_capability(0)
        info.compute_capability = f"{major}.{minor}"
        info.vram_gib = round(props.total_memory / 1024**3, 2)
        # a T4 emulates bf16 slowly: that counts as no
        info.bf16 = torch.cuda.is_bf16_supported(including_emulation=False)
    elif getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        info.device = "mps"
    return info
