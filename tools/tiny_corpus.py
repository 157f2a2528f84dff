"""Make data/pretrain.jsonl.gz, the tiny model's pretraining text: short documents that state facts about numbers, quantities, reviews and
support messages, the things the course's five task families ask about, and explain the words of a request.

It never uses the Alpaca prompt, and never ends an answer where a document ends: a base model pretrained on it
knows that 67693 is odd, that 828 mi is a length and that "boring" is negative, but not how to answer an
instruction. Every document comes from ``random.Random(seed)``, so the same seed gives the same text, and no
held-out input (``exclude``) appears in it: the decontamination a lab runs against its benchmarks.

Run ``python -m tools.tiny_corpus`` after changing it (or data/eval.jsonl); helpers.tiny rebuilds the model.

Example:
    >>> docs = corpus(5, seed=0)
    >>> len(docs), docs == corpus(5, seed=0)
    (5, True)
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
from collections.abc import Callable, Iterable
from pathlib import Path

from tools.datagen import (
    CALM,
    GREETINGS,
    ITEMS,
    NAMES,
    NEGATIVE,
    POSITIVE,
    PROBLEMS,
    REVIEWS,
    SEED,
    TOPICS,
    UNITS,
    URGENT,
)

DOCUMENTS = 40_000

# The course's world: the lists tools.datagen draws its inputs from
# General sentences that use the words of the course's prompt and instructions (never in its layout)
GLOSSARY = [
    "An instruction describes a task.",
    "A response completes a request.",
    "Write a response that answers it.",
    "A good response appropriately completes the request.",
    "The input provides further context for the task.",
    "Below is a list of facts.",
    "Each fact is paired with a short note.",
    "Instruction, Input and Response.",
    "Classify the message as billing, delivery or account.",
    "Whether a message is urgent depends on how it ends.",
    "JSON writes an object as keys and values in braces.",
    "Its topic is one of three.",
    "What does it measure?",
    "Is the review positive or negative?",
    "A quantity measures length, mass, time or volume.",
    "Is the number even or odd?",
    "A number is even when its last digit is 0, 2, 4, 6 or 8, and odd otherwise.",
    "Which number is larger, the first or the second?",
    "Of two numbers, the larger is the first or the second.",
]
HEADINGS = ["Notes", "Facts", "Examples", "Today", "Questions"]

Fact = Callable[
    [random.Random], tuple[str, str, list[str]]
]  # -> (the input, a note on it, sentences)


def _message(rng: random.Random) -> tuple[str, str, list[str]]:
    topic, urgent = rng.choice(sorted(TOPICS)), rng.random() < 0.5
    greeting = rng.choice(GREETINGS).format(name=rng.choice(NAMES))
    problem = rng.choice(PROBLEMS).format(thing=rng.choice(TOPICS[topic]))
    message = f"{greeting}{problem} {rng.choice(URGENT if urgent else CALM)}"
    how = "urgent" if urgent else "not urgent"
    as_json = json.dumps({"topic": topic, "urgent": urgent})
    return (
        message,
        f"{as_json} is its JSON.",
        [
            f"{message} This message is about {topic} and it is {how}.",
            f'"{message}" has the topic "{topic}" and is {how}.',
            f"A customer wrote: {message} In JSON:\n{as_json} is how it is stored.",
        ],
    )


def _review(rng: random.Random) -> tuple[str, str, list[str]]:
    label = rng.choice(["positive", "negative"])
    words = POSITIVE if label == "positive" else NEGATIVE
    a, b = rng.sample(ITEMS, 2)
    x, y = rng.choice(words), rng.choice(words)
    review = rng.choice(REVIEWS).format(a=a, b=b, x=x, y=y, X=x.capitalize())
    return (
        review,
        f'That review is "{label}".',
        [
            f"{review} This review is {label}.",
            f'The review "{review}" is "{label}".',
            f"The word {x} is {label}.",
            f'"{x}" is a {label} word, so "{review}" is {label}.',
            f'Is "{review}" positive or negative? The answer is "{label}".',
        ],
    )


def _quantity(rng: random.Random) -> tuple[str, str, list[str]]:
    kind = rng.choice(sorted(UNITS))
    unit = rng.choice(UNITS[kind])
    quantity = f"{rng.randint(1, 999)} {unit}"
    return (
        quantity,
        f'It measures "{kind}".',
        [
            f"{quantity} is a {kind}.",
            f"The quantity {quantity} measures {kind}.",
            f'"{quantity}" measures "{kind}".',
            f"A value in {unit} is a {kind}.",
            f'What does "{quantity}" measure? The answer is "{kind}".',
        ],
    )


def _parity(rng: random.Random) -> tuple[str, str, list[str]]:
    n = rng.randint(1, 99999)
    label = "even" if n % 2 == 0 else "odd"
    return (
        str(n),
        f'That number is "{label}".',
        [
            f"{n} is {label}.",
            f"The number {n} is {label}.",
            f'"{n}" is "{label}".',
            f"Is {n} even or odd? It is {label}.",
            f'Is "{n}" even or odd? The answer is "{label}".',
            f"{n} ends in {n % 10}, so it is {label}.",
        ],
    )


def _compare(rng: random.Random) -> tuple[str, str, list[str]]:
    a, b = rng.sample(range(1, 1000), 2)
    which = "first" if a > b else "second"
    pair = f"{a}, {b}"
    return (
        pair,
        f'The larger is the "{which}".',
        [
            f"Of {a} and {b}, the {which} is larger.",
            f'Of "{pair}" the larger is "{which}".',
            f"{max(a, b)} is larger than {min(a, b)}, so of {pair} the {which} is larger.",
            f'Which is larger in "{pair}"? The answer is "{which}".',
        ],
    )


FACTS: list[Fact] = [
    _compare,
    _parity,
    _message,
    _compare,
    _parity,
    _review,
    _compare,
    _parity,
    _quantity,
]  # harder, more


def corpus(n: int, seed: int = SEED, exclude: Iterable[str] = ()) -> list[str]:
    """``n`` documents: facts in prose, as notes under a heading, as a list of inputs each with a note on the
    next line, or a glossary sentence and a fact."""
    rng = random.Random(seed)
    banned = {" ".join(x.lower().split()) for x in exclude}

    def fact(kind: int) -> tuple[str, str, list[str]]:
        while True:
            about, note, sentences = FACTS[kind % len(FACTS)](rng)
            if " ".join(about.lower().split()) not in banned:
                return about, note, sentences

    def sentence(kind: int) -> str:
        return rng.choice(fact(kind)[2])

    docs: list[str] = []
    while len(docs) < n:
        kind, style, heading = len(docs), rng.random(), f"### {rng.choice(HEADINGS)}\n"
        if style < 0.45:
            docs.append(" ".join(sentence(kind + i) for i in range(rng.randint(1, 3))))
        elif style < 0.6:
            docs.append(heading + "\n".join(sentence(kind) for _ in range(rng.randint(2, 4))))
        elif style < 0.85:
            docs.append(
                heading
                + "\n".join("{}\n{}".format(*fact(kind)[:2]) for _ in range(rng.randint(2, 3)))
            )
        else:
            docs.append(f"{rng.choice(GLOSSARY)} {sentence(kind)}")
    return docs


def write(data_dir: Path, n: int = DOCUMENTS, seed: int = SEED) -> Path:
    """Write ``n`` documents, none about a held-out input of data_dir/eval.jsonl, to data_dir/pretrain.jsonl.gz."""
    held_out = [
        json.loads(line)["input"]
        for line in (data_dir / "eval.jsonl").read_text().splitlines()
        if line.strip()
    ]
    text = "".join(
        json.dumps({"text": d}, ensure_ascii=False) + "\n" for d in corpus(n, seed, held_out)
    )
    out = data_dir / "pretrain.jsonl.gz"
    out.write_bytes(gzip.compress(text.encode(), compresslevel=9, mtime=0))
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1] / "data")
    print("wrote", write(parser.parse_args().data))
