"""Execute every numbered notebook for the tutorial site, so each page shows the outputs of this code.

``make docs`` runs this before ``mkdocs build --strict``. Each ``notebooks/NN_*.ipynb`` runs in course
order, in a fresh kernel, from the notebooks/ folder, on the course's default model (``COURSE_MODEL=auto``:
SmolLM2-135M-Instruct on a CPU, so a reader sees a real model's answers before and after fine-tuning) and on
the CPU unless the machine has a GPU. The executed copies go to ``--out``/notebooks/ (``--out`` is
``build/site-notebooks``, outside git; the repository keeps its notebooks stripped), and
docs/hooks/notebooks.py renders those copies instead of the stripped ones. Each copy records the SHA-256 of the notebook it was executed from, so the hook
refuses a copy whose notebook has changed since: a page never shows stale outputs.

A notebook that fails (a cell raises, the kernel dies, a cell runs past ``--timeout``) or whose outputs carry
a line of known noise (``NOISE`` below) gets no copy: the run goes on with the next notebook, writes the
failed copy to ``--out/failed/`` for reading, and exits 1, so ``make docs`` stops before mkdocs, and mkdocs
itself would refuse to build without the copy. ``summary.json`` records each notebook's seconds and result.

The kernel is the one the notebooks name (``python3``, this Python). How it is started removes noise at its
source rather than filtering the outputs: CurveZMQ keys for the kernel's sockets (otherwise ipykernel logs
that it runs over TCP without encryption), and no progress bars (``PROGRESS_BARS_OFF``: on a static page a
bar is frozen where it was last drawn, and drawing it at all needs a widget script from a CDN).

Example:
    python -m tools.docs_notebooks --out build/site-notebooks
    python -m tools.docs_notebooks --out build/site-notebooks --only 00_   # one notebook, keeps the others
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from tools.notebooks import NOTEBOOKS, ROOT

OUT = ROOT / "build" / "site-notebooks"
META = "course_docs"  # the executed copy's notebook metadata key: source digest, model, seconds

# Environment for the kernel that silences progress bars at their source: the Hub's, transformers' (its
# "Loading weights" bar follows the Hub's setting) and datasets' (map, filter; TRL's dataset preparation).
# The trainer's own progress (an HTML table of the loss at each step) is content and stays.
PROGRESS_BARS_OFF = {
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
    "TQDM_DISABLE": "1",
}  # tqdm reads TQDM_* as defaults: helpers.scoring's "generating" bar

# Lines that must never reach a page: each was seen in an executed notebook or a kernel's log, and each is
# removed where it starts (see docs/notebooks/index.md, "What the outputs leave out"). A match fails the run.
NOISE = {
    r"IProgress not found": "tqdm without ipywidgets: requirements/cpu.txt pins ipywidgets",
    r"torch\.utils\._pytree\._register_pytree_node is deprecated|_pytree.*is deprecated": "torchao imported under torch 2.13: torchao is left out of requirements/cpu.txt",
    r"running over TCP without encryption": "ipykernel without CurveZMQ keys: this tool provisions them",
    r"frozen modules|PYDEVD_DISABLE_FILE_VALIDATION|Debugger warning": "debugpy on Python 3.11+ with frozen modules",
    r"KeyboardInterrupt caught in kernel": "ipykernel interrupted while it shuts down",
    r"Parent appears to have exited": "a kernel left running after its notebook: nbclient shuts each one down",
    r"\d+%\|[^|\n]*\|\s*\d+/\d+": "a text progress bar (tqdm writing to stderr)",
}
NOISE_RE = re.compile("|".join(f"(?:{p})" for p in NOISE))


@dataclass
class Result:
    """The outcome of one notebook."""

    notebook: str
    passed: bool
    seconds: float
    error: str | None = None


def digest(path: Path) -> str:
    """The SHA-256 of a file's bytes: what an executed copy records of the notebook it came from."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def output_text(output: dict) -> str:
    """The text of one output as a reader would see it: a stream, an error, or a display's plain text."""
    if output.get("output_type") == "stream":
        return "".join(output.get("text", ""))
    if output.get("output_type") == "error":
        return "\n".join(
            [f"{output.get('ename')}: {output.get('evalue')}", *output.get("traceback", [])]
        )
    plain = output.get("data", {}).get("text/plain", "")
    return "".join(plain) if isinstance(plain, list) else str(plain)


def noise(notebook: dict) -> list[str]:
    """``"cell N: line"`` for every output line of ``notebook`` that matches a known noise pattern."""
    found = []
    for i, cell in enumerate(notebook.get("cells", [])):
        for output in cell.get("outputs", []) if cell.get("cell_type") == "code" else []:
            found += [
                f"cell {i}: {line.strip()}"
                for line in re.split(r"[\r\n]+", output_text(output))
                if NOISE_RE.search(line)
            ]
    return found


def noise_in_text(text: str) -> list[str]:
    """The lines of a log (a kernel's stderr) that match a known noise pattern."""
    return [line.strip() for line in text.splitlines() if NOISE_RE.search(line)]


def relative_paths(notebook: dict, root: Path, home: Path) -> dict:
    """Rewrite the build machine's folders in ``notebook``'s text outputs: the course's own folder becomes a
    path relative to the course, the home folder ``~``. A reader sees ``outputs/...`` and
    ``~/.cache/unsloth-course/...``, not where the site happened to be built."""

    def rewrite(text: str) -> str:
        return text.replace(f"{root}/", "").replace(str(root), ".").replace(str(home), "~")

    for cell in notebook.get("cells", []):
        for output in cell.get("outputs", []) if cell.get("cell_type") == "code" else []:
            if "text" in output:
                text = output["text"]
                output["text"] = rewrite(text if isinstance(text, str) else "".join(text))
            for mime, value in output.get("data", {}).items():
                if mime.startswith("text/"):
                    text = value if isinstance(value, str) else "".join(value)
                    output["data"][mime] = rewrite(text)
    return notebook


def errors(notebook: dict) -> list[str]:
    """``"cell N: Ename: value"`` for every error output: a page must never show one."""
    return [
        f"cell {i}: {o.get('ename')}: {o.get('evalue')}"
        for i, cell in enumerate(notebook.get("cells", []))
        for o in cell.get("outputs", [])
        if o.get("output_type") == "error"
    ]


def kernel_environment(artifacts: Path, model: str) -> dict[str, str]:
    """The kernel's environment: this one, the model, where outputs go, offline Hub, no progress bars."""
    env = {
        **os.environ,
        "COURSE_MODEL": model,
        "COURSE_OUTPUT": str(artifacts),
        **PROGRESS_BARS_OFF,
    }
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    return env


def kernel_config():
    """Configuration for nbclient's kernel manager: CurveZMQ keys for the kernel's sockets where pyzmq has them."""
    import zmq
    from traitlets.config import Config

    return Config(
        {"KernelManager": {"transport_encryption": "auto" if zmq.has("curve") else "disabled"}}
    )


def execute(source: Path, env: dict[str, str], log: Path, timeout: int) -> tuple[dict, str | None]:
    """Run ``source`` top to bottom in a fresh kernel; the executed notebook and the error (None if it passed).

    The kernel's own stderr (its logging, not the cells' output) goes to ``log``.
    """
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(source, as_version=4)
    client = NotebookClient(
        notebook,
        config=kernel_config(),
        timeout=timeout,
        allow_errors=False,
        record_timing=False,
        resources={"metadata": {"path": str(source.parent)}},
    )
    error = None
    with log.open("w") as stderr:
        try:
            client.execute(env=env, stderr=stderr)
        except Exception as err:  # CellExecutionError, CellTimeoutError, DeadKernelError
            text = re.sub(r"\x1b\[[0-9;]*m", "", str(err))  # the traceback's colours
            lines = [line for line in text.strip().splitlines() if line.strip()]
            error = f"{type(err).__name__}: {lines[-1] if lines else ''}"
    return notebook, error


def run_one(source: Path, out: Path, env: dict[str, str], timeout: int) -> Result:
    """Execute one notebook; write its copy to ``out`` if it passed cleanly, else to ``out/failed``."""
    import nbformat

    target, failed = out / "notebooks" / source.name, out / "failed" / source.name
    for stale in (target, failed):
        stale.unlink(missing_ok=True)
    log = out / "logs" / f"{source.stem}.kernel.log"
    start = time.time()
    notebook, error = execute(source, env, log, timeout)
    notebook = relative_paths(notebook, ROOT, Path.home())
    seconds = round(time.time() - start, 1)
    if error is None and errors(notebook):
        error = "error output: " + errors(notebook)[0]
    if error is None and noise(notebook):
        error = "noise in the outputs (tools/docs_notebooks.py NOISE): " + "; ".join(
            noise(notebook)[:3]
        )
    notebook.metadata[META] = {
        "source_sha256": digest(source),
        "model": env["COURSE_MODEL"],
        "seconds": seconds,
    }
    path = failed if error is not None else target
    path.parent.mkdir(exist_ok=True)
    nbformat.write(notebook, path)
    return Result(source.name, error is None, seconds, error)


def main(out: Path = OUT, model: str = "auto", only: str = "", timeout: int = 3600) -> int:
    """Execute the numbered notebooks into ``out`` for the site; 1 if any failed.

    Args:
        out: folder for notebooks/ (the executed copies), failed/, logs/, artifacts/ and summary.json.
        model: COURSE_MODEL for every notebook: auto (the default) is SmolLM2-135M-Instruct on a CPU.
        only: run only the notebooks whose file name contains this text, keeping the other copies; without
            it the folder is emptied first, so nothing from an earlier run (a checkpoint, a copy) is reused.
        timeout: seconds one cell may run before the notebook counts as failed.
    """
    out = out.resolve()
    if not only and out.exists():
        shutil.rmtree(out)
    (out / "logs").mkdir(parents=True, exist_ok=True)
    env = kernel_environment(out / "artifacts", model)
    notebooks = [p for p in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")) if only in p.name]
    start = time.time()
    results = []
    for source in notebooks:
        result = run_one(source, out, env, timeout)
        results.append(result)
        print(
            f"{'passed' if result.passed else 'FAILED'}  {result.seconds:7.1f} s  {source.name}"
            + (
                f"\n        {result.error}\n        executed copy: {out / 'failed' / source.name}"
                if result.error
                else ""
            ),
            flush=True,
        )
        kernel_noise = noise_in_text((out / "logs" / f"{source.stem}.kernel.log").read_text())
        for line in kernel_noise:
            print(f"        kernel log: {line}", flush=True)
    total = round(time.time() - start, 1)
    summary = {"model": model, "total_seconds": total, "notebooks": [asdict(r) for r in results]}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    passed = sum(r.passed for r in results)
    print(
        f"{passed}/{len(results)} notebooks executed for the site in {total:.1f} s into {out}",
        flush=True,
    )
    if passed < len(results):
        print(
            "the site is not built: a page must not show a traceback or miss its outputs",
            flush=True,
        )
    return 0 if results and passed == len(results) else 1


if __name__ == "__main__":
    import tyro

    raise SystemExit(tyro.cli(main))
