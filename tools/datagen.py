"""Generate the course dataset: Alpaca records whose answers code can check.

Five task families, each a short instruction, a short input and a short answer: a support message
classified into JSON, a review's sentiment, what a quantity measures, a number's parity, the larger
of two numbers. Every record comes from a seeded ``random.Random``, so the same seed gives the same
files, byte for byte; ``solve`` recomputes each answer from the input alone, and the held-out set
shares no input with the training set. data/README.md (the data card) says why these families.

Example:
    >>> records = generate(n=5, seed=0)
    >>> [r["family"] for r in records]
    ['classify_json', 'sentiment', 'quantity_kind', 'parity', 'compare']
    >>> solve(records[3]["family"], records[3]["instruction"], records[3]["input"]) == records[3]["output"]
    True
    >>> train, evals = build(Path("data"))  # what python -m tools.datagen does  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import json
import random
import re
from collections.abc import Callable, Iterable
from pathlib import Path

SEED = 3407
N_TRAIN = 1200
N_EVAL = 150

Maker = Callable[[random.Random], tuple[str, str, str]]

# ---------------------------------------------------------------------------------- classify_json
NAMES = [
    "Ana",
    "Ben",
    "Carla",
    "Dev",
    "Emma",
    "Farid",
    "Gita",
    "Hugo",
    "Iris",
    "Jon",
    "Kim",
    "Lena",
    "Marco",
    "Nina",
    "Omar",
    "Pia",
    "Rosa",
    "Sam",
    "Tara",
    "Uma",
    "Vik",
    "Wen",
    "Yusuf",
    "Zoe",
]
TOPICS = {
    "billing": ["invoice", "refund", "payment", "bill", "receipt"],
    "delivery": ["parcel", "package", "courier", "shipment", "tracking number"],
    "account": ["password", "login", "username", "profile", "email address"],
}
GREETINGS = ["", "Hi, {name} here. ", "Hello! ", "Dear support, ", "{name} again. "]
PROBLEMS = [
    "There is a problem with my {thing}.",
    "My {thing} is wrong.",
    "I have a question about my {thing}.",
    "I cannot find my {thing}.",
    "Something is off with my {thing}.",
]
URGENT = ["Please fix it today.", "I need this now!", "This is urgent.", "Please help asap."]
CALM = ["No rush.", "Whenever you can.", "Thanks in advance.", "Have a nice day."]
CLASSIFY = "Classify the message as JSON with its topic and whether it is urgent."


def _classify_json(rng: random.Random) -> tuple[str, str, str]:
    """A support message -> {"topic": billing|delivery|account, "urgent": true|false}."""
    topic = rng.choice(sorted(TOPICS))
    urgent = rng.random() < 0.5
    greeting = rng.choice(GREETINGS).format(name=rng.choice(NAMES))
    problem = rng.choice(PROBLEMS).format(thing=rng.choice(TOPICS[topic]))
    message = f"{greeting}{problem} {rng.choice(URGENT if urgent else CALM)}"
    return CLASSIFY, message, json.dumps({"topic": topic, "urgent": urgent})


def _solve_classify_json(text: str) -> str:
    topic = next(
        t
        for t, things in TOPICS.items()
        if any(re.search(rf"\bmy {thing}\b", text, re.IGNORECASE) for thing in things)
    )
    return json.dumps({"topic": topic, "urgent": any(text.endswith(p) for p in URGENT)})


# -------------------------------------------------------------------------------------- sentiment
ITEMS = [
    "food",
    "service",
    "room",
    "staff",
    "movie",
    "book",
    "hotel",
    "trip",
    "delivery",
    "app",
    "coffee",
    "concert",
]
POSITIVE = [
    "great",
    "lovely",
    "excellent",
    "perfect",
    "delicious",
    "friendly",
    "fast",
    "clean",
    "amazing",
    "wonderful",
]
NEGATIVE = [
    "awful",
    "terrible",
    "cold",
    "rude",
    "slow",
    "dirty",
    "broken",
    "boring",
    "horrible",
    "noisy",
]
REVIEWS = [
    "The {a} was {x}.",
    "The {a} was {x} and the {b} was {y}.",
    "{X} {a}, {y} {b}.",
    "Honestly, the {a} was {x}.",
    "What a {x} {a}!",
]
SENTIMENT = "Is the review positive or negative?"


def _sentiment(rng: random.Random) -> tuple[str, str, str]:
    """A one-line review -> positive or negative (every opinion word in it agrees)."""
    label = rng.choice(["positive", "negative"])
    words = POSITIVE if label == "positive" else NEGATIVE
    a, b = rng.sample(ITEMS, 2)
    x, y = rng.choice(words), rng.choice(words)
    review = rng.choice(REVIEWS).format(a=a, b=b, x=x, y=y, X=x.capitalize())
    return SENTIMENT, review, label


def _solve_sentiment(text: str) -> str:
    words = set(re.findall(r"[a-z]+", text.lower()))
    return "positive" if words & set(POSITIVE) else "negative"


# ---------------------------------------------------------------------------------- quantity_kind
UNITS = {
    "length": ["km", "m", "cm", "mm", "mi", "ft", "in"],
    "mass": ["kg", "g", "mg", "lb", "oz", "t"],
    "time": ["h", "min", "s", "ms", "days", "weeks"],
    "volume": ["L", "mL", "gal", "cups"],
}
KIND = "What does the quantity measure: length, mass, time or volume?"


def _quantity_kind(rng: random.Random) -> tuple[str, str, str]:
    """A number with a unit -> length, mass, time or volume."""
    kind = rng.choice(sorted(UNITS))
    return KIND, f"{rng.randint(1, 999)} {rng.choice(UNITS[kind])}", kind


def _solve_quantity_kind(text: str) -> str:
    unit = text.split()[-1]
    return next(kind for kind, units in UNITS.items() if unit in units)


# ------------------------------------------------------------------------------ parity and compare
PARITY = "Is the number even or odd?"
COMPARE = "Which number is larger, the first or the second?"


def _parity(rng: random.Random) -> tuple[str, str, str]:
    """A whole number -> even or odd."""
    value = rng.randint(1, 99999)
    return PARITY, str(value), "even" if value % 2 == 0 else "odd"


def _compare(rng: random.Random) -> tuple[str, str, str]:
    """Two different numbers -> first or second, whichever is larger."""
    a, b = rng.sample(range(1, 1000), 2)
    return COMPARE, f"{a}, {b}", "first" if a > b else "second"


MAKERS: dict[str, Maker] = {
    "classify_json": _classify_json,
    "sentiment": _sentiment,
    "quantity_kind": _quantity_kind,
    "parity": _parity,
    "compare": _compare,
}
FAMILIES = list(MAKERS)
SOLVERS: dict[str, Callable[[str], str]] = {
    "classify_json": _solve_classify_json,
    "sentiment": _solve_sentiment,
    "quantity_kind": _solve_quantity_kind,
    "parity": lambda text: "even" if int(text) % 2 == 0 else "odd",
    "compare": lambda text: (
        "first" if int(text.split(",")[0]) > int(text.split(",")[1]) else "second"
    ),
}


def solve(family: str, instruction: str, input_text: str) -> str:
    """The right answer, computed from the input alone (an independent check on the generator)."""
    return SOLVERS[family](input_text)


def normalize_input(text: str) -> str:
    """The form in which two inputs count as the same: lower case, single spaces."""
    return " ".join(text.lower().split())


def generate(
    n: int,
    seed: int,
    exclude: Iterable[str] = (),
    families: list[str] | None = None,
    makers: dict[str, Maker] | None = None,
    max_tries: int = 100,
) -> list[dict[str, str]]:
    """Make ``n`` records, families in turn, no input twice and none whose normalized input is in ``exclude``."""
    families, makers = families or FAMILIES, makers or MAKERS
    rng = random.Random(seed)
    seen = {normalize_input(x) for x in exclude}
    records: list[dict[str, str]] = []
    while len(records) < n:
        family = families[len(records) % len(families)]
        for _ in range(max_tries):
            instruction, inp, out = makers[family](rng)
            if normalize_input(inp) not in seen:
                break
        else:
            raise ValueError(
                f"could not find {n} distinct inputs for family {family!r} "
                f"({len(records)} records made); widen its input space or ask for fewer"
            )
        seen.add(normalize_input(inp))
        records.append({"instruction": instruction, "input": inp, "output": out, "family": family})
    return records


def write_jsonl(records: list[dict[str, str]], path: Path) -> None:
    """Write records as JSON lines, keys in a fixed order, UTF-8, one trailing newline."""
    lines = [json.dumps(r, ensure_ascii=False) for r in records]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8", newline="\n")


def build(
    out_dir: Path, n_train: int = N_TRAIN, n_eval: int = N_EVAL, seed: int = SEED
) -> tuple[Path, Path]:
    """Write train.jsonl (plain Alpaca) and eval.jsonl (plus ``family``); no eval input appears in train."""
    eval_records = generate(n_eval, seed + 1)
    train_records = generate(n_train, seed, exclude=[r["input"] for r in eval_records])
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    train, evals = out_dir / "train.jsonl", out_dir / "eval.jsonl"
    write_jsonl([{k: v for k, v in r.items() if k != "family"} for r in train_records], train)
    write_jsonl(eval_records, evals)
    return train, evals


def main(argv: list[str] | None = None) -> None:
    """Command line: python -m tools.datagen [--out data] [--seed 3407] [--n-train 1200] [--n-eval 150]."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "data")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--n-train", type=int, default=N_TRAIN)
    parser.add_argument("--n-eval", type=int, default=N_EVAL)
    args = parser.parse_args(argv)
    for path in build(args.out, args.n_train, args.n_eval, args.seed):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
