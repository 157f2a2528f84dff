"""The embedded tiny Llama: a SentencePiece tokenizer, a LlamaConfig under 1M parameters and a short
pretraining run, so the course's LoRA fine-tune starts, like the 8B model's, from a base that knows things.

Nothing is downloaded. The pretraining text is data/pretrain.jsonl.gz: plain sentences about numbers,
quantities, reviews and messages, never in the Alpaca layout and never about a held-out input (made by
``python -m tools.tiny_corpus``). The base learns the facts, not the instruction format: that is notebook
04's job. Same inputs, same bytes; built once per machine (minutes on 2 cores) and cached in ``cache_dir()``.

Example:
    >>> tiny_model_path().name.startswith("tiny-llama-")  # doctest: +SKIP
    True
"""

import gzip
import hashlib
import io
import json
import math
import os
import shutil
import tempfile
import time
from pathlib import Path

from helpers.paths import DATA_DIR, cache_dir

VERSION = 3  # bump when the recipe below changes, so caches rebuild
VOCAB_SIZE = 1024
CONFIG = dict(
    hidden_size=128,
    intermediate_size=344,
    num_hidden_layers=4,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=2048,
    initializer_range=0.02,
    tie_word_embeddings=True,
    rms_norm_eps=1e-5,
    rope_theta=10000.0,
)
SPECIAL = {
    "unk_token": "<unk>",
    "bos_token": "<|begin_of_text|>",
    "eos_token": "<|end_of_text|>",
    "pad_token": "<|pad|>",
}
CHAT_TOKENS = [
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
]  # get_chat_template(..., "llama-3")
PRETRAIN = dict(steps=1000, batch_size=16, block_size=128, learning_rate=3e-3, warmup=40)
SEED = 3407
CORPUS = "pretrain.jsonl.gz"


def pretraining_text(data_dir: Path = DATA_DIR) -> list[str]:
    """The pretraining documents, in order."""
    with gzip.open(data_dir / CORPUS, "rt", encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f if line.strip()]


def _fingerprint(data_dir: Path, steps: int) -> str:
    h = hashlib.sha256(
        json.dumps(
            [VERSION, CONFIG, VOCAB_SIZE, SPECIAL, CHAT_TOKENS, PRETRAIN, SEED, steps],
            sort_keys=True,
        ).encode()
    )
    h.update("\n".join(pretraining_text(data_dir)).encode())
    return h.hexdigest()[:12]


def build_tokenizer(texts: list[str], out_dir: Path):
    """Train a SentencePiece BPE model on ``texts`` into ``out_dir/tokenizer.model``; return its LlamaTokenizer.

    Digits and newlines are single tokens (so "### Response:\n" ends on the same token in a prompt as in
    training; merged with what follows, a prompt would end mid-token), unknown characters fall back to bytes,
    the text is not normalised and no space is prepended (llama.cpp would add it after every special token,
    transformers only once). The special and chat tokens are control pieces of the model itself, so llama.cpp's
    converter types them CONTROL and the vocabulary is exactly VOCAB_SIZE."""
    import sentencepiece as spm
    from transformers import LlamaTokenizer

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(texts),
        model_writer=model,
        model_type="bpe",
        vocab_size=VOCAB_SIZE,
        split_digits=True,
        byte_fallback=True,
        character_coverage=1.0,
        hard_vocab_limit=False,
        normalization_rule_name="identity",
        remove_extra_whitespaces=False,
        add_dummy_prefix=False,
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=3,
        unk_piece=SPECIAL["unk_token"],
        bos_piece=SPECIAL["bos_token"],
        eos_piece=SPECIAL["eos_token"],
        pad_piece=SPECIAL["pad_token"],
        control_symbols=CHAT_TOKENS,
        user_defined_symbols=["\n"],
        max_sentence_length=1 << 16,
        num_threads=1,
        shuffle_input_sentence=False,
        minloglevel=2,
    )  # one thread, no shuffle: same model every run
    (out_dir / "tokenizer.model").write_bytes(model.getvalue())
    tokenizer = LlamaTokenizer.from_pretrained(
        str(out_dir),
        add_prefix_space=False,
        legacy=False,
        add_bos_token=True,
        add_eos_token=False,
        model_max_length=CONFIG["max_position_embeddings"],
        **SPECIAL,
    )
    tokenizer.padding_side = "right"
    return tokenizer


def pretrain(model, tokenizer, documents: list[str], steps: int) -> list[float]:
    """Full-parameter next-token training on ``documents`` packed into blocks; the loss every 100 steps."""
    import torch

    p = PRETRAIN
    ids = [
        i
        for d in documents
        for i in [
            tokenizer.bos_token_id,
            *tokenizer.encode(d, add_special_tokens=False),
            tokenizer.eos_token_id,
        ]
    ]
    blocks = torch.tensor(ids[: len(ids) // p["block_size"] * p["block_size"]]).view(
        -1, p["block_size"]
    )
    generator = torch.Generator().manual_seed(SEED)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=p["learning_rate"], betas=(0.9, 0.95), weight_decay=0.1
    )
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: min((s + 1) / p["warmup"], 0.5 * (1 + math.cos(math.pi * s / max(steps, 1)))),
    )
    model.train()
    losses, start = [], time.perf_counter()
    for step in range(steps):
        batch = blocks[torch.randint(len(blocks), (p["batch_size"],), generator=generator)]
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        if (step + 1) % 100 == 0 or step + 1 == steps:
            losses.append(round(loss.item(), 4))
            print(
                f"  pretraining step {step + 1}/{steps}: loss {loss.item():.3f} "
                f"({time.perf_counter() - start:.0f} s)",
                flush=True,
            )
    model.eval()
    return losses


def build_tiny_model(out_dir: Path, data_dir: Path = DATA_DIR, steps: int | None = None) -> Path:
    """Build tokenizer + pretrained Llama into ``out_dir`` (written atomically) and return it."""
    import torch
    import unsloth  # noqa: F401  (Unsloth must be imported before transformers)
    from transformers import LlamaConfig, LlamaForCausalLM

    steps = PRETRAIN["steps"] if steps is None else steps
    start = time.perf_counter()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=out_dir.name + ".", dir=out_dir.parent))
    try:
        documents = pretraining_text(data_dir)
        tokenizer = build_tokenizer(documents, tmp)
        config = LlamaConfig(
            vocab_size=len(tokenizer),
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
            **CONFIG,
        )
        print(
            f"Pretraining the tiny model once ({steps} steps on {len(documents):,} documents); "
            f"it is cached in {out_dir.parent}.",
            flush=True,
        )
        threads = torch.get_num_threads()
        with torch.random.fork_rng():
            torch.set_num_threads(
                1
            )  # one thread: the same bytes on every machine with this CPU and torch
            torch.manual_seed(SEED)
            model = LlamaForCausalLM(config)
            losses = pretrain(model, tokenizer, documents, steps)
        torch.set_num_threads(threads)
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)  # tokenizer.json, its config; tokenizer.model stays beside
        marker = {
            "recipe_version": VERSION,
            "pretrain": {**PRETRAIN, "steps": steps},
            "pretrain_loss": losses,
            "build_seconds": round(time.perf_counter() - start),
        }
        (tmp / "course_model.json").write_text(json.dumps(marker, indent=1) + "\n")
        if not out_dir.exists():
            os.replace(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"Built the tiny model in {time.perf_counter() - start:.0f} s: {out_dir}", flush=True)
    return out_dir


def tiny_model_path(data_dir: Path = DATA_DIR, steps: int | None = None) -> Path:
    """Return the cached tiny model for the current data, building it (once, a few minutes) if needed."""
    steps = PRETRAIN["steps"] if steps is None else steps
    out = cache_dir() / f"tiny-llama-{_fingerprint(data_dir, steps)}"
    if not (out / "config.json").exists():
        build_tiny_model(out, data_dir, steps)
    return out


def carry_sentencepiece_model(tokenizer, source: str | Path):
    """Make ``tokenizer.save_pretrained`` also copy ``source``/tokenizer.model; returns the tokenizer.
    transformers 5 writes only tokenizer.json, and Unsloth's CPU export saves the tokenizer that way; without
    tokenizer.model llama.cpp's converter reads tokenizer.json and llama.cpp then splits text differently."""
    model_file = Path(source) / "tokenizer.model"
    save = type(
        tokenizer
    ).save_pretrained  # the class's: Unsloth's GPU export wraps the instance's and calls it back

    def save_pretrained(save_directory, *args, **kwargs):
        written = save(tokenizer, save_directory, *args, **kwargs)
        if (
            model_file.is_file()
            and (Path(save_directory) / "tokenizer.model").resolve() != model_file.resolve()
        ):
            shutil.copy2(model_file, Path(save_directory) / "tokenizer.model")
        return written

    tokenizer.save_pretrained = save_pretrained
    return tokenizer
