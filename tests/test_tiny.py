"""The embedded tiny model: deterministic, small, digit-splitting, and loadable by Unsloth."""

import hashlib
from pathlib import Path

import pytest

from helpers import tiny


def digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    return tiny.build_tiny_model(root / "a"), tiny.build_tiny_model(root / "b")


def test_build_is_deterministic(built):
    a, b = built
    assert digest(a) == digest(b)


def test_under_one_million_parameters(built):
    n = tiny.count_parameters(built[0])
    assert 100_000 < n < 1_000_000


def test_config_uses_wide_init_and_tied_embeddings(built):
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(built[0])
    assert config.initializer_range == pytest.approx(0.1)
    assert config.tie_word_embeddings
    assert config.model_type == "llama"


def test_tokenizer_splits_digits_and_round_trips(built):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(built[0])
    pieces = tok.tokenize("52000 g")
    assert [p for p in pieces if p.strip("Ġ").isdigit()] == ["5", "2", "0", "0", "0"]
    text = "Extract {\"name\": \"Zoe\", \"age\": 31}"
    assert tok.decode(tok(text, add_special_tokens=False)["input_ids"]) == text
    assert tok.eos_token and tok.pad_token and tok.eos_token_id != tok.pad_token_id


def test_cache_key_follows_the_data(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path / "cache"))
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.jsonl").write_text('{"instruction": "Say hi.", "output": "hi"}\n')
    first = tiny.tiny_model_path(data)
    assert first.parent == tmp_path / "cache" and (first / "config.json").exists()
    assert tiny.tiny_model_path(data) == first  # reused, not rebuilt
    (data / "train.jsonl").write_text('{"instruction": "Say bye.", "output": "bye"}\n')
    assert tiny.tiny_model_path(data) != first


def test_unsloth_loads_it_with_the_course_call(built):
    from unsloth import FastLanguageModel

    model, tokenizer = FastLanguageModel.from_pretrained(
        model_name=str(built[0]), max_seq_length=2048, dtype=None, load_in_4bit=True
    )
    assert model.config.vocab_size == len(tokenizer)
