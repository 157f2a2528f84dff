"""Install the course's pinned stack on Colab (or Kaggle). Every notebook's first cell runs it:

    python /content/course/tools/install.py

1. requirements-colab.txt with --no-deps, as Unsloth's own Colab cell does: the runtime keeps its own
   torch, triton and CUDA libraries (a CPU or mismatched build in their place breaks the GPU). Without a
   GPU, bitsandbytes is left out: its 4-bit weights only slow a CPU down.
2. xformers, only in the release built for this runtime's torch; none fits: skip it (Unsloth then uses
   PyTorch's own attention).
3. A fresh process imports the libraries; a failure stops here with the package and the fix.
4. `pip check`: conflicts not in the accepted list are printed as warnings.
Standard library only: it runs before anything else is installed. A second run does nothing.
"""

import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DONE = ROOT / ".installed"  # delete it to install again
ACCEPTED = ROOT / "tools" / "colab_sim" / "pip-check-accepted.txt"
PIP = [sys.executable, "-m", "pip"]
# Each xformers wheel is compiled against one torch; its metadata says which (Requires-Dist on PyPI).
XFORMERS = [
    ("0.0.35", ">=2.10"),
    ("0.0.34", "==2.10.0"),
    ("0.0.33.post2", "==2.9.1"),
    ("0.0.33.post1", "==2.9.0"),
    ("0.0.32.post2", "==2.8.0"),
]
MODULES = ["datasets", "transformers", "trl", "peft", "accelerate"]


def release(version):
    """'2.11.0+cu128' -> (2, 11, 0)"""
    return tuple(int(p) for p in re.findall(r"\d+", version.split("+")[0])[:3])


def choose_xformers(torch_version, cuda=True):
    """(xformers version or None, why) for this torch."""
    if not cuda:
        return None, "no CUDA GPU here, and xformers' kernels are CUDA only"
    have = release(torch_version)
    for version, need in XFORMERS:
        want = release(need[2:])
        if (have >= want) if need.startswith(">=") else (have[: len(want)] == want):
            return version, f"its metadata asks for torch{need}; this runtime has {torch_version}"
    return None, f"no xformers release is built for torch {torch_version}"


def fixes(pip_check, package):
    """The pip commands that satisfy what `package` asks for, from pip check's lines about it."""
    out = []
    for line in pip_check:
        if line.lower().startswith(package.lower() + " "):
            m = re.search(
                r"has requirement (.+?), but you have|requires (\S+), which is not installed", line
            )
            if m:
                out.append(f'pip install --no-deps "{(m.group(1) or m.group(2)).replace(" ", "")}"')
    return out


def requirements(cuda):
    """The lines of requirements-colab.txt to install: all of them, but bitsandbytes only beside a CUDA GPU."""
    lines = [
        line.split("#")[0].strip()
        for line in (ROOT / "requirements-colab.txt").read_text().splitlines()
    ]
    return [line for line in lines if line and (cuda or not line.startswith("bitsandbytes"))]


def main():
    if DONE.exists():
        return print(f"The course's packages are installed already ({DONE} exists).")
    probe = "import torch; print(torch.__version__, torch.cuda.is_available())"
    torch_version, cuda = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.split()[-2:]
    if cuda != "True":
        print(
            "No CUDA GPU: bitsandbytes is left out, so Unsloth trains in 16-bit on the CPU (its 4-bit would "
            "only be slower here)."
        )
    subprocess.run([*PIP, "install", "-q", "--no-deps", *requirements(cuda == "True")], check=True)
    try:
        print(f"xformers {metadata.version('xformers')} is installed already: left as it is.")
    except metadata.PackageNotFoundError:
        version, why = choose_xformers(torch_version, cuda == "True")
        if version:
            subprocess.run([*PIP, "install", "-q", "--no-deps", f"xformers=={version}"], check=True)
        print(f"xformers: {version or 'skipped'} ({why}).")
    lines = subprocess.run([*PIP, "check"], capture_output=True, text=True).stdout.splitlines()
    check = (
        "import importlib, sys\nfor m in sys.argv[1:]:\n    try: importlib.import_module(m)\n"
        "    except Exception as e: print('FAILED', m); sys.exit(f'{type(e).__name__}: {e}')"
    )
    failed = subprocess.run([sys.executable, "-c", check, *MODULES], capture_output=True, text=True)
    if failed.returncode:
        name = failed.stdout.split("FAILED ")[-1].strip() or MODULES[0]
        fix = fixes(lines, name) or [f"pip install --no-deps -r {ROOT / 'requirements-colab.txt'}"]
        error = "\n  ".join(failed.stderr.strip().splitlines()[-3:])
        sys.exit(
            f"\nINSTALL FAILED: `import {name}` fails after the install:\n  {error}\n"
            "Fix: run this, then Runtime > Restart session, then this cell again; and please report it "
            "(this runtime's packages changed):\n  " + "\n  ".join(fix)
        )
    accepted = set(ACCEPTED.read_text().splitlines()) if ACCEPTED.exists() else set()
    for line in (
        line for line in lines if line not in accepted and not line.startswith("No broken")
    ):
        print(f"warning: pip check: {line}")
    DONE.write_text("installed\n")
    print("The course's packages are installed and import.")


if __name__ == "__main__":
    main()
