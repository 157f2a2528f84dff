"""Scoring: the per-family checkers, the report's numbers, and batched greedy generation.

The checker and report tests are plain Python. The generation tests use the embedded tiny model:
batched, left-padded answers must equal one-prompt-at-a-time answers, and PEFT's
``disable_adapter()`` must give the base model's answers (the "before" score of notebook 06).
"""

import logging
import math

import pytest

from helpers.data import load_alpaca, prompt_for
from helpers.paths import EVAL_FILE
from helpers.scoring import (
    CHECKERS,
    OVERALL,
    Report,
    answer_token_budget,
    checker_for,
    commonest_answers,
    compare,
    field_accuracy,
    is_json_task,
    normalize,
    parse_json_object,
    same_json,
    same_text,
    score,
)


def rec(output, family, instruction="Do it.", input_text=""):
    return {"instruction": instruction, "input": input_text, "output": output, "family": family}


# ------------------------------------------------------------------------------------------ checkers


def test_normalize_trims_and_collapses_whitespace():
    assert normalize("  52000\t g \n") == "52000 g"


@pytest.mark.parametrize(
    "answer, ok",
    [
        ("52000 g", True),
        (" 52000 g\n", True),
        ("52000  g", True),
        ("52000g", False),
        ("52000 kg", False),
        ("5200 g", False),
        ("", False),
    ],
)
def test_same_text(answer, ok):
    assert same_text("52000 g", answer) is ok


@pytest.mark.parametrize(
    "answer, ok",
    [
        ("positive", True),
        ("positive\n", True),
        ("Positive", False),
        ("positive.", False),
        ("positive or negative", False),
        ("negative", False),
        ("", False),
    ],
)
def test_labels_must_match_exactly(answer, ok):
    assert checker_for("sentiment", "positive")("positive", answer) is ok


def test_the_json_family_is_checked_as_json():
    assert checker_for("classify_json", '{"topic": "billing", "urgent": true}') is same_json
    assert checker_for("parity", "odd") is same_text


@pytest.mark.parametrize(
    "answer, ok",
    [
        ('{"name": "Gita", "age": 76}', True),
        ('{"age":76,"name":"Gita"}', True),
        ('{"name": "Gita", "age": "76"}', False),
        ('{"name": "Gita"}', False),
        ('{"name": "Gita", "age": 76, "city": "Tunis"}', False),
        ('{"name": "Gita", "age": 76', False),
        ('["Gita", 76]', False),
        ("Gita, 76", False),
    ],
)
def test_same_json(answer, ok):
    assert same_json('{"name": "Gita", "age": 76}', answer) is ok


def test_parse_json_object_only_accepts_one_object():
    assert parse_json_object('{"a": 1}') == {"a": 1}
    for text in ["[1]", '"a"', "1", "null", "{", "", '{"a": 1} x']:
        assert parse_json_object(text) is None


def test_field_accuracy_counts_fields_with_the_right_value():
    expected = '{"name": "Gita", "age": 76, "city": "Tunis"}'
    assert field_accuracy(expected, expected) == 1.0
    assert field_accuracy(
        expected, '{"name": "Gita", "age": 75, "town": "Tunis"}'
    ) == pytest.approx(1 / 3)
    assert field_accuracy(expected, '{"name": "Gita", "age": 76, "city": "Tunis", "x": 1}') == 1.0
    assert field_accuracy(expected, "not json") == 0.0
    assert math.isnan(field_accuracy("52000 g", "52000 g"))


def test_json_tasks_are_recognised_by_their_expected_output():
    assert is_json_task('{"a": 1}') and not is_json_task("1, 2") and not is_json_task("[1, 2]")


def test_every_family_of_the_eval_set_is_checked_and_its_answers_pass():
    records = list(load_alpaca(EVAL_FILE, extra_keys=["family"]))
    report = score(records, [r["output"] for r in records])
    assert report.overall["exact_match"] == 1.0
    assert report.overall["json_valid"] == 1.0 and report.overall["field_accuracy"] == 1.0
    assert set(CHECKERS) <= set(report.families)


# ------------------------------------------------------------------------------------------- reports


@pytest.fixture
def report() -> Report:
    records = [
        rec('{"name": "Gita", "age": 76}', "extract_json"),
        rec('{"name": "Ben", "age": 30}', "extract_json"),
        rec("52000 g", "convert_units"),
        rec("7000 m", "convert_units"),
        rec("odd", "parity"),
    ]
    answers = [
        '{"name": "Gita", "age": 76}',
        '{"name": "Ben", "age": 31}',
        "52000 g",
        "700 m",
        " odd",
    ]
    return score(records, answers)


def test_report_numbers(report):
    families = report.by_family()
    assert list(families) == ["extract_json", "convert_units", "parity"]
    assert families["extract_json"] == {
        "n": 2,
        "exact_match": 0.5,
        "json_valid": 1.0,
        "field_accuracy": 0.75,
    }
    assert families["convert_units"]["exact_match"] == 0.5
    assert math.isnan(families["convert_units"]["json_valid"]) and math.isnan(
        families["convert_units"]["field_accuracy"]
    )
    assert families["parity"]["exact_match"] == 1.0
    assert report.overall["n"] == 5
    assert report.overall["exact_match"] == pytest.approx(3 / 5)
    assert report.overall["json_valid"] == 1.0 and report.overall["field_accuracy"] == 0.75


def test_report_table(report):
    table = report.table()
    assert list(table.index) == ["extract_json", "convert_units", "parity", OVERALL]
    assert list(table.columns) == ["n", "exact_match", "json_valid", "field_accuracy"]
    assert table.loc[OVERALL, "n"] == 5 and table["n"].dtype.kind == "i"
    assert table.loc["convert_units", "exact_match"] == 0.5


def test_failures_and_to_dict(report):
    wrong = report.failures()
    assert [(w.family, w.answer) for w in wrong] == [
        ("extract_json", '{"name": "Ben", "age": 31}'),
        ("convert_units", "700 m"),
    ]
    assert report.failures("parity") == []
    data = report.to_dict()
    assert data["overall"]["exact_match"] == pytest.approx(0.6)
    assert data["families"]["parity"]["json_valid"] is None
    import json

    assert json.loads(json.dumps(data, allow_nan=False)) == data


def test_invalid_json_counts_against_validity():
    r = score(
        [rec('{"a": 1}', "extract_json"), rec('{"a": 2}', "extract_json")], ['{"a": 1}', '{"a": 2']
    )
    assert (
        r.overall["json_valid"] == 0.5
        and r.overall["field_accuracy"] == 0.5
        and r.overall["exact_match"] == 0.5
    )


def test_records_without_family_and_unknown_families_fall_back_to_text_or_json():
    records = [
        {"instruction": "x", "output": "Hello"},
        rec('{"k": 1}', "new_family"),
        rec("a", "new_family"),
    ]
    r = score(records, ["hello", '{ "k":1 }', " a "])
    assert r.families == ["all", "new_family"]
    assert [i.exact_match for i in r.items] == [False, True, True]


def test_compare_puts_reports_side_by_side(report):
    zero = score([i.__dict__ | {"output": i.expected} for i in report.items], ["?"] * 5)
    table = compare({"base": zero, "fine-tuned": report})
    assert list(table.columns) == ["base", "fine-tuned"]
    assert table.loc[OVERALL, "base"] == 0.0 and table.loc[OVERALL, "fine-tuned"] == pytest.approx(
        0.6
    )


def test_commonest_answers_per_instruction():
    train = [
        rec("odd", "p", "Even or odd?"),
        rec("even", "p", "Even or odd?"),
        rec("odd", "p", "Even or odd?"),
        rec("yes", "q", "Freezing?"),
    ]
    asked = [
        rec("even", "p", "Even or odd?"),
        rec("no", "q", "Freezing?"),
        rec("x", "r", "New task?"),
    ]
    assert commonest_answers(train, asked) == ["odd", "yes", ""]


def test_commonest_answer_floor_on_the_course_data():
    from helpers.paths import TRAIN_FILE

    records = list(load_alpaca(EVAL_FILE, extra_keys=["family"]))
    floor = score(records, commonest_answers(list(load_alpaca(TRAIN_FILE)), records))
    assert 0.2 < floor.overall["exact_match"] < 0.5, (
        "the labels should not be guessable from the instruction alone"
    )
    assert floor.by_family()["classify_json"]["exact_match"] < 0.3


def test_score_needs_one_answer_per_record():
    with pytest.raises(ValueError, match="2 records but 1 answers"):
        score([rec("a", "f"), rec("b", "f")], ["a"])


# ---------------------------------------------------------------------------------------- generation


@pytest.fixture(scope="module")
def tiny():
    import torch
    import unsloth  # noqa: F401  (before transformers)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from helpers.models import choose_model

    path = choose_model("tiny")
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    model.eval()
    return model, AutoTokenizer.from_pretrained(path)


def test_answer_token_budget(tiny):
    _, tokenizer = tiny
    records = [rec("1, 2", "f"), rec("12345678", "f")]
    assert answer_token_budget(tokenizer, records, margin=0) == 8  # digits are single tokens
    assert answer_token_budget(tokenizer, records) == 16


def test_batched_left_padded_answers_equal_one_at_a_time(tiny):
    from helpers.scoring import generate_answers

    model, tokenizer = tiny
    records = list(load_alpaca(EVAL_FILE, extra_keys=["family"]).select(range(7)))
    side = tokenizer.padding_side
    batched = generate_answers(
        model, tokenizer, records, batch_size=4, max_new_tokens=6, progress=False
    )
    single = [
        generate_answers(model, tokenizer, [r], batch_size=1, max_new_tokens=6, progress=False)[0]
        for r in records
    ]
    assert batched == single
    assert len(set(batched)) > 1, "different prompts should give different answers"
    assert tokenizer.padding_side == side, (
        "generate_answers must restore the tokenizer's padding side"
    )


@pytest.mark.parametrize("caller", ["generate_answers", "cli.greedy"])
def test_no_max_length_warning_when_the_config_sets_one(tiny, caller):
    """Unsloth on a GPU sets ``generation_config.max_length`` to the context size; generating must not warn per call."""
    from transformers.utils import logging as hf_logging

    from helpers.scoring import generate_answers
    from tools.cli import greedy

    model, tokenizer = tiny
    records = list(load_alpaca(EVAL_FILE, extra_keys=["family"]).select(range(3)))
    model.generation_config.max_length = 2048  # what unsloth_zoo's patch_tokenizer does on a GPU
    messages: list[str] = []

    class Catch(logging.Handler):
        def emit(self, record):
            messages.append(record.getMessage())

    handler = Catch()
    hf_logging.get_logger("transformers.generation.utils").addHandler(handler)
    try:
        if caller == "generate_answers":
            answers = generate_answers(
                model, tokenizer, records, batch_size=2, max_new_tokens=4, progress=False
            )
        else:
            answers = [
                greedy(model, tokenizer, prompt_for(r["instruction"], r["input"]), 4)
                for r in records
            ]
    finally:
        hf_logging.get_logger("transformers.generation.utils").removeHandler(handler)
        max_length, model.generation_config.max_length = model.generation_config.max_length, None
    assert len(answers) == 3
    assert not [m for m in messages if "seem to have been set" in m], messages
    assert max_length == 2048, f"{caller} must restore the model's generation_config.max_length"


class _Tok:
    """A tokenizer stand-in: every prompt is three tokens; '<eot>' is token 6; '<two>' is two tokens."""

    padding_side, pad_token, eos_token, eos_token_id, pad_token_id = "right", "<p>", "<e>", 2, 0

    def __call__(self, text, **kwargs):
        import torch

        if isinstance(text, str):
            return {"input_ids": {"<eot>": [6], "<two>": [6, 6]}[text]}

        class Batch(dict):
            def to(self, device):
                return self

        return Batch(input_ids=torch.ones(len(text), 3, dtype=torch.long))

    def decode(self, ids, skip_special_tokens=True):
        return " ".join(map(str, ids))


class _Model:
    """Generates 5 6 <eos> 7 for the first prompt and 8 <eos> <pad> <pad> for the second; keeps its kwargs."""

    device = "cpu"

    def generate(self, input_ids, **kwargs):
        import torch

        self.kwargs = kwargs
        return torch.cat(
            [input_ids, torch.tensor([[5, 6, 2, 7], [8, 2, 0, 0]])[: len(input_ids)]], dim=1
        )


def test_generation_stops_at_eos():
    from helpers.scoring import generate_answers

    answers = generate_answers(_Model(), _Tok(), [rec("x", "f"), rec("y", "f")], progress=False)
    assert answers == ["5 6", "8"]


def test_generation_stops_at_the_end_of_turn_too():
    """Notebook 07: a chat reply ends with <|eot_id|>; Unsloth's GPU trainer appends no EOS after it."""
    from helpers.scoring import generate_answers

    model = _Model()
    answers = generate_answers(
        model, _Tok(), [rec("x", "f"), rec("y", "f")], progress=False, stop_at=["<eot>"]
    )
    assert answers == ["5", "8"]
    assert model.kwargs["eos_token_id"] == [2, 6], (
        "generate must stop at the end of turn as well as at EOS"
    )
    with pytest.raises(ValueError, match="'<two>' is not one token"):
        generate_answers(model, _Tok(), [rec("x", "f")], progress=False, stop_at=["<two>"])


def test_disable_adapter_gives_the_base_model_answers():
    """Notebook 06 scores the base model as the adapter-loaded model inside ``disable_adapter()``."""
    import torch
    from unsloth import FastLanguageModel

    from helpers.models import choose_model
    from helpers.scoring import generate_answers

    records = list(load_alpaca(EVAL_FILE, extra_keys=["family"]).select(range(10)))
    model, tokenizer = FastLanguageModel.from_pretrained(
        model_name=choose_model("tiny"), max_seq_length=2048, dtype=None, load_in_4bit=True
    )
    FastLanguageModel.for_inference(model)
    base = generate_answers(model, tokenizer, records, max_new_tokens=8, progress=False)
    model = FastLanguageModel.get_peft_model(
        model,
        r=16,
        target_modules=["q_proj", "v_proj", "down_proj"],
        lora_alpha=16,
        random_state=3407,
    )
    torch.manual_seed(0)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)  # a trained-looking adapter (B starts at zero)
    FastLanguageModel.for_inference(model)
    tuned = generate_answers(model, tokenizer, records, max_new_tokens=8, progress=False)
    with model.disable_adapter():
        without = generate_answers(model, tokenizer, records, max_new_tokens=8, progress=False)
    assert tuned != base, "the perturbed adapter should change the answers"
    assert without == base
