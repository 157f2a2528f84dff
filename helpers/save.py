"""Find and check a saved adapter, and write folders all or nothing so a crash never leaves a half-written one."""

import contextlib
import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

from helpers.checkpoints import same_model

ADAPTER_FILE, CONFIG_FILE = "adapter_model.safetensors", "adapter_config.json"


class SaveError(RuntimeError):
    """A save whose files are missing or differ from the model once reloaded."""


def check_adapter(model: Any, folder: str | Path, quiet: bool = False) -> int:
    """Reload the adapter in ``folder`` and compare every tensor with ``model``'s; return how many matched."""
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
        raise SaveError(
            f"{folder}: the saved adapter does not reload ({type(err).__name__}: {err})"
        ) from None
    expected = get_peft_model_state_dict(model)
    if set(saved) != set(expected):
        missing, extra = sorted(set(expected) - set(saved)), sorted(set(saved) - set(expected))
        raise SaveError(
            f"{folder}: saved tensors differ from the model's (missing {missing[:3]}, extra {extra[:3]})"
        )
    for key, tensor in expected.items():
        if not torch.equal(saved[key], tensor.detach().to("cpu", saved[key].dtype)):
            raise SaveError(
                f"{folder}: tensor {key} reloads with other values than the model holds"
            )
    if not quiet:
        params = sum(t.numel() for t in saved.values())
        dtypes = ", ".join(sorted({str(t.dtype).removeprefix("torch.") for t in saved.values()}))
        print(
            f"{len(saved)} LoRA tensors reloaded and equal to the model's: {params:,} parameters in {dtypes}, "
            f"{(folder / ADAPTER_FILE).stat().st_size / 1e6:.1f} MB on disk."
        )
    return len(saved)


@contextlib.contextmanager
def atomic_folder(path: str | Path):
    """Yield a temporary sibling of ``path`` to write into; on success it replaces ``path``, on failure it goes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}.tmp-*"):  # a write that was killed
        shutil.rmtree(stale, ignore_errors=True)
    backups = sorted(path.parent.glob(f".{path.name}.old-*"))
    if backups and not path.exists():  # killed between the two renames below: put the old one back
        os.replace(backups.pop(), path)
    for old in backups:
        shutil.rmtree(old, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        yield tmp
        old = path.parent / f".{path.name}.old-{uuid.uuid4().hex[:8]}"
        if path.exists():
            os.replace(path, old)
        try:
            os.replace(tmp, path)
        except BaseException:
            if old.exists():
                os.replace(old, path)
            raise
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def saved_adapter(folder: str | Path, model_name: str) -> Path | None:
    """``folder`` when it holds an adapter trained from ``model_name``, else None; says which."""
    config = Path(folder) / CONFIG_FILE
    if not config.exists():
        print(f"No adapter at {folder}: training one now with notebook 04's recipe.")
        return None
    base = json.loads(config.read_text()).get("base_model_name_or_path")
    if not same_model(str(base), model_name):
        print(
            f"The adapter at {folder} was trained from {base!r}, not {model_name!r}: training a new one."
        )
        return None
    print(f"Using the adapter notebook 04 saved: {folder}")
    return Path(folder)
