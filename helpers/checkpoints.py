"""Resume training after a disconnect: find the last complete checkpoint, or keep outputs on Google Drive.

The trainer saves ``checkpoint-N`` folders every ``save_steps`` steps into ``output_dir()/checkpoints``.
A checkpoint counts only when its ``trainer_state.json`` (written last) is there and parses, so a
checkpoint cut off mid-save is skipped. On Colab, ``use_drive()`` mounts Google Drive (it asks
first) and points ``COURSE_OUTPUT`` there, so checkpoints outlive the runtime.

Example:
    >>> resume_checkpoint("/tmp/no-such-folder/checkpoints")   # doctest: +SKIP
    Starting fresh: no checkpoint in /tmp/no-such-folder/checkpoints.
    >>> last_checkpoint("/tmp/no-such-folder/checkpoints") is None
    True
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")
DRIVE_ROOT = Path("/content/drive")
DRIVE_DEFAULT = DRIVE_ROOT / "MyDrive" / "unsloth-course"


def checkpoints_dir() -> Path:
    """Where training writes its checkpoints: ``output_dir()/checkpoints``."""
    from helpers.paths import output_dir

    return output_dir() / "checkpoints"


def checkpoint_step(path: str | Path) -> int | None:
    """The step of a ``checkpoint-N`` folder name, else None."""
    m = CHECKPOINT_RE.match(Path(path).name)
    return int(m.group(1)) if m else None


def read_state(checkpoint: str | Path) -> dict | None:
    """The checkpoint's trainer_state.json as a dict, or None when it is missing or cut off."""
    try:
        return json.loads((Path(checkpoint) / "trainer_state.json").read_text())
    except (OSError, ValueError):
        return None


def is_complete(checkpoint: str | Path) -> bool:
    """True when the trainer finished writing the checkpoint (its trainer_state.json parses)."""
    return read_state(checkpoint) is not None


def list_checkpoints(folder: str | Path) -> list[Path]:
    """Every ``checkpoint-N`` folder under ``folder``, oldest step first (complete or not)."""
    try:
        found = [p for p in Path(folder).iterdir() if p.is_dir() and checkpoint_step(p) is not None]
    except OSError:  # no folder (yet), or another process just moved it aside
        return []
    return sorted(found, key=lambda p: checkpoint_step(p))


def last_checkpoint(folder: str | Path) -> Path | None:
    """The complete checkpoint with the highest step under ``folder``, or None."""
    complete = [p for p in list_checkpoints(folder) if is_complete(p)]
    return complete[-1] if complete else None


def same_model(a: str, b: str) -> bool:
    """True when two model names mean the same weights (Unsloth may record 'x' for 'x-bnb-4bit', or a path)."""
    def key(name: str) -> str:
        name = str(name).rstrip("/").lower()
        return re.sub(r"(-unsloth)?-bnb-(4|8)bit$", "", name)

    return key(a) == key(b) or (Path(a).is_dir() and Path(b).is_dir() and Path(a).resolve() == Path(b).resolve())


def mismatch(checkpoint: str | Path, model_name: str | None = None, max_steps: int | None = None) -> str | None:
    """Why ``checkpoint`` cannot continue this run (another base model or step count), or None if it can."""
    checkpoint = Path(checkpoint)
    if model_name is not None:
        try:
            config = json.loads((checkpoint / "adapter_config.json").read_text())
        except (OSError, ValueError):
            config = {}
        base = config.get("base_model_name_or_path")
        if base is not None and not same_model(base, model_name):
            return f"it was trained from {base!r}, not {model_name!r}"
    state = read_state(checkpoint) or {}
    if max_steps is not None and state.get("max_steps") not in (None, max_steps):
        return f"it belongs to a run of max_steps={state['max_steps']}, not {max_steps}"
    return None


def set_aside(folder: str | Path) -> Path | None:
    """Move ``folder`` (old checkpoints) to ``<folder>-previous``, replacing an older one; return where, or None."""
    folder = Path(folder)
    if not list_checkpoints(folder):
        return None
    previous = folder.with_name(folder.name + "-previous")
    if previous.exists():
        shutil.rmtree(previous)
    os.replace(folder, previous)
    return previous


def resume_checkpoint(folder: str | Path | None = None, model_name: str | None = None,
                      max_steps: int | None = None, resume: bool = True, quiet: bool = False) -> str | None:
    """The checkpoint to pass to ``trainer.train(resume_from_checkpoint=...)``, or None to start fresh; says which.

    Only an interrupted run is resumed: a checkpoint of another model or step count, or the last one of a
    finished run, means starting fresh, and the old checkpoints move to ``<folder>-previous``. With
    ``quiet`` (the other processes of a multi-GPU run) it neither prints nor moves anything.
    """
    folder = Path(folder) if folder is not None else checkpoints_dir()
    found = last_checkpoint(folder) if resume else None
    reason = mismatch(found, model_name, max_steps) if found else None
    step = checkpoint_step(found) if found else None
    total = (read_state(found) or {}).get("max_steps") if found else None
    if found and not reason and total is not None and step >= total:
        reason = f"it is the end of a finished run ({step} of {total} steps)"
    if found and not reason:
        if not quiet:
            print(f"Resuming from {found.name} (step {step} of {total}) in {folder}.")
        return str(found)
    if found:
        why = f"{found.name} does not continue this run: {reason}"
    elif not resume:
        why = "resume=False"
    else:
        why = f"no checkpoint in {folder}"
    if quiet:
        return None
    kept = set_aside(folder)
    print(f"Starting fresh: {why}." + (f" The old checkpoints are kept in {kept}." if kept else ""))
    return None


def drive_mounted(root: Path | None = None) -> bool:
    """True when Google Drive is mounted at ``root`` (default /content/drive; it then holds MyDrive)."""
    return ((root or DRIVE_ROOT) / "MyDrive").is_dir()


def use_drive(folder: str | Path = DRIVE_DEFAULT, mount: bool = True) -> Path:
    """Colab only: mount Google Drive (asks for permission) and send all course outputs to ``folder`` on it.

    Sets ``COURSE_OUTPUT`` for this runtime; run it before training, and again after each reconnect.
    """
    from helpers.runtime import in_colab

    if not in_colab():
        raise RuntimeError("use_drive() works on Colab only; elsewhere set COURSE_OUTPUT to any folder you keep.")
    if mount and not drive_mounted():
        from google.colab import drive

        drive.mount(str(DRIVE_ROOT))
    if not drive_mounted():
        raise RuntimeError(f"Google Drive is not mounted at {DRIVE_ROOT}; outputs would be lost on a disconnect.")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    os.environ["COURSE_OUTPUT"] = str(folder)
    print(f"Outputs and checkpoints go to {folder} (COURSE_OUTPUT); they survive a disconnect.")
    return folder


def warn_if_drive_missing() -> str | None:
    """A warning when COURSE_OUTPUT points into /content/drive but Drive is not mounted, else None."""
    out = os.environ.get("COURSE_OUTPUT", "")
    if out.startswith(str(DRIVE_ROOT)) and not drive_mounted():
        message = (f"COURSE_OUTPUT={out} is on Google Drive, but Drive is not mounted: files written there "
                   f"stay on the runtime's disk and vanish with it. Run helpers.checkpoints.use_drive() first.")
        import warnings

        warnings.warn(message, stacklevel=2)
        return message
    return None
