"""Untrained chat-token rows: the course's check, and notebook 07 on a base-like model with zero chat rows.

A base model's chat tokens (base Llama-3: <|start_header_id|>, <|end_header_id|>, <|eot_id|>) have zero
embedding and output rows. Unsloth's own check reads only tokenized datasets, so with notebook 07's text dataset
it stays silent; notebook 07 must stop before training with the course's own message that names the fix.
The tiny model stands in for the base here (its speed); it is given zero rows for the three chat tokens.
"""

import shutil
from pathlib import Path

import pytest

from helpers.errors import UntrainedTokensError, check_chat_tokens, zero_rows
from helpers.models import choose_model
from helpers.tiny import CHAT_TOKENS

pytestmark = pytest.mark.slow  # make test-fast leaves these out

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def tiny():
    import unsloth  # noqa: F401
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = choose_model("tiny")
    return path, AutoModelForCausalLM.from_pretrained(path), AutoTokenizer.from_pretrained(path)


@pytest.fixture(scope="module")
def base_like(tiny, tmp_path_factory):
    """A copy of the tiny model whose chat-token rows are zero, as in an untrained base."""
    import torch

    path, model, tokenizer = tiny
    out = tmp_path_factory.mktemp("base-like")
    shutil.copytree(path, out, dirs_exist_ok=True)
    with torch.no_grad():
        for i in tokenizer.convert_tokens_to_ids(CHAT_TOKENS):
            model.get_input_embeddings().weight[i] = 0  # tied: the output row is the same tensor
    model.save_pretrained(out)
    return out, model, tokenizer


def test_a_trained_model_has_no_zero_chat_rows(tiny):
    _, model, tokenizer = tiny
    assert zero_rows(model, tokenizer, CHAT_TOKENS) == []
    check_chat_tokens(model, tokenizer, CHAT_TOKENS)  # no error


def test_zero_chat_rows_are_found_and_stop_with_the_fix(base_like):
    _, model, tokenizer = base_like
    assert zero_rows(model, tokenizer, CHAT_TOKENS) == CHAT_TOKENS
    with pytest.raises(UntrainedTokensError, match="Instruct") as caught:
        check_chat_tokens(model, tokenizer, CHAT_TOKENS, "my-base")
    assert "my-base" in str(caught.value) and "<|eot_id|>" in str(caught.value)


def test_unsloths_own_check_is_silent_on_a_text_dataset(base_like):
    """Why the course checks: fix_untrained_tokens finds nothing in a dataset of text and returns quietly."""
    from datasets import Dataset
    from unsloth_zoo.tokenizer_utils import fix_untrained_tokens

    _, model, tokenizer = base_like
    model.requires_grad_(False)  # LoRA leaves the embeddings frozen
    texts = Dataset.from_dict(
        {"text": ["<|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>"]}
    )
    tokenizer.chat_template = "{{ '<|start_header_id|>' }}"
    fix_untrained_tokens(model, tokenizer, texts)  # silent
    ids = Dataset.from_dict({"input_ids": [tokenizer(texts[0]["text"])["input_ids"]]})
    with pytest.raises(ValueError, match="Untrained tokens"):
        fix_untrained_tokens(model, tokenizer, ids)  # it only sees token ids


def test_notebook_07_stops_before_training_on_zero_chat_rows(base_like, tmp_path):
    import papermill

    folder, _, _ = base_like
    out = tmp_path / "07.ipynb"
    with pytest.raises(papermill.PapermillExecutionError) as caught:
        papermill.execute_notebook(
            str(ROOT / "notebooks" / "07_chat_templates.ipynb"),
            str(out),
            parameters={"COURSE_MODEL": str(folder)},
            cwd=str(ROOT / "notebooks"),
            kernel_name="python3",
            progress_bar=False,
            request_save_on_cell_execute=False,
        )
    assert caught.value.ename == "UntrainedTokensError"
    import json

    cells = json.loads(out.read_text())["cells"]
    ran = [c for c in cells if c["cell_type"] == "code" and c.get("execution_count")]
    assert not any(
        "trainer.train()" in "".join(c["source"]) or "fine_tune(" in "".join(c["source"])
        for c in ran
    )
