"""CI's quality guard: the scores the executed notebooks wrote, against the recorded ones.

The notebooks print verdicts and go on when a quality claim is missed (a real model on another runtime may miss
a bar by a point). CI still fails when the CPU default model scores below what it scored when it was recorded:
notebook 06 writes ``scores_06.json`` and notebook 07 ``scores_07.json`` (exact match per family and overall)
into the output folder, and this command compares each recorded score with the new one.

    python -m tools.quality OUTPUT_DIR            # after `make test` or `make course` (COURSE_OUTPUT)
    python -m tools.quality OUTPUT_DIR --record   # write the new scores as the recorded ones
"""

import argparse
import json
import sys
from pathlib import Path

RECORDED = Path(__file__).resolve().parent.parent / "tests" / "recorded_scores.json"
# notebook's file -> the columns that must not fall (the fine-tuned runs, not the floor or the base)
GUARDED = {"scores_06.json": ["fine-tuned"], "scores_07.json": ["responses only"]}
TOLERANCE = {"overall": 0.03, "family": 0.10}  # 0.03 is 4 of 150 questions; 0.10 is 3 of 30


def read_scores(folder: Path) -> dict:
    """{file: {column: {family: score}}} for every guarded file; a missing file is an error naming it."""
    scores = {}
    for name, columns in GUARDED.items():
        path = folder / name
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} is missing: did the notebook that writes it run to the end?"
            )
        table = json.loads(path.read_text())
        scores[name] = {column: table[column] for column in columns}
    return scores


def regressions(recorded: dict, measured: dict) -> list[str]:
    """Every score more than its tolerance below the recorded one, as 'file column family: old -> new'."""
    problems = []
    for name, columns in recorded.items():
        for column, families in columns.items():
            for family, old in families.items():
                new = measured.get(name, {}).get(column, {}).get(family)
                allowed = TOLERANCE["overall" if family == "overall" else "family"]
                if new is None or new < old - allowed:
                    problems.append(
                        f"{name} {column!r} {family}: recorded {old:.3f}, now {new} (tolerance {allowed})"
                    )
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "folder", type=Path, help="the output folder the notebooks wrote (COURSE_OUTPUT)"
    )
    parser.add_argument(
        "--record", action="store_true", help="record these scores as the new reference"
    )
    args = parser.parse_args(argv)
    measured = read_scores(args.folder)
    if args.record:
        RECORDED.write_text(json.dumps(measured, indent=1, sort_keys=True) + "\n")
        print(f"recorded {RECORDED}")
        return 0
    problems = regressions(json.loads(RECORDED.read_text()), measured)
    for name, columns in measured.items():
        for column, families in columns.items():
            print(f"{name} {column!r}: " + ", ".join(f"{f} {v:.3f}" for f, v in families.items()))
    if problems:
        print("Scores fell below the recorded ones:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    print(f"quality: every guarded score is within its tolerance of {RECORDED.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
