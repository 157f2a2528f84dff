"""A llama.cpp that Unsloth's GGUF export can use, built once from PyPI when there is no internet.

``save_pretrained_gguf`` needs a llama.cpp folder: ``llama-quantize`` and ``convert_hf_to_gguf.py`` in
its root, the converter's ``conversion/`` and ``gguf-py/`` beside it, and (Unsloth's CPU route checks)
the source folders ``src/``, ``ggml/``, ``common/``. When it finds none, Unsloth clones llama.cpp from
GitHub, which fails offline. The llama-cpp-python source package on PyPI carries the same llama.cpp,
so :func:`llama_cpp_dir` downloads it with pip, compiles only ``llama-quantize`` and keeps the tree
in a cache folder that later runs reuse. On Colab it does nothing: Unsloth's own route works there.

Unsloth reads ``UNSLOTH_LLAMA_CPP_PATH`` once, the first time it exports: call this before that.
Example: ``folder = llama_cpp_dir()`` (prints what it builds, and where its log is).
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

from helpers.runtime import in_colab
from helpers.tiny import cache_dir

VERSION = "0.3.36"  # the llama-cpp-python sdist whose vendored llama.cpp the course was tested with
NEEDED = ("convert_hf_to_gguf.py", "convert_lora_to_gguf.py", "conversion", "gguf-py", "src", "ggml", "common")
UNUSED = ("models", "docs", "media")  # test vocabularies and documentation: 110 MB no export reads
UNSLOTH_DEFAULT = Path.home() / ".unsloth" / "llama.cpp"
CMAKE_FLAGS = ["-DCMAKE_BUILD_TYPE=Release", "-DBUILD_SHARED_LIBS=OFF", "-DGGML_NATIVE=OFF", "-DLLAMA_OPENSSL=OFF",
               "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF", "-DLLAMA_BUILD_SERVER=OFF"]


class LlamaCppError(RuntimeError):
    """llama.cpp is missing or could not be built; the message says what and where."""


def problem(folder: Path) -> str | None:
    """Why ``folder`` is not a llama.cpp Unsloth can use, or None when it is."""
    quantize = folder / "llama-quantize"
    if not quantize.is_file() or not os.access(quantize, os.X_OK):
        return f"no executable {quantize}"
    try:
        run = subprocess.run([str(quantize), "--help"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"{quantize} does not run: {err}"
    if "usage" not in (run.stdout + run.stderr).lower():
        return f"{quantize} does not run (exit {run.returncode}): {(run.stderr or run.stdout)[-300:]}"
    missing = [name for name in NEEDED if not (folder / name).exists()]
    return f"{folder} lacks {missing}" if missing else None


def llama_cpp_dir() -> Path | None:
    """Return a usable llama.cpp folder and point Unsloth at it, building it once if needed (None on Colab)."""
    if in_colab():
        return None
    chosen = os.environ.get("UNSLOTH_LLAMA_CPP_PATH")
    if chosen:  # the user's choice: use it or say why not, never replace it silently
        why = problem(Path(chosen))
        if why:
            raise LlamaCppError(f"UNSLOTH_LLAMA_CPP_PATH={chosen} is not usable: {why}. Fix it, or unset it "
                                f"to let the course build llama.cpp into {cache_dir()}.")
        return _use(Path(chosen))
    cached = cache_dir() / f"llama.cpp-{VERSION}"
    for folder in (UNSLOTH_DEFAULT, cached):
        if folder.exists() and problem(folder) is None:
            return _use(folder)
    return _use(build(cached))


def _use(folder: Path) -> Path:  # tell Unsloth, and check it has not already looked elsewhere
    os.environ["UNSLOTH_LLAMA_CPP_PATH"] = str(folder)
    zoo = sys.modules.get("unsloth_zoo.llama_cpp")
    if zoo is not None and Path(zoo.LLAMA_CPP_DEFAULT_DIR) != folder:
        raise LlamaCppError(f"Unsloth has already read its llama.cpp folder ({zoo.LLAMA_CPP_DEFAULT_DIR}), not "
                            f"{folder}. Restart Python and call llama_cpp_dir() before the first GGUF export.")
    return folder


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
        raise LlamaCppError(f"cannot build llama.cpp: {' and '.join(missing)} not found on PATH (Debian/Ubuntu: "
                            f"apt-get install cmake g++), or set UNSLOTH_LLAMA_CPP_PATH to a built llama.cpp.")
    dest.parent.mkdir(parents=True, exist_ok=True)
    log = dest.parent / f"{dest.name}-build.log"
    log.write_text("")
    start = time.time()
    print(f"Building llama-quantize from llama-cpp-python {VERSION} into {dest}, once: about 5 minutes on 2 free "
          f"CPU cores, longer on a busy machine (log: {log}) ...", flush=True)
    with tempfile.TemporaryDirectory(prefix=f".{dest.name}.tmp-", dir=dest.parent) as tmp:
        tmp = Path(tmp)
        _run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", "llama-cpp-python", "-d", str(tmp),
              f"llama-cpp-python=={VERSION}"], log, "downloading the llama-cpp-python source package")
        with tarfile.open(next(tmp.glob("llama_cpp_python-*.tar.gz"))) as sdist:
            sdist.extractall(tmp, filter="data")
        source = tmp / f"llama_cpp_python-{VERSION}" / "vendor" / "llama.cpp"
        absent = [name for name in NEEDED if not (source / name).exists()]
        if absent:
            raise LlamaCppError(f"llama-cpp-python {VERSION} from PyPI has no {absent} in vendor/llama.cpp/")
        for name in UNUSED:
            shutil.rmtree(source / name, ignore_errors=True)
        _run(["cmake", "-S", str(source), "-B", str(tmp / "build"), *CMAKE_FLAGS], log, "cmake configure")
        _run(["cmake", "--build", str(tmp / "build"), "--target", "llama-quantize", "-j", str(os.cpu_count() or 1)],
             log, "building llama-quantize")
        shutil.copy2(tmp / "build" / "bin" / "llama-quantize", source / "llama-quantize")  # where Unsloth looks
        why = problem(source)
        if why:
            raise LlamaCppError(f"the build finished but is not usable: {why}; the log is {log}")
        if dest.exists() and problem(dest) is None:  # another process finished first
            return dest
        shutil.rmtree(dest, ignore_errors=True)  # a broken earlier attempt
        os.replace(source, dest)  # only a complete folder ever appears at dest
    print(f"llama.cpp is ready in {dest} (built in {time.time() - start:.0f} s).", flush=True)
    return dest
