"""Resume training after a disconnect: the last complete checkpoint of this run, or a fresh start.

>>> last_checkpoint("/tmp/no-such-folder/checkpoints") is None
True
"""

import json
import os
import re
import shutil
from pathlib import Path


def checkpoint_step(path: str | Path) -> int | None:
    """The step of a ``checkpoint-N`` folder name, else None."""
    m = re.fullmatch(r"checkpoint-(\d+)", Path(path).name)
    return int(m.group(1)) if m else None


def read_json(folder: str | Path, name: str = "trainer_state.json") -> dict | None:
    """The JSON file ``name`` in ``folder`` (a checkpoint's trainer state by default), or None when missing or cut off."""
    try:
        return json.loads((Path(folder) / name).read_text())
    except (OSError, ValueError):
        return None


def list_checkpoints(folder: str | Path) -> list[Path]:
    """Every ``checkpoint-N`` folder under ``folder``, oldest step first (complete or not)."""
    try:
        return sorted(
            (p for p in Path(folder).iterdir() if p.is_dir() and checkpoint_step(p) is not None),
            key=checkpoint_step,
        )
    except OSError:  # no folder (yet), or another process just moved it aside
        return []


def last_checkpoint(folder: str | Path) -> Path | None:
    """The complete checkpoint with the highest step under ``folder``, or None."""
    complete = [p for p in list_checkpoints(folder) if read_json(p) is not None]
    return complete[-1] if complete else None


def same_model(a: str, b: str) -> bool:
    """True when two model names mean the same weights (Unsloth may record 'x' for 'x-bnb-4bit', or a path)."""

    def key(name: str) -> str:
        return re.sub(r"(-unsloth)?-bnb-(4|8)bit$", "", str(name).rstrip("/").lower())

    return key(a) == key(b) or (
        Path(a).is_dir() and Path(b).is_dir() and Path(a).resolve() == Path(b).resolve()
    )


def mismatch(
    checkpoint: str | Path, model_name: str | None = None, max_steps: int | None = None
) -> str | None:
    """Why ``checkpoint`` cannot continue this run (another base model or step count), or None if it can."""
    base = (read_json(checkpoint, "adapter_config.json") or {}).get("base_model_name_or_path")
    if model_name is not None and base is not None and not same_model(base, model_name):
        return f"it was trained from {base!r}, not {model_name!r}"
    total, step = (read_json(checkpoint) or {}).get("max_steps"), checkpoint_step(checkpoint)
    if max_steps is not None and total not in (None, max_steps):
        return f"it belongs to a run of max_steps={total}, not {max_steps}"
    if total is not None and step >= total:
        return f"it is the end of a finished run ({step} of {total} steps)"
    return None


def resume_checkpoint(
    folder: str | Path,
    model_name: str | None = None,
    max_steps: int | None = None,
    resume: bool = True,
    quiet: bool = False,
) -> str | None:
    """The checkpoint to pass to ``trainer.train(resume_from_checkpoint=...)``, or None to start fresh; says which.
    Old checkpoints that do not continue this run move to ``<folder>-previous`` (replacing an older one).
    With ``quiet`` (the other processes of a multi-GPU run) it neither prints nor moves anything."""
    folder = Path(folder)
    found = last_checkpoint(folder) if resume else None
    reason = mismatch(found, model_name, max_steps) if found else None
    if found and not reason:
        if not quiet:
            total = (read_json(found) or {}).get("max_steps")
            print(
                f"Resuming from {found.name} (step {checkpoint_step(found)} of {total}) in {folder}."
            )
        return str(found)
    if quiet:
        return None
    why = (
        f"{found.name} does not continue this run: {reason}"
        if found
        else (f"no checkpoint in {folder}" if resume else "resume=False")
    )
    kept = folder.with_name(folder.name + "-previous") if list_checkpoints(folder) else None
    if kept:
        if kept.exists():
            shutil.rmtree(kept)
        os.replace(folder, kept)
    print(f"Starting fresh: {why}." + (f" The old checkpoints are kept in {kept}." if kept else ""))
    return None
