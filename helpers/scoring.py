"""Score a model on the held-out set: batched greedy answers, per-family checkers, a report table.

>>> records = [{"instruction": "Even or odd?", "input": "7", "output": "odd", "family": "parity"},
...            {"instruction": "As JSON.", "input": "Hi", "output": '{"a": 1, "b": 2}', "family": "j"}]
>>> report = score(records, ["odd ", '{"a": 1, "b": 3}'])
>>> report.overall["exact_match"], report.overall["json_valid"], report.overall["field_accuracy"]
(0.5, 1.0, 0.5)
"""

import contextlib
import json
import math
import os
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from helpers.data import prompt_for

OVERALL = "overall"


def normalize(text: str) -> str:
    """Trim the ends and collapse runs of spaces, tabs and newlines to one space."""
    return " ".join(text.split())


def parse_json_object(text: str) -> dict | None:
    """The JSON object in ``text``, or None if it is not exactly one JSON object."""
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, TypeError):
        return None
    return value if isinstance(value, dict) else None


def same_text(expected: str, answer: str) -> bool:
    return normalize(expected) == normalize(answer)


def same_json(expected: str, answer: str) -> bool:
    """Both parse to equal JSON objects (key order and spacing do not matter)."""
    got = parse_json_object(answer)
    return got is not None and got == parse_json_object(expected)


CHECKERS: dict[str, Callable[[str, str], bool]] = {
    "classify_json": same_json
}  # more than text equality


def is_json_task(expected: str) -> bool:
    return parse_json_object(expected) is not None


def checker_for(family: str | None, expected: str) -> Callable[[str, str], bool]:
    """The family's checker; for unknown families, JSON comparison for JSON outputs, else text."""
    return CHECKERS.get(family) or (same_json if is_json_task(expected) else same_text)


def field_accuracy(expected: str, answer: str) -> float:
    """Share of the expected object's fields that the answer has with the same value (0 if not JSON)."""
    want, got = parse_json_object(expected) or {}, parse_json_object(answer)
    if not want:
        return math.nan
    return (
        0.0 if got is None else sum(k in got and got[k] == v for k, v in want.items()) / len(want)
    )


@dataclass
class ItemResult:
    family: str
    instruction: str
    input: str
    expected: str
    answer: str
    exact_match: bool
    json_task: bool
    json_valid: bool | None = None
    field_accuracy: float | None = None


@dataclass
class Report:
    """Per-item results with per-family and overall summaries."""

    items: list[ItemResult]
    families: list[str] = field(default_factory=list)

    @staticmethod
    def _summary(items: Sequence[ItemResult]) -> dict[str, float]:
        js = [i for i in items if i.json_task]
        mean = lambda values, n: sum(values) / n if n else math.nan  # noqa: E731
        return {
            "n": len(items),
            "exact_match": mean((i.exact_match for i in items), len(items)),
            "json_valid": mean((bool(i.json_valid) for i in js), len(js)),
            "field_accuracy": mean((i.field_accuracy for i in js), len(js)),
        }

    @property
    def overall(self) -> dict[str, float]:
        """n, exact match, and (over JSON tasks) valid-JSON rate and field accuracy, for all items."""
        return self._summary(self.items)

    def by_family(self) -> dict[str, dict[str, float]]:
        return {f: self._summary([i for i in self.items if i.family == f]) for f in self.families}

    def table(self):
        """A pandas DataFrame: one row per family plus 'overall'; NaN where a metric does not apply."""
        import pandas as pd

        frame = pd.DataFrame.from_dict({**self.by_family(), OVERALL: self.overall}, orient="index")
        frame["n"] = frame["n"].astype(int)
        frame.index.name = "family"
        return frame

    def to_dict(self) -> dict:
        """Overall and per-family summaries as plain data for JSON (None where a metric does not apply)."""

        def plain(summary: dict[str, float]) -> dict[str, float | None]:
            return {
                k: None if isinstance(v, float) and math.isnan(v) else v for k, v in summary.items()
            }

        return {
            "overall": plain(self.overall),
            "families": {f: plain(v) for f, v in self.by_family().items()},
        }

    def failures(self, family: str | None = None, limit: int = 5) -> list[ItemResult]:
        """Up to ``limit`` wrong answers (of one family if given), to look at."""
        return [i for i in self.items if not i.exact_match and family in (None, i.family)][:limit]


def score(records: Sequence[Mapping[str, str]], answers: Sequence[str]) -> Report:
    """Check each answer against its record's ``output``; records without ``family`` count as 'all'."""
    if len(records) != len(answers):
        raise ValueError(f"{len(records)} records but {len(answers)} answers")
    items = []
    for record, answer in zip(records, answers):
        family, expected = record.get("family") or "all", record["output"]
        json_task = is_json_task(expected)
        items.append(
            ItemResult(
                family,
                record["instruction"],
                record.get("input", ""),
                expected,
                answer,
                exact_match=checker_for(family, expected)(expected, answer),
                json_task=json_task,
                json_valid=parse_json_object(answer) is not None if json_task else None,
                field_accuracy=field_accuracy(expected, answer) if json_task else None,
            )
        )
    return Report(items, list(dict.fromkeys(i.family for i in items)))


def commonest_answers(
    train_records: Sequence[Mapping[str, str]], records: Sequence[Mapping[str, str]]
) -> list[str]:
    """For each record, the training set's most frequent output for its instruction ("" if unseen): a floor
    to read scores against (a yes/no family scores about 50% this way without reading the input)."""
    counts: dict[str, Counter] = {}
    for r in train_records:
        counts.setdefault(r["instruction"], Counter())[r["output"]] += 1
    # most_common breaks ties by first appearance, so the result is deterministic
    return [
        counts[r["instruction"]].most_common(1)[0][0] if r["instruction"] in counts else ""
        for r in records
    ]


def compare(reports: Mapping[str, Report], metric: str = "exact_match"):
    """One metric side by side: rows are families plus 'overall', columns are the named reports."""
    import pandas as pd

    return pd.DataFrame({name: report.table()[metric] for name, report in reports.items()})


def alpaca_prompt(record: Mapping[str, str]) -> str:
    """A record's Alpaca prompt up to '### Response:', the format notebooks 03 to 06 train on."""
    return prompt_for(record["instruction"], record.get("input", ""))


def generate_answers(
    model,
    tokenizer,
    records: Sequence[Mapping[str, str]],
    batch_size: int = 32,
    max_new_tokens: int = 64,
    progress: bool = True,
    prompt: Callable[[Mapping[str, str]], str] = alpaca_prompt,
    stop_at: Sequence[str] = (),
    **generate_kwargs,
) -> list[str]:
    """Greedy answers to the records' prompts (Alpaca, or ``prompt(record)``), in left-padded batches, cut at EOS
    or at any token of ``stop_at`` (a chat template's end of turn, say). A prompt that starts with the BOS token
    (a chat template writes it) gets no second one; ``generate_kwargs`` go to ``model.generate``."""
    import torch
    from tqdm.auto import tqdm

    prompts = [prompt(r) for r in records]
    stops = [tokenizer.eos_token_id]
    for (
        token
    ) in stop_at:  # each must be one token of the vocabulary, or generation could never stop at it
        ids = tokenizer(token, add_special_tokens=False)["input_ids"]
        if len(ids) != 1:
            raise ValueError(
                f"stop_at: {token!r} is not one token of this tokenizer (it becomes {ids})"
            )
        stops.append(ids[0])
    bos = getattr(tokenizer, "bos_token", None)
    add_bos = not (bos and prompts and prompts[0].startswith(bos))
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))  # less padding per batch
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    # TQDM_DISABLE: tqdm's own switch, which the site's build sets
    off = not progress or os.environ.get("TQDM_DISABLE", "") not in ("", "0")
    answers = [""] * len(prompts)
    padding_side, pad_token = tokenizer.padding_side, tokenizer.pad_token
    tokenizer.padding_side = "left"  # every prompt then ends where generation starts
    tokenizer.pad_token = tokenizer.eos_token if pad_token is None else pad_token
    try:
        for batch in tqdm(batches, desc="generating", unit="batch", disable=off):
            inputs = tokenizer(
                [prompts[i] for i in batch],
                return_tensors="pt",
                padding=True,
                add_special_tokens=add_bos,
            ).to(model.device)
            with torch.no_grad(), max_new_tokens_only(model):
                out = model.generate(
                    **inputs,
                    max_new_tokens=max_new_tokens,
                    do_sample=False,
                    eos_token_id=stops,
                    pad_token_id=tokenizer.pad_token_id,
                    **generate_kwargs,
                )
            for i, ids in zip(batch, out[:, inputs["input_ids"].shape[1] :].tolist()):
                end = next((k for k, token in enumerate(ids) if token in stops), len(ids))
                answers[i] = tokenizer.decode(ids[:end], skip_special_tokens=True).strip()
    finally:
        tokenizer.padding_side, tokenizer.pad_token = padding_side, pad_token
    return answers


@contextlib.contextmanager
def max_new_tokens_only(model):
    """Within the block ``max_new_tokens`` alone bounds ``model.generate``: Unsloth sets the config's
    ``max_length`` to the context size on a GPU, and transformers then warns on every call. Restored after."""
    config = getattr(model, "generation_config", None)
    max_length = getattr(config, "max_length", None)
    if max_length is not None:
        config.max_length = None
    try:
        yield
    finally:
        if max_length is not None:
            config.max_length = max_length


def answer_token_budget(tokenizer, records: Sequence[Mapping[str, str]], margin: int = 8) -> int:
    """Enough new tokens for the longest expected output plus ``margin``, so generation stays short."""
    return (
        max(len(tokenizer(r["output"], add_special_tokens=False)["input_ids"]) for r in records)
        + margin
    )
