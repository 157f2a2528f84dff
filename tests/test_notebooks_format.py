"""Notebooks are committed clean, stamped from one template, and follow the course's Colab conventions."""

import json
import re
import tomllib
from pathlib import Path

import pytest

from tools import notebooks as stamp

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
ALL = NOTEBOOKS + [stamp.WHOLE]
REPO_URL = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]["Repository"]


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def tagged(path: Path, tag: str) -> list[str]:
    return [
        "".join(c["source"])
        for c in load(path)["cells"]
        if tag in c.get("metadata", {}).get("tags", [])
    ]


def test_course_has_the_numbered_lessons():
    numbers = [p.name[:2] for p in NOTEBOOKS]
    assert numbers[:7] == ["00", "01", "02", "03", "04", "05", "06"]
    assert numbers == sorted(set(numbers)), "one notebook per number"


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_committed_without_outputs(path):
    for i, cell in enumerate(load(path)["cells"]):
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [], f"{path.name} cell {i} has outputs"
            assert cell.get("execution_count") is None, (
                f"{path.name} cell {i} has an execution count"
            )


def test_shared_cells_match_the_template():
    """Every notebook's copy of a shared cell, and the whole-course notebook, is what the template makes."""
    expected = stamp.expected()
    stale = [p.name for p, nb in expected.items() if load(p) != nb]
    assert not stale, (
        f"run `python -m tools.notebooks stamp`: {stale} differ from tools/notebook_template"
    )


def test_the_check_notices_a_hand_edited_setup_cell(tmp_path, monkeypatch):
    copy = tmp_path / "notebooks"
    copy.mkdir()
    for p in ALL:
        (copy / p.name).write_text(p.read_text())
    nb = load(copy / NOTEBOOKS[1].name)
    setup = next(c for c in nb["cells"] if "course:setup" in c["metadata"].get("tags", []))
    setup["source"][-1] += "  # edited by hand"
    (copy / NOTEBOOKS[1].name).write_text(json.dumps(nb))
    monkeypatch.setattr(stamp, "NOTEBOOKS", copy)
    monkeypatch.setattr(stamp, "WHOLE", copy / stamp.WHOLE.name)
    assert stamp.main(["check"]) == 1


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_badges_point_at_this_notebook(path):
    (badges,) = tagged(path, "course:badges")
    slug = REPO_URL.split("github.com/")[1]
    assert (
        f"https://colab.research.google.com/github/{slug}/blob/main/notebooks/{path.name}" in badges
    )
    assert (
        f"https://kaggle.com/kernels/welcome?src=https://github.com/{slug}/blob/main/notebooks/{path.name}"
        in badges
    )


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_setup_cell_installs_only_on_colab_or_kaggle_from_the_one_url(path):
    code = ["".join(c["source"]) for c in load(path)["cells"] if c["cell_type"] == "code"]
    setup = code[0]
    assert tagged(path, "course:setup") == [setup], "the setup cell comes first, once"
    assert f'REPO_URL = "{REPO_URL}"' in setup
    assert (
        '"google.colab" in sys.modules' in setup
        and '"KAGGLE_KERNEL_RUN_TYPE" in os.environ' in setup
    )
    assert '"tools", "install.py"' in setup
    urls = set(re.findall(r"https://github\.com/[\w.-]+/[\w.-]+", "".join(code)))
    assert urls <= {REPO_URL}, f"{path.name} names another repository URL: {urls - {REPO_URL}}"


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_asks_colab_for_a_t4_gpu(path):
    meta = load(path)["metadata"]
    assert meta["accelerator"] == "GPU"
    assert meta["colab"]["gpuType"] == "T4"
    assert meta["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("path", NOTEBOOKS[1:] + [stamp.WHOLE], ids=lambda p: p.name)
def test_has_a_papermill_parameters_cell(path):
    (cell,) = tagged(path, "parameters")
    assert cell.startswith("COURSE_MODEL = ")


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_every_code_cell_is_explained_by_markdown_before_it(path):
    cells = load(path)["cells"]
    for i, cell in enumerate(cells):
        if cell["cell_type"] == "code":
            assert i > 0 and cells[i - 1]["cell_type"] == "markdown", (
                f"{path.name} cell {i} has no markdown before it"
            )


def test_whole_course_holds_every_lesson_in_order():
    whole = "".join("".join(c["source"]) for c in load(stamp.WHOLE)["cells"])
    positions = []
    for path in NOTEBOOKS:
        own = [
            c
            for c in load(path)["cells"]
            if c["cell_type"] == "code" and not set(c["metadata"].get("tags", [])) & stamp.ONCE
        ]
        assert own, path.name
        for cell in own:
            assert "".join(cell["source"]) in whole, (
                f"{path.name}: a code cell is missing from {stamp.WHOLE.name}"
            )
        first = next(
            c
            for c in own
            if not any(t.startswith("course:") for t in c["metadata"].get("tags", []))
        )
        positions.append(
            whole.index("".join(first["source"]))
        )  # a lesson's own first cell (shared ones repeat)
    assert positions == sorted(positions), "lessons in course order"
    assert whole.count('REPO_URL = "') == 1, "one setup cell"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_that_use_the_adapter_can_keep_it_on_drive(path):
    code = "".join("".join(c["source"]) for c in load(path)["cells"] if c["cell_type"] == "code")
    if "adapter_dir()" in code or "adapter" in tagged(path, "course:adapter")[0:1]:
        assert tagged(path, "course:drive"), (
            f"{path.name} reads or writes the adapter: it needs the Drive cell"
        )
        assert "USE_DRIVE" in tagged(path, "parameters")[0]


def test_helpers_is_thin_lesson_support():
    """helpers/ holds what the notebooks import or run (``python -m helpers.train``, their catch-up), directly or
    through another helper, and never imports tools/: the CLI and the course's own tooling live there, on top."""
    import ast

    helpers = sorted((ROOT / "helpers").glob("*.py"))
    imported: dict[str, set[str]] = {}
    for path in helpers:
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module)
            elif isinstance(node, ast.Import):
                names.update(a.name for a in node.names)
        assert not [n for n in names if n.split(".")[0] == "tools"], (
            f"{path.name} imports from tools/"
        )
        imported[path.stem] = {n.split(".")[1] for n in names if n.startswith("helpers.")}
    code = "\n".join(
        "".join(c["source"])
        for p in NOTEBOOKS
        for c in json.loads(p.read_text())["cells"]
        if c["cell_type"] == "code"
    )
    reached = set(re.findall(r"from helpers\.(\w+) import", code)) | set(
        re.findall(r'"-m", "helpers\.(\w+)"', code)
    )
    while True:
        more = set().union(*(imported.get(m, set()) for m in reached)) - reached
        if not more:
            break
        reached |= more
    assert sorted(set(imported) - reached - {"__init__"}) == [], (
        "helpers modules no notebook reaches"
    )


def test_no_module_imports_another_modules_private_names():
    """A name that starts with _ belongs to its module: no file of helpers/, tools/, tests/ or scripts/ imports one."""
    import ast

    found = []
    for path in sorted(
        p
        for d in ("helpers", "tools", "tests", "scripts")
        for p in (ROOT / d).rglob("*.py")
        if "fake_colab" not in p.parts
    ):  # a stand-in of google.colab, laid out as the real package
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module != "__future__":
                found += [
                    f"{path.relative_to(ROOT)}:{node.lineno}: {a.name} from {node.module or '.'}"
                    for a in node.names
                    if a.name.startswith("_") and not a.name.startswith("__")
                ]
    assert found == [], f"imports of another module's private names: {found}"


def public_names(path: Path) -> list[str]:
    """The public functions and classes a helpers module defines at its top level."""
    import ast

    return [
        n.name
        for n in ast.parse(path.read_text()).body
        if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and not n.name.startswith("_")
    ]


def test_every_public_name_in_helpers_is_used_by_the_course():
    """Thin means no dead weight: each public function or class of helpers/ is used by a notebook, by helpers/ (its
    own module included) or by tools/, beyond its own definition (tests alone do not count)."""
    users = {
        p: p.read_text()
        for p in [*NOTEBOOKS, *(ROOT / "helpers").glob("*.py"), *(ROOT / "tools").rglob("*.py")]
    }
    unused = []
    for path in sorted((ROOT / "helpers").glob("*.py")):
        for name in public_names(path):
            pattern = re.compile(rf"\b{name}\b")
            if (
                sum(len(pattern.findall(text)) for text in users.values()) < 2
            ):  # the definition, and a use
                unused.append(f"{path.stem}.{name}")
    assert unused == [], f"public names of helpers/ that nothing in the course uses: {unused}"


def test_the_public_names_check_can_fail(tmp_path):
    module = tmp_path / "m.py"
    module.write_text(
        "def used():\n    pass\n\n\ndef _private():\n    pass\n\n\nclass Thing:\n    pass\n"
    )
    assert public_names(module) == ["used", "Thing"]
