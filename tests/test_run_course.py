"""The course runner executes notebooks with papermill and writes an honest summary."""

import json

import nbformat
import pytest

from tools import run_course

pytestmark = pytest.mark.slow  # make test-fast leaves these out


def write_nb(path, *sources, parameters=True):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    params = nbformat.v4.new_code_cell('COURSE_MODEL = ""')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params] * parameters + [nbformat.v4.new_code_cell(s) for s in sources]
    nbformat.write(nb, path)


def test_runner_records_pass_fail_seconds_and_loss(tmp_path, monkeypatch):
    nbs = tmp_path / "notebooks"
    nbs.mkdir()
    artifacts = tmp_path / "artifacts"
    monkeypatch.setenv("COURSE_OUTPUT", str(artifacts))
    state = json.dumps({"log_history": [{"loss": 3.0, "step": 1}, {"loss": 0.5, "step": 2}]})
    write_nb(nbs / "00_ok.ipynb", "assert COURSE_MODEL == 'tiny'")
    write_nb(
        nbs / "01_trains.ipynb",
        f"import os, pathlib\np = pathlib.Path(os.environ['COURSE_OUTPUT'])\n"
        f"p.mkdir(parents=True, exist_ok=True)\n(p / 'trainer_state.json').write_text({state!r})",
    )
    write_nb(nbs / "02_fails.ipynb", "raise RuntimeError('boom')")
    write_nb(nbs / "03_no_parameters.ipynb", "print('no model needed')", parameters=False)
    monkeypatch.setattr(run_course, "NOTEBOOKS", nbs)

    status = run_course.main(out=tmp_path / "out", model="tiny")

    assert status == 1
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    rows = {r["notebook"]: r for r in summary["notebooks"]}
    assert rows["00_ok.ipynb"]["passed"] and rows["00_ok.ipynb"]["final_loss"] is None
    assert rows["01_trains.ipynb"]["passed"] and rows["01_trains.ipynb"]["final_loss"] == 0.5
    assert not rows["02_fails.ipynb"]["passed"] and "boom" in rows["02_fails.ipynb"]["error"]
    assert all(r["seconds"] > 0 for r in rows.values())
    assert (tmp_path / "out" / "01_trains.ipynb").exists()
    assert "FAILED" in (tmp_path / "out" / "summary.md").read_text()
    assert rows["03_no_parameters.ipynb"]["passed"]
    injected = [
        c
        for c in nbformat.read(tmp_path / "out" / "03_no_parameters.ipynb", as_version=4).cells
        if "injected-parameters" in c.metadata.get("tags", [])
    ]
    assert not injected, "a notebook without a parameters cell must not get COURSE_MODEL injected"
