#!/usr/bin/env python3
"""A simulated Colab runtime on a CPU machine, to run the course as a Colab user would.

    python3 tools/colab_sim/colab_sim.py [--stage build|setup|check|notebooks|all]

Stages (each runs the ones before it when needed):
  build      a virtual environment with Colab's Python minor version holding Colab's versions (from the
             committed pip-freeze.gpu.txt) of every package the course's pins touch: the dependency closure
             of requirements-colab.txt (Requires-Dist, recursively) met with the freeze, plus torch, triton and
             what the notebooks and their tests need. No CUDA library is installed: PyPI's torch 2.11.0 (a CUDA
             build) gets stub libraries that report "no device", so it imports and runs on the CPU. Cached outside the repo
             (~/.cache/unsloth-course/colab-sim/<hash of the inputs>/base); a second run reuses it.
  setup      a fresh copy of that environment (hard links: seconds), a fake `google.colab`, then the setup
             cell of notebooks/00_environment_check.ipynb, executed by the simulated runtime's Python, with
             the course cloned from this repository (COURSE_REPO_URL=file://...) into COURSE_DIR.
  check      `pip check` against pip-check-accepted.txt, then every import the notebooks and helpers make.
  notebooks  every notebooks/NN_*.ipynb under pytest --nbval-lax --nbval-current-env, COURSE_MODEL=tiny; then
             01-02 again with bitsandbytes, and 05 alone in a fresh output folder (its cell trains with
             `course train`, as in a new Colab session).

The build uses the standard library, pip, and (when torch cannot load without CUDA) gcc, readelf and nm.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
import zipfile
from email.parser import Parser
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
FREEZE = HERE / "pip-freeze.gpu.txt"
ACCEPTED = HERE / "pip-check-accepted.txt"
FAKE_COLAB = HERE / "fake_colab"
SETUP_NOTEBOOK = REPO / "notebooks" / "00_environment_check.ipynb"
REQUIREMENTS = REPO / "requirements-colab.txt"
CPU_LOCK = REPO / "requirements" / "cpu.txt"
CACHE = Path(
    os.environ.get("COLAB_SIM_CACHE", Path.home() / ".cache" / "unsloth-course" / "colab-sim")
)
RECIPE = "3"  # bump when the way the base environment is built changes

PYTHON_MINOR = "3.13"  # Colab's, from os-info-gpu.txt (checked at start)
PYTHON_FULL = "3.13.15"
# Colab has these and the notebooks, helpers or their execution under nbval use them.
NOTEBOOK_NEEDS = [
    "torch",
    "triton",
    "numpy",
    "pandas",
    "matplotlib",
    "psutil",
    "tqdm",
    "pyyaml",
    "safetensors",
    "ipykernel",
    "ipython",
    "jupyter-client",
    "jupyter-core",
    "nbformat",
    "nbclient",
    "pytest",
]
# Not on Colab; installed only to run the notebooks as tests, at the CPU lock's versions.
TEST_TOOLS = ["nbval", "coverage"]
# pytest running notebooks under nbval, as make test does (after the simulated runtime's python)
NBVAL = ["-m", "pytest", "--nbval-lax", "--nbval-current-env", "-p", "no:cacheprovider", "-q"]
# Colab has them; the sim leaves them out: CUDA libraries (no GPU here) and torch's companions
# (torchvision's PyPI build breaks `import unsloth` beside a torch it was not built with).
LEFT_OUT = re.compile(r"^(nvidia-|cuda-|cupy|torchvision$|torchaudio$|torchcodec$)")
# pip freeze never lists these; Colab has them all the same.
FREEZE_HIDDEN = {"pip", "setuptools", "wheel", "distribute"}
MARKER_ENV = {
    "python_version": PYTHON_MINOR,
    "python_full_version": PYTHON_FULL,
    "os_name": "posix",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "platform_python_implementation": "CPython",
    "implementation_name": "cpython",
    "implementation_version": PYTHON_FULL,
    "platform_release": "",
    "platform_version": "",
}
SYSTEM_LIBS = (
    "libc.so",
    "libm.so",
    "libdl.so",
    "librt.so",
    "libpthread.so",
    "libstdc++.so",
    "libgcc_s.so",
    "ld-linux",
    "libgomp.so",
)


def log(msg: str = "") -> None:
    print(msg, flush=True)


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


# ---------------------------------------------------------------- the snapshot and the pins


def parse_freeze(text: str) -> dict[str, tuple[str, str | None]]:
    """{normalized name: (name, version)} from `pip freeze` output; version None where it cannot be read."""
    out: dict[str, tuple[str, str | None]] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*(\S+)", line)
        if m:
            out[normalize(m.group(1))] = (m.group(1), m.group(2))
            continue
        m = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)\s*@\s*(\S+)", line)
        if not m:
            raise ValueError(f"not a pip freeze line: {raw!r}")
        name, url = m.groups()
        fname = url.rsplit("/", 1)[-1].replace("%2B", "+")
        pattern = "[-_.]+".join(map(re.escape, re.split(r"[-_.]+", name)))
        v = re.match(rf"{pattern}-([0-9][^-]*?)(?:\.tar\.gz|\.zip|-)", fname, re.I)
        out[normalize(name)] = (name, v.group(1) if v else None)
    return out


def parse_pins(text: str) -> dict[str, tuple[str, str]]:
    """{normalized name: (name, version)} from a requirements file of name==version lines."""
    pins = {}
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            m = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*(\S+)", line)
            if not m:
                raise ValueError(f"expected name==version, got {raw!r}")
            pins[normalize(m.group(1))] = (m.group(1), m.group(2))
    return pins


def os_info_python(text: str) -> str:
    m = re.search(r"^Python (\d+\.\d+)\.\d+", text, re.M)
    if not m:
        raise ValueError("no 'Python X.Y.Z' line in os-info")
    return m.group(1)


# ---------------------------------------------------------------- requirements and markers


def parse_requirement(text: str) -> tuple[str, set[str], str, str]:
    """'name[extra] >=1 ; marker' -> (normalized name, extras, specifier, marker)."""
    req, _, marker = text.partition(";")
    m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?\s*(.*)", req)
    if not m:
        raise ValueError(f"not a requirement: {text!r}")
    extras = {normalize(e) for e in (m.group(2) or "").split(",") if e.strip()}
    return normalize(m.group(1)), extras, m.group(3).strip().strip("()"), marker.strip()


def _version_key(v: str) -> tuple:
    return tuple(int(p) if p.isdigit() else p for p in re.findall(r"\d+|[a-z]+", v.lower()))


def evaluate_marker(marker: str, env: dict[str, str]) -> bool:
    """Evaluate a PEP 508 environment marker (the subset packages use) in `env`."""
    tokens = re.findall(
        r"'[^']*'|\"[^\"]*\"|===|==|!=|<=|>=|~=|<|>|\(|\)|not\s+in\b|\w[\w.]*", marker
    )
    pos = 0

    def peek():
        return tokens[pos] if pos < len(tokens) else None

    def take():
        nonlocal pos
        pos += 1
        return tokens[pos - 1]

    def value():
        t = take()
        if t[0] in "'\"":
            return t[1:-1], False
        if t not in env and t != "extra":
            raise ValueError(f"unknown marker variable {t!r} in {marker!r}")
        return env.get(t, ""), t

    def compare():
        if peek() == "(":
            take()
            r = disjunction()
            take()
            return r
        (left, lvar), op, (right, rvar) = value(), re.sub(r"\s+", " ", take()), value()
        if "extra" in (lvar, rvar):
            left, right = normalize(left), normalize(right)
        if op in ("in", "not in"):
            return (left in right) == (op == "in")
        versiony = {lvar, rvar} & {
            "python_version",
            "python_full_version",
            "implementation_version",
        }
        if versiony and op != "===":
            a, b = _version_key(left), _version_key(right)
            if op == "~=":
                return a >= b and a[: len(b) - 1] == b[: len(b) - 1]
        else:
            a, b = left, right
        return {
            "==": a == b,
            "!=": a != b,
            "<": a < b,
            "<=": a <= b,
            ">": a > b,
            ">=": a >= b,
            "===": left == right,
            "~=": a == b,
        }[op]

    def conjunction():
        r = compare()
        while peek() == "and":
            take()
            r = compare() and r
        return r

    def disjunction():
        r = conjunction()
        while peek() == "or":
            take()
            r = conjunction() or r
        return r

    result = disjunction()
    if pos != len(tokens):
        raise ValueError(f"cannot parse marker {marker!r}")
    return result


def touched(
    pins: dict[str, tuple[str, str]],
    roots: list[str],
    colab: dict[str, tuple[str, str | None]],
    requires_of,
    env: dict[str, str] = MARKER_ENV,
):
    """What the pins (and `roots`) reach through Requires-Dist, recursively.

    A package is followed at its pinned version if pinned, else at Colab's; one that is neither pinned
    nor on Colab ends the path (nothing would install it). `requires_of(name, version)` returns the
    Requires-Dist lines. Returns (reached: {name: version}, absent: {name: [who asks]}, hidden: {name: [specs]}).
    """
    reached: dict[str, str] = {}
    done: dict[str, set[str]] = {}
    absent: dict[str, list[str]] = {}
    hidden: dict[str, list[str]] = {}
    queue = [(normalize(n), set(), "requirements-colab.txt") for n in pins] + [
        (normalize(n), set(), "the notebooks") for n in roots
    ]
    while queue:
        name, extras, via = queue.pop(0)
        if name in FREEZE_HIDDEN:
            hidden.setdefault(name, [])
            continue
        version = pins[name][1] if name in pins else (colab.get(name) or (None, None))[1]
        if version is None:
            absent.setdefault(name, []).append(via)
            continue
        seen = done.get(name)
        wanted = {""} | extras
        new = wanted - (seen or set())
        if not new:
            continue
        done[name] = (seen or set()) | new
        reached[name] = version
        display = (pins.get(name) or colab.get(name))[0]
        for line in requires_of(display, version):
            dep, dep_extras, spec, marker = parse_requirement(line)
            if marker and not any(evaluate_marker(marker, {**env, "extra": e}) for e in new):
                continue
            if not marker and "" not in new:
                continue  # an unconditional requirement was followed on the first visit
            if dep in FREEZE_HIDDEN:
                hidden.setdefault(dep, []).append(f"{dep}{spec}" if spec else dep)
                continue
            queue.append((dep, dep_extras, f"{display} {version}"))
    return reached, absent, hidden


# ---------------------------------------------------------------- metadata from wheels (pip download)


def wheel_metadata(path: Path) -> tuple[str, str, list[str]]:
    """(name, version, Requires-Dist) of a wheel or sdist."""
    if path.suffix == ".whl":
        with zipfile.ZipFile(path) as z:
            member = next(n for n in z.namelist() if re.fullmatch(r"[^/]+\.dist-info/METADATA", n))
            text = z.read(member).decode()
    else:
        import tarfile

        with tarfile.open(path) as t:
            member = next(m for m in t.getmembers() if re.fullmatch(r"[^/]+/PKG-INFO", m.name))
            text = t.extractfile(member).read().decode()
    msg = Parser().parsestr(text)
    return msg["Name"], msg["Version"], msg.get_all("Requires-Dist") or []


class Metadata:
    """Requires-Dist of name==version, read from the wheel pip downloads (cached by name and version)."""

    def __init__(self, python: str, cache: Path):
        self.python, self.wheels, self.meta = python, cache / "wheels", cache / "metadata"
        self.wheels.mkdir(parents=True, exist_ok=True)
        self.meta.mkdir(parents=True, exist_ok=True)

    def _file(self, name: str, version: str) -> Path:
        return self.meta / f"{normalize(name)}-{version.split('+')[0]}.json"

    def _index(self) -> None:
        for path in self.wheels.iterdir():
            if (
                path.suffix in (".whl", ".gz", ".zip")
                and not (self.meta / f"{path.name}.seen").exists()
            ):
                name, version, requires = wheel_metadata(path)
                self._file(name, version).write_text(
                    json.dumps(
                        {
                            "name": name,
                            "version": version,
                            "file": path.name,
                            "requires_dist": requires,
                        }
                    )
                )
                (self.meta / f"{path.name}.seen").touch()

    def download(self, wanted: list[tuple[str, str]]) -> None:
        missing = [(n, v) for n, v in wanted if not self._file(n, v).exists()]
        if not missing:
            return
        specs = [f"{n}=={v.split('+')[0]}" for n, v in missing]
        log(f"  pip download: {len(specs)} package(s)")
        cmd = [
            self.python,
            "-m",
            "pip",
            "download",
            "-q",
            "--no-deps",
            "--no-cache-dir",
            "-d",
            str(self.wheels),
        ]
        if pip(cmd + ["--only-binary=:all:", *specs]):
            for spec in specs:  # one at a time, sdists allowed, to find the one without a wheel
                if pip(cmd + ["--only-binary=:all:", spec], quiet=True) and pip(cmd + [spec]):
                    raise SystemExit(f"pip download {spec} failed")
        self._index()

    def requires(self, name: str, version: str) -> list[str]:
        if not self._file(name, version).exists():
            self.download([(name, version)])
        return json.loads(self._file(name, version).read_text())["requires_dist"]

    def file(self, name: str, version: str) -> Path:
        return self.wheels / json.loads(self._file(name, version).read_text())["file"]


def pip(cmd: list[str], quiet: bool = False, **kw) -> int:
    """Run a pip command; its stderr without the 'Location ... is ignored' notes of local find-links."""
    r = subprocess.run(cmd, stderr=subprocess.PIPE, text=True, **kw)
    noise = re.compile(r"^WARNING: Location '.*' is ignored")
    if not quiet:
        sys.stderr.write(
            "".join(line for line in r.stderr.splitlines(keepends=True) if not noise.match(line))
        )
    return r.returncode


# ---------------------------------------------------------------- pip check


def read_accepted(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip() and not line.startswith("#")]


def compare_pip_check(actual: list[str], accepted: list[str]) -> tuple[list[str], list[str]]:
    """(new lines: not accepted, gone lines: accepted but not printed any more)."""
    actual = [
        line for line in actual if line.strip() and not line.startswith("No broken requirements")
    ]
    return [line for line in actual if line not in accepted], [
        line for line in accepted if line not in actual
    ]


def pip_check_report(
    new: list[str], gone: list[str], accepted_path: Path = ACCEPTED
) -> tuple[bool, str]:
    lines = []
    if new:
        lines.append(
            f"FAIL: pip check printed {len(new)} line(s) that {accepted_path.name} does not accept:"
        )
        lines += [f"  + {line}" for line in new]
        lines.append(
            "  Fix the pins in requirements-colab.txt, or accept the line (add it to "
            f"{accepted_path} and explain it in docs/stack.md, 'Today's Colab')."
        )
    if gone:
        lines.append(
            f"note: {len(gone)} accepted line(s) no longer printed (remove them from {accepted_path.name}"
            " and docs/stack.md):"
        )
        lines += [f"  - {line}" for line in gone]
    if not new and not gone:
        lines.append("pip check: exactly the accepted lines.")
    return not new, "\n".join(lines)


# ---------------------------------------------------------------- the setup cell and the imports


def setup_cell(notebook: dict) -> str:
    """The source of the setup cell: the first code cell that sets REPO_URL."""
    for cell in notebook["cells"]:
        src = "".join(cell["source"])
        if cell["cell_type"] == "code" and "REPO_URL" in src:
            return src
    raise ValueError("no code cell with REPO_URL")


def cell_for_sim(notebook: dict) -> str:
    """The notebook's setup cell, which must take the simulation's overrides (COURSE_REPO_URL, COURSE_DIR)."""
    own = setup_cell(notebook)
    missing = [name for name in ("COURSE_REPO_URL", "COURSE_DIR") if name not in own]
    if missing:
        raise ValueError(
            f"the setup cell does not read {missing}: the simulation cannot point it at this clone"
        )
    return own


def imported_modules(sources: list[str]) -> set[str]:
    """Modules imported by Python sources (IPython magics and shell lines skipped)."""
    import ast

    mods = set()
    for src in sources:
        code = "\n".join(
            "" if line.lstrip().startswith(("%", "!")) else line for line in src.splitlines()
        )
        for node in ast.walk(ast.parse(code)):
            if isinstance(node, ast.Import):
                mods |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                mods.add(node.module)
    return mods


# ---------------------------------------------------------------- torch without CUDA: stub libraries

STUB_NOTE = """Stub libraries written by tools/colab_sim/colab_sim.py: torch {version} from PyPI is a CUDA build and
links these CUDA libraries at import. This CPU-only simulation installs none of them; each stub only
defines the symbols torch asks for, and every function in it reports "no device" (cudaErrorNoDevice).
"""


def write_cuda_stubs(torch_dir: Path, work: Path) -> list[str]:
    """Write stub .so files into torch/lib for each CUDA library the import chain of torch._C needs."""
    lib = torch_dir / "lib"

    def run(*args):
        return subprocess.run(args, capture_output=True, text=True, check=True).stdout

    def needed(p):
        return re.findall(r"NEEDED\).*\[(.+?)\]", run("readelf", "-d", str(p)))

    todo, seen, missing = (
        [next(torch_dir.glob("_C.cpython-*.so")), lib / "libtorch_global_deps.so"],
        set(),
        set(),
    )
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        for n in needed(p):
            if (lib / n).exists():
                todo.append(lib / n)
            elif not n.startswith(SYSTEM_LIBS):
                missing.add(n)
    verneed: dict[str, set[str]] = {}
    for p in seen:
        current = None
        for line in run("readelf", "-V", "-W", str(p)).splitlines():
            m = re.search(r"File: (\S+)", line)
            if m:
                current = m.group(1)
            m = re.search(r"Name: (\S+)", line)
            if m and current:
                verneed.setdefault(current, set()).add(m.group(1))
    by_version = {v: so for so in missing for v in verneed.get(so, ())}
    prefixes = {
        "cusparseLt": "libcusparseLt",
        "nccl": "libnccl",
        "cuFile": "libcufile",
        "nvshmem": "libnvshmem",
        "curand": "libcurand",
        "cupti": "libcupti",
        "cuda": "libcudart",
        "cudnn": "libcudnn",
    }
    symbols: dict[str, set[tuple[str, str]]] = {so: set() for so in missing}
    for p in seen:
        for line in run("nm", "-D", "--undefined-only", str(p)).splitlines():
            kind, sym = line.split()[-2:]
            name, _, version = sym.partition("@")
            version = version.lstrip("@")
            if kind != "U":
                continue
            if version in by_version:
                symbols[by_version[version]].add((name, version))
            elif not version:
                for prefix, so in prefixes.items():
                    owner = next((s for s in missing if s.startswith(so + ".")), None)
                    if name.startswith(prefix) and owner:
                        symbols[owner].add((name, ""))
                        break
    work.mkdir(parents=True, exist_ok=True)
    for so, syms in sorted(symbols.items()):
        lines = ['static const char msg[] = "no CUDA device (colab-sim stub)";']
        for name, _ in sorted(syms):
            if name.endswith(("GetErrorString", "GetErrorName")):
                lines.append(f"const char *{name}(void) {{ return msg; }}")
            elif name == "cudaGetDeviceCount":
                lines.append(f"int {name}(int *n) {{ if (n) *n = 0; return 100; }}")
            else:
                lines.append(f"int {name}(void) {{ return 100; }}")
        (work / f"{so}.c").write_text("\n".join(lines) + "\n")
        cmd = [
            "gcc",
            "-shared",
            "-fPIC",
            "-o",
            str(lib / so),
            str(work / f"{so}.c"),
            f"-Wl,-soname,{so}",
        ]
        versions = sorted({v for _, v in syms if v} | verneed.get(so, set()))
        if versions:
            script = "\n".join(
                f"{v} {{ global: {' '.join(n + ';' for n, w in sorted(syms) if w == v) or '*;'} }};"
                for v in versions
            )
            (work / f"{so}.map").write_text(script + "\n")
            cmd.append(f"-Wl,--version-script={work / (so + '.map')}")
        subprocess.run(cmd, check=True)
    return sorted(symbols)


# ---------------------------------------------------------------- the stages


class Sim:
    def __init__(self, args):
        self.args = args
        self.python = args.python or find_python()
        self.freeze = parse_freeze(FREEZE.read_text())
        self.pins = parse_pins(REQUIREMENTS.read_text())
        self.times: list[tuple[str, float]] = []
        self.failures: list[str] = []

    # -- build
    def plan(self):
        meta = Metadata(self.python, CACHE)
        wanted = [(self.pins[n][0], self.pins[n][1]) for n in self.pins]
        wanted += [self.freeze[normalize(n)] for n in NOTEBOOK_NEEDS]
        meta.download(wanted)  # one pip call for the first level
        for _ in range(20):  # then level by level, each level in one pip call
            pending = []

            def requires(name, version):
                try:
                    return json.loads(meta._file(name, version).read_text())["requires_dist"]
                except FileNotFoundError:
                    pending.append((name, version))  # noqa: B023 (used within this iteration)
                    return []

            reached, absent, hidden = touched(self.pins, NOTEBOOK_NEEDS, self.freeze, requires)
            reached = {n: v for n, v in reached.items() if not LEFT_OUT.match(n)}
            pending = [(n, v) for n, v in pending if not LEFT_OUT.match(normalize(n))]
            if not pending:
                break
            meta.download(pending)
        colab = {n: self.freeze[n][1] for n in reached if n in self.freeze and self.freeze[n][1]}
        absent = {n: v for n, v in absent.items() if not LEFT_OUT.match(n)}
        lock = parse_pins(CPU_LOCK.read_text())
        tools = {normalize(n): lock[normalize(n)][1] for n in TEST_TOOLS}
        meta.download([(self.freeze[n][0], v) for n, v in colab.items()] + list(tools.items()))
        left_out = sorted({n for n in self.freeze if LEFT_OUT.match(n)})
        return meta, colab, tools, absent, hidden, left_out

    def build(self) -> Path:
        log(
            f"Colab snapshot: {FREEZE.relative_to(REPO)} (Python {PYTHON_MINOR}); simulated with {self.python}"
        )
        meta, colab, tools, absent, hidden, left_out = self.plan()
        pins_on_colab = sorted(n for n in self.pins if n in self.freeze)
        log(
            f"{len(colab)} packages at Colab's versions: the closure of {len(self.pins)} pins and "
            f"{len(NOTEBOOK_NEEDS)} notebook needs, met with the freeze"
        )
        log(
            f"  of them pinned, at Colab's version until the setup cell replaces them: {', '.join(pins_on_colab)}"
        )
        log(
            "  not on Colab and not pinned (pip check will name them): "
            + (
                ", ".join(
                    f"{n} (for {', '.join(sorted(set(v)))})" for n, v in sorted(absent.items())
                )
                or "none"
            )
        )
        log(f"  test tools (not on Colab): {', '.join(f'{n}=={v}' for n, v in tools.items())}")
        hidden_specs = sorted({s for specs in hidden.values() for s in specs})
        key = json.dumps(
            [
                RECIPE,
                PYTHON_MINOR,
                sorted(colab.items()),
                sorted(tools.items()),
                hidden_specs,
                sorted(p.name + p.read_text() for p in FAKE_COLAB.rglob("*.py")),
            ]
        )
        base = CACHE / hashlib.sha256(key.encode()).hexdigest()[:16] / "base"
        if (base / ".complete").exists():
            log(f"base environment: cached, {base}")
            return base
        if base.exists():
            shutil.rmtree(base)
        log(f"base environment: building {base}")
        subprocess.run([self.python, "-m", "venv", str(base)], check=True)
        py = str(base / "bin" / "python")
        files = [str(meta.file(self.freeze[n][0], v)) for n, v in colab.items()]
        files += [str(meta.file(n, v)) for n, v in tools.items()]
        pip_install = [py, "-m", "pip", "install", "-q", "--no-deps", "--no-index"]
        if pip([*pip_install, *files]):
            raise SystemExit("installing Colab's packages failed")
        if (
            hidden_specs
        ):  # setuptools, wheel: pip freeze hides Colab's; the newest that fits what asks for them
            if pip([py, "-m", "pip", "install", "-q", "--no-deps", *hidden_specs]):
                raise SystemExit(f"installing {hidden_specs} failed")
        self.install_fake_colab(base)
        torch_mode = self.make_torch_importable(base)
        (base / "colab_sim.json").write_text(
            json.dumps(
                {
                    "recipe": RECIPE,
                    "packages": colab,
                    "test_tools": tools,
                    "hidden": hidden_specs,
                    "torch": torch_mode,
                    "left_out": left_out,
                },
                indent=1,
            )
        )
        (base / ".complete").touch()
        return base

    def install_fake_colab(self, venv: Path) -> None:
        site = next((venv / "lib").glob("python3.*/site-packages"))
        shutil.copytree(FAKE_COLAB / "google", site / "google", dirs_exist_ok=True)
        info = site / "google_colab-1.0.0.dist-info"
        info.mkdir(exist_ok=True)
        (info / "METADATA").write_text(
            "Metadata-Version: 2.1\nName: google-colab\nVersion: 1.0.0\n"
            "Summary: colab-sim's stand-in for Colab's google.colab\n"
        )
        (info / "INSTALLER").write_text("colab-sim\n")
        records = [
            f"google/colab/{p.name},," for p in (FAKE_COLAB / "google" / "colab").glob("*.py")
        ]
        (info / "RECORD").write_text(
            "\n".join(records + [f"{info.name}/{f},," for f in ("METADATA", "INSTALLER", "RECORD")])
            + "\n"
        )

    def make_torch_importable(self, venv: Path) -> str:
        py = str(venv / "bin" / "python")
        probe = "import torch; x = torch.ones(2, 2); print(torch.__version__, torch.version.cuda, (x @ x).sum().item())"
        r = subprocess.run([py, "-c", probe], capture_output=True, text=True)
        if r.returncode == 0:
            log(f"torch imports as installed: {r.stdout.strip()}")
            return "as installed"
        log(f"torch does not import without CUDA libraries: {r.stderr.strip().splitlines()[-1]}")
        torch_dir = next((venv / "lib").glob("python3.*/site-packages/torch"))
        stubs = write_cuda_stubs(torch_dir, venv / "cuda-stubs")
        version = json.loads(
            subprocess.run(
                [
                    py,
                    "-c",
                    "import importlib.metadata as m; import json; "
                    "print(json.dumps(m.version('torch')))",
                ],
                capture_output=True,
                text=True,
            ).stdout
        )
        (torch_dir / "lib" / "COLAB_SIM_CUDA_STUBS.txt").write_text(
            STUB_NOTE.format(version=version) + "\n".join(stubs) + "\n"
        )
        r = subprocess.run([py, "-c", probe], capture_output=True, text=True)
        if r.returncode:
            raise SystemExit(f"torch still does not import with stub CUDA libraries:\n{r.stderr}")
        log(
            f"torch imports with {len(stubs)} stub CUDA libraries ({', '.join(stubs)}): {r.stdout.strip()}"
        )
        return f"CUDA build, stub CUDA libraries: {', '.join(stubs)}"

    # -- setup
    def run_dir(self, base: Path) -> Path:
        return base.parent / "run"

    def fresh_copy(self, base: Path) -> Path:
        run = self.run_dir(base)
        if run.exists():
            shutil.rmtree(run)
        run.mkdir()
        subprocess.run(["cp", "-al", str(base), str(run / "venv")], check=True)
        (run / "content").mkdir()
        startup = run / "ipython" / "profile_default" / "startup"
        startup.mkdir(parents=True)
        shutil.copy(FAKE_COLAB / "00-import-google-colab.py", startup)
        return run

    def env(self, run: Path) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("VIRTUAL_ENV", "PYTHONPATH", "COURSE_"))
        }
        env.update(
            {
                "PATH": f"{run / 'venv' / 'bin'}:{env.get('PATH', '')}",
                "VIRTUAL_ENV": str(run / "venv"),
                "COURSE_REPO_URL": f"file://{REPO}",
                "COURSE_DIR": str(run / "content" / "course"),
                "COLAB_RELEASE_TAG": "colab-sim",
                "IPYTHONDIR": str(run / "ipython"),
                "MPLBACKEND": "agg",
                "HF_HUB_OFFLINE": "1",
                "COURSE_MODEL": "tiny",
                "TOKENIZERS_PARALLELISM": "false",
                "PIP_CONSTRAINT": "",
                "PIP_DISABLE_PIP_VERSION_CHECK": "1",
                "PYTHONUNBUFFERED": "1",
                "PYDEVD_DISABLE_FILE_VALIDATION": "1",  # ipykernel's debugger on Python 3.13: no frozen-modules notice
                # Notebook 08: on Colab Unsloth clones and builds llama.cpp; offline, the course's own build stands in
                # (python -m tools.llama_cpp_build, which make setup runs).
                "UNSLOTH_LLAMA_CPP_PATH": str(
                    Path(os.environ.get("COURSE_CACHE", Path.home() / ".cache" / "unsloth-course"))
                    / "llama.cpp-0.3.36"
                ),
            }
        )
        return env

    def setup(self, base: Path) -> Path:
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
        ).stdout.strip()
        if dirty:
            log(
                "note: the setup cell clones the last commit (HEAD); these uncommitted changes are not in it:\n"
                + "\n".join(f"  {line}" for line in dirty.splitlines())
            )
        start = time.monotonic()
        run = self.fresh_copy(base)
        log(f"fresh copy of the base environment (hard links): {time.monotonic() - start:.1f} s")
        cell = cell_for_sim(json.loads(SETUP_NOTEBOOK.read_text()))
        log(
            f"setup cell: {SETUP_NOTEBOOK.name}'s, run by the simulated runtime's Python in {run / 'content'}"
        )
        driver = "import google.colab, sys\nexec(compile(sys.argv[1], 'setup cell', 'exec'), {'__name__': '__main__'})"
        start = time.monotonic()
        r = subprocess.run(
            [str(run / "venv" / "bin" / "python"), "-c", driver, cell],
            cwd=run / "content",
            env=self.env(run),
        )
        log(f"setup cell: {time.monotonic() - start:.1f} s")
        if r.returncode:
            self.failures.append("setup: the setup cell failed")
            raise StageFailed("the setup cell failed (its output is above)")
        (run / ".setup-done").write_text(
            subprocess.run(
                ["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True
            ).stdout
        )
        return run

    # -- check
    def check(self, run: Path) -> None:
        py = str(run / "venv" / "bin" / "python")
        out = subprocess.run(
            [py, "-m", "pip", "check"], capture_output=True, text=True, env=self.env(run)
        ).stdout
        new, gone = compare_pip_check(out.splitlines(), read_accepted(ACCEPTED.read_text()))
        ok, report = pip_check_report(new, gone)
        log(report)
        if not ok:
            self.failures.append("check: pip check printed new lines")
        course = run / "content" / "course"
        sources = [p.read_text() for p in sorted((course / "helpers").glob("*.py"))]
        for nb in sorted((course / "notebooks").glob("[0-9][0-9]_*.ipynb")):
            sources += [
                "".join(c["source"])
                for c in json.loads(nb.read_text())["cells"]
                if c["cell_type"] == "code"
            ]
        stdlib = set(sys.stdlib_module_names)
        # papermill: only the command-line course runner uses it (make course), never a notebook. kaggle_secrets
        # exists only on Kaggle (helpers.secrets imports it there); llama_cpp is installed by notebook 08's own cell,
        # and gguf comes from the llama.cpp folder of 08's export when it is not installed (08's exercise 1).
        # bitsandbytes: helpers.export imports it only to dequantise a 4-bit weight, and a runtime without
        # bitsandbytes has no 4-bit weights.
        left = {"__future__", "papermill", "kaggle_secrets", "llama_cpp", "gguf", "bitsandbytes"}
        mods = sorted(
            m
            for m in imported_modules(sources)
            if m.split(".")[0] not in stdlib | left
            and not (m.startswith("helpers") and m not in notebook_helpers(course))
        )
        probe = (
            "import importlib, sys, traceback\nsys.path.insert(0, sys.argv[1])\nimport unsloth\nbad = 0\n"
            "for m in sys.argv[2:]:\n    try: importlib.import_module(m)\n    except Exception as e:\n"
            "        bad += 1; print(f'FAIL import {m}: {type(e).__name__}: {e}')\n"
            "print(f'imports: {len(sys.argv) - 2 - bad} of {len(sys.argv) - 2} fine after import unsloth')\n"
            "sys.exit(bad)"
        )
        r = subprocess.run(
            [py, "-c", probe, str(course), *mods],
            capture_output=True,
            text=True,
            env=self.env(run),
            cwd=run / "content",
        )
        log(
            "\n".join(
                line for line in r.stdout.splitlines() if line.startswith(("FAIL", "imports"))
            )
        )
        if r.returncode:
            log(r.stderr[-3000:])
            self.failures.append("check: some imports fail")

    # -- notebooks
    def notebooks(self, run: Path) -> None:
        py = str(run / "venv" / "bin" / "python")
        course = run / "content" / "course"
        paths = []
        for nb_path in sorted((course / "notebooks").glob("[0-9][0-9]_*.ipynb")):
            shutil.copy(nb_path, run / "content" / nb_path.name)  # run from /content, as on Colab
            paths.append(nb_path.name)
        junit = run / "notebooks-junit.xml"
        cmd = [
            py,
            *NBVAL,
            "--junitxml",
            str(junit),
            "-o",
            "junit_family=xunit1",
            *paths,
        ]
        if self.args.notebook:
            cmd += ["-k", " or ".join(self.args.notebook)]
        r = subprocess.run(
            cmd, cwd=run / "content", env=self.env(run), capture_output=True, text=True
        )
        (run / "notebooks.log").write_text(r.stdout + r.stderr)
        summary = summarize_junit(junit) if junit.exists() else "no junit report"
        log(summary)
        log(f"full pytest log: {run / 'notebooks.log'}")
        if r.returncode:
            self.failures.append("notebooks: some cells failed")

    def with_bitsandbytes(self, run: Path) -> None:
        """Colab's CPU runtime with bitsandbytes (a learner who installs it, or an image that ships it): the
        setup cell leaves it out without a GPU, so install it and run the loading notebooks again."""
        py = str(run / "venv" / "bin" / "python")
        pin = next(
            line.strip()
            for line in (REPO / "requirements-colab.txt").read_text().splitlines()
            if line.startswith("bitsandbytes==")
        )
        subprocess.run(
            [py, "-m", "pip", "install", "-q", "--no-deps", pin], check=True, env=self.env(run)
        )
        names = ["01_load_in_4bit.ipynb", "02_lora_adapters.ipynb"]
        r = subprocess.run(
            [
                py,
                *NBVAL,
                *names,
            ],
            cwd=run / "content",
            env=self.env(run),
            capture_output=True,
            text=True,
        )
        (run / "bitsandbytes.log").write_text(r.stdout + r.stderr)
        log(
            f"with {pin} on the CPU: notebooks 01 and 02 "
            + (
                "passed"
                if r.returncode == 0
                else f"FAILED (log: {run / 'bitsandbytes.log'})\n" + r.stdout[-2000:]
            )
        )
        subprocess.run(
            [py, "-m", "pip", "uninstall", "-q", "-y", "bitsandbytes"], env=self.env(run)
        )
        if r.returncode:
            self.failures.append("cpu+bitsandbytes: notebooks 01-02 failed")

    def alone(self, run: Path) -> None:
        """Notebook 05 as a learner's fresh Colab session runs it, without notebook 04's adapter: its catch-up
        cell runs `python -m helpers.train` on Colab's Python and pins, then the lesson uses that adapter."""
        py = str(run / "venv" / "bin" / "python")
        out = run / "alone-outputs"
        shutil.rmtree(out, ignore_errors=True)
        name = "05_fast_inference.ipynb"
        shutil.copy(run / "content" / "course" / "notebooks" / name, run / "content" / name)
        r = subprocess.run(
            [
                py,
                *NBVAL,
                name,
            ],
            cwd=run / "content",
            env={**self.env(run), "COURSE_OUTPUT": str(out)},
            capture_output=True,
            text=True,
        )
        (run / "alone.log").write_text(r.stdout + r.stderr)
        trained = (
            out / "train_metrics.json"
        ).is_file()  # written by helpers.train, so the catch-up ran
        log(
            "notebook 05 without an adapter (its cell runs `python -m helpers.train`): "
            + (
                "passed"
                if r.returncode == 0 and trained
                else f"FAILED (log: {run / 'alone.log'})\n" + r.stdout[-2000:]
            )
        )
        if r.returncode or not trained:
            self.failures.append("alone: notebook 05 without an adapter failed")

    def timed(self, name, fn, *args):
        start = time.monotonic()
        try:
            return fn(*args)
        finally:
            self.times.append((name, time.monotonic() - start))
            log(f"[{name}: {self.times[-1][1]:.1f} s]")


class StageFailed(Exception):
    pass


def notebook_helpers(course: Path) -> set[str]:
    """The helpers modules the notebooks import, or run as ``python -m helpers.NAME`` (the catch-up cell)."""
    mods = set()
    for nb in sorted((course / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        sources = [
            "".join(c["source"])
            for c in json.loads(nb.read_text())["cells"]
            if c["cell_type"] == "code"
        ]
        mods |= imported_modules(sources) | {
            m for s in sources for m in re.findall(r'"-m", "(helpers\.\w+)"', s)
        }
    return {m for m in mods if m.startswith("helpers")}


def summarize_junit(path: Path) -> str:
    """Per notebook: cells passed / failed, seconds; for each failed cell (nbval counts code cells from 0)
    its first line, what happened and the exception."""
    root = ET.parse(path).getroot()
    per: dict[str, list] = {}
    for case in root.iter("testcase"):
        nb = (case.get("file") or case.get("classname") or "?").rsplit("/", 1)[-1]
        failure = case.find("failure")
        if failure is None:
            failure = case.find("error")
        entry = per.setdefault(nb, [0, 0, 0.0, [], 0])
        entry[2] += float(case.get("time", 0))
        if failure is not None:
            entry[1] += 1
            text = re.sub(
                r"(\x1b|#x1B)\[[0-9;]*m",
                "",
                (failure.get("message") or "") + "\n" + (failure.text or ""),
            )
            why = re.search(r"Cell \d+: (.+)", text)
            errors = [
                line
                for line in text.splitlines()
                if re.match(r"\w*(Error|Exception|Interrupt)\b", line)
            ]
            first = text.split("Input:\n", 1)[1].split("\n", 1)[0] if "Input:\n" in text else ""
            entry[3].append(
                f"{case.get('name')} [{first[:50]}]: {why.group(1) if why else ''}"
                + (f" -> {errors[-1][:200]}" if errors else "")
            )
        elif case.find("skipped") is None:
            entry[0] += 1
        else:
            entry[4] += 1
    lines = []
    for nb, (ok, bad, secs, errors, skipped) in sorted(per.items()):
        lines.append(
            f"{nb:40} {'PASSED' if not bad else 'FAILED'}  {ok} cells passed, {bad} failed"
            + (f", {skipped} skipped" if skipped else "")
            + f", {secs:.1f} s"
        )
        lines += [f"    {e}" for e in errors]
    return "\n".join(lines)


def find_python() -> str:
    candidates = sorted(
        str(p)
        for p in Path.home().glob(f".pyenv/versions/{PYTHON_MINOR}*/bin/python{PYTHON_MINOR}")
    )
    candidates.append(shutil.which(f"python{PYTHON_MINOR}"))
    for c in candidates:
        probe = "import sys; print('%d.%d' % sys.version_info[:2])"
        if (
            c
            and subprocess.run([c, "-c", probe], capture_output=True, text=True).stdout.strip()
            == PYTHON_MINOR
        ):
            return c
    raise SystemExit(
        f"Python {PYTHON_MINOR} (Colab's) is needed: put python{PYTHON_MINOR} on PATH or pass --python"
    )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--stage", choices=["build", "setup", "check", "notebooks", "all"], default="all"
    )
    ap.add_argument(
        "--python", help=f"a Python {PYTHON_MINOR} interpreter (default: found on PATH or in pyenv)"
    )
    ap.add_argument(
        "--notebook", action="append", help="only notebooks matching this (pytest -k), repeatable"
    )
    args = ap.parse_args(argv)
    minor = os_info_python((HERE / "os-info-gpu.txt").read_text())
    if minor != PYTHON_MINOR:
        raise SystemExit(f"os-info-gpu.txt says Python {minor}; update PYTHON_MINOR in {__file__}")
    sim = Sim(args)
    total = time.monotonic()
    try:
        base = sim.timed("build", sim.build)
        if args.stage != "build":
            run = sim.run_dir(base)
            if args.stage in ("setup", "all") or not (run / ".setup-done").exists():
                run = sim.timed("setup", sim.setup, base)
            else:
                log(f"setup: reusing {run} (run --stage setup for a fresh one)")
            if args.stage in ("check", "all"):
                sim.timed("check", sim.check, run)
            if args.stage in ("notebooks", "all"):
                sim.timed("notebooks", sim.notebooks, run)
                if not args.notebook:
                    sim.timed("cpu+bitsandbytes", sim.with_bitsandbytes, run)
                    sim.timed("05 alone", sim.alone, run)
    except StageFailed as e:
        log(f"FAILED: {e}")
    log(
        "\nstage times: "
        + ", ".join(f"{n} {s:.1f} s" for n, s in sim.times)
        + f"; total {time.monotonic() - total:.1f} s"
    )
    if sim.failures:
        log("colab-sim FAILED: " + "; ".join(sim.failures))
        return 1
    log("colab-sim passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
