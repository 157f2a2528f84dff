"""Run every notebook headless with papermill and write a summary: the course's main job.

Each notebook runs in a fresh kernel, in course order, from the notebooks/ folder, with the
``COURSE_MODEL`` parameter set. Executed notebooks, ``summary.json`` and ``summary.md`` (per
notebook: passed or failed, seconds, final training loss if it trained) go to ``--out``.

Example:
    python -m tools.run_course --out outputs/course --model tiny
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from helpers.paths import REPO_ROOT

NOTEBOOKS = REPO_ROOT / "notebooks"


@dataclass
class NotebookResult:
    """The outcome of one notebook."""

    notebook: str
    passed: bool
    seconds: float
    final_loss: float | None
    error: str | None = None


def final_loss(state_file: Path, since: float) -> float | None:
    """The last logged training loss in a trainer_state.json written after ``since``, else None."""
    if not state_file.exists() or state_file.stat().st_mtime < since:
        return None
    history = json.loads(state_file.read_text()).get("log_history", [])
    losses = [h["loss"] for h in history if "loss" in h]
    return losses[-1] if losses else None


def run_notebook(path: Path, out_dir: Path, model: str, state_file: Path) -> NotebookResult:
    """Execute one notebook with papermill into ``out_dir``; never raises for a failing cell."""
    import papermill as pm

    from tools.docs_notebooks import kernel_config

    start = time.time()
    error = None
    # Only a notebook with a `parameters` cell takes COURSE_MODEL; papermill would warn about the others.
    parameters = {"COURSE_MODEL": model} if "COURSE_MODEL" in pm.inspect_notebook(str(path)) else {}
    try:
        pm.execute_notebook(
            str(path),
            str(out_dir / path.name),
            parameters=parameters,
            cwd=str(path.parent),
            progress_bar=False,
            log_output=False,
            config=kernel_config(),
        )  # CurveZMQ keys, as the docs build: no TCP-without-encryption warning
    except Exception as err:  # papermill wraps a failing cell in PapermillExecutionError
        error = (
            f"{type(err).__name__}: {str(err).strip().splitlines()[-1] if str(err).strip() else ''}"
        )
    seconds = round(time.time() - start, 1)
    return NotebookResult(path.name, error is None, seconds, final_loss(state_file, start), error)


def write_summary(results: list[NotebookResult], out_dir: Path, model: str, total: float) -> None:
    """Write summary.json and a Markdown table summary.md."""
    payload = {
        "model": model,
        "total_seconds": round(total, 1),
        "notebooks": [asdict(r) for r in results],
    }
    (out_dir / "summary.json").write_text(json.dumps(payload, indent=2) + "\n")
    lines = [
        f"# Course run (COURSE_MODEL={model or 'auto'})",
        "",
        "| notebook | result | seconds | final loss |",
        "| --- | --- | ---: | ---: |",
    ]
    for r in results:
        loss = "" if r.final_loss is None else f"{r.final_loss:.4f}"
        lines.append(
            f"| {r.notebook} | {'passed' if r.passed else 'FAILED: ' + (r.error or '')} | {r.seconds} | {loss} |"
        )
    lines += [
        "",
        f"Total: {total:.1f} s, {sum(r.passed for r in results)}/{len(results)} passed",
        "",
    ]
    (out_dir / "summary.md").write_text("\n".join(lines))


def main(out: Path = REPO_ROOT / "outputs" / "course", model: str = "", only: str = "") -> int:
    """Execute the notebooks (all, or those whose name contains ``only``) and summarise them.

    Args:
        out: folder for executed notebooks, summary.json and summary.md.
        model: COURSE_MODEL for every notebook ("" = environment variable, then auto).
        only: run only notebooks whose file name contains this text.
    """
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("COURSE_OUTPUT", str(out / "artifacts"))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    state_file = Path(os.environ["COURSE_OUTPUT"]) / "trainer_state.json"
    notebooks = [p for p in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")) if only in p.name]
    start = time.time()
    results = []
    for nb in notebooks:
        result = run_notebook(nb, out, model, state_file)
        print(
            f"{'passed' if result.passed else 'FAILED'}  {result.seconds:7.1f} s  {nb.name}"
            + (f"  final loss {result.final_loss:.4f}" if result.final_loss is not None else "")
            + (f"\n        {result.error}" if result.error else ""),
            flush=True,
        )
        results.append(result)
    total = time.time() - start
    write_summary(results, out, model, total)
    print(
        f"{sum(r.passed for r in results)}/{len(results)} notebooks passed in {total:.1f} s; summary: {out / 'summary.md'}"
    )
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    import tyro

    raise SystemExit(tyro.cli(main))
