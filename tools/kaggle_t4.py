"""Run every course notebook under nbval on a Kaggle T4, with the real 8B model, and report the result.

The job builds a Kaggle kernel folder (``kernel-metadata.json`` and one assembled notebook), pushes it
with the official ``kaggle`` client, polls its status with a bounded timeout, downloads what the kernel
wrote to ``/kaggle/working`` (the executed notebooks, nbval's JUnit XML, ``result.json``, the pytest log
and the image's ``pip freeze``), prints a summary and exits non-zero on any failure.

The assembled notebook, on Kaggle: records the GPU and the image, fetches the course at the commit under
test, installs it as the notebooks' setup cell does on Colab and Kaggle (``requirements-colab.txt`` with
``--no-deps``, plus nbval), sets ``COURSE_MAX_STEPS`` to ``--max-steps`` (default 10, a canary's length:
notebooks 04 and 07 read it as their ``MAX_STEPS`` parameter, the catch-up cells' ``helpers.train`` as its
step count; nothing rewrites the course's source), then runs ``python -m pytest --nbval-lax --nbval-current-env notebooks/`` with ``COURSE_MODEL``
unset (``auto``: the 8B model on a GPU). Test failures do not stop the kernel: they are in the report.
A failure before the tests (no GPU, the commit cannot be fetched, an install error) stops it with an
error, and ``result.json`` says at which stage.

Credentials: ``KAGGLE_USERNAME`` and ``KAGGLE_KEY`` (or ``KAGGLE_API_TOKEN``) in the environment, or
``~/.kaggle/kaggle.json``. Their values are never printed nor written anywhere by this script. Without
any, ``run`` stops with an error (exit 2); with ``--skip-without-credentials`` (what the workflow passes)
it prints a skip message and exits 0.

Exit codes: 0 every cell passed; 1 a cell failed; 2 usage or credentials; 3 timed out; 4 the kernel
failed, was cancelled, or left no usable report.

Example:
    python -m tools.kaggle_t4 build --out /tmp/t4-kernel          # look at what would be pushed
    python -m tools.kaggle_t4 run --ref "$(git rev-parse HEAD)"    # a pushed commit; needs credentials
    python -m tools.kaggle_t4 summarize kaggle-t4-output           # re-read a downloaded output folder
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
PLUGIN_FILE = Path(__file__).resolve().parent / "nbval_save.py"

SLUG = "unsloth-course-t4"
MACHINE_SHAPE = "NvidiaTeslaT4"  # the kaggle client's name for Kaggle's "GPU T4 x2" (kaggle 2.2.5 --accelerator help)
DEFAULT_MAX_STEPS = 10
DEFAULT_TIMEOUT_MINUTES = 150
JUNIT_NAME = "nbval-junit.xml"
RESULT_NAME = "result.json"
LOG_NAME = "pytest.log"

EXIT_OK, EXIT_TESTS_FAILED, EXIT_USAGE, EXIT_TIMEOUT, EXIT_KERNEL = 0, 1, 2, 3, 4
SKIP_MESSAGE = (
    "SKIP: no Kaggle credentials (KAGGLE_USERNAME and KAGGLE_KEY are not set), so the notebooks "
    "were not run on a Kaggle T4. Add both as repository secrets to enable this job."
)
NO_CREDENTIALS = (
    "error: no Kaggle credentials. Set KAGGLE_USERNAME and KAGGLE_KEY (an API key from "
    "https://www.kaggle.com/settings, 'Create New Token') in the environment, or save them in "
    "~/.kaggle/kaggle.json; pass --skip-without-credentials to skip instead."
)

# Kaggle's kernel session states (kagglesdk KernelWorkerStatus), lower-cased.
DONE, FAILED_STATES = "complete", {"error", "cancel_acknowledged"}

SAFE_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$")
SAFE_URL = re.compile(r"^https://[A-Za-z0-9.-]+(/[A-Za-z0-9._-]+)+?(\.git)?/?$")
SAFE_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{3,49}$")
SAFE_USER = re.compile(r"^[A-Za-z0-9_-]{1,50}$")


class UsageError(Exception):
    """A problem with the arguments or the credentials (exit 2)."""


class KernelTimeout(Exception):
    """The kernel did not finish within the time limit (exit 3)."""


# --------------------------------------------------------------------------------------------------
# Credentials and the redaction of their values


@dataclass
class Credentials:
    """Where the Kaggle credentials are; ``secrets`` holds values that must never be shown."""

    username: str | None
    source: str
    secrets: tuple[str, ...] = field(default=(), repr=False)


def find_credentials(env: dict | None = None, home: Path | None = None) -> Credentials | None:
    """The Kaggle credentials from the environment or the client's config folder, or None if there are none.

    Empty variables count as unset (GitHub passes an absent secret as an empty string).
    """
    env = os.environ if env is None else env
    user = env.get("KAGGLE_USERNAME", "").strip() or None
    values = tuple(
        v for v in (env.get("KAGGLE_KEY", "").strip(), env.get("KAGGLE_API_TOKEN", "").strip()) if v
    )
    if values:
        return Credentials(user, "environment", values)
    config = Path(env.get("KAGGLE_CONFIG_DIR") or Path(home or Path.home()) / ".kaggle")
    try:
        data = json.loads((config / "kaggle.json").read_text())
    except (OSError, ValueError):
        data = {}
    if isinstance(data, dict) and str(data.get("key") or "").strip():
        return Credentials(
            user or (str(data.get("username") or "").strip() or None),
            str(config / "kaggle.json"),
            (str(data["key"]).strip(),),
        )
    for name in ("access_token", "access_token.txt"):
        try:
            token = (config / name).read_text().strip()
        except OSError:
            continue
        if token:
            return Credentials(user, str(config / name), (token,))
    return None


class Redactor:
    """Replaces every secret value in a text with ****."""

    def __init__(self, secrets: tuple[str, ...] = ()):
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def __call__(self, text: object) -> str:
        text = str(text)
        for secret in self.secrets:
            text = text.replace(secret, "****")
        return text


# --------------------------------------------------------------------------------------------------
# The kernel folder: metadata and the assembled notebook


def build_metadata(kernel_id: str, code_file: str, machine_shape: str = MACHINE_SHAPE) -> dict:
    """kernel-metadata.json for a private GPU notebook with internet, on the latest Kaggle image."""
    user, _, slug = kernel_id.partition("/")
    if not SAFE_USER.match(user) or not SAFE_SLUG.match(slug):
        raise UsageError(
            f"a kernel id is <kaggle user>/<slug of 4-50 lowercase letters, digits, dashes>, not {kernel_id!r}"
        )
    return {
        "id": kernel_id,
        "title": slug,  # the client warns unless the title slugifies to the id's slug
        "code_file": code_file,
        "language": "python",
        "kernel_type": "notebook",
        "is_private": True,
        "enable_gpu": True,
        "enable_tpu": False,
        "enable_internet": True,  # to fetch the course, its pinned packages and the 8B model
        "machine_shape": machine_shape,
        "docker_image_pinning_type": "latest",  # the image a learner gets today
        "dataset_sources": [],
        "competition_sources": [],
        "kernel_sources": [],
        "model_sources": [],
        "keywords": [],
    }


def _code(source: str) -> dict:
    return {
        "cell_type": "code",
        "execution_count": None,
        "metadata": {},
        "outputs": [],
        "source": source.strip() + "\n",
    }


def _markdown(source: str) -> dict:
    return {"cell_type": "markdown", "metadata": {}, "source": source.strip() + "\n"}


def build_notebook(
    repo_url: str, ref: str, max_steps: int, cuda_visible_devices: str = "0"
) -> dict:
    """The notebook the Kaggle kernel runs (nbformat 4), as a dict."""
    if not SAFE_URL.match(repo_url):
        raise UsageError(f"--repo-url must be an https URL of a git repository, not {repo_url!r}")
    if not SAFE_REF.match(ref) or ".." in ref:
        raise UsageError(f"--ref must be a commit SHA or a branch/tag name, not {ref!r}")
    if not 1 <= int(max_steps) <= 10000:
        raise UsageError("--max-steps must be between 1 and 10000")
    if not re.fullmatch(r"[0-9,]*", cuda_visible_devices):
        raise UsageError("--cuda-visible-devices takes GPU numbers such as 0 or 0,1 (empty: all)")
    plugin = PLUGIN_FILE.read_text()
    cells = [
        _markdown(f"""
# unsloth-course: every notebook under nbval on a Kaggle T4

Assembled and pushed by `tools/kaggle_t4.py` (the course repository) for `{ref}`; each run replaces this
notebook, so do not edit it here. It fetches the course, installs it as the notebooks' setup cell does,
shortens training to {int(max_steps)} steps, runs `pytest --nbval-lax --nbval-current-env notebooks/` with the
default model (`auto`: the 8B model on a GPU) and writes the executed notebooks, the JUnit XML, the log
and `result.json` to `/kaggle/working`.
"""),
        _code(f"""
import json, os, shutil, subprocess, sys, time
from pathlib import Path

REPO_URL = {repo_url!r}
REF = {ref!r}
MAX_STEPS = {int(max_steps)!r}
CUDA_VISIBLE_DEVICES = {cuda_visible_devices!r}  # "0": one T4, as on Colab; "": every GPU of the machine
WORKING = Path("/kaggle/working")
CLONE = Path("/tmp/course")
COURSE_OUTPUT = Path("/tmp/course-output")
PLUGINS = Path("/tmp/t4-plugins")
PLUGINS.mkdir(parents=True, exist_ok=True)
result = {{"repo_url": REPO_URL, "ref": REF, "max_steps": MAX_STEPS, "stage": "start",
          "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}}


def record(**fields):
    result.update(fields)
    (WORKING / {RESULT_NAME!r}).write_text(json.dumps(result, indent=2))


def sh(*cmd, **kwargs):
    print("$", " ".join(map(str, cmd)), flush=True)
    return subprocess.run([str(c) for c in cmd], check=True, **kwargs)


def text_of(*cmd):
    try:
        return subprocess.run(list(cmd), capture_output=True, text=True, timeout=120).stdout.strip()
    except Exception as exc:
        return f"unavailable: {{exc}}"


record()
"""),
        _markdown(
            "The machine: GPUs, Python, the Kaggle image's commit and build date, and its packages before the course installs anything."
        ),
        _code("""
record(stage="environment")
try:
    smi = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                         capture_output=True, text=True, timeout=120)
    gpus = [line.strip() for line in smi.stdout.splitlines() if line.strip()] if smi.returncode == 0 else []
except (OSError, subprocess.SubprocessError):
    gpus = []
image = {name: (Path("/etc") / name).read_text().strip() if (Path("/etc") / name).exists() else None
         for name in ("git_commit", "build_date")}
(WORKING / "kaggle-pip-freeze.txt").write_text(text_of(sys.executable, "-m", "pip", "freeze") + "\\n")
record(gpus=gpus, python=sys.version.split()[0], kaggle_image=image,
       kaggle_run_type=os.environ.get("KAGGLE_KERNEL_RUN_TYPE"))
print(json.dumps(result, indent=2))
if not gpus:
    record(error="no NVIDIA GPU in this session (accelerator off, or the weekly GPU quota used up?)")
    raise RuntimeError(result["error"])
"""),
        _markdown(
            "Fetch the course at the commit under test (a shallow fetch of exactly that commit)."
        ),
        _code("""
record(stage="clone")
shutil.rmtree(CLONE, ignore_errors=True)
sh("git", "init", "-q", CLONE)
sh("git", "-C", CLONE, "remote", "add", "origin", REPO_URL)
sh("git", "-C", CLONE, "fetch", "-q", "--depth", "1", "origin", REF)
sh("git", "-C", CLONE, "checkout", "-q", "FETCH_HEAD")
commit = text_of("git", "-C", str(CLONE), "rev-parse", "HEAD")
record(commit=commit)
print("course at", commit)
"""),
        _markdown(
            "Install the course the way its setup cell does on Colab and Kaggle: the pinned `requirements-colab.txt` with `--no-deps` over the image's own torch, plus nbval at the CPU suite's pin."
        ),
        _code("""
record(stage="install")
sh(sys.executable, "-m", "pip", "install", "-q", "--no-deps", "-r", CLONE / "requirements-colab.txt")
pins = (CLONE / "requirements" / "cpu.txt").read_text().splitlines()
nbval = next((line.strip() for line in pins if line.strip().lower().startswith("nbval==")), "nbval")
sh(sys.executable, "-m", "pip", "install", "-q", nbval)
(WORKING / "pip-freeze-after-install.txt").write_text(text_of(sys.executable, "-m", "pip", "freeze") + "\\n")
record(nbval=nbval)
"""),
        _markdown(
            "The pytest plugin that saves the notebooks nbval executed, with their outputs (`tools/nbval_save.py`)."
        ),
        _code("%%writefile /tmp/t4-plugins/nbval_save.py\n" + plugin),
        _markdown(
            "Run every notebook under nbval, as `make test` does on a CPU, with the default model. A failing cell does not stop this kernel: it is in the report."
        ),
        _code(f"""
record(stage="nbval")
# COURSE_MAX_STEPS: the canary trains a few steps, not the course's 60 (notebooks 04 and 07 read it as MAX_STEPS,
# the catch-up cells' helpers.train as its --max-steps); nothing rewrites the course's source
env = dict(os.environ, COURSE_OUTPUT=str(COURSE_OUTPUT), COURSE_MAX_STEPS=str(MAX_STEPS), HF_HUB_OFFLINE="0", TOKENIZERS_PARALLELISM="false",
           PYTHONUNBUFFERED="1", PYTHONPATH=os.pathsep.join(filter(None, [str(PLUGINS), os.environ.get("PYTHONPATH")])))
env.pop("COURSE_MODEL", None)  # auto: the 8B model on a GPU
if CUDA_VISIBLE_DEVICES:
    env["CUDA_VISIBLE_DEVICES"] = CUDA_VISIBLE_DEVICES
cmd = [sys.executable, "-m", "pytest", "--color=no", "-rA", "--durations=0",
       "--nbval-lax", "--nbval-current-env", "notebooks/", "--junitxml", str(WORKING / {JUNIT_NAME!r}),
       "-p", "nbval_save", "--nbval-save-dir", str(WORKING / "executed")]
print("$", " ".join(cmd), flush=True)
start = time.time()
with open(WORKING / {LOG_NAME!r}, "w") as log:
    proc = subprocess.Popen(cmd, cwd=CLONE, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in proc.stdout:
        print(line, end="", flush=True)
        log.write(line)
    code = proc.wait()
for name in ("loss_curve.png", "trainer_state.json"):
    if (COURSE_OUTPUT / name).exists():
        shutil.copy(COURSE_OUTPUT / name, WORKING / name)
record(stage="done", pytest_exit_code=code, nbval_seconds=round(time.time() - start, 1))
print(json.dumps(result, indent=2))
"""),
    ]
    for number, cell in enumerate(cells):
        cell["id"] = f"t4-{number:02d}"
    return {
        "cells": cells,
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
            # What Kaggle writes into the notebooks it exports; the push itself takes kernel-metadata.json.
            "kaggle": {
                "accelerator": "nvidiaTeslaT4",
                "isGpuEnabled": True,
                "isInternetEnabled": True,
                "language": "python",
                "sourceType": "notebook",
            },
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def write_kernel_folder(
    folder: Path,
    kernel_id: str,
    repo_url: str,
    ref: str,
    max_steps: int,
    cuda_visible_devices: str = "0",
    machine_shape: str = MACHINE_SHAPE,
) -> Path:
    """Write kernel-metadata.json and the notebook into ``folder``; returns the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    code_file = kernel_id.split("/", 1)[1] + ".ipynb"
    metadata = build_metadata(kernel_id, code_file, machine_shape)
    notebook = build_notebook(repo_url, ref, max_steps, cuda_visible_devices)
    (folder / "kernel-metadata.json").write_text(json.dumps(metadata, indent=2) + "\n")
    (folder / code_file).write_text(json.dumps(notebook, indent=1) + "\n")
    return folder


# --------------------------------------------------------------------------------------------------
# Results


ESCAPES = re.compile(r"(\x1b|#x1B)\[[0-9;]*m")


@dataclass
class CellResult:
    notebook: str
    cell: str
    outcome: str  # passed, failed, error, skipped
    seconds: float
    message: str = ""


@dataclass
class Report:
    """What nbval's JUnit XML says."""

    tests: int
    failures: int
    errors: int
    skipped: int
    seconds: float
    cells: list[CellResult]

    @property
    def problems(self) -> list[CellResult]:
        return [c for c in self.cells if c.outcome in ("failed", "error")]

    def notebooks(self) -> dict[str, dict]:
        """Per notebook: cells, failed (failures and errors), seconds, in order of appearance."""
        summary: dict[str, dict] = {}
        for c in self.cells:
            entry = summary.setdefault(c.notebook, {"cells": 0, "failed": 0, "seconds": 0.0})
            entry["cells"] += 1
            entry["failed"] += c.outcome in ("failed", "error")
            entry["seconds"] += c.seconds
        return summary


def _last_line(text: str) -> str:
    """The line that names the exception (the last non-empty line of a traceback), cleaned of colour codes."""
    lines = [ESCAPES.sub("", line).strip() for line in (text or "").splitlines()]
    lines = [line for line in lines if line]
    return lines[-1][:300] if lines else ""


def parse_junit(path: Path) -> Report:
    """Read pytest's JUnit XML (nbval items are ``<notebook path>::Cell N``)."""
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    cells: list[CellResult] = []
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    seconds = 0.0
    for suite in suites:
        for key in totals:
            totals[key] += int(suite.get(key, 0) or 0)
        seconds += float(suite.get("time", 0) or 0)
        for case in suite.iter("testcase"):
            outcome, message = "passed", ""
            for tag in ("failure", "error", "skipped"):
                node = case.find(tag)
                if node is not None:
                    outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[tag]
                    message = _last_line(node.text or node.get("message", ""))
                    break
            classname = case.get("classname", "")
            notebook = (
                classname[:-6].replace(".", "/") + ".ipynb"
                if classname.endswith(".ipynb")
                else classname
            )
            cells.append(
                CellResult(
                    notebook,
                    case.get("name", ""),
                    outcome,
                    float(case.get("time", 0) or 0),
                    message,
                )
            )
    return Report(seconds=seconds, cells=cells, **totals)


@dataclass
class Outcome:
    code: int
    lines: list[str]


def judge(status: str | None, out_dir: Path, failure_message: str = "") -> Outcome:
    """Read the downloaded output folder and decide: the exit code and the summary lines."""
    out_dir = Path(out_dir)
    lines: list[str] = []
    result_file = next(iter(sorted(out_dir.rglob(RESULT_NAME))), None) if out_dir.is_dir() else None
    junit_file = next(iter(sorted(out_dir.rglob(JUNIT_NAME))), None) if out_dir.is_dir() else None
    result: dict = {}
    if result_file:
        try:
            result = json.loads(result_file.read_text())
        except ValueError:
            lines.append(f"{result_file.name} is not valid JSON")
    if result:
        lines.append(
            f"course commit: {result.get('commit') or result.get('ref')}  training steps: {result.get('max_steps')}"
        )
        lines.append(
            f"GPU: {', '.join(result.get('gpus') or []) or 'none recorded'}  python: {result.get('python')}  "
            f"Kaggle image: {(result.get('kaggle_image') or {}).get('git_commit')} "
            f"built {(result.get('kaggle_image') or {}).get('build_date')}"
        )
    if status is not None:
        lines.append(
            f"kernel status: {status}" + (f" ({failure_message})" if failure_message else "")
        )
    report = None
    if junit_file:
        try:
            report = parse_junit(junit_file)
        except (ET.ParseError, ValueError) as exc:
            lines.append(f"the nbval report {junit_file.name} could not be read: {exc}")
    if report:
        passed = report.tests - report.failures - report.errors - report.skipped
        lines.append(
            f"nbval: {report.tests} cells, {passed} passed, {report.failures} failed, {report.errors} errors, "
            f"{report.skipped} skipped in {report.seconds:.0f} s"
        )
        for notebook, entry in report.notebooks().items():
            verdict = "passed" if not entry["failed"] else f"FAILED ({entry['failed']} cells)"
            lines.append(
                f"  {notebook}: {verdict}, {entry['cells']} cells, {entry['seconds']:.0f} s"
            )
        for cell in report.problems:
            lines.append(f"  {cell.outcome.upper()} {cell.notebook}::{cell.cell}: {cell.message}")
    if status is not None and status != DONE:
        stage = result.get("stage")
        hint = f"; it stopped in stage '{stage}'" if stage and stage != "done" else ""
        if stage == "clone":
            hint += (
                f" (is {result.get('ref')} pushed to {result.get('repo_url')}, and may this Kaggle account use "
                "the internet in notebooks?)"
            )
        if result.get("error"):
            hint += f": {result['error']}"
        lines.append(f"RESULT: the Kaggle kernel ended with status '{status}'{hint}")
        return Outcome(EXIT_KERNEL, lines)
    if report is None:
        stage = result.get("stage")
        lines.append(
            "RESULT: no nbval report in the kernel's output"
            + (f" (last stage: {stage})" if stage else "")
        )
        return Outcome(EXIT_KERNEL, lines)
    if report.tests == 0:
        lines.append("RESULT: nbval ran no cell")
        return Outcome(EXIT_KERNEL, lines)
    exit_code = result.get("pytest_exit_code")
    if report.failures or report.errors or exit_code not in (0, None):
        lines.append(
            f"RESULT: FAILED ({len(report.problems)} cells failed; pytest exit code {exit_code})"
        )
        return Outcome(EXIT_TESTS_FAILED, lines)
    lines.append(f"RESULT: PASSED, all {report.tests - report.skipped} cells on the Kaggle T4")
    return Outcome(EXIT_OK, lines)


# --------------------------------------------------------------------------------------------------
# Talking to Kaggle


def status_name(status: object) -> str:
    """A kernel status (kagglesdk enum, or a string such as 'complete' or 'KernelWorkerStatus.COMPLETE'), lower-cased."""
    name = getattr(status, "name", None) or str(status)
    return name.rsplit(".", 1)[-1].strip().lower()


def wait_for_kernel(
    api,
    ref: str,
    *,
    timeout_s: float,
    interval_s: float,
    max_interval_s: float,
    factor: float,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    say: Callable[[str], None],
    max_errors: int = 5,
) -> tuple[str, str]:
    """Poll ``api.kernels_status(ref)`` until the kernel finishes; returns (status, failure message).

    Waits ``interval_s`` between polls, growing by ``factor`` up to ``max_interval_s``, and raises
    KernelTimeout once ``timeout_s`` have passed. ``max_errors`` failed polls in a row end the wait.
    """
    start, interval, errors, last = clock(), interval_s, 0, None
    while True:
        try:
            response = api.kernels_status(ref)
            errors = 0
        except Exception as exc:  # a passing network or service error: try again, a few times
            errors += 1
            say(f"status poll failed ({errors}/{max_errors}): {type(exc).__name__}: {exc}")
            if errors >= max_errors:
                raise
            response = None
        if response is not None:
            name = status_name(getattr(response, "status", response))
            if name != last:
                say(f"[{clock() - start:6.0f} s] kernel status: {name}")
                last = name
            if name == DONE or name in FAILED_STATES:
                return name, str(getattr(response, "failure_message", "") or "")
        elapsed = clock() - start
        if elapsed >= timeout_s:
            raise KernelTimeout(
                f"the kernel did not finish within {timeout_s / 60:.0f} minutes (last status: {last})"
            )
        sleep(min(interval, max(timeout_s - elapsed, 0)))
        interval = min(interval * factor, max_interval_s)


def default_api_factory():
    """An authenticated KaggleApi (the official client), imported only when needed."""
    try:
        from kaggle.api.kaggle_api_extended import KaggleApi
    except ImportError as exc:
        raise UsageError(
            "the kaggle client is not installed: pip install -r requirements/kaggle.txt"
        ) from exc
    api = KaggleApi()
    try:
        api.authenticate()
    except SystemExit as exc:  # the client prints its help and calls exit(1) when no method works
        raise UsageError("the Kaggle client could not authenticate with these credentials") from exc
    return api


def repository_url() -> str:
    """The course's repository URL, from pyproject.toml (the one place it lives)."""
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]["Repository"]


def current_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError) as exc:
        raise UsageError("no --ref given and this is not a git checkout") from exc


def write_step_summary(path: str | None, title: str, lines: list[str]) -> None:
    """Append the summary to GitHub's job summary (Markdown) when running in Actions."""
    if not path:
        return
    with open(path, "a", encoding="utf-8") as f:
        f.write(f"### {title}\n\n```\n" + "\n".join(lines) + "\n```\n")


def run(args, *, env, api_factory, clock, sleep, out, err) -> int:
    credentials = find_credentials(env)
    redact = Redactor(credentials.secrets if credentials else ())

    def say(message: str) -> None:
        print(redact(message), file=out, flush=True)

    def fail(message: str) -> None:
        print(redact(message), file=err, flush=True)

    if credentials is None:
        if args.skip_without_credentials:
            say(SKIP_MESSAGE)
            write_step_summary(env.get("GITHUB_STEP_SUMMARY"), "Kaggle T4: skipped", [SKIP_MESSAGE])
            return EXIT_OK
        fail(NO_CREDENTIALS)
        return EXIT_USAGE
    user = (args.kernel_id or "").split("/")[0] or credentials.username
    if not user:
        fail(
            "error: the Kaggle user name is unknown: set KAGGLE_USERNAME (or pass --kernel-id USER/SLUG)"
        )
        return EXIT_USAGE
    kernel_id = args.kernel_id or f"{user}/{args.slug}"
    repo_url = args.repo_url or repository_url()
    ref = args.ref or env.get("GITHUB_SHA") or current_commit()
    say(
        f"Kaggle T4 job: {repo_url} at {ref}, {args.max_steps} training steps, kernel {kernel_id} "
        f"(credentials from {credentials.source}), waiting at most {args.timeout_minutes} min"
    )

    work = Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix="kaggle-t4-"))
    out_dir = Path(args.out)
    try:
        folder = write_kernel_folder(
            work / "kernel",
            kernel_id,
            repo_url,
            ref,
            args.max_steps,
            args.cuda_visible_devices,
            args.machine_shape,
        )
        api = api_factory()
        response = api.kernels_push(str(folder), timeout=str(int(args.timeout_minutes * 60)))
        error = getattr(response, "error", None)
        if error or response is None:
            fail(f"error: Kaggle refused the push: {error or 'no response'}")
            return EXIT_KERNEL
        invalid = [
            f"{name}: {value}"
            for name in (
                "invalid_tags",
                "invalid_dataset_sources",
                "invalid_competition_sources",
                "invalid_kernel_sources",
                "invalid_model_sources",
            )
            if (value := getattr(response, name, None))
        ]
        if invalid:
            say("warning: Kaggle reported " + "; ".join(invalid))
        version = getattr(response, "version_number", None)
        say(
            f"pushed version {version}: {getattr(response, 'url', '') or 'https://www.kaggle.com/code/' + kernel_id}"
        )
        ref_to_poll = f"{kernel_id}/{version}" if version else kernel_id
        try:
            status, message = wait_for_kernel(
                api,
                ref_to_poll,
                timeout_s=args.timeout_minutes * 60,
                interval_s=args.poll_interval,
                max_interval_s=args.max_poll_interval,
                factor=args.poll_factor,
                clock=clock,
                sleep=sleep,
                say=say,
            )
        except KernelTimeout as exc:
            fail(
                f"error: {exc}. The kernel may still be running: https://www.kaggle.com/code/{kernel_id}"
            )
            write_step_summary(env.get("GITHUB_STEP_SUMMARY"), "Kaggle T4: timed out", [str(exc)])
            return EXIT_TIMEOUT
        if out_dir.exists():
            shutil.rmtree(out_dir)
        out_dir.mkdir(parents=True)
        try:
            files, _ = api.kernels_output(ref_to_poll, str(out_dir), force=True, quiet=True)
            say(f"downloaded {len(files)} files into {out_dir}")
        except Exception as exc:
            fail(f"error: could not download the kernel's output: {type(exc).__name__}: {exc}")
        outcome = judge(status, out_dir, message)
    except UsageError as exc:
        fail(f"error: {exc}")
        return EXIT_USAGE
    except Exception as exc:
        fail(f"error: {type(exc).__name__}: {exc}")
        return EXIT_KERNEL
    finally:
        if not args.work_dir:
            shutil.rmtree(work, ignore_errors=True)
    for line in outcome.lines:
        say(line)
    write_step_summary(
        env.get("GITHUB_STEP_SUMMARY"),
        f"Kaggle T4: {kernel_id} at {ref[:12]}",
        [redact(line) for line in outcome.lines],
    )
    return outcome.code


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m tools.kaggle_t4",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="command", required=True)

    def common(q):
        q.add_argument(
            "--repo-url",
            help="the course repository to fetch on Kaggle (default: pyproject's Repository)",
        )
        q.add_argument(
            "--ref",
            help="commit (or branch/tag) to test (default: $GITHUB_SHA, else git rev-parse HEAD)",
        )
        q.add_argument(
            "--max-steps",
            type=int,
            default=DEFAULT_MAX_STEPS,
            help="training steps for the 8B recipe (default: %(default)s)",
        )
        q.add_argument(
            "--cuda-visible-devices",
            default="0",
            help="GPUs the notebooks see (default: 0, one T4 as on Colab; '' for both)",
        )
        q.add_argument(
            "--machine-shape",
            default=MACHINE_SHAPE,
            help="Kaggle accelerator (default: %(default)s, 'GPU T4 x2')",
        )
        q.add_argument("--slug", default=SLUG, help="kernel slug (default: %(default)s)")
        q.add_argument("--kernel-id", help="USER/SLUG (default: $KAGGLE_USERNAME/--slug)")

    q = sub.add_parser("run", help="push, wait, download, summarize (needs Kaggle credentials)")
    common(q)
    q.add_argument(
        "--out",
        default="kaggle-t4-output",
        help="where the kernel's output goes (default: %(default)s)",
    )
    q.add_argument(
        "--work-dir", help="keep the pushed kernel folder here (default: a temporary folder)"
    )
    q.add_argument(
        "--timeout-minutes",
        type=float,
        default=DEFAULT_TIMEOUT_MINUTES,
        help="give up waiting after this long; also the kernel's session limit (default: %(default)s)",
    )
    q.add_argument(
        "--poll-interval",
        type=float,
        default=30.0,
        help="first wait between status polls, s (default: %(default)s)",
    )
    q.add_argument(
        "--max-poll-interval",
        type=float,
        default=300.0,
        help="longest wait between polls, s (default: %(default)s)",
    )
    q.add_argument(
        "--poll-factor",
        type=float,
        default=1.5,
        help="growth of the wait after each poll (default: %(default)s)",
    )
    q.add_argument(
        "--skip-without-credentials",
        action="store_true",
        help="without Kaggle credentials print a skip message and exit 0 (the workflow's mode)",
    )

    q = sub.add_parser(
        "build", help="write the kernel folder only (offline), to read what would be pushed"
    )
    common(q)
    q.add_argument(
        "--out", required=True, help="folder to write kernel-metadata.json and the notebook into"
    )

    q = sub.add_parser("summarize", help="summarize a downloaded output folder")
    q.add_argument("folder")
    return p


def main(
    argv: list[str] | None = None,
    *,
    env: dict | None = None,
    api_factory=None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    out=None,
    err=None,
) -> int:
    env = dict(os.environ) if env is None else env
    out, err = out or sys.stdout, err or sys.stderr
    args = parser().parse_args(argv)
    if args.command == "run":
        if (
            args.timeout_minutes <= 0
            or args.poll_interval <= 0
            or args.max_poll_interval < args.poll_interval
            or args.poll_factor < 1
        ):
            print(
                "error: timeouts and poll intervals must be positive, --max-poll-interval >= --poll-interval, "
                "--poll-factor >= 1",
                file=err,
            )
            return EXIT_USAGE
        return run(
            args,
            env=env,
            api_factory=api_factory or default_api_factory,
            clock=clock,
            sleep=sleep,
            out=out,
            err=err,
        )
    if args.command == "build":
        user = (
            (args.kernel_id or "").split("/")[0] or env.get("KAGGLE_USERNAME") or "your-kaggle-user"
        )
        try:
            folder = write_kernel_folder(
                Path(args.out),
                args.kernel_id or f"{user}/{args.slug}",
                args.repo_url or repository_url(),
                args.ref or current_commit(),
                args.max_steps,
                args.cuda_visible_devices,
                args.machine_shape,
            )
        except UsageError as exc:
            print(f"error: {exc}", file=err)
            return EXIT_USAGE
        print(f"wrote {folder}: " + ", ".join(sorted(p.name for p in folder.iterdir())), file=out)
        return EXIT_OK
    outcome = judge(None, Path(args.folder))
    for line in outcome.lines:
        print(line, file=out)
    return outcome.code


if __name__ == "__main__":
    sys.exit(main())
