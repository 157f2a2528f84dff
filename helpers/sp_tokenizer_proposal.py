"""Proposal for helpers/tiny.py: a SentencePiece tokenizer that llama.cpp's GGUF converter accepts.

The byte-level BPE tokenizer built with ``tokenizers`` (Digits + ByteLevel pre-tokenizer) cannot be
exported: convert_hf_to_gguf.py identifies BPE pre-tokenizers by a hash of their output and refuses
unknown ones. A SentencePiece model (``tokenizer.model``) takes the converter's SentencePiece route
instead, which needs no hash. Tested with sentencepiece 0.2.3, transformers 5.17.0, unsloth 2026.10.9
and the llama.cpp vendored in llama-cpp-python 0.3.36 (see docs/notes-gguf.md).

The choices, and why:

- ``model_type="bpe"``, ``split_digits=True`` (one token per digit, as before), ``byte_fallback=True``
  (an unseen character becomes its UTF-8 bytes, never ``<unk>``).
- ``normalization_rule_name="identity"``, ``remove_extra_whitespaces=False``: the text is not rewritten,
  so double spaces and the prompt's newlines survive encode/decode.
- ``add_dummy_prefix=False``: no space is added at the start. llama.cpp adds that space again after
  every special token while transformers adds it only once, so with it the two would disagree on
  chat-formatted text; without it they agree token for token.
- Every special token lives in the SentencePiece model itself, as a control piece: bos/eos/pad
  (ids 1, 2, 3; ``<unk>`` is 0) and the Llama-3 chat tokens as ``control_symbols`` (ids 4-6). The
  vocabulary is then exactly ``vocab_size``, transformers marks all of them special, and the
  converter types them CONTROL in the GGUF. The two alternatives fail in llama.cpp when the folder is
  converted as transformers 5 saves it (no ``added_tokens_decoder`` in tokenizer_config.json):
  ``user_defined_symbols`` come out as NORMAL tokens, and chat tokens added in transformers
  (ids 1024+) come out as ``[PAD1024]``... placeholders.
- transformers 5 never writes ``tokenizer.model`` in ``save_pretrained`` (it writes tokenizer.json),
  so the file is written here into ``out_dir``. Later saves must carry it too, or the converter reads
  tokenizer.json instead and llama.cpp tokenizes differently: Unsloth's GPU route copies it (read in
  its source, not run), its CPU route does not, hence :func:`carry_sentencepiece_model`.

Example (``_corpus`` is helpers.tiny's: the Alpaca prompt and the training records):
    >>> tok = build_sentencepiece_tokenizer(_corpus(_corpus_files(DATA_DIR)), "/tmp/tok")  # doctest: +SKIP
    >>> tok.convert_ids_to_tokens(tok("Add 12 and 3.")["input_ids"])  # doctest: +SKIP
    ['<|begin_of_text|>', 'A', 'dd', '▁', '1', '2', '▁and', '▁', '3', '.']
"""

from __future__ import annotations

import io
from pathlib import Path

SPECIAL = {"unk_token": "<unk>", "bos_token": "<|begin_of_text|>", "eos_token": "<|end_of_text|>",
           "pad_token": "<|pad|>"}
CHAT_TOKENS = ["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]  # for get_chat_template(..., "llama-3")


def build_sentencepiece_tokenizer(texts: list[str], out_dir: str | Path, vocab_size: int = 1024,
                                  model_max_length: int = 2048):
    """Train a SentencePiece BPE model on ``texts``, save it with its transformers wrapper in ``out_dir``.

    Returns the ``LlamaTokenizer`` (a fast, tokenizers-backed tokenizer); ``out_dir`` then holds
    tokenizer.model, tokenizer.json and tokenizer_config.json.
    """
    import sentencepiece as spm
    from transformers import LlamaTokenizer

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(texts), model_writer=model, model_type="bpe", vocab_size=vocab_size,
        split_digits=True, byte_fallback=True, character_coverage=1.0,
        normalization_rule_name="identity", remove_extra_whitespaces=False, add_dummy_prefix=False,
        unk_id=0, bos_id=1, eos_id=2, pad_id=3,
        unk_piece=SPECIAL["unk_token"], bos_piece=SPECIAL["bos_token"], eos_piece=SPECIAL["eos_token"],
        pad_piece=SPECIAL["pad_token"], control_symbols=CHAT_TOKENS,
        max_sentence_length=1 << 16, num_threads=1, minloglevel=2,  # quiet, and the same model on every run
    )
    (out_dir / "tokenizer.model").write_bytes(model.getvalue())
    # from_pretrained on a folder with only tokenizer.model converts it (SentencePieceExtractor);
    # LlamaTokenizer(vocab_file=...) does not, it builds an empty 4-token vocabulary.
    tokenizer = LlamaTokenizer.from_pretrained(
        str(out_dir), add_prefix_space=False, legacy=False, add_bos_token=True, add_eos_token=False,
        model_max_length=model_max_length, **SPECIAL,
    )
    tokenizer.padding_side = "right"
    tokenizer.save_pretrained(str(out_dir))  # tokenizer.json + tokenizer_config.json; tokenizer.model stays
    return tokenizer


def carry_sentencepiece_model(tokenizer, source: str | Path | None = None):
    """Make ``tokenizer.save_pretrained`` also copy tokenizer.model from ``source`` (default: where it was loaded).

    transformers 5 writes only tokenizer.json, and Unsloth's CPU route (save_pretrained_merged,
    save_pretrained_gguf) saves the tokenizer with that plain method. Without tokenizer.model the
    GGUF converter falls back to reading tokenizer.json, and llama.cpp then splits text differently
    from transformers (2,703 of 2,705 course texts differed). Returns the tokenizer.
    """
    import shutil

    model_file = Path(source or tokenizer.name_or_path) / "tokenizer.model"
    if not model_file.is_file() or getattr(tokenizer, "_carries_spm", False):
        return tokenizer
    save = tokenizer.save_pretrained

    def save_pretrained(save_directory, *args, **kwargs):
        written = save(save_directory, *args, **kwargs)
        target = Path(save_directory) / "tokenizer.model"
        if target.resolve() != model_file.resolve():
            shutil.copy2(model_file, target)
        return written

    tokenizer.save_pretrained = save_pretrained
    tokenizer._carries_spm = True
    return tokenizer
