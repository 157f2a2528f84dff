"""Where the course keeps its data and writes its outputs."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = REPO_ROOT / "data"
TRAIN_FILE = DATA_DIR / "train.jsonl"
EVAL_FILE = DATA_DIR / "eval.jsonl"


def output_dir() -> Path:
    """The folder for adapters, checkpoints and plots: $COURSE_OUTPUT, else outputs/ in the repo."""
    out = Path(os.environ.get("COURSE_OUTPUT", REPO_ROOT / "outputs"))
    out.mkdir(parents=True, exist_ok=True)
    return out


def adapter_dir() -> Path:
    """Where notebook 04 saves the LoRA adapter and notebooks 05 and 06 look for it."""
    return output_dir() / "lora_adapter"
