"""The Kaggle T4 job (tools/kaggle_t4.py), offline: the Kaggle client is a fake at its API boundary.

What the real service does cannot be checked here; what the job builds, sends, waits for and reads can:
the kernel metadata, the assembled notebook (and, on this CPU, a run of its own cells against a local
stand-in of the course), the reading of results, the timeout, the behaviour without credentials, and
that a credential's value never reaches the output or a file.
"""

from __future__ import annotations

import importlib.metadata
import io
import json
import re
import shutil
import subprocess
import sys
import types
from enum import Enum
from pathlib import Path

import nbformat
import pytest

from tools import kaggle_t4 as t4

pytestmark = pytest.mark.slow  # make test-fast leaves these out

ROOT = Path(__file__).resolve().parent.parent
SECRET = "kgl" + "Q7xZ2pL9" * 4  # a stand-in API key: it must appear nowhere but in the environment
SHA = "0123456789abcdef0123456789abcdef01234567"


# --------------------------------------------------------------------------------------------------
# Fakes: the client's API boundary, a clock


class KernelWorkerStatus(Enum):  # the names kagglesdk uses (kagglesdk.kernels.types.kernels_enums)
    QUEUED = 0
    RUNNING = 1
    COMPLETE = 2
    ERROR = 3
    CANCEL_REQUESTED = 4
    CANCEL_ACKNOWLEDGED = 5
    NEW_SCRIPT = 6


class FakeClock:
    def __init__(self):
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds


class FakeKaggleApi:
    """Records what the job sends; answers with scripted statuses and output files."""

    def __init__(
        self,
        statuses,
        outputs: dict[str, str] | None = None,
        push_error=None,
        version=7,
        status_errors=(),
    ):
        self.statuses = list(statuses)
        self.outputs = outputs or {}
        self.push_error = push_error
        self.version = version
        self.status_errors = list(status_errors)
        self.pushed: dict[str, str] = {}
        self.push_timeout = None
        self.status_refs: list[str] = []
        self.output_refs: list[str] = []

    def kernels_push(self, folder, timeout=None, acc=None, no_run=False):
        self.pushed = {p.name: p.read_text() for p in Path(folder).iterdir()}
        self.push_timeout = timeout
        meta = json.loads(self.pushed["kernel-metadata.json"])
        return types.SimpleNamespace(
            error=self.push_error,
            ref=f"/code/{meta['id']}",
            version_number=self.version,
            url=f"https://www.kaggle.com/code/{meta['id']}",
            invalid_tags=[],
        )

    def kernels_status(self, kernel):
        self.status_refs.append(kernel)
        if self.status_errors:
            error = self.status_errors.pop(0)
            if error:
                raise error
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        message = "cell raised" if status is KernelWorkerStatus.ERROR else ""
        return types.SimpleNamespace(status=status, failure_message=message)

    def kernels_output(self, kernel, path, file_pattern=None, force=False, quiet=True):
        self.output_refs.append(kernel)
        files = []
        for name, text in self.outputs.items():
            target = Path(path) / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
            files.append(str(target))
        return files, None


def junit(cases: list[tuple[str, str, str]], seconds: float = 12.5) -> str:
    """pytest-style JUnit XML; each case is (notebook path, cell name, outcome)."""
    counts = {"failed": 0, "error": 0, "skipped": 0}
    body = []
    for notebook, cell, outcome in cases:
        classname = notebook[: -len(".ipynb")].replace("/", ".") + ".ipynb"
        inner = {
            "passed": "",
            "failed": '<failure message="Notebook cell execution failed">#x1B[94mCell 3: Cell execution caused an exception'
            "\n\nAssertionError: the loss should fall well below its start\n</failure>",
            "error": '<error message="error">RuntimeError: Kernel died\n</error>',
            "skipped": '<skipped message="skip" />',
        }[outcome]
        counts[outcome] = counts.get(outcome, 0) + 1
        body.append(
            f'<testcase classname="{classname}" name="{cell}" time="1.5">{inner}</testcase>'
        )
    return (
        f'<?xml version="1.0" encoding="utf-8"?><testsuites name="pytest tests"><testsuite name="pytest" '
        f'errors="{counts["error"]}" failures="{counts["failed"]}" skipped="{counts["skipped"]}" tests="{len(cases)}" '
        f'time="{seconds}">' + "".join(body) + "</testsuite></testsuites>"
    )


PASSING = junit(
    [
        ("notebooks/00_environment_check.ipynb", "Cell 0", "passed"),
        ("notebooks/00_environment_check.ipynb", "Cell 1", "passed"),
        ("notebooks/04_sft_training.ipynb", "Cell 0", "passed"),
    ]
)
FAILING = junit(
    [
        ("notebooks/00_environment_check.ipynb", "Cell 0", "passed"),
        ("notebooks/04_sft_training.ipynb", "Cell 3", "failed"),
    ]
)


def result_json(**fields) -> str:
    base = {
        "repo_url": "https://github.com/unsloth-course/unsloth-course",
        "ref": SHA,
        "commit": SHA,
        "max_steps": 10,
        "stage": "done",
        "pytest_exit_code": 0,
        "gpus": ["Tesla T4, 15360 MiB, 550.90.07"] * 2,
        "python": "3.12.11",
        "kaggle_image": {"git_commit": "78aaa43", "build_date": "20260812-000000"},
    }
    base.update(fields)
    return json.dumps(base)


@pytest.fixture
def env(tmp_path):
    """An environment with credentials, and a Kaggle config folder that holds nothing."""
    (tmp_path / "kaggle-config").mkdir()
    return {
        "KAGGLE_USERNAME": "course-bot",
        "KAGGLE_KEY": SECRET,
        "KAGGLE_CONFIG_DIR": str(tmp_path / "kaggle-config"),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
    }


def run_job(env, api, tmp_path, *extra, clock=None):
    clock = clock or FakeClock()
    out, err = io.StringIO(), io.StringIO()
    code = t4.main(
        [
            "run",
            "--ref",
            SHA,
            "--out",
            str(tmp_path / "out"),
            "--work-dir",
            str(tmp_path / "work"),
            "--timeout-minutes",
            "60",
            "--poll-interval",
            "30",
            "--max-poll-interval",
            "300",
            *extra,
        ],
        env=env,
        api_factory=lambda: api,
        clock=clock,
        sleep=clock.sleep,
        out=out,
        err=err,
    )
    return code, out.getvalue(), err.getvalue(), clock


@pytest.fixture(autouse=True)
def no_real_sleep(monkeypatch):
    def refuse(seconds):
        raise AssertionError("the job slept for real")

    monkeypatch.setattr(t4.time, "sleep", refuse)


# --------------------------------------------------------------------------------------------------
# The kernel folder


def test_metadata_asks_for_a_private_t4_notebook_with_internet():
    meta = t4.build_metadata("course-bot/unsloth-course-t4", "unsloth-course-t4.ipynb")
    assert meta["id"] == "course-bot/unsloth-course-t4"
    assert (meta["kernel_type"], meta["language"], meta["code_file"]) == (
        "notebook",
        "python",
        "unsloth-course-t4.ipynb",
    )
    assert meta["is_private"] is True and meta["enable_gpu"] is True and meta["enable_tpu"] is False
    assert meta["enable_internet"] is True
    assert meta["machine_shape"] == "NvidiaTeslaT4"
    assert meta["docker_image_pinning_type"] in ("original", "latest")
    # The client warns when the title does not slugify to the id's slug: lower-case, runs of other characters -> '-'.
    assert re.sub(r"[^a-z0-9]+", "-", meta["title"].lower()).strip("-") == "unsloth-course-t4"
    assert len(meta["title"]) >= 5  # the client refuses shorter titles


@pytest.mark.parametrize(
    "kernel_id", ["no-slash", "user/Upper-Case", "user/a b", "us er/unsloth-course-t4", "user/abc"]
)
def test_metadata_refuses_a_malformed_kernel_id(kernel_id):
    with pytest.raises(t4.UsageError):
        t4.build_metadata(kernel_id, "x.ipynb")


def test_kernel_folder_holds_metadata_and_a_valid_notebook(tmp_path):
    folder = t4.write_kernel_folder(
        tmp_path / "k",
        "course-bot/unsloth-course-t4",
        "https://github.com/unsloth-course/unsloth-course",
        SHA,
        10,
    )
    assert sorted(p.name for p in folder.iterdir()) == [
        "kernel-metadata.json",
        "unsloth-course-t4.ipynb",
    ]
    meta = json.loads((folder / "kernel-metadata.json").read_text())
    notebook = nbformat.read(folder / meta["code_file"], as_version=4)
    nbformat.validate(notebook)
    assert [c.cell_type for c in notebook.cells][0] == "markdown"
    assert (
        notebook.metadata.kaggle.accelerator == "nvidiaTeslaT4"
        and notebook.metadata.kaggle.isInternetEnabled
    )
    assert all(not c.get("outputs") for c in notebook.cells if c.cell_type == "code")


def notebook_code(**kwargs) -> str:
    args = {
        "repo_url": "https://github.com/unsloth-course/unsloth-course",
        "ref": SHA,
        "max_steps": 10,
        **kwargs,
    }
    notebook = t4.build_notebook(**args)
    return "\n".join(c["source"] for c in notebook["cells"] if c["cell_type"] == "code")


def test_notebook_fetches_the_commit_installs_like_the_setup_cell_and_runs_nbval():
    code = notebook_code()
    assert (
        f"REF = {SHA!r}" in code
        and "REPO_URL = 'https://github.com/unsloth-course/unsloth-course'" in code
    )
    assert (
        '"fetch", "-q", "--depth", "1", "origin", REF' in code
        and '"checkout", "-q", "FETCH_HEAD"' in code
    )
    assert '"install", "-q", "--no-deps", "-r", CLONE / "requirements-colab.txt"' in code
    assert '"--nbval-lax", "--nbval-current-env", "notebooks/"' in code
    assert "\"--junitxml\", str(WORKING / 'nbval-junit.xml')" in code
    assert (
        'WORKING = Path("/kaggle/working")' in code
        and '"--nbval-save-dir", str(WORKING / "executed")' in code
    )
    assert 'env.pop("COURSE_MODEL", None)' in code and 'HF_HUB_OFFLINE="0"' in code
    assert "kaggle-pip-freeze.txt" in code  # the image's own package list comes back with every run


def test_notebook_shortens_training_through_the_environment_not_the_source():
    code = notebook_code(max_steps=12)
    assert "MAX_STEPS = 12" in code and "COURSE_MAX_STEPS=str(MAX_STEPS)" in code
    assert "recipe.py" not in code and "re.subn" not in code  # the source stays as committed


def test_notebook_ships_the_nbval_save_plugin_verbatim():
    notebook = t4.build_notebook("https://github.com/unsloth-course/unsloth-course", SHA, 10)
    plugin_cells = [c["source"] for c in notebook["cells"] if c["source"].startswith("%%writefile")]
    assert len(plugin_cells) == 1
    assert (
        plugin_cells[0].split("\n", 1)[1].strip()
        == (ROOT / "tools" / "nbval_save.py").read_text().strip()
    )


def test_notebook_uses_one_gpu_by_default_and_both_on_request():
    assert "CUDA_VISIBLE_DEVICES = '0'" in notebook_code()
    assert "CUDA_VISIBLE_DEVICES = ''" in notebook_code(cuda_visible_devices="")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"ref": "main; rm -rf /"},
        {"ref": "a/../b"},
        {"ref": "$(id)"},
        {"repo_url": "http://github.com/x/y"},
        {"repo_url": "https://github.com/x/y\nimport os"},
        {"max_steps": 0},
        {"cuda_visible_devices": "0; echo"},
    ],
)
def test_notebook_refuses_unsafe_values(kwargs):
    with pytest.raises(t4.UsageError):
        notebook_code(**kwargs)


def test_no_credential_value_in_the_pushed_files(env, tmp_path):
    api = FakeKaggleApi(
        [KernelWorkerStatus.COMPLETE], {"nbval-junit.xml": PASSING, "result.json": result_json()}
    )
    run_job(env, api, tmp_path)
    assert api.pushed and all(SECRET not in text for text in api.pushed.values())


# --------------------------------------------------------------------------------------------------
# Reading results


def write_outputs(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return folder


def test_parse_junit_counts_and_groups_cells_by_notebook(tmp_path):
    path = write_outputs(tmp_path, {"nbval-junit.xml": FAILING}) / "nbval-junit.xml"
    report = t4.parse_junit(path)
    assert (report.tests, report.failures, report.errors, report.skipped) == (2, 1, 0, 0)
    assert list(report.notebooks()) == [
        "notebooks/00_environment_check.ipynb",
        "notebooks/04_sft_training.ipynb",
    ]
    [problem] = report.problems
    assert (
        problem.cell == "Cell 3"
        and problem.message == "AssertionError: the loss should fall well below its start"
    )


def test_judge_pass(tmp_path):
    outcome = t4.judge(
        "complete",
        write_outputs(tmp_path, {"nbval-junit.xml": PASSING, "result.json": result_json()}),
    )
    assert outcome.code == t4.EXIT_OK
    assert outcome.lines[-1] == "RESULT: PASSED, all 3 cells on the Kaggle T4"
    assert any("Tesla T4" in line for line in outcome.lines)


def test_judge_fail_names_the_cell_and_the_assertion(tmp_path):
    outcome = t4.judge(
        "complete",
        write_outputs(
            tmp_path, {"nbval-junit.xml": FAILING, "result.json": result_json(pytest_exit_code=1)}
        ),
    )
    assert outcome.code == t4.EXIT_TESTS_FAILED
    text = "\n".join(outcome.lines)
    assert (
        "FAILED notebooks/04_sft_training.ipynb::Cell 3: AssertionError: the loss should fall"
        in text
    )
    assert "notebooks/04_sft_training.ipynb: FAILED (1 cells)" in text


def test_judge_error_cell_is_a_failure(tmp_path):
    report = junit([("notebooks/05_fast_inference.ipynb", "Cell 1", "error")])
    outcome = t4.judge(
        "complete",
        write_outputs(tmp_path, {"nbval-junit.xml": report, "result.json": result_json()}),
    )
    assert (
        outcome.code == t4.EXIT_TESTS_FAILED
        and "ERROR notebooks/05_fast_inference.ipynb::Cell 1" in "\n".join(outcome.lines)
    )


def test_judge_nonzero_pytest_exit_without_failed_cells_is_a_failure(tmp_path):
    outcome = t4.judge(
        "complete",
        write_outputs(
            tmp_path, {"nbval-junit.xml": PASSING, "result.json": result_json(pytest_exit_code=3)}
        ),
    )
    assert outcome.code == t4.EXIT_TESTS_FAILED


def test_judge_missing_report(tmp_path):
    outcome = t4.judge(
        "complete", write_outputs(tmp_path, {"result.json": result_json(stage="nbval")})
    )
    assert outcome.code == t4.EXIT_KERNEL
    assert outcome.lines[-1] == "RESULT: no nbval report in the kernel's output (last stage: nbval)"


def test_judge_empty_report_is_not_a_pass(tmp_path):
    outcome = t4.judge(
        "complete",
        write_outputs(tmp_path, {"nbval-junit.xml": junit([]), "result.json": result_json()}),
    )
    assert outcome.code == t4.EXIT_KERNEL and outcome.lines[-1] == "RESULT: nbval ran no cell"


def test_judge_unreadable_report(tmp_path):
    outcome = t4.judge(
        "complete",
        write_outputs(
            tmp_path, {"nbval-junit.xml": "<testsuites><oops", "result.json": result_json()}
        ),
    )
    assert outcome.code == t4.EXIT_KERNEL


def test_judge_kernel_error_says_where_it_stopped(tmp_path):
    outcome = t4.judge(
        "error", write_outputs(tmp_path, {"result.json": result_json(stage="clone")}), "cell raised"
    )
    assert outcome.code == t4.EXIT_KERNEL
    assert "ended with status 'error'; it stopped in stage 'clone'" in outcome.lines[-1]
    assert (
        f"is {SHA} pushed to https://github.com/unsloth-course/unsloth-course, and may this Kaggle account use "
        "the internet in notebooks?" in outcome.lines[-1]
    )


def test_judge_kernel_error_wins_over_a_passing_report(tmp_path):
    outcome = t4.judge(
        "cancel_acknowledged",
        write_outputs(tmp_path, {"nbval-junit.xml": PASSING, "result.json": result_json()}),
    )
    assert outcome.code == t4.EXIT_KERNEL


def test_summarize_command_reads_a_downloaded_folder(tmp_path):
    write_outputs(
        tmp_path, {"nbval-junit.xml": FAILING, "result.json": result_json(pytest_exit_code=1)}
    )
    out = io.StringIO()
    assert t4.main(["summarize", str(tmp_path)], env={}, out=out) == t4.EXIT_TESTS_FAILED
    assert "RESULT: FAILED" in out.getvalue()


@pytest.mark.parametrize(
    "status,name",
    [
        (KernelWorkerStatus.COMPLETE, "complete"),
        ("complete", "complete"),
        ("KernelWorkerStatus.CANCEL_ACKNOWLEDGED", "cancel_acknowledged"),
        (KernelWorkerStatus.RUNNING, "running"),
    ],
)
def test_status_names(status, name):
    assert t4.status_name(status) == name


# --------------------------------------------------------------------------------------------------
# The whole job against the fake client


def test_run_pushes_polls_the_pushed_version_downloads_and_passes(env, tmp_path):
    api = FakeKaggleApi(
        [
            KernelWorkerStatus.QUEUED,
            KernelWorkerStatus.RUNNING,
            KernelWorkerStatus.RUNNING,
            KernelWorkerStatus.COMPLETE,
        ],
        {
            "nbval-junit.xml": PASSING,
            "result.json": result_json(),
            "executed/00_environment_check.ipynb": "{}",
        },
    )
    code, out, err, clock = run_job(env, api, tmp_path)
    assert code == t4.EXIT_OK, out + err
    assert api.push_timeout == "3600"  # the kernel's session limit is the wait limit
    assert set(api.status_refs) == {"course-bot/unsloth-course-t4/7"} and api.output_refs == [
        "course-bot/unsloth-course-t4/7"
    ]
    assert clock.sleeps == [30, 45, 67.5]  # grows by 1.5 per poll
    assert (
        "RESULT: PASSED" in out
        and (tmp_path / "out" / "executed" / "00_environment_check.ipynb").exists()
    )
    assert "RESULT: PASSED" in (tmp_path / "summary.md").read_text()


def test_run_reports_failed_cells_with_exit_1(env, tmp_path):
    api = FakeKaggleApi(
        [KernelWorkerStatus.COMPLETE],
        {"nbval-junit.xml": FAILING, "result.json": result_json(pytest_exit_code=1)},
    )
    code, out, _, _ = run_job(env, api, tmp_path)
    assert code == t4.EXIT_TESTS_FAILED and "AssertionError: the loss should fall" in out


def test_run_kernel_error_exits_4(env, tmp_path):
    api = FakeKaggleApi(
        [KernelWorkerStatus.RUNNING, KernelWorkerStatus.ERROR],
        {"result.json": result_json(stage="install")},
    )
    code, out, _, _ = run_job(env, api, tmp_path)
    assert code == t4.EXIT_KERNEL and "stopped in stage 'install'" in out


def test_run_push_refused_exits_4(env, tmp_path):
    api = FakeKaggleApi([KernelWorkerStatus.COMPLETE], push_error="Notebook not found")
    code, _, err, _ = run_job(env, api, tmp_path)
    assert code == t4.EXIT_KERNEL and "Kaggle refused the push: Notebook not found" in err
    assert api.status_refs == []


def test_run_times_out_with_a_fake_clock(env, tmp_path):
    api = FakeKaggleApi([KernelWorkerStatus.RUNNING])
    code, out, err, clock = run_job(env, api, tmp_path)
    assert code == t4.EXIT_TIMEOUT
    assert "did not finish within 60 minutes (last status: running)" in err
    assert sum(clock.sleeps) == pytest.approx(3600)  # never waits past the limit
    assert max(clock.sleeps) <= 300 and clock.sleeps[:3] == [30, 45, 67.5]
    assert api.output_refs == []


def test_run_survives_a_few_failed_polls_but_not_many(env, tmp_path):
    flaky = FakeKaggleApi(
        [KernelWorkerStatus.COMPLETE],
        {"nbval-junit.xml": PASSING, "result.json": result_json()},
        status_errors=[ConnectionError("reset"), ConnectionError("reset"), None],
    )
    assert run_job(env, flaky, tmp_path)[0] == t4.EXIT_OK
    broken = FakeKaggleApi(
        [KernelWorkerStatus.COMPLETE], status_errors=[ConnectionError("down")] * 5
    )
    code, _, err, _ = run_job(env, broken, tmp_path)
    assert code == t4.EXIT_KERNEL and "ConnectionError: down" in err


@pytest.mark.parametrize(
    "extra", [["--timeout-minutes", "0"], ["--poll-interval", "0"], ["--poll-factor", "0.5"]]
)
def test_run_refuses_nonsense_limits(env, tmp_path, extra):
    assert run_job(env, FakeKaggleApi(["complete"]), tmp_path, *extra)[0] == t4.EXIT_USAGE


# --------------------------------------------------------------------------------------------------
# Credentials


def no_credentials(tmp_path) -> dict:
    (tmp_path / "empty-config").mkdir(exist_ok=True)
    # What GitHub passes when the repository has no such secrets: empty strings.
    return {
        "KAGGLE_USERNAME": "",
        "KAGGLE_KEY": "",
        "KAGGLE_CONFIG_DIR": str(tmp_path / "empty-config"),
    }


def unreachable():
    raise AssertionError("the Kaggle client must not be created without credentials")


def test_without_credentials_the_workflow_mode_skips_with_exit_0(tmp_path):
    out, err = io.StringIO(), io.StringIO()
    code = t4.main(
        ["run", "--ref", SHA, "--skip-without-credentials"],
        env=no_credentials(tmp_path),
        api_factory=unreachable,
        out=out,
        err=err,
    )
    assert code == 0
    assert out.getvalue().startswith(
        "SKIP: no Kaggle credentials (KAGGLE_USERNAME and KAGGLE_KEY are not set)"
    )
    assert err.getvalue() == ""


def test_without_credentials_by_hand_is_a_clear_error(tmp_path):
    out, err = io.StringIO(), io.StringIO()
    code = t4.main(
        ["run", "--ref", SHA],
        env=no_credentials(tmp_path),
        api_factory=unreachable,
        out=out,
        err=err,
    )
    assert code == t4.EXIT_USAGE and out.getvalue() == ""
    message = err.getvalue()
    assert (
        message.startswith("error: no Kaggle credentials.")
        and "KAGGLE_USERNAME and KAGGLE_KEY" in message
    )
    assert "--skip-without-credentials" in message


def test_a_key_without_a_user_name_is_an_error_not_a_skip(tmp_path):
    env = {**no_credentials(tmp_path), "KAGGLE_KEY": SECRET}
    err = io.StringIO()
    code = t4.main(
        ["run", "--ref", SHA, "--skip-without-credentials"],
        env=env,
        api_factory=unreachable,
        out=io.StringIO(),
        err=err,
    )
    assert (
        code == t4.EXIT_USAGE
        and "set KAGGLE_USERNAME" in err.getvalue()
        and SECRET not in err.getvalue()
    )


def test_credentials_from_the_clients_config_file(tmp_path):
    config = tmp_path / "cfg"
    config.mkdir()
    (config / "kaggle.json").write_text(json.dumps({"username": "someone", "key": SECRET}))
    found = t4.find_credentials({"KAGGLE_CONFIG_DIR": str(config)})
    assert (
        found.username == "someone"
        and found.secrets == (SECRET,)
        and found.source.endswith("kaggle.json")
    )
    assert SECRET not in repr(found)
    assert t4.find_credentials({"KAGGLE_CONFIG_DIR": str(tmp_path / "nothing-here")}) is None


def test_credentials_from_a_new_style_api_token():
    found = t4.find_credentials(
        {
            "KAGGLE_API_TOKEN": SECRET,
            "KAGGLE_USERNAME": "someone",
            "KAGGLE_CONFIG_DIR": "/nonexistent",
        }
    )
    assert found.secrets == (SECRET,) and found.username == "someone"


class LeakyApi(FakeKaggleApi):
    """A client whose errors and logs echo the key, as a careless library might."""

    def kernels_status(self, kernel):
        if len(self.status_refs) == 0:
            self.status_refs.append(kernel)
            raise RuntimeError(f"401 for https://www.kaggle.com/api?key={SECRET}")
        return super().kernels_status(kernel)


def test_a_secret_never_reaches_the_output_or_a_file(env, tmp_path):
    api = LeakyApi(
        [KernelWorkerStatus.ERROR],
        {
            "result.json": result_json(stage="nbval", error=f"boom {SECRET}"),
            "unsloth-course-t4.log": f"log {SECRET}\n",
        },
    )
    code, out, err, _ = run_job(env, api, tmp_path)
    assert code == t4.EXIT_KERNEL
    assert "****" in out + err  # the echoed key was masked, not dropped silently
    assert SECRET not in out and SECRET not in err
    assert SECRET not in (tmp_path / "summary.md").read_text()
    written = [p for p in (tmp_path / "work").rglob("*") if p.is_file()]
    assert written and all(SECRET not in p.read_text() for p in written)


def test_importing_the_module_does_not_import_the_kaggle_client():
    # `import kaggle` authenticates at import time and prints help when it cannot: only `run` may import it.
    code = "import sys; import tools.kaggle_t4; print('kaggle' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


# --------------------------------------------------------------------------------------------------
# The assembled notebook's own cells, run on this CPU against a local stand-in of the course


def make_fake_course(root: Path) -> str:
    """A tiny git repository shaped like the course: a recipe, pins, two notebooks (one fails). Returns its commit."""
    (root / "helpers").mkdir(parents=True)
    (root / "helpers" / "recipe.py").write_text("class Recipe:\n    max_steps: int = 60\n")
    (root / "requirements").mkdir()
    nbval = importlib.metadata.version(
        "nbval"
    )  # what is installed here, so pip has nothing to fetch
    (root / "requirements" / "cpu.txt").write_text(
        f"nbformat=={nbformat.__version__}\nnbval=={nbval}\n"
    )
    (root / "requirements-colab.txt").write_text(
        f"nbformat=={nbformat.__version__}\n"
    )  # installed already: no download
    (root / "notebooks").mkdir()
    good = nbformat.v4.new_notebook()
    good.cells = [
        nbformat.v4.new_code_cell(
            "import os\nprint('model:', os.environ.get('COURSE_MODEL', 'auto'))"
        ),
        nbformat.v4.new_code_cell(  # what notebooks 04 and 07 read as MAX_STEPS
            "assert os.environ['COURSE_MAX_STEPS'] == '3', os.environ.get('COURSE_MAX_STEPS')"
        ),
    ]
    bad = nbformat.v4.new_notebook()
    bad.cells = [nbformat.v4.new_code_cell("assert 1 + 1 == 3, 'arithmetic is broken'")]
    nbformat.write(good, root / "notebooks" / "00_good.ipynb")
    nbformat.write(bad, root / "notebooks" / "01_bad.ipynb")
    git = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "fake course"], check=True)
    return subprocess.run(
        [*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()


def localize(source: str, replacements: dict[str, str]) -> str:
    for old, new in replacements.items():
        assert source.count(old) >= 1, f"the notebook no longer contains {old!r}: update this test"
        source = source.replace(old, new)
    return source


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_the_assembled_notebook_runs_end_to_end_on_a_local_course(tmp_path, monkeypatch):
    nbclient = pytest.importorskip("nbclient")
    course, working = tmp_path / "upstream", tmp_path / "working"
    working.mkdir()
    commit = make_fake_course(course)
    notebook = t4.build_notebook("https://github.com/unsloth-course/unsloth-course", commit, 3)
    # Point the Kaggle paths at tmp_path, the repository at the local one, and let a machine without a GPU pass.
    replacements = {
        "'https://github.com/unsloth-course/unsloth-course'": repr(str(course)),
        '"/kaggle/working"': repr(str(working)),
        '"/tmp/course-output"': repr(str(tmp_path / "course-output")),
        '"/tmp/course"': repr(str(tmp_path / "clone")),
        '"/tmp/t4-plugins"': repr(str(tmp_path / "plugins")),
        "/tmp/t4-plugins/nbval_save.py": str(tmp_path / "plugins" / "nbval_save.py"),
        "if not gpus:": "if False:",
    }
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            cell["source"] = localize(
                cell["source"], {k: v for k, v in replacements.items() if k in cell["source"]}
            )
    joined = "\n".join(c["source"] for c in notebook["cells"] if c["cell_type"] == "code")
    assert "/kaggle/" not in joined and "/tmp/course" not in joined and "github.com" not in joined
    monkeypatch.setenv("COURSE_MODEL", "tiny")  # the kernel must drop it
    nb = nbformat.from_dict(notebook)
    nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()

    result = json.loads((working / "result.json").read_text())
    assert (
        result["stage"] == "done" and result["commit"] == commit and result["pytest_exit_code"] == 1
    )
    assert (working / "kaggle-pip-freeze.txt").read_text().strip()
    executed = nbformat.read(working / "executed" / "00_good.ipynb", as_version=4)
    assert "model: auto" in executed.cells[0].outputs[0]["text"]  # COURSE_MODEL unset: auto
    failed = nbformat.read(working / "executed" / "01_bad.ipynb", as_version=4)
    assert failed.cells[0].outputs[-1]["ename"] == "AssertionError"

    outcome = t4.judge("complete", working)
    assert outcome.code == t4.EXIT_TESTS_FAILED
    text = "\n".join(outcome.lines)
    assert "nbval: 3 cells, 2 passed, 1 failed" in text
    assert "FAILED notebooks/01_bad.ipynb::Cell 0: AssertionError: arithmetic is broken" in text


# --------------------------------------------------------------------------------------------------
# The real client, where it is installed (requirements/kaggle.txt): what it would send for our folder


def test_the_real_client_accepts_the_folder_and_sends_a_t4_request(tmp_path, monkeypatch):
    extended = pytest.importorskip(
        "kaggle.api.kaggle_api_extended", reason="the kaggle client is not installed here"
    )
    sent = {}

    class FakeKernelsClient:
        def save_kernel(self, request):
            sent["request"] = request
            return types.SimpleNamespace(error=None, version_number=1, url="u", ref="r")

        def get_kernel_session_status(self, request):
            sent["status"] = request
            return types.SimpleNamespace(status="complete", failure_message="")

    class FakeClient:
        kernels = types.SimpleNamespace(kernels_api_client=FakeKernelsClient())

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    api = extended.KaggleApi()
    monkeypatch.setattr(api, "build_kaggle_client", lambda: FakeClient())
    folder = t4.write_kernel_folder(
        tmp_path / "k",
        "course-bot/unsloth-course-t4",
        "https://github.com/unsloth-course/unsloth-course",
        SHA,
        10,
    )
    api.kernels_push(str(folder), timeout="3600")
    request = sent["request"]
    assert request.slug == "course-bot/unsloth-course-t4" and request.kernel_type == "notebook"
    assert request.language == "python" and request.machine_shape == "NvidiaTeslaT4"
    assert (
        request.enable_gpu
        and request.enable_internet
        and request.is_private
        and not request.enable_tpu
    )
    assert request.session_timeout_seconds == 3600 and request.docker_image_pinning_type == "latest"
    assert json.loads(request.text)["cells"][0]["cell_type"] == "markdown"
    api.kernels_status("course-bot/unsloth-course-t4/7")
    assert (sent["status"].user_name, sent["status"].kernel_slug, sent["status"].version_label) == (
        "course-bot",
        "unsloth-course-t4",
        "v7",
    )
