"""Run an H100 inside a Colab T4's envelope: float16 only (no bfloat16) and at most 15 GiB of GPU memory.

Put this folder first on PYTHONPATH and every Python process (notebook kernels included) imports it at
start-up: it caps this process's share of GPU 0 with ``torch.cuda.set_per_process_memory_fraction``
and reports compute capability 7.5 (a T4's) to everything but torch and Triton, so Unsloth, TRL and the course choose float16 as they
would on a T4. Tensor-core speed and bandwidth stay an H100's: this checks precision and memory, not time.

    PYTHONPATH=tools/t4_envelope COURSE_MODEL=tiny python -m pytest --nbval-lax --nbval-current-env notebooks/
"""

import os
import sys

import torch

T4_GIB = float(os.environ.get("T4_ENVELOPE_GIB", "15"))

if torch.cuda.is_available():
    _total = torch.cuda.get_device_properties(0).total_memory
    torch.cuda.set_per_process_memory_fraction(min(1.0, T4_GIB * 1024**3 / _total), 0)
    _real_capability = torch.cuda.get_device_capability

    def _capability(device=None):
        """7.5 for the libraries that choose a precision; the real one for torch and Triton, which compile
        kernels for it (a kernel built for sm_75 does not run on this GPU)."""
        caller = sys._getframe(1).f_globals.get("__name__", "")
        return _real_capability(device) if caller.split(".")[0] in ("torch", "triton") else (7, 5)

    torch.cuda.get_device_capability = _capability
    _real_mem_get_info = torch.cuda.mem_get_info

    def _mem_get_info(device=None):
        """Free and total memory as a T4 would report them: accelerate's device_map="auto" plans with this,
        and on the H100 it would plan for 80 GB and then meet the 15 GiB cap."""
        free, total = _real_mem_get_info(device)
        cap = int(T4_GIB * 1024**3)
        return min(free, cap - torch.cuda.memory_reserved(device)), min(total, cap)

    torch.cuda.mem_get_info = _mem_get_info
    torch.cuda.is_bf16_supported = lambda including_emulation=True: False
    os.environ["T4_ENVELOPE"] = f"float16, {T4_GIB:g} GiB of {_total / 1024**3:.1f}"
