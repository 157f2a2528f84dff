"""Save a LoRA adapter so that a crash never leaves a half-written one where notebooks look for it.

``save_adapter`` writes into a temporary sibling folder, reloads the written tensors and compares
them with the model's, and only then renames the folder into place. The target therefore always
holds either the previous complete adapter or the new complete one. Leftovers of a save that was
killed (``.lora_adapter.tmp-*``) are removed by the next save.

Example:
    >>> save_adapter(model, tokenizer, adapter_dir())   # doctest: +SKIP
    Saved the adapter to outputs/lora_adapter (112 tensors reloaded and checked).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

ADAPTER_FILE = "adapter_model.safetensors"
CONFIG_FILE = "adapter_config.json"


class SaveError(RuntimeError):
    """A save whose files are missing or differ from the model once reloaded."""


def _siblings(path: Path, kind: str) -> list[Path]:
    return sorted(path.parent.glob(f".{path.name}.{kind}-*"))


def recover(path: str | Path) -> None:
    """Tidy up after a save that was killed: drop temp folders, restore the previous adapter if it is gone."""
    path = Path(path)
    for tmp in _siblings(path, "tmp"):
        shutil.rmtree(tmp, ignore_errors=True)
    backups = _siblings(path, "old")
    if backups and not path.exists():
        os.replace(backups.pop(), path)
    for old in backups:
        shutil.rmtree(old, ignore_errors=True)


def verify_adapter(model: Any, folder: str | Path) -> int:
    """Reload the adapter tensors in ``folder`` and compare them with ``model``'s; return how many matched."""
    import json

    import torch
    from peft import get_peft_model_state_dict
    from safetensors.torch import load_file

    folder = Path(folder)
    for name in (CONFIG_FILE, ADAPTER_FILE):
        if not (folder / name).is_file():
            raise SaveError(f"{folder}: {name} was not written")
    try:
        json.loads((folder / CONFIG_FILE).read_text())
        saved = load_file(str(folder / ADAPTER_FILE))
    except Exception as err:  # a truncated file fails here
        raise SaveError(f"{folder}: the saved adapter does not reload ({type(err).__name__}: {err})") from None
    expected = get_peft_model_state_dict(model)
    if set(saved) != set(expected):
        missing, extra = sorted(set(expected) - set(saved)), sorted(set(saved) - set(expected))
        raise SaveError(f"{folder}: saved tensors differ from the model's (missing {missing[:3]}, extra {extra[:3]})")
    for key, tensor in expected.items():
        if not torch.equal(saved[key], tensor.detach().to("cpu", saved[key].dtype)):
            raise SaveError(f"{folder}: tensor {key} reloads with other values than the model holds")
    return len(saved)


def save_adapter(model: Any, tokenizer: Any, path: str | Path, check: bool = True) -> Path:
    """Save the adapter (and tokenizer) to ``path`` atomically: temp folder, reload check, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    recover(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        model.save_pretrained(str(tmp))
        if tokenizer is not None:
            tokenizer.save_pretrained(str(tmp))
        checked = verify_adapter(model, tmp) if check else None
        _swap(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    print(f"Saved the adapter to {path}" + (f" ({checked} tensors reloaded and checked)." if check else "."))
    return path


def _swap(new: Path, path: Path) -> None:
    """Put ``new`` at ``path``; an old ``path`` is renamed aside first and deleted only after."""
    if not path.exists():
        os.replace(new, path)
        return
    old = path.parent / f".{path.name}.old-{uuid.uuid4().hex[:8]}"
    os.replace(path, old)
    try:
        os.replace(new, path)
    except BaseException:
        os.replace(old, path)
        raise
    shutil.rmtree(old, ignore_errors=True)


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write a small text file (say, trainer_state.json) via a temp file and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
