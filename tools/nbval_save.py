"""A pytest plugin that saves the notebooks nbval executed, with their outputs, for reading afterwards.

nbval checks each cell but keeps what the cells printed only in memory. With this plugin loaded
(``-p tools.nbval_save --nbval-save-dir DIR``) every notebook nbval ran is written to DIR when the
session ends, each code cell carrying the outputs and execution count of this run (cells that did not
run keep none). The Kaggle T4 job uses it to bring the executed notebooks back; it is self-contained
(only pytest and nbformat) so the job can ship it into the Kaggle kernel as one file.

Example:
    python -m pytest --nbval-lax --nbval-current-env notebooks/ -p tools.nbval_save --nbval-save-dir out/executed
"""

from __future__ import annotations

import os


def pytest_addoption(parser):
    parser.getgroup("nbval").addoption(
        "--nbval-save-dir",
        action="store",
        default=None,
        help="write every notebook nbval ran, with this run's outputs, into this folder",
    )


def pytest_configure(config):
    config._nbval_saved = {}  # notebook path -> the nbformat node nbval executed


def pytest_runtest_makereport(item, call):
    """After a cell ran (passed or failed), copy its outputs into the notebook node nbval read."""
    if call.when != "call" or not hasattr(item, "test_outputs") or not hasattr(item, "cell"):
        return
    notebook = getattr(item.parent, "nb", None)
    if notebook is None:
        return
    item.cell.outputs = list(item.test_outputs or [])
    item.cell.execution_count = item.cell_num + 1  # nbval numbers code cells from 0, in order
    item.config._nbval_saved[str(item.parent.fspath)] = notebook


def pytest_sessionfinish(session):
    out = session.config.getoption("nbval_save_dir", default=None)
    saved = getattr(session.config, "_nbval_saved", {})
    if not out or not saved:
        return
    import nbformat

    os.makedirs(out, exist_ok=True)
    root = (
        os.path.commonpath([os.path.dirname(p) for p in saved])
        if len(saved) > 1
        else os.path.dirname(next(iter(saved)))
    )
    for path, notebook in sorted(saved.items()):
        target = os.path.join(out, os.path.relpath(path, root))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        nbformat.write(notebook, target)
