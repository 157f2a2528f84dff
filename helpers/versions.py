"""Which versions are installed, and where they drift from the pins in
requirements-colab.txt (the file the Colab cell installs).

    >>> "trl" in read_pins()
    True
"""

import re
import warnings
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from helpers.paths import REPO_ROOT
from helpers.runtime import has_cuda

REQUIREMENTS = REPO_ROOT / "requirements-colab.txt"
GPU_ONLY = {
    "bitsandbytes",
    "torchao",
}  # not in the CPU stack: Unsloth loads 16-bit weights there and needs neither


@dataclass
class PackageRow:
    name: str
    pinned: str | None
    installed: str | None

    @property
    def drifted(self) -> bool:
        """True when a pinned package is missing or at another version."""
        return self.pinned is not None and self.installed != self.pinned


def read_pins(path: Path = REQUIREMENTS) -> dict[str, str | None]:
    """``{name: version or None}`` from a requirements file (``name==version`` lines; comments skipped)."""
    pins: dict[str, str | None] = {}
    for lineno, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        m = re.fullmatch(r"([A-Za-z0-9_.\-]+)\s*(?:==\s*([A-Za-z0-9_.+\-]+))?", line)
        if not m:
            raise ValueError(f"{path}, line {lineno}: expected 'name==version', got {raw!r}")
        pins[m.group(1)] = m.group(2)
    return pins


def installed_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def package_table(path: Path = REQUIREMENTS) -> list[PackageRow]:
    """Every pinned package plus torch, triton and xformers (the runtime's own), with its version; notebook 00
    says what each is for."""
    pins = read_pins(path)
    return [
        PackageRow(n, pins.get(n), installed_version(n))
        for n in dict.fromkeys(["torch", "triton", *pins, "xformers"])
    ]


def drift(path: Path = REQUIREMENTS, gpu: bool | None = None) -> list[PackageRow]:
    """Pinned packages whose installed version differs from the pin or is missing (GPU-only ones on a GPU only)."""
    gpu = has_cuda() if gpu is None else gpu
    return [row for row in package_table(path) if row.drifted and (gpu or row.name not in GPU_ONLY)]


def fix_command(rows: list[PackageRow]) -> str:
    """The pip command that puts the drifted packages back on their pins ('' when nothing drifted)."""
    return (
        "pip install --no-deps " + " ".join(f"{r.name}=={r.pinned}" for r in rows) if rows else ""
    )


def check_versions(
    path: Path = REQUIREMENTS, gpu: bool | None = None, quiet: bool = False
) -> list[PackageRow]:
    """Compare installed packages with the pins: warn once per drifted package, and print each (installed
    vs pinned) and the pip command that fixes them all."""
    rows = drift(path, gpu)
    for r in rows:
        warnings.warn(
            f"{r.name}: installed {r.installed or 'nothing'}, pinned {r.pinned}", stacklevel=2
        )
    if not quiet:
        print(
            "\n".join(
                [
                    f"{len(rows)} package(s) differ from the versions this course was tested with:",
                    *(
                        f"  - {r.name}: installed {r.installed or 'nothing (not installed)'}, pinned {r.pinned}"
                        for r in rows
                    ),
                    "To restore the tested versions, run this, then restart the runtime (Colab: Runtime > "
                    "Restart session):",
                    f"  {fix_command(rows)}",
                ]
            )
            if rows
            else "All pinned packages match."
        )
    return rows
