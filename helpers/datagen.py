"""Generate the course dataset: Alpaca records whose answers code can check.

Every record comes from a seeded ``random.Random``, so the same seed gives the same files, byte
for byte. Each task family has a checker in ``helpers.scoring``.

Example:
    >>> records = generate(n=3, seed=0)
    >>> sorted(records[0])
    ['family', 'input', 'instruction', 'output']
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
from collections.abc import Callable
from pathlib import Path

NAMES = ["Ana", "Ben", "Carla", "Dev", "Emma", "Farid", "Gita", "Hugo", "Iris", "Jon", "Kim",
         "Lena", "Marco", "Nina", "Omar", "Pia", "Rosa", "Sam", "Tara", "Uma", "Vik", "Wen", "Yusuf", "Zoe"]
CITIES = ["Lisbon", "Oslo", "Lima", "Cairo", "Seoul", "Quito", "Dublin", "Accra", "Hanoi", "Perth",
          "Porto", "Riga", "Tunis", "Kyoto", "Bern", "Delhi"]
UNITS = {  # instruction text, source unit, target unit, factor
    "km_m": ("Convert the distance to meters.", "km", "m", 1000),
    "m_cm": ("Convert the length to centimeters.", "m", "cm", 100),
    "kg_g": ("Convert the mass to grams.", "kg", "g", 1000),
    "h_min": ("Convert the time to minutes.", "h", "min", 60),
    "min_s": ("Convert the time to seconds.", "min", "s", 60),
}
FAMILIES = ["extract_json", "convert_units", "add_days", "sort_numbers", "filter_even", "uppercase"]


def _extract_json(rng: random.Random) -> tuple[str, str, str]:
    """A short message -> a JSON object with name, age and city."""
    name, city, age = rng.choice(NAMES), rng.choice(CITIES), rng.randint(18, 89)
    templates = [
        "Hi, I am {name}, {age} years old, from {city}.",
        "{name} here. I live in {city} and I am {age}.",
        "My name is {name}; age {age}; city {city}.",
        "This is {name} from {city}, aged {age}.",
    ]
    message = rng.choice(templates).format(name=name, age=age, city=city)
    answer = json.dumps({"name": name, "age": age, "city": city})
    return "Extract the name, age and city from the message as JSON.", message, answer


def _convert_units(rng: random.Random) -> tuple[str, str, str]:
    """A quantity in one unit -> the same quantity in another."""
    instruction, src, dst, factor = UNITS[rng.choice(sorted(UNITS))]
    value = rng.randint(1, 99)
    return instruction, f"{value} {src}", f"{value * factor} {dst}"


def _add_days(rng: random.Random) -> tuple[str, str, str]:
    """A date and a number of days -> the date that many days later."""
    start = dt.date(2024, 1, 1) + dt.timedelta(days=rng.randint(0, 364))
    days = rng.randint(1, 9)
    end = start + dt.timedelta(days=days)
    return f"Add {days} days to the date.", start.isoformat(), end.isoformat()


def _numbers(rng: random.Random) -> list[int]:
    return [rng.randint(0, 99) for _ in range(rng.randint(3, 6))]


def _sort_numbers(rng: random.Random) -> tuple[str, str, str]:
    """A list of numbers -> the same numbers in ascending order."""
    nums = _numbers(rng)
    return ("Sort the numbers in ascending order.", ", ".join(map(str, nums)),
            ", ".join(map(str, sorted(nums))))


def _filter_even(rng: random.Random) -> tuple[str, str, str]:
    """A list of numbers -> only the even ones, in their original order."""
    nums = _numbers(rng)
    while not any(n % 2 == 0 for n in nums):
        nums = _numbers(rng)
    return ("Keep only the even numbers.", ", ".join(map(str, nums)),
            ", ".join(str(n) for n in nums if n % 2 == 0))


def _uppercase(rng: random.Random) -> tuple[str, str, str]:
    """A name and a city -> both in capital letters."""
    text = f"{rng.choice(NAMES)} {rng.choice(CITIES)}"
    return "Rewrite the text in capital letters.", text, text.upper()


MAKERS: dict[str, Callable[[random.Random], tuple[str, str, str]]] = {
    "extract_json": _extract_json,
    "convert_units": _convert_units,
    "add_days": _add_days,
    "sort_numbers": _sort_numbers,
    "filter_even": _filter_even,
    "uppercase": _uppercase,
}


def generate(n: int, seed: int, exclude: set[tuple[str, str]] | None = None) -> list[dict[str, str]]:
    """Make ``n`` distinct records, families in turn, skipping any (instruction, input) in ``exclude``."""
    rng = random.Random(seed)
    seen = set(exclude or ())
    records: list[dict[str, str]] = []
    while len(records) < n:
        family = FAMILIES[len(records) % len(FAMILIES)]
        instruction, inp, out = MAKERS[family](rng)
        if (instruction, inp) in seen:
            continue
        seen.add((instruction, inp))
        records.append({"instruction": instruction, "input": inp, "output": out, "family": family})
    return records


def write_jsonl(records: list[dict[str, str]], path: Path) -> None:
    """Write records as JSON lines, keys in a fixed order, UTF-8, one trailing newline."""
    lines = [json.dumps(r, ensure_ascii=False) for r in records]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def build(out_dir: Path, n_train: int = 1200, n_eval: int = 120, seed: int = 3407) -> tuple[Path, Path]:
    """Write train.jsonl (plain Alpaca) and eval.jsonl (plus ``family``); eval never repeats a training prompt."""
    eval_records = generate(n_eval, seed + 1)
    held_out = {(r["instruction"], r["input"]) for r in eval_records}
    train_records = generate(n_train, seed, exclude=held_out)
    out_dir.mkdir(parents=True, exist_ok=True)
    train, evals = out_dir / "train.jsonl", out_dir / "eval.jsonl"
    write_jsonl([{k: v for k, v in r.items() if k != "family"} for r in train_records], train)
    write_jsonl(eval_records, evals)
    return train, evals


def main() -> None:
    """Command line: python -m helpers.datagen [--out data] [--seed 3407]."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "data")
    parser.add_argument("--seed", type=int, default=3407)
    parser.add_argument("--n-train", type=int, default=1200)
    parser.add_argument("--n-eval", type=int, default=120)
    args = parser.parse_args()
    for path in build(args.out, args.n_train, args.n_eval, args.seed):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
