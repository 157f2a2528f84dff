"""The Colab simulation's logic (tools/colab_sim/colab_sim.py) and tools/install.py, offline: no venv is built."""

import importlib.util
import json
import re
from pathlib import Path

import pytest

from tools import install

ROOT = Path(__file__).resolve().parent.parent
SIM_DIR = ROOT / "tools" / "colab_sim"
_spec = importlib.util.spec_from_file_location("colab_sim", SIM_DIR / "colab_sim.py")
sim = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sim)


# ---------------------------------------------------------------- the committed snapshot


def test_gpu_snapshot_parses_with_colabs_torch_and_the_versions_the_pins_were_fixed_for():
    freeze = sim.parse_freeze((SIM_DIR / "pip-freeze.gpu.txt").read_text())
    assert len(freeze) > 600
    assert freeze["torch"][1] == "2.11.0+cu128" and freeze["triton"][1] == "3.6.0"
    assert freeze["pyarrow"][1] == "18.1.0" and freeze["protobuf"][1] == "5.29.6"
    assert freeze["sentencepiece"][1] == "0.2.2"
    assert "trl" not in freeze and "bitsandbytes" not in freeze and "xformers" not in freeze
    assert freeze["google-colab"] == ("google-colab", "1.0.0")  # a 'name @ file:///...tar.gz' line


def test_cpu_snapshot_reads_the_version_from_a_wheel_url():
    freeze = sim.parse_freeze((SIM_DIR / "pip-freeze.cpu.txt").read_text())
    assert freeze["torch"][1] == "2.11.0+cpu"
    assert "triton" not in freeze


def test_os_info_gives_the_python_minor_the_sim_builds_with():
    assert (
        sim.os_info_python((SIM_DIR / "os-info-gpu.txt").read_text()) == sim.PYTHON_MINOR == "3.13"
    )


def test_snapshot_md_names_the_commit_and_date():
    text = (SIM_DIR / "SNAPSHOT.md").read_text()
    assert "a72407924822ea377410b69f0a290150bcb5c9c2" in text and "2026-08-19" in text


def test_a_line_that_is_not_pip_freeze_is_an_error():
    with pytest.raises(ValueError, match="not a pip freeze line"):
        sim.parse_freeze("numpy>=1\n")


# ---------------------------------------------------------------- markers and the closure


@pytest.mark.parametrize(
    "marker,expected",
    [
        ('python_version >= "3.9"', True),
        (
            'python_version < "3.10"',
            False,
        ),  # compared as versions: as strings "3.13" < "3.10" would hold
        (
            '"linux" in sys_platform and (platform_machine == "AMD64" or platform_machine == "x86_64")',
            True,
        ),
        ('sys_platform == "darwin" and platform_machine == "arm64"', False),
        ('sys_platform != "darwin" or platform_machine != "arm64"', True),
        ('extra == "Http"', True),  # extra names are normalized
        ('extra == "test"', False),
    ],
)
def test_markers_evaluate_in_colabs_environment(marker, expected):
    assert sim.evaluate_marker(marker, {**sim.MARKER_ENV, "extra": "http"}) is expected


def test_parse_requirement():
    assert sim.parse_requirement('fsspec[http]<=2026.2.0,>=2023.1.0; python_version >= "3.9"') == (
        "fsspec",
        {"http"},
        "<=2026.2.0,>=2023.1.0",
        'python_version >= "3.9"',
    )
    assert sim.parse_requirement("Jinja2") == ("jinja2", set(), "", "")


FAKE_REQUIRES = {
    ("pkg-a", "1.0"): [
        "lib-b>=1",
        "lib-x; extra == 'docs'",
        "lib-c; python_version < '3.10'",
        "lib-z",
        "setuptools<82",
    ],
    ("pkg-a", "0.5"): ["lib-old"],  # Colab's version of the pin: must not be followed
    ("lib-b", "2.0"): ["lib-d[fast]>=1"],
    ("lib-d", "4.0"): ["lib-e; extra == 'fast'", "lib-f; extra == 'slow'"],
    ("lib-e", "5.0"): [],
    ("nb-need", "3.0"): ["lib-b"],
}


def _requires(name, version):
    return FAKE_REQUIRES[(sim.normalize(name), version)]


def test_touched_follows_requires_dist_through_the_pins_and_colabs_versions():
    pins = {"pkg-a": ("pkg_a", "1.0")}
    colab = {
        n: (n, v)
        for n, v in [
            ("pkg-a", "0.5"),
            ("lib-b", "2.0"),
            ("lib-c", "3.0"),
            ("lib-d", "4.0"),
            ("lib-e", "5.0"),
            ("lib-f", "6.0"),
            ("lib-old", "7.0"),
            ("nb-need", "3.0"),
        ]
    }
    reached, absent, hidden = sim.touched(pins, ["nb-need"], colab, _requires)
    assert reached == {
        "pkg-a": "1.0",
        "lib-b": "2.0",
        "lib-d": "4.0",
        "lib-e": "5.0",
        "nb-need": "3.0",
    }
    assert absent == {"lib-z": ["pkg_a 1.0"]}  # neither pinned nor on Colab: pip check will name it
    assert hidden == {"setuptools": ["setuptools<82"]}  # pip freeze never lists it


def test_left_out_matches_cuda_libraries_and_torchvision_only():
    assert sim.LEFT_OUT.match("nvidia-cudnn-cu12") and sim.LEFT_OUT.match("torchvision")
    assert sim.LEFT_OUT.match("cuda-toolkit")
    assert (
        not sim.LEFT_OUT.match("torch")
        and not sim.LEFT_OUT.match("triton")
        and not sim.LEFT_OUT.match("torchao")
    )


# ---------------------------------------------------------------- pip check


def test_a_new_pip_check_line_fails_and_is_named():
    accepted = sim.read_accepted("# why\nipython 7.34.0 requires jedi, which is not installed.\n")
    printed = [
        "ipython 7.34.0 requires jedi, which is not installed.",
        "datasets 4.8.5 has requirement pyarrow>=21.0.0, but you have pyarrow 18.1.0.",
    ]
    new, gone = sim.compare_pip_check(printed, accepted)
    ok, report = sim.pip_check_report(new, gone)
    assert not ok
    assert "datasets 4.8.5 has requirement pyarrow>=21.0.0, but you have pyarrow 18.1.0." in report
    assert "jedi" not in report


def test_an_accepted_line_that_is_gone_is_reported_but_passes():
    new, gone = sim.compare_pip_check(
        ["No broken requirements found."], ["a 1 requires b, which is not installed."]
    )
    ok, report = sim.pip_check_report(new, gone)
    assert ok and new == []
    assert "no longer printed" in report and "a 1 requires b" in report


def test_every_accepted_pip_check_line_is_explained_in_the_stack_page():
    stack = (ROOT / "docs" / "stack.md").read_text()
    accepted = sim.read_accepted((SIM_DIR / "pip-check-accepted.txt").read_text())
    assert accepted
    missing = [line for line in accepted if line not in stack]
    assert not missing, f"docs/stack.md ('Today's Colab') does not explain: {missing}"


# ---------------------------------------------------------------- the setup cell and the imports


def _notebook(setup_source):
    return {
        "cells": [
            {"cell_type": "markdown", "source": ["REPO_URL in prose"]},
            {"cell_type": "code", "source": ["print(1)\n"]},
            {"cell_type": "code", "source": setup_source.splitlines(keepends=True)},
        ]
    }


def test_the_notebooks_setup_cell_takes_the_simulations_overrides():
    nb = json.loads((ROOT / "notebooks" / "00_environment_check.ipynb").read_text())
    cell = sim.cell_for_sim(nb)
    assert (
        'os.environ.get("COURSE_REPO_URL", REPO_URL)' in cell
        and 'os.environ.get("COURSE_DIR", HOSTED[host])' in cell
    )
    assert '"tools", "install.py"' in cell
    old = 'REPO_URL = "x"\nsubprocess.run(["git", "clone", REPO_URL, "/content/course"])\n'
    with pytest.raises(ValueError, match="does not read \\['COURSE_REPO_URL', 'COURSE_DIR'\\]"):
        sim.cell_for_sim(_notebook(old))


def test_imported_modules_skips_magics_and_shell_lines():
    src = "%%capture\n!pip install x\nimport torch, os\nfrom helpers.models import choose_model\nfrom . import y\n"
    assert sim.imported_modules([src]) == {"torch", "os", "helpers.models"}


def test_junit_summary_names_the_failing_cell(tmp_path):
    junit = tmp_path / "j.xml"
    junit.write_text(
        "<testsuites><testsuite>"
        '<testcase classname="01_load_in_4bit.ipynb" name="Cell 1" time="1.5"/>'
        '<testcase classname="01_load_in_4bit.ipynb" name="Cell 9" time="2.0">'
        '<failure message="#x1B[91mNotebook cell execution failed#x1B[0m">Notebook cell execution failed\n'
        "Cell 9: Cell execution caused an exception\n\nInput:\nfour_bit = any(m for m in x)\n\nTraceback:\n"
        "#x1B[0;31mAssertionError#x1B[0m: on a CPU no 4-bit</failure></testcase>"
        "</testsuite></testsuites>"
    )
    summary = sim.summarize_junit(junit)
    assert (
        "01_load_in_4bit.ipynb" in summary and "FAILED  1 cells passed, 1 failed, 3.5 s" in summary
    )
    assert (
        "Cell 9 [four_bit = any(m for m in x)]: Cell execution caused an exception -> AssertionError: "
        "on a CPU no 4-bit" in summary
    )


# ---------------------------------------------------------------- tools/install.py


@pytest.mark.parametrize(
    "torch_version,expected",
    [
        ("2.11.0+cu128", "0.0.35"),  # Colab, 2026-08-19: 0.0.35 asks for torch>=2.10
        ("2.14.1", "0.0.35"),
        ("2.10.0+cu126", "0.0.35"),
        ("2.9.1+cu128", "0.0.33.post2"),  # each of these asks for one exact torch
        ("2.9.0+cu126", "0.0.33.post1"),
        ("2.8.0", "0.0.32.post2"),
        ("2.8.1", None),
        ("2.7.1+cu126", None),
    ],
)
def test_xformers_is_the_release_whose_metadata_matches_the_runtimes_torch(torch_version, expected):
    version, why = install.choose_xformers(torch_version, cuda=True)
    assert version == expected
    assert torch_version in why


def test_no_xformers_without_a_gpu():
    version, why = install.choose_xformers("2.11.0+cpu", cuda=False)
    assert version is None and "CUDA" in why


def test_install_fix_comes_from_pip_checks_line_about_the_failing_package():
    lines = [
        "datasets 4.8.5 has requirement pyarrow>=21.0.0, but you have pyarrow 18.1.0.",
        "trl 1.15.0 requires accelerate, which is not installed.",
        "unsloth 2026.10.9 requires xformers, which is not installed.",
    ]
    assert install.fixes(lines, "datasets") == ['pip install --no-deps "pyarrow>=21.0.0"']
    assert install.fixes(lines, "trl") == ['pip install --no-deps "accelerate"']
    assert install.fixes(lines, "peft") == []


def test_install_script_is_standard_library_only():
    source = (ROOT / "tools" / "install.py").read_text()
    imported = sim.imported_modules([source])
    assert {m.split(".")[0] for m in imported} <= {
        "os",
        "re",
        "subprocess",
        "sys",
        "importlib",
        "pathlib",
    }


# ---------------------------------------------------------------- requirements-colab.txt


def test_colab_pins_never_replace_colabs_torch_triton_or_split_protobuf_from_sentencepiece():
    pins = sim.parse_pins((ROOT / "requirements-colab.txt").read_text())
    assert not {"torch", "triton", "torchvision", "xformers"} & set(pins)
    assert ("protobuf" in pins) == ("sentencepiece" in pins), (
        "protobuf and sentencepiece move together"
    )
    freeze = sim.parse_freeze((SIM_DIR / "pip-freeze.gpu.txt").read_text())
    assert int(pins["pyarrow"][1].split(".")[0]) >= 21 > int(freeze["pyarrow"][1].split(".")[0])


def test_accepted_list_holds_only_pip_check_lines_and_comments():
    text = (SIM_DIR / "pip-check-accepted.txt").read_text()
    assert all(
        line.startswith("#") or re.search(r" (requires|has requirement) ", line)
        for line in text.splitlines()
        if line.strip()
    )


class _FakeRun:
    """Stands in for subprocess.run inside tools/install.py: records commands, answers like pip and python."""

    def __init__(self, pip_check, import_error=None):
        self.pip_check, self.import_error, self.commands = pip_check, import_error, []

    def __call__(self, cmd, **kwargs):
        from types import SimpleNamespace

        self.commands.append(cmd)
        if cmd[1:4] == ["-m", "pip", "check"]:
            return SimpleNamespace(returncode=1, stdout="\n".join(self.pip_check) + "\n", stderr="")
        if cmd[1] == "-c" and "torch" in cmd[2]:
            return SimpleNamespace(returncode=0, stdout="2.11.0+cu128 True\n", stderr="")
        if cmd[1] == "-c":  # the import check
            if self.import_error:
                name, error = self.import_error
                return SimpleNamespace(
                    returncode=1, stdout=f"FAILED {name}\n", stderr=f"warning: x\n{error}\n"
                )
            return SimpleNamespace(returncode=0, stdout="", stderr="")
        return SimpleNamespace(returncode=0, stdout="", stderr="")


@pytest.fixture
def fake_course(tmp_path, monkeypatch):
    (tmp_path / "requirements-colab.txt").write_text("datasets==4.8.5\n")
    accepted = tmp_path / "accepted.txt"
    accepted.write_text("# why\nipython 7.34.0 requires jedi, which is not installed.\n")
    monkeypatch.setattr(install, "ROOT", tmp_path)
    monkeypatch.setattr(install, "DONE", tmp_path / ".installed")
    monkeypatch.setattr(install, "ACCEPTED", accepted)

    def no_xformers(name):
        raise install.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(install.metadata, "version", no_xformers)
    return tmp_path


def test_install_stops_naming_the_package_and_the_fix_when_an_import_fails(
    fake_course, monkeypatch
):
    run = _FakeRun(
        ["datasets 4.8.5 has requirement pyarrow>=21.0.0, but you have pyarrow 18.1.0."],
        ("datasets", "AttributeError: module 'pyarrow' has no attribute 'json_'"),
    )
    monkeypatch.setattr(install.subprocess, "run", run)
    with pytest.raises(SystemExit) as exit_:
        install.main()
    message = str(exit_.value.code)
    assert "`import datasets` fails" in message and "no attribute 'json_'" in message
    assert 'pip install --no-deps "pyarrow>=21.0.0"' in message
    assert not (fake_course / ".installed").exists()
    assert [c for c in run.commands if "xformers==0.0.35" in c], (
        "a GPU with torch 2.11 gets xformers 0.0.35"
    )


def test_install_warns_about_new_pip_check_lines_and_runs_once(fake_course, monkeypatch, capsys):
    run = _FakeRun(
        [
            "ipython 7.34.0 requires jedi, which is not installed.",
            "sentence-transformers 5.7.0 has requirement transformers<5, but you have transformers 5.17.0.",
        ]
    )
    monkeypatch.setattr(install.subprocess, "run", run)
    install.main()
    out = capsys.readouterr().out
    assert "warning: pip check: sentence-transformers 5.7.0" in out and "jedi" not in out
    assert (fake_course / ".installed").exists()
    run.commands.clear()
    install.main()
    assert run.commands == [] and "installed already" in capsys.readouterr().out


def test_bitsandbytes_is_installed_beside_a_gpu_only():
    with_gpu, without = install.requirements(cuda=True), install.requirements(cuda=False)
    assert any(line.startswith("bitsandbytes==") for line in with_gpu)
    assert not any(line.startswith("bitsandbytes") for line in without)
    assert set(with_gpu) - set(without) == {
        next(line for line in with_gpu if line.startswith("bitsandbytes"))
    }
