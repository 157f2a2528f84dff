"""Stamp the shared cells into every notebook from one template, and build the whole-course notebook.

The notebooks share a few cells: the badges, the setup cell (and its markdown), the parameters cell,
the Google Drive cell and the "adapter from notebook 04" cell. Each lives once, in
``tools/notebook_template/``; a notebook marks where it uses one with a cell tag ``course:NAME``
(``course:NAME-md`` for the markdown before it). The parameters cell holds the lines of
``parameters.py`` that the notebook's metadata ``course.parameters`` names. ``stamp`` rewrites the
tagged cells; ``check`` (run by tests/test_notebooks_format.py) fails when a notebook's copy differs.
``whole`` writes notebooks/whole_course.ipynb: every lesson in one runtime, for Colab's Run all.

Usage:
    python -m tools.notebooks stamp     # after editing tools/notebook_template/
    python -m tools.notebooks check     # what the tests run
    python -m tools.notebooks whole     # regenerate notebooks/whole_course.ipynb (stamp does it too)
"""

from __future__ import annotations

import copy
import json
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
TEMPLATE = Path(__file__).resolve().parent / "notebook_template"
WHOLE = NOTEBOOKS / "whole_course.ipynb"
SHARED = ("badges", "setup", "parameters", "drive", "adapter")
ONCE = {
    "parameters",
    *(f"course:{n}{md}" for n in ("badges", "setup", "parameters", "drive") for md in ("", "-md")),
}
REPO_URL = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]["Repository"]


def lessons() -> list[Path]:
    """The numbered notebooks, in course order (the same glob as tools.run_course and the docs hook)."""
    return sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def template(name: str) -> str:
    """A template file's text without its final newline."""
    return (TEMPLATE / name).read_text().rstrip("\n")


def parameter_lines(names: list[str]) -> str:
    """The lines of the template's parameters cell that assign ``names``, in template order."""
    lines = template("parameters.py").splitlines()
    unknown = set(names) - {line.split(" =")[0] for line in lines}
    if unknown:
        raise ValueError(f"parameters {sorted(unknown)} are not in {TEMPLATE / 'parameters.py'}")
    return "\n".join(line for line in lines if line.split(" =")[0] in names)


def shared_source(tag: str, notebook: dict, name: str) -> str | None:
    """The template text for a cell tagged ``course:...``, or None for other tags."""
    if not tag.startswith("course:"):
        return None
    key = tag.removeprefix("course:")
    if key == "badges":
        return template("badges.md").format(slug=REPO_URL.split("github.com/")[1], notebook=name)
    if key == "parameters":
        return parameter_lines(
            notebook["metadata"].get("course", {}).get("parameters", ["COURSE_MODEL"])
        )
    if key.endswith("-md"):
        return template(key.removesuffix("-md") + ".md")
    if key in SHARED:
        return template(key + ".py")
    raise ValueError(
        f"{name}: unknown shared cell tag {tag!r}; known: {', '.join(SHARED)} (and NAME-md)"
    )


def source_lines(text: str) -> list[str]:
    """A cell's source as nbformat stores it: lines that keep their newline, the last without."""
    lines = text.split("\n")
    return [line + "\n" for line in lines[:-1]] + [lines[-1]]


def stamped(notebook: dict, name: str) -> dict:
    """A copy of ``notebook`` with every tagged cell's source taken from the template."""
    out = copy.deepcopy(notebook)
    for cell in out["cells"]:
        for tag in cell.get("metadata", {}).get("tags", []):
            text = shared_source(tag, out, name)
            if text is not None:
                cell["source"] = source_lines(text)
    return out


def write(path: Path, notebook: dict) -> None:
    """Write a notebook as Jupyter does (one-space indent, trailing newline)."""
    path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")


def whole_course(notebooks: list[tuple[str, dict]]) -> dict:
    """One notebook holding every lesson: the shared cells once, then each lesson's own cells in order."""
    first = notebooks[0][1]
    params = sorted(
        {p for _, nb in notebooks for p in nb["metadata"].get("course", {}).get("parameters", [])},
        key=lambda p: template("parameters.py").index(p + " ="),
    )
    head = [
        _cell(
            "markdown",
            "# The whole course in one runtime\n\n" + template("whole_intro.md"),
            "course:whole-intro",
        ),
        _cell(
            "markdown",
            template("badges.md").format(
                slug=REPO_URL.split("github.com/")[1], notebook=WHOLE.name
            ),
            "course:badges",
        ),
        _cell("markdown", template("setup.md"), "course:setup-md"),
        _cell("code", template("setup.py"), "course:setup"),
        _cell("markdown", template("parameters.md"), "course:parameters-md"),
        _cell("code", parameter_lines(params), "parameters"),
        _cell("markdown", template("drive.md"), "course:drive-md"),
        _cell("code", template("drive.py"), "course:drive"),
    ]
    cells = head
    for _name, nb in notebooks:
        own = [c for c in nb["cells"] if not set(c.get("metadata", {}).get("tags", [])) & ONCE]
        if nb is not first:
            cells.append(
                _cell(
                    "markdown",
                    "Free the previous lesson's model and memory before the next one loads its own.",
                )
            )
            cells.append(_cell("code", template("free_memory.py")))
        for cell in own:
            cell = copy.deepcopy(cell)
            if (
                cell["cell_type"] == "markdown"
            ):  # each lesson becomes a section: its headings go one level down
                cell["source"] = source_lines(
                    "\n".join(
                        "#" + line if line.startswith("#") else line
                        for line in "".join(cell["source"]).split("\n")
                    )
                )
            cells.append(cell)
    for i, cell in enumerate(cells):
        cell["id"] = f"cell-{i:03d}"  # ids must be unique within a notebook
    meta = copy.deepcopy(first["metadata"])
    meta["course"] = {"parameters": params, "generated_from": [name for name, _ in notebooks]}
    return {
        "cells": cells,
        "metadata": meta,
        "nbformat": first["nbformat"],
        "nbformat_minor": first["nbformat_minor"],
    }


def _cell(kind: str, text: str, tag: str | None = None) -> dict:
    cell = {
        "cell_type": kind,
        "id": "",
        "metadata": {"tags": [tag]} if tag else {},
        "source": source_lines(text),
    }
    if kind == "code":
        cell.update(execution_count=None, outputs=[])
    return cell


def expected() -> dict[Path, dict]:
    """Every notebook as the template says it should be, the whole-course one included."""
    stamped_nbs = {p: stamped(json.loads(p.read_text()), p.name) for p in lessons()}
    out = dict(stamped_nbs)
    out[WHOLE] = whole_course([(p.name, nb) for p, nb in stamped_nbs.items()])
    return out


def main(argv: list[str] | None = None) -> int:
    """stamp | check | whole."""
    command = (argv if argv is not None else sys.argv[1:] or ["check"])[0]
    wanted = expected()
    if command == "check":
        stale = [
            p.name for p, nb in wanted.items() if not p.exists() or json.loads(p.read_text()) != nb
        ]
        if stale:
            print(
                f"out of date with tools/notebook_template: {', '.join(stale)}; run: python -m tools.notebooks stamp"
            )
            return 1
        print(f"{len(wanted)} notebooks match the template.")
        return 0
    if command in ("stamp", "whole"):
        for path, nb in wanted.items():
            if command == "stamp" or path == WHOLE:
                write(path, nb)
        print(f"wrote {len(wanted) if command == 'stamp' else 1} notebook(s)")
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
