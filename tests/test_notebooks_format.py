"""Notebooks are committed clean and follow the course's Colab conventions."""

import json
import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
REPO_URL = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]["Repository"]


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def test_course_has_the_numbered_lessons():
    numbers = [p.name[:2] for p in NOTEBOOKS]
    assert numbers[:6] == ["00", "01", "02", "03", "04", "05"]
    assert numbers == sorted(set(numbers)), "one notebook per number"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_without_outputs(path):
    for i, cell in enumerate(load(path)["cells"]):
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [], f"{path.name} cell {i} has outputs"
            assert cell.get("execution_count") is None, f"{path.name} cell {i} has an execution count"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_colab_badge_points_at_this_notebook(path):
    first = "".join(load(path)["cells"][0]["source"])
    slug = REPO_URL.split("github.com/")[1]
    assert f"https://colab.research.google.com/github/{slug}/blob/main/notebooks/{path.name}" in first


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_setup_cell_installs_only_on_colab_from_the_one_url(path):
    code = ["".join(c["source"]) for c in load(path)["cells"] if c["cell_type"] == "code"]
    setup = code[0]
    assert f'REPO_URL = "{REPO_URL}"' in setup
    assert 'if "google.colab" in sys.modules:' in setup
    assert "requirements-colab.txt" in setup
    urls = set(re.findall(r"https://github\.com/[\w.-]+/[\w.-]+", "".join(code)))
    assert urls <= {REPO_URL}, f"{path.name} names another repository URL: {urls - {REPO_URL}}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_asks_colab_for_a_t4_gpu(path):
    meta = load(path)["metadata"]
    assert meta["accelerator"] == "GPU"
    assert meta["colab"]["gpuType"] == "T4"
    assert meta["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("path", NOTEBOOKS[1:], ids=lambda p: p.name)
def test_has_a_papermill_parameters_cell(path):
    cells = [c for c in load(path)["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(cells) == 1
    assert "".join(cells[0]["source"]).startswith("COURSE_MODEL = ")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_code_cell_is_explained_by_markdown_before_it(path):
    cells = load(path)["cells"]
    for i, cell in enumerate(cells):
        if cell["cell_type"] == "code":
            assert i > 0 and cells[i - 1]["cell_type"] == "markdown", f"{path.name} cell {i} has no markdown before it"
