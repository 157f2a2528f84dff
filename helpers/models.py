"""Choose the model: the real 8B model on a GPU, the embedded tiny Llama elsewhere.

    >>> choose_model("unsloth/llama-3-8b-bnb-4bit")
    'unsloth/llama-3-8b-bnb-4bit'
"""

import os
from pathlib import Path

from helpers.runtime import has_cuda

GPU_DEFAULT = "unsloth/llama-3-8b-bnb-4bit"


def choose_model(requested: str | None = None) -> str:
    """Resolve a model request (argument, then $COURSE_MODEL, then auto) to a name or local path."""
    name = (requested or os.environ.get("COURSE_MODEL") or "auto").strip()
    if name == "auto":
        name = GPU_DEFAULT if has_cuda() else "tiny"
    if name == "tiny":
        from helpers.tiny import tiny_model_path
        return str(tiny_model_path())
    return name


def is_tiny(model_name: str) -> bool:
    """True for the embedded tiny model (its folder carries a course_model.json marker)."""
    return (Path(model_name) / "course_model.json").exists()
