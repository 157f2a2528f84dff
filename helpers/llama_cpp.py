"""GGUF and llama.cpp for notebook 08: find the llama.cpp Unsloth exports with, guard the export, find the GGUF
files, and write and read an Ollama Modelfile.

    >>> modelfile = parse_modelfile(alpaca_modelfile("m.gguf", "Q: {} In: {} A: {}", stops=["</s>"]))
    >>> modelfile["FROM"], modelfile["stop"], render_template(modelfile["TEMPLATE"], "2+2? In: 4")
    ('./m.gguf', ['</s>'], 'Q: 2+2? In: 4 A: ')
"""

import ast
import contextlib
import difflib
import errno
import importlib.util
import os
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from helpers.paths import cache_dir
from helpers.runtime import in_colab

VERSION = "0.3.36"  # the llama-cpp-python source package whose llama.cpp the course was tested with
NEEDED = (
    "convert_hf_to_gguf.py",
    "convert_lora_to_gguf.py",
    "conversion",
    "gguf-py",
    "src",
    "ggml",
    "common",
)
UNSLOTH_DEFAULT = Path.home() / ".unsloth" / "llama.cpp"


class LlamaCppError(RuntimeError):
    """llama.cpp is missing, or an export failed; the message says what and where."""


def cached_dir() -> Path:
    """Where ``tools/llama_cpp_build.py`` keeps its llama.cpp: the course's cache."""
    return cache_dir() / f"llama.cpp-{VERSION}"


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
        return (
            f"{quantize} does not run (exit {run.returncode}): {(run.stderr or run.stdout)[-300:]}"
        )
    missing = [name for name in NEEDED if not (folder / name).exists()]
    return f"{folder} lacks {missing}" if missing else None


def llama_cpp_dir() -> Path | None:
    """A usable llama.cpp folder, with Unsloth pointed at it; None on Colab (Unsloth builds its own there)
    unless ``UNSLOTH_LLAMA_CPP_PATH`` names one."""
    chosen = os.environ.get("UNSLOTH_LLAMA_CPP_PATH")
    if in_colab() and not chosen:
        return None
    why = {f: problem(f) for f in ([Path(chosen)] if chosen else [UNSLOTH_DEFAULT, cached_dir()])}
    if (
        chosen and why[Path(chosen)]
    ):  # the user's choice: use it or say why not, never replace it silently
        raise LlamaCppError(
            f"UNSLOTH_LLAMA_CPP_PATH={chosen} is not usable: {why[Path(chosen)]}. Fix it, or unset it "
            f"and build the course's llama.cpp in {cached_dir()}: `python -m tools.llama_cpp_build`."
        )
    found = next((f for f, wrong in why.items() if wrong is None), None)
    if found is None:
        raise LlamaCppError(
            f"no usable llama.cpp ({'; '.join(why.values())}), and Unsloth cannot clone one offline: "
            f"run `python -m tools.llama_cpp_build` (or `make setup`) to build it in {cached_dir()}, "
            f"about 4 minutes."
        )
    os.environ["UNSLOTH_LLAMA_CPP_PATH"] = str(found)
    zoo = sys.modules.get("unsloth_zoo.llama_cpp")
    if zoo is not None and Path(zoo.LLAMA_CPP_DEFAULT_DIR) != found:
        raise LlamaCppError(
            f"Unsloth has already read its llama.cpp folder ({zoo.LLAMA_CPP_DEFAULT_DIR}), not "
            f"{found}. Restart Python and call llama_cpp_dir() before the first GGUF export."
        )
    return found


def allowed_quants() -> list[str]:
    """Unsloth's GGUF quantization methods (``unsloth.save.ALLOWED_QUANTS``), read from its source
    while Unsloth is not loaded: importing it takes half a minute, too long to wait for a typo."""
    if "unsloth.save" in sys.modules:
        return list(sys.modules["unsloth.save"].ALLOWED_QUANTS)
    source = Path(importlib.util.find_spec("unsloth").origin).with_name("save.py")
    for node in ast.parse(source.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "ALLOWED_QUANTS":
            return list(ast.literal_eval(node.value))
    from unsloth.save import ALLOWED_QUANTS  # an Unsloth that builds the table another way

    return list(ALLOWED_QUANTS)


def check_quantization(methods: Sequence[str]) -> None:
    """Raise LlamaCppError for a quantization method Unsloth does not know, naming the closest ones."""
    allowed = allowed_quants()
    for method in methods:
        if method not in allowed:
            close = difflib.get_close_matches(method, allowed, n=3)
            raise LlamaCppError(
                f"unknown GGUF quantization method {method!r}"
                + (f"; did you mean {' or '.join(map(repr, close))}?" if close else ".")
                + f" Unsloth knows: {', '.join(allowed)}"
            )


@contextlib.contextmanager
def export_errors(folder: str | Path):
    """Around an export: a full disk or a failed conversion becomes a LlamaCppError naming ``folder``."""
    try:
        yield
    except (
        OSError,
        RuntimeError,
        subprocess.CalledProcessError,
    ) as err:  # a converter's output is in its message
        full = getattr(err, "errno", None) == errno.ENOSPC or "No space left on device" in str(err)
        if isinstance(err, LlamaCppError) or (isinstance(err, OSError) and not full):
            raise
        if full:
            raise LlamaCppError(
                f"{folder}: the disk filled up during the export "
                f"({getattr(err, 'filename', None) or 'a file'}); nothing was kept. Free space (the 8B "
                f"model needs about 16 GB for the merge and 8.5 GB for q8_0), run it again."
            ) from None
        last = str(err).strip().splitlines()[-1:] or [type(err).__name__]
        raise LlamaCppError(
            f"{folder}: the export failed ({type(err).__name__}: {last[0]}); nothing was kept, "
            f"the full error is above."
        ) from err


def gguf_files(folder: str | Path) -> dict[str, Path]:
    """The GGUF files under ``folder`` by quantization method: ``{"q8_0": .../model.Q8_0.gguf, ...}``."""
    return {
        p.name[: -len(".gguf")].rsplit(".", 1)[-1].lower(): p
        for p in sorted(Path(folder).rglob("*.gguf"))
    }


# How notebook 08 scores a GGUF file with llama.cpp (greedy, no repetition penalty), as Ollama PARAMETERs. Ollama's
# own defaults would answer differently: temperature 0.8, top_k 40, top_p 0.9, repeat_penalty 1.1 over the last
# 64 tokens, prompt included (notebook 05 shows a penalty hurts this data).
SCORED_SAMPLING = {"temperature": 0, "top_k": 1, "repeat_penalty": 1}


def alpaca_modelfile(
    gguf_name: str, alpaca: str, stops: Sequence[str], num_predict: int | None = None
) -> str:
    """An Ollama Modelfile for a model trained on an Alpaca prompt (``{}`` slots: instruction, input, response).
    Ollama's ``{{ .Prompt }}`` goes in the instruction slot; a question with an input passes it inside
    ``.Prompt``, after the input section's heading, as the training text had it. It samples as the scored
    llama.cpp run did (``SCORED_SAMPLING``) and stops after ``num_predict`` new tokens when given."""
    head, _, response, _ = alpaca.split("{}")
    limit = [f"PARAMETER num_predict {num_predict}"] if num_predict is not None else []
    return (
        "\n".join(
            [
                f"FROM ./{gguf_name}",
                f'TEMPLATE """{head}{{{{ .Prompt }}}}{response}"""',
                *(f'PARAMETER stop "{stop}"' for stop in stops),
                "# greedy and unpenalised, as the GGUF was scored (Ollama's defaults sample and penalise repeats)",
                *(f"PARAMETER {name} {value}" for name, value in SCORED_SAMPLING.items()),
                *limit,
            ]
        )
        + "\n"
    )


def parse_modelfile(text: str) -> dict:
    """The Modelfile's FROM, TEMPLATE and SYSTEM, its stop strings (``stop``) and other PARAMETERs; ValueError names
    the first line that is none of these (nor blank, nor a ``#`` comment), e.g. an unclosed triple quote."""
    out: dict = {"stop": []}
    pattern = (
        r'^(FROM|TEMPLATE|SYSTEM|PARAMETER)[ \t]+("""(.*?)"""|(?!""")([^\n]*[^\s][^\n]*))[ \t]*$'
    )
    # blank out what the pattern explains, keeping the line numbers of what is left
    unexplained = re.sub(pattern, lambda m: "\n" * m[0].count("\n"), text, flags=re.M | re.S)
    for number, line in enumerate(unexplained.splitlines(), 1):
        if line.strip() and not line.lstrip().startswith("#"):
            raise ValueError(
                f"Modelfile line {number}: expected FROM, TEMPLATE, SYSTEM or PARAMETER and a value, "
                f"got {line[:60]!r}"
            )
    for m in re.finditer(pattern, text, flags=re.M | re.S):
        word, value = m.group(1), m.group(3) if m.group(3) is not None else m.group(4).strip()
        if word != "PARAMETER":
            out[word] = value
            continue
        name, _, arg = value.partition(" ")
        arg = arg.strip().strip('"')
        out["stop"].append(arg) if name == "stop" else out.setdefault(name, arg)
    return out


def render_template(template: str, prompt: str) -> str:
    """What Ollama sends the model for ``prompt`` with this TEMPLATE (only ``{{ .Prompt }}`` is supported here)."""
    actions = set(re.findall(r"{{.*?}}", template))
    if actions - {"{{ .Prompt }}"}:
        raise ValueError(f"template actions other than {{{{ .Prompt }}}}: {sorted(actions)}")
    return template.replace("{{ .Prompt }}", prompt)
