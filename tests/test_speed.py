"""helpers.speed times generation on exactly the tokens asked for, and refuses to time transformers under Unsloth."""

import sys

import pytest
import torch
from transformers import BatchEncoding

from helpers import speed


class CountingModel:
    """generate() as transformers returns it: the prompt's ids, then new ones (``short`` fewer than asked)."""

    device = "cpu"

    def __init__(self, short: int = 0):
        self.short, self.calls = short, []

    def generate(self, input_ids, max_new_tokens, do_sample, min_new_tokens=0, **_):
        self.calls.append((max_new_tokens, min_new_tokens, do_sample))
        return torch.cat(
            [input_ids, torch.zeros((1, max_new_tokens - self.short), dtype=torch.long)], dim=1
        )


class Tokenizer:
    """Five prompt tokens per text, as a transformers tokenizer returns them."""

    pad_token_id = 0

    def __call__(self, texts, return_tensors):
        return BatchEncoding({"input_ids": torch.ones((len(texts), 5), dtype=torch.long)})


tokenizer = Tokenizer()


def test_speed_is_timed_on_exactly_the_new_tokens_after_a_warm_up():
    model = CountingModel()
    assert speed.generation_speed(model, tokenizer, "a prompt", new_tokens=8) > 0
    warm_up, timed = (4, 0, False), (8, 8, False)  # (max_new_tokens, min_new_tokens, do_sample)
    assert model.calls == [warm_up, timed, timed]


def test_a_run_that_stops_early_is_an_error_not_a_speed():
    with pytest.raises(RuntimeError, match="asked for 8 new tokens, generate made 7"):
        speed.generation_speed(CountingModel(short=1), tokenizer, "a prompt", new_tokens=8)


def test_the_plain_run_refuses_a_process_that_imported_unsloth(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "unsloth", object())
    with pytest.raises(RuntimeError, match="without Unsloth"):
        speed.main([str(tmp_path), "--prompt", "p"])
