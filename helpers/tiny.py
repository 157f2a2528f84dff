"""Build the embedded tiny Llama: a course-trained BPE tokenizer and a LlamaConfig under 1M parameters.

No hub download is needed: the tokenizer is trained on the course data (digits split into single
tokens, so numbers are learnable) and the weights are initialised from a fixed seed, so the same
inputs give the same model. The result is cached under ``cache_dir()`` and reused.

Example:
    >>> path = tiny_model_path()    # doctest: +SKIP
    >>> path.name.startswith("tiny-llama-")  # doctest: +SKIP
    True
"""

from __future__ import annotations

import hashlib
import math
import json
import os
import shutil
import tempfile
from pathlib import Path

from helpers.data import ALPACA_PROMPT
from helpers.paths import DATA_DIR

VERSION = 1  # bump when the recipe below changes, so caches rebuild
VOCAB_SIZE = 1024
CONFIG = dict(
    hidden_size=128,
    intermediate_size=344,
    num_hidden_layers=4,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=2048,
    initializer_range=0.1,  # with 0.02 and tied embeddings LoRA cannot move the loss below ~4
    tie_word_embeddings=True,
    rms_norm_eps=1e-5,
    rope_theta=10000.0,
)
SPECIAL = {"bos_token": "<|begin_of_text|>", "eos_token": "<|end_of_text|>", "pad_token": "<|pad|>"}
SEED = 3407


def cache_dir() -> Path:
    """Where built models live: $COURSE_CACHE, else ~/.cache/unsloth-course."""
    return Path(os.environ.get("COURSE_CACHE", Path.home() / ".cache" / "unsloth-course"))


def _corpus_files(data_dir: Path) -> list[Path]:
    """The tokenizer learns from the training set only (the eval set stays unseen)."""
    return [data_dir / "train.jsonl"]


def _fingerprint(files: list[Path]) -> str:
    h = hashlib.sha256(f"v{VERSION}{json.dumps(CONFIG, sort_keys=True)}{VOCAB_SIZE}".encode())
    for f in files:
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:12]


def _corpus(files: list[Path]) -> list[str]:
    texts = [ALPACA_PROMPT]
    for f in files:
        for line in f.read_text(encoding="utf-8-sig").splitlines():
            if line.strip():
                rec = json.loads(line)
                texts.append(" ".join(str(rec.get(k, "")) for k in ("instruction", "input", "output")))
    return texts


def build_tokenizer(texts: list[str]):
    """Train a byte-level BPE tokenizer with single-digit tokens on ``texts``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=list(SPECIAL.values()),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    from tokenizers.processors import TemplateProcessing

    bos = SPECIAL["bos_token"]
    tok.post_processor = TemplateProcessing(
        single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, tok.token_to_id(bos))]
    )
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, model_max_length=CONFIG["max_position_embeddings"], **SPECIAL)
    fast.padding_side = "right"
    return fast


def build_tiny_model(out_dir: Path, data_dir: Path = DATA_DIR) -> Path:
    """Build tokenizer + random-weight Llama into ``out_dir`` (written atomically) and return it."""
    import unsloth  # noqa: F401  (Unsloth must be imported before transformers)
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    files = _corpus_files(data_dir)
    tokenizer = build_tokenizer(_corpus(files))
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **CONFIG,
    )
    torch.manual_seed(SEED)
    model = LlamaForCausalLM(config)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=out_dir.name + ".", dir=out_dir.parent))
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / "course_model.json").write_text(json.dumps({"recipe_version": VERSION, "data": [f.name for f in files]}))
    if out_dir.exists():
        shutil.rmtree(tmp)
    else:
        os.replace(tmp, out_dir)
    return out_dir


def tiny_model_path(data_dir: Path = DATA_DIR) -> Path:
    """Return the cached tiny model for the current data, building it (a few seconds) if needed."""
    out = cache_dir() / f"tiny-llama-{_fingerprint(_corpus_files(data_dir))}"
    if not (out / "config.json").exists():
        build_tiny_model(out, data_dir)
    return out


def count_parameters(path: Path) -> int:
    """Parameters of the model stored at ``path`` (read from its safetensors header)."""
    from safetensors import safe_open

    total = 0
    with safe_open(str(path / "model.safetensors"), framework="pt") as f:
        for key in f.keys():
            total += math.prod(f.get_slice(key).get_shape())
    return total
