"""Where the course keeps its data and writes its outputs, and Google Drive for outputs that must survive.

>>> adapter_dir().name
'lora_adapter'
"""

import os
import warnings
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = REPO_ROOT / "data"
TRAIN_FILE, EVAL_FILE = DATA_DIR / "train.jsonl", DATA_DIR / "eval.jsonl"
DRIVE_ROOT = Path("/content/drive")


def cache_dir() -> Path:
    """Where built things (the tiny model, llama.cpp) live: $COURSE_CACHE, else ~/.cache/unsloth-course."""
    return Path(os.environ.get("COURSE_CACHE", Path.home() / ".cache" / "unsloth-course"))


def output_dir() -> Path:
    """The folder for adapters, checkpoints and plots: $COURSE_OUTPUT, else outputs/ in the repo."""
    out = Path(os.environ.get("COURSE_OUTPUT", REPO_ROOT / "outputs"))
    out.mkdir(parents=True, exist_ok=True)
    return out


def adapter_dir() -> Path:
    """Where notebook 04 saves the LoRA adapter and notebooks 05 to 08 look for it."""
    return output_dir() / "lora_adapter"


def export_dir() -> Path:
    """Where notebook 08 writes the large exports (merged weights, GGUF): $COURSE_EXPORT, else the output
    folder, except on Google Drive, whose free 15 GB they would overflow: then /content/exports, on the
    runtime's own disk (it vanishes with the runtime; notebook 08 copies to Drive what fits)."""
    if "COURSE_EXPORT" in os.environ:
        out = Path(os.environ["COURSE_EXPORT"])
    else:
        out = Path("/content/exports") if outputs_on_drive() else output_dir()
    out.mkdir(parents=True, exist_ok=True)
    return out


def outputs_on_drive() -> bool:
    """Whether the output folder is on Google Drive (``use_drive``, or COURSE_OUTPUT set there)."""
    return output_dir().is_relative_to(DRIVE_ROOT)


def drive_mounted() -> bool:
    return (DRIVE_ROOT / "MyDrive").is_dir()


def use_drive(
    folder: str | Path = DRIVE_ROOT / "MyDrive" / "unsloth-course", mount: bool = True
) -> Path:
    """Colab only: mount Google Drive (asks for permission) and send all course outputs to ``folder`` on it."""
    from helpers.runtime import in_colab

    if not in_colab():
        raise RuntimeError(
            "use_drive() works on Colab only; elsewhere set COURSE_OUTPUT to any folder you keep."
        )
    if mount and not drive_mounted():
        from google.colab import drive

        drive.mount(str(DRIVE_ROOT))
    if not drive_mounted():
        raise RuntimeError(
            f"Google Drive is not mounted at {DRIVE_ROOT}; outputs would be lost on a disconnect."
        )
    Path(folder).mkdir(parents=True, exist_ok=True)
    os.environ["COURSE_OUTPUT"] = str(folder)
    print(f"Outputs and checkpoints go to {folder} (COURSE_OUTPUT); they survive a disconnect.")
    return Path(folder)


def warn_if_drive_missing() -> str | None:
    """A warning when COURSE_OUTPUT points into /content/drive but Drive is not mounted, else None."""
    out = os.environ.get("COURSE_OUTPUT", "")
    if out.startswith(str(DRIVE_ROOT)) and not drive_mounted():
        message = (
            f"COURSE_OUTPUT={out} is on Google Drive, but Drive is not mounted: files written there "
            f"stay on the runtime's disk and vanish with it. Run helpers.paths.use_drive() first."
        )
        warnings.warn(message, stacklevel=2)
        return message
    return None
