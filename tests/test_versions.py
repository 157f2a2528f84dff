"""Version table and drift detection read their pins from requirements-colab.txt."""

import pytest

from helpers import versions


def test_pins_cover_the_course_stack():
    pins = versions.read_pins()
    for name in [
        "unsloth",
        "unsloth_zoo",
        "transformers",
        "trl",
        "peft",
        "accelerate",
        "bitsandbytes",
        "datasets",
    ]:
        assert pins.get(name), f"{name} is not pinned in requirements-colab.txt"
    assert pins["transformers"] == "5.17.0" and pins["trl"] == "1.15.0"


def test_table_lists_torch_and_xformers_and_notebook_00_says_what_each_is_for():
    import json

    from helpers.paths import REPO_ROOT

    names = [r.name for r in versions.package_table()]
    assert "torch" in names and "xformers" in names
    cells = json.loads((REPO_ROOT / "notebooks" / "00_environment_check.ipynb").read_text())[
        "cells"
    ]
    prose = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    described = {
        line.split("|")[1].strip()
        for line in prose.splitlines()
        if line.startswith("| ") and line.count("|") == 3
    }
    assert [n for n in names if n not in described] == [], (
        "notebook 00's package table misses these"
    )


def test_drift_names_the_package_and_the_fix(tmp_path, monkeypatch):
    req = tmp_path / "req.txt"
    req.write_text("# pins\ntrl==0.0.1\npeft==0.21.0\n")
    monkeypatch.setattr(
        versions, "installed_version", lambda n: {"trl": "1.15.0", "peft": "0.21.0"}.get(n)
    )
    drifted = versions.drift(req, gpu=False)
    assert [r.name for r in drifted] == ["trl"]
    assert versions.fix_command(drifted) == "pip install --no-deps trl==0.0.1"


def test_gpu_only_packages_are_not_drift_on_cpu(tmp_path, monkeypatch):
    req = tmp_path / "req.txt"
    req.write_text("bitsandbytes==0.50.2\n")
    monkeypatch.setattr(versions, "installed_version", lambda n: None)
    assert versions.drift(req, gpu=False) == []
    assert [r.name for r in versions.drift(req, gpu=True)] == ["bitsandbytes"]


def test_malformed_pin_line_names_file_and_line(tmp_path):
    req = tmp_path / "req.txt"
    req.write_text("trl==1.15.0\ntrl >= 1\n")
    with pytest.raises(ValueError, match=r"req.txt, line 2"):
        versions.read_pins(req)


def test_installed_stack_matches_the_pins():
    drifted = versions.drift(gpu=False)
    assert not drifted, versions.fix_command(drifted)
