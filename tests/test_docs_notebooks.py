"""The site's executed notebooks: real outputs, no known noise, and a failing notebook stops the build.

Notebook 00 is executed here the way ``make docs`` executes every notebook (tools.docs_notebooks); its
outputs and its kernel's log must hold none of the noise in ``NOISE``. When ``build/site-notebooks/`` holds
copies from ``make docs``, each one is checked as well.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from tools import docs_notebooks as docs

pytestmark = pytest.mark.slow  # make test-fast leaves these out

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
BUILT = sorted((ROOT / "build" / "site-notebooks" / "notebooks").glob("[0-9][0-9]_*.ipynb"))

# One line of each kind of noise, as it was seen in an executed notebook or a kernel's log.
SEEN = [
    "/x/site-packages/tqdm/auto.py:21: TqdmWarning: IProgress not found. Please update jupyter and ipywidgets.",
    "/x/torch/utils/_pytree.py:185: FutureWarning: torch.utils._pytree._register_pytree_node is deprecated.",
    "[IPKernelApp] WARNING | Kernel is running over TCP without encryption. All communication (including code",
    "0.00s - Debugger warning: It seems that frozen modules are being used, which may",
    "0.00s - to python to disable frozen modules.",
    "0.00s - Note: Debugging will proceed. Set PYDEVD_DISABLE_FILE_VALIDATION=1 to disable this validation.",
    "[IPKernelApp] ERROR | KeyboardInterrupt caught in kernel.",
    "Loading weights: 100%|██████████| 38/38 [00:00<00:00, 3876.44it/s]",
    "Map: 100%|██████████| 1200/1200 [00:00<00:00, 9000.00 examples/s]",
]
# Lines a notebook prints on purpose, that look a little like noise.
CONTENT = [
    "Unsloth (CPU): bitsandbytes 4-bit does not work on this CPU, loading 16-bit weights instead.",
    "trainable 147,968 of 979,584 = 15.105 %",
    "examples 1200  min 58  median 67.0  mean 69.6  p95 89  max 92",
    "Llama-3-8B: 14.96 GiB in 16-bit, 5.31 GiB loaded in 4-bit: 2.82x smaller (4.127 bits per quantised weight)",
    "| 00_environment_check.ipynb | passed | 7.1 |",
]


def notebook_with(*lines: str, name: str = "stderr") -> dict:
    cell = nbformat.v4.new_code_cell("pass")
    cell.outputs = [nbformat.v4.new_output("stream", name=name, text=line + "\n") for line in lines]
    return nbformat.v4.new_notebook(cells=[cell])


@pytest.mark.parametrize("line", SEEN)
def test_noise_check_catches_each_kind_of_noise(line):
    assert docs.noise(notebook_with(line)) == [f"cell 0: {line}"]
    assert docs.noise(notebook_with("before", line, name="stdout"))
    assert docs.noise_in_text(f"ok\n{line}\n") == [line]


def test_noise_check_leaves_the_lessons_own_output_alone():
    assert docs.noise(notebook_with(*CONTENT, name="stdout")) == []
    assert docs.noise_in_text("\n".join(CONTENT)) == []


def test_noise_check_reads_plain_text_displays_and_tracebacks():
    nb = notebook_with()
    nb.cells[0].outputs = [nbformat.v4.new_output("display_data", data={"text/plain": SEEN[0]})]
    assert docs.noise(nb)


@pytest.fixture(scope="module")
def notebook_00(tmp_path_factory):
    """Notebook 00 executed as `make docs` executes it, with the kernel's log."""
    out = tmp_path_factory.mktemp("site-notebooks")
    (out / "logs").mkdir()
    source = NOTEBOOKS[0]
    result = docs.run_one(
        source, out, docs.kernel_environment(out / "artifacts", "tiny"), timeout=600
    )
    copy = out / ("notebooks" if result.passed else "failed") / source.name
    return (
        result,
        json.loads(copy.read_text()),
        (out / "logs" / f"{source.stem}.kernel.log").read_text(),
    )


def test_notebook_00_executes_with_outputs(notebook_00):
    result, executed, _ = notebook_00
    assert result.passed, result.error
    assert sum(len(c.get("outputs", [])) for c in executed["cells"]) >= 3
    assert executed["metadata"]["course_docs"]["source_sha256"] == docs.digest(NOTEBOOKS[0])


def test_notebook_00_outputs_carry_no_noise(notebook_00):
    _, executed, _ = notebook_00
    assert docs.noise(executed) == []
    stderr = [
        docs.output_text(o)
        for c in executed["cells"]
        for o in c.get("outputs", [])
        if o.get("name") == "stderr"
    ]
    assert stderr == [], f"notebook 00 wrote to stderr: {stderr}"


def test_notebook_00_kernel_log_carries_no_noise(notebook_00):
    _, _, log = notebook_00
    assert docs.noise_in_text(log) == [], log


@pytest.mark.parametrize("copy", BUILT, ids=lambda p: p.name)
def test_built_copy_is_clean(copy):
    executed = json.loads(copy.read_text())
    if executed["metadata"]["course_docs"]["source_sha256"] != docs.digest(
        ROOT / "notebooks" / copy.name
    ):
        pytest.skip(
            f"{copy} is stale (its notebook changed since); the site refuses it until make docs reruns it"
        )
    assert docs.errors(executed) == []
    assert docs.noise(executed) == []


def write(path: Path, *sources: str) -> None:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, path)


def test_a_failing_or_noisy_notebook_gets_no_copy_and_fails_the_run(tmp_path, monkeypatch):
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    write(
        notebooks / "00_ok.ipynb",
        "import os\nprint(os.environ['COURSE_MODEL'], os.environ['HF_HUB_DISABLE_PROGRESS_BARS'])",
    )
    write(
        notebooks / "01_fails.ipynb",
        "print('before')",
        "raise RuntimeError('boom')",
        "print('never')",
    )
    write(notebooks / "02_noisy.ipynb", f"import sys\nprint({SEEN[0]!r}, file=sys.stderr)")
    monkeypatch.setattr(docs, "NOTEBOOKS", notebooks)
    out = tmp_path / "out"

    assert docs.main(out=out, model="tiny", timeout=120) == 1

    summary = {
        r["notebook"]: r for r in json.loads((out / "summary.json").read_text())["notebooks"]
    }
    assert summary["00_ok.ipynb"]["passed"]
    assert json.loads((out / "notebooks" / "00_ok.ipynb").read_text())["cells"][0]["outputs"][0][
        "text"
    ] in ("tiny 1\n", ["tiny 1\n"])
    assert "boom" in summary["01_fails.ipynb"]["error"]
    assert "noise" in summary["02_noisy.ipynb"]["error"]
    for name in ("01_fails.ipynb", "02_noisy.ipynb"):
        assert not (out / "notebooks" / name).exists(), (
            f"{name} failed but has a copy the site would render"
        )
        assert (out / "failed" / name).exists()
    assert docs.errors(json.loads((out / "failed" / "01_fails.ipynb").read_text()))


def test_a_full_run_starts_from_an_empty_folder(tmp_path, monkeypatch):
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    write(notebooks / "00_ok.ipynb", "print(1)")
    monkeypatch.setattr(docs, "NOTEBOOKS", notebooks)
    out = tmp_path / "out"
    (out / "artifacts" / "checkpoints").mkdir(parents=True)
    (out / "notebooks").mkdir()
    (out / "notebooks" / "99_gone.ipynb").write_text("{}")

    assert docs.main(out=out, model="tiny", timeout=120) == 0
    assert (
        not (out / "notebooks" / "99_gone.ipynb").exists()
        and not (out / "artifacts" / "checkpoints").exists()
    )


def test_outputs_show_paths_relative_to_the_course_and_home(tmp_path):
    root, home = Path("/home/someone/src/course"), Path("/home/someone")
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("print(output_dir())")
    cell.outputs = [
        nbformat.v4.new_output("stream", name="stdout", text=f"Outputs go to {root}/outputs\n"),
        nbformat.v4.new_output(
            "execute_result", data={"text/plain": f"'{home}/.cache/unsloth-course/smollm2'"}
        ),
    ]
    nb.cells = [cell]
    docs.relative_paths(nb, root, home)
    assert nb.cells[0].outputs[0]["text"] == "Outputs go to outputs\n"
    assert nb.cells[0].outputs[1]["data"]["text/plain"] == "'~/.cache/unsloth-course/smollm2'"
    assert nb.cells[0].source == "print(output_dir())"  # the code is the lesson's: left alone
