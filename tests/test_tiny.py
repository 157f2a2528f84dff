"""The embedded tiny model: deterministic, small, digit-splitting, GGUF-ready, and loadable by Unsloth."""

import gzip
import hashlib
import json
import shutil
from pathlib import Path

import pytest

from helpers import tiny
from helpers.paths import DATA_DIR
from tools.bench import count_parameters

pytestmark = pytest.mark.slow  # make test-fast leaves these out


def digest(folder: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.iterdir())
        if p.name != "course_model.json"
    }  # the marker records the build time


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    return tiny.build_tiny_model(root / "a", steps=3), tiny.build_tiny_model(root / "b", steps=3)


def test_build_is_deterministic(built):
    a, b = built
    assert digest(a) == digest(b)
    marker = json.loads((a / "course_model.json").read_text())
    assert marker["pretrain"]["steps"] == 3 and len(marker["pretrain_loss"]) == 1


def test_under_one_million_parameters(built):
    assert 100_000 < count_parameters(built[0]) < 1_000_000


def test_config_ties_embeddings(built):
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(built[0])
    assert config.initializer_range == pytest.approx(tiny.CONFIG["initializer_range"])
    assert config.tie_word_embeddings and config.model_type == "llama"
    assert config.vocab_size == tiny.VOCAB_SIZE


def test_tokenizer_splits_digits_and_round_trips(built):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(built[0])
    pieces = tok.tokenize("52000 g")
    assert [p for p in pieces if p.strip("▁").isdigit()] == ["5", "2", "0", "0", "0"]
    text = '### Instruction:\nExtract {"name": "Zoe", "age": 31}  twice\n\n'
    assert tok.decode(tok(text, add_special_tokens=False)["input_ids"]) == text
    assert tok.eos_token and tok.pad_token and tok.eos_token_id != tok.pad_token_id


def test_chat_tokens_are_single_special_tokens_inside_the_vocabulary(built):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(built[0])
    for token in tiny.CHAT_TOKENS:
        ids = tok(f"a{token}b", add_special_tokens=False)["input_ids"]
        assert (
            tok.convert_tokens_to_ids(token) in ids
            and tok.convert_tokens_to_ids(token) < tiny.VOCAB_SIZE
        )
    assert len(tok) == tiny.VOCAB_SIZE
    assert (
        built[0] / "tokenizer.model"
    ).is_file()  # llama.cpp's converter takes the SentencePiece route


def test_carry_sentencepiece_model_copies_it_on_save(built, tmp_path):
    from transformers import AutoTokenizer

    tok = tiny.carry_sentencepiece_model(AutoTokenizer.from_pretrained(built[0]), built[0])
    tok.save_pretrained(tmp_path / "saved")
    assert (tmp_path / "saved" / "tokenizer.model").read_bytes() == (
        built[0] / "tokenizer.model"
    ).read_bytes()
    plain = AutoTokenizer.from_pretrained(built[0])
    plain.save_pretrained(tmp_path / "plain")
    assert not (tmp_path / "plain" / "tokenizer.model").exists()  # why the carry is needed


def test_pretraining_text_leaves_out_every_held_out_input():
    """No held-out input is stated as an item of its own (the data card's rule, as for the training set): a number,
    quantity or pair may appear only inside a longer one ("828 min" holds "828 mi"), a message only after a greeting."""
    import re

    docs = "\n".join(tiny.pretraining_text())
    records = [
        json.loads(line) for line in (DATA_DIR / "eval.jsonl").read_text().splitlines() if line
    ]
    stated = []
    for r in records:
        for m in re.finditer(re.escape(r["input"]), docs):
            before, after = docs[max(0, m.start() - 2) : m.start()], docs[m.end() : m.end() + 1]
            if re.match(r"\w", after) or re.search(r"\w$", before):
                continue  # part of a longer number or word
            if r["family"] == "classify_json" and before in (", ", "! ", ". "):
                continue  # a greeting comes first: another message
            stated.append(r["input"])
    assert stated == []


def test_pretraining_file_is_what_the_generator_writes(tmp_path):
    from tools.tiny_corpus import write

    shutil.copy(DATA_DIR / "eval.jsonl", tmp_path / "eval.jsonl")
    regenerated = gzip.decompress(write(tmp_path).read_bytes())
    assert regenerated == gzip.decompress((DATA_DIR / tiny.CORPUS).read_bytes())


def test_cache_key_follows_the_data(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path / "cache"))
    data = tmp_path / "data"
    data.mkdir()
    corpus = data / tiny.CORPUS
    corpus.write_bytes(gzip.compress(b'{"text": "12 is even."}\n' * 50))
    first = tiny.tiny_model_path(data, steps=2)
    assert first.parent == tmp_path / "cache" and (first / "config.json").exists()
    assert tiny.tiny_model_path(data, steps=2) == first  # reused, not rebuilt
    corpus.write_bytes(gzip.compress(b'{"text": "13 is odd."}\n' * 50))
    assert tiny.tiny_model_path(data, steps=2) != first


def test_unsloth_loads_it_with_the_course_call(built):
    from unsloth import FastLanguageModel

    model, tokenizer = FastLanguageModel.from_pretrained(
        model_name=str(built[0]), max_seq_length=2048, dtype=None, load_in_4bit=True
    )
    assert model.config.vocab_size == len(tokenizer)
