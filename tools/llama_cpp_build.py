"""Build the llama.cpp that Unsloth's GGUF export needs, offline, from the llama-cpp-python source package.

``save_pretrained_gguf`` needs ``llama-quantize`` and ``convert_hf_to_gguf.py`` in a llama.cpp folder (and,
on Unsloth's CPU route, the source folders ``src/``, ``ggml/``, ``common/``). Without one Unsloth clones
llama.cpp from GitHub, which fails offline. The llama-cpp-python source package on PyPI vendors the same
llama.cpp: this downloads it with pip, compiles only ``llama-quantize`` (about 4 minutes of 2 CPU cores)
and keeps the tree in the course's cache, where :func:`helpers.llama_cpp.llama_cpp_dir` finds it.
``make setup`` runs it once.

    python -m tools.llama_cpp_build          # prints the folder (builds it if it is not there yet)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from helpers.llama_cpp import NEEDED, VERSION, LlamaCppError, cached_dir, problem

UNUSED = ("models", "docs", "media")  # test vocabularies and documentation: 110 MB no export reads
CMAKE_FLAGS = [
    "-DCMAKE_BUILD_TYPE=Release",
    "-DBUILD_SHARED_LIBS=OFF",
    "-DGGML_NATIVE=OFF",
    "-DLLAMA_OPENSSL=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_SERVER=OFF",
]


def _run(command: list[str], log: Path, what: str) -> None:
    with open(log, "a") as out:
        out.write(f"\n$ {' '.join(command)}\n")
        out.flush()
        done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        raise LlamaCppError(f"{what} failed (exit {done.returncode}); the full log is {log}")


def build(dest: Path) -> Path:
    """Download llama-cpp-python's sdist with pip, build llama-quantize, and put its llama.cpp tree at ``dest``."""
    missing = [tool for tool in ("cmake", "c++") if shutil.which(tool) is None]
    if missing:
        raise LlamaCppError(
            f"cannot build llama.cpp: {' and '.join(missing)} not found on PATH (Debian/Ubuntu: "
            f"apt-get install cmake g++), or set UNSLOTH_LLAMA_CPP_PATH to a built llama.cpp."
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    log = dest.parent / f"{dest.name}-build.log"
    log.write_text("")
    start = time.time()
    print(
        f"Building llama-quantize from llama-cpp-python {VERSION} into {dest}, once: about 5 minutes on 2 free "
        f"CPU cores, longer on a busy machine (log: {log}) ...",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix=f".{dest.name}.tmp-", dir=dest.parent) as tmp:
        tmp = Path(tmp)
        _run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--no-binary",
                "llama-cpp-python",
                "-d",
                str(tmp),
                f"llama-cpp-python=={VERSION}",
            ],
            log,
            "downloading the llama-cpp-python source package",
        )
        with tarfile.open(next(tmp.glob("llama_cpp_python-*.tar.gz"))) as sdist:
            sdist.extractall(tmp, filter="data")
        source = tmp / f"llama_cpp_python-{VERSION}" / "vendor" / "llama.cpp"
        absent = [name for name in NEEDED if not (source / name).exists()]
        if absent:
            raise LlamaCppError(
                f"llama-cpp-python {VERSION} from PyPI has no {absent} in vendor/llama.cpp/"
            )
        for name in UNUSED:
            shutil.rmtree(source / name, ignore_errors=True)
        _run(
            ["cmake", "-S", str(source), "-B", str(tmp / "build"), *CMAKE_FLAGS],
            log,
            "cmake configure",
        )
        _run(
            [
                "cmake",
                "--build",
                str(tmp / "build"),
                "--target",
                "llama-quantize",
                "-j",
                str(os.cpu_count() or 1),
            ],
            log,
            "building llama-quantize",
        )
        shutil.copy2(
            tmp / "build" / "bin" / "llama-quantize", source / "llama-quantize"
        )  # where Unsloth looks
        why = problem(source)
        if why:
            raise LlamaCppError(f"the build finished but is not usable: {why}; the log is {log}")
        if dest.exists() and problem(dest) is None:  # another process finished first
            return dest
        shutil.rmtree(dest, ignore_errors=True)  # a broken earlier attempt
        os.replace(source, dest)  # only a complete folder ever appears at dest
    print(f"llama.cpp is ready in {dest} (built in {time.time() - start:.0f} s).", flush=True)
    return dest


def main() -> int:
    """Build into the course's cache unless a usable llama.cpp is there already; print its folder."""
    dest = cached_dir()
    print(dest if dest.exists() and problem(dest) is None else build(dest))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
