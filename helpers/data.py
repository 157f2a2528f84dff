"""Load Alpaca-style data strictly and format it with the Alpaca prompt.

Every record is checked: ``instruction`` and ``output`` are required non-empty strings, ``input`` is
an optional string, and no other key is allowed (unless named in ``extra_keys``). A bad record raises
:class:`DataError` naming the file, the line and the field, so nothing is dropped silently.

Example:
    >>> ds = load_alpaca("data/train.jsonl")          # doctest: +SKIP
    >>> format_alpaca(ds[0], eos_token="</s>")["text"][:24]  # doctest: +SKIP
    'Below is an instruction '
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from helpers.paths import DATA_DIR  # noqa: F401  (re-exported for convenience)

ALPACA_PROMPT = """Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.

### Instruction:
{}

### Input:
{}

### Response:
{}"""

REQUIRED = ("instruction", "output")
OPTIONAL = ("input",)


class DataError(ValueError):
    """A record or file that cannot be used, with where and why."""


def validate_record(record: Any, where: str, extra_keys: Iterable[str] = ()) -> dict[str, str]:
    """Check one record and return it with ``input`` filled in ("" when absent)."""
    if not isinstance(record, Mapping):
        raise DataError(f"{where}: expected a JSON object with 'instruction' and 'output', got {type(record).__name__}")
    allowed = set(REQUIRED) | set(OPTIONAL) | set(extra_keys)
    unknown = sorted(set(record) - allowed)
    if unknown:
        raise DataError(f"{where}: unknown field(s) {unknown}; allowed: {sorted(allowed)}")
    for key in REQUIRED:
        if key not in record:
            raise DataError(f"{where}: missing required field '{key}'")
    for key in (*REQUIRED, *OPTIONAL, *extra_keys):
        value = record.get(key)
        if key in record and not isinstance(value, str):
            raise DataError(f"{where}: field '{key}' must be a string, got {type(value).__name__} ({value!r})")
    if not record["instruction"].strip():
        raise DataError(f"{where}: field 'instruction' is empty")
    if not record["output"].strip():
        raise DataError(f"{where}: field 'output' is empty")
    return {**dict(record), "input": record.get("input", "")}


def read_records(path: str | Path, extra_keys: Iterable[str] = ()) -> list[dict[str, str]]:
    """Read and validate every record of a .jsonl or .csv file; raise DataError on the first bad one."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found")
    try:
        text = path.read_text(encoding="utf-8-sig")  # utf-8-sig: a leading BOM is fine
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json"):
        records = _read_jsonl(text, path, extra_keys)
    elif suffix == ".csv":
        records = _read_csv(text, path, extra_keys)
    else:
        raise DataError(f"{path}: unsupported file type '{suffix}'; use .jsonl or .csv")
    if not records:
        raise DataError(f"{path}: no records (the file is empty or has only blank lines)")
    return records


def _read_jsonl(text: str, path: Path, extra_keys: Iterable[str]) -> list[dict[str, str]]:
    records = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}, line {lineno}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(f"{where}: invalid JSON ({err.msg} at column {err.colno})") from None
        records.append(validate_record(record, where, extra_keys))
    return records


def _read_csv(text: str, path: Path, extra_keys: Iterable[str]) -> list[dict[str, str]]:
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None:
        return []
    records = []
    for row in reader:
        where = f"{path}, line {reader.line_num}"
        if None in row:
            raise DataError(f"{where}: more values than the header's {len(reader.fieldnames)} columns")
        if all(not (v or "").strip() for v in row.values()):
            continue
        missing_cells = [k for k, v in row.items() if v is None]
        if missing_cells:
            raise DataError(f"{where}: fewer values than the header; missing {missing_cells}")
        records.append(validate_record(row, where, extra_keys))
    return records


def load_alpaca(source: Any, extra_keys: Iterable[str] = ()):
    """Load a .jsonl/.csv path or a ``datasets.Dataset`` into a validated ``datasets.Dataset``."""
    from datasets import Dataset

    if isinstance(source, Dataset):
        name = f"dataset {source.info.dataset_name or '(in memory)'}"
        records = [validate_record(row, f"{name}, row {i}", extra_keys) for i, row in enumerate(source)]
        if not records:
            raise DataError(f"{name}: no records")
    else:
        records = read_records(source, extra_keys)
    return Dataset.from_list(records)


def format_alpaca(example: Mapping[str, str], eos_token: str) -> dict[str, str]:
    """Fill the Alpaca prompt with one record and append the EOS token (so generation learns to stop)."""
    text = ALPACA_PROMPT.format(example["instruction"], example.get("input", ""), example["output"])
    return {"text": text + eos_token}


def prompt_for(instruction: str, input_text: str = "") -> str:
    """The Alpaca prompt up to '### Response:', ready for generation."""
    return ALPACA_PROMPT.format(instruction, input_text, "")
