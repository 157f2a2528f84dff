"""MkDocs hook: render a requirements file as a table, so the docs can never drift from the pins.

A line ``<!-- pins: requirements/cpu.txt -->`` in a page (indented or not) becomes a Markdown table of every
``name==version`` in that file (path relative to the repository root). A file that does not exist
or has no pins is a build warning, which ``mkdocs build --strict`` turns into an error.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

log = logging.getLogger("mkdocs.hooks.pins")

ROOT = Path(__file__).resolve().parents[2]
MARKER = re.compile(r"^([ \t]*)<!--\s*pins:\s*(\S+)\s*-->[ \t]*$", re.MULTILINE)
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)\s*==\s*([A-Za-z0-9_.+\-]+)")


def read_pins(path: Path) -> list[tuple[str, str]]:
    """``(name, version)`` for every ``name==version`` line of a requirements file, comments skipped."""
    pins = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        match = PIN.match(raw.split("#", 1)[0].strip())
        if match:
            pins.append((match.group(1), match.group(2)))
    return pins


def table(rel_path: str, page: str) -> str:
    path = ROOT / rel_path
    if not path.is_file():
        log.warning("pins hook: %s names %s, which does not exist", page, rel_path)
        return f"*({rel_path} not found)*"
    pins = read_pins(path)
    if not pins:
        log.warning("pins hook: %s has no name==version lines (named in %s)", rel_path, page)
    rows = "\n".join(
        f"| `{name}` | `{version}` |" for name, version in sorted(pins, key=lambda p: p[0].lower())
    )
    return f"{len(pins)} pins in `{rel_path}`:\n\n| package | version |\n| --- | --- |\n{rows}\n"


def _indented(text: str, indent: str) -> str:
    return "\n".join(indent + line if line else line for line in text.splitlines())


def on_page_markdown(markdown, page, config, files):
    """Replace each marker with its table, keeping the marker's indentation (e.g. inside an admonition)."""
    return MARKER.sub(
        lambda m: _indented(table(m.group(2), page.file.src_uri), m.group(1)), markdown
    )
