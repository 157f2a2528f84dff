"""Alpaca data from more sources than the course's JSON Lines: a .json array, a .csv file with a header
row, a ``datasets.Dataset`` or a list of dicts, checked record by record with the same rules and
messages as :mod:`helpers.data` (which the notebooks use). The ``course`` command reads its --data here.

Example:
    >>> load_alpaca([{"instruction": "Sort.", "outptu": "1, 2"}])
    Traceback (most recent call last):
    helpers.data.DataError: records, record 0: unknown field 'outptu' (did you mean 'output'?); allowed: ['input', 'instruction', 'output']
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from helpers.data import (OPTIONAL, REQUIRED, DataError, _decode, _json_lines, _no_duplicate_keys, _unknown_message,
                          validate_record)

SUFFIXES = (".jsonl", ".json", ".csv")


def read_records(path: str | Path, extra_keys: Iterable[str] = ()) -> list[dict[str, str]]:
    """Read and validate every record of a .jsonl, .json or .csv file; raise DataError on the first bad one."""
    path = Path(path)
    extra_keys = list(extra_keys)
    if not path.exists():
        raise DataError(f"{path}: file not found (current folder: {Path.cwd()})")
    if path.is_dir():
        raise DataError(f"{path}: is a folder, not a data file")
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise DataError(f"{path}: unsupported file type '{suffix or '(none)'}'; use one of {list(SUFFIXES)}")
    text = _decode(path)
    if not text.strip():
        raise DataError(f"{path}: no records (the file is empty or has only blank lines)")
    if suffix == ".csv":
        records = _read_csv(text, path, extra_keys)
    elif suffix == ".json" and text.lstrip().startswith("["):
        records = _read_json_array(text, path, extra_keys)
    else:
        records = _read_jsonl(text, path, extra_keys)
    if not records:
        raise DataError(f"{path}: no records (only a header row)" if suffix == ".csv" else f"{path}: no records")
    return records


def _check_columns(where: str, columns: list[str], extra_keys: list[str]) -> None:
    """A table's columns (a CSV header, a Dataset's): none unknown, the required ones present."""
    allowed = sorted({*REQUIRED, *OPTIONAL, *extra_keys})
    unknown = [c for c in columns if c not in allowed]
    if unknown:
        raise DataError(f"{where}: {_unknown_message(unknown, allowed).replace('field', 'column')}")
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        raise DataError(f"{where}: missing required column{'s' if len(missing) > 1 else ''} "
                        f"{', '.join(repr(c) for c in missing)}; found {columns}")


def _read_jsonl(text: str, path: Path, extra_keys: list[str]) -> list[dict[str, str]]:
    return [validate_record(record, where, extra_keys) for where, record in _json_lines(text, path)]


def _read_json_array(text: str, path: Path, extra_keys: list[str]) -> list[dict[str, str]]:
    try:
        items = json.loads(text, object_pairs_hook=_no_duplicate_keys(str(path)))
    except json.JSONDecodeError as err:
        raise DataError(f"{path}, line {err.lineno}: invalid JSON: {err.msg} at column {err.colno}") from None
    return [validate_record(item, f"{path}, item {i}", extra_keys) for i, item in enumerate(items)]


def _read_csv(text: str, path: Path, extra_keys: list[str]) -> list[dict[str, str]]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader)
        where = f"{path}, line {reader.line_num} (header)"
        duplicates = sorted({c for c in header if header.count(c) > 1})
        if duplicates:
            raise DataError(f"{where}: column{'s' if len(duplicates) > 1 else ''} {duplicates} appear twice")
        _check_columns(where, header, extra_keys)
        records = []
        for row in reader:
            where = f"{path}, line {reader.line_num}"
            if not row:
                continue  # a blank line
            if len(row) != len(header):
                more = len(row) > len(header)
                raise DataError(f"{where}: {len(row)} values but the header has {len(header)} columns "
                                f"({'more values than columns; quote fields that contain commas' if more else 'a value is missing'})")
            records.append(validate_record(dict(zip(header, row)), where, extra_keys))
    except csv.Error as err:
        raise DataError(f"{path}, line {reader.line_num}: malformed CSV: {err}") from None
    return records


def validate_records(records: Iterable[Any], name: str, extra_keys: Iterable[str] = (),
                     unit: str = "row") -> list[dict[str, str]]:
    """Validate in-memory records (a Dataset's rows, a list of dicts), naming each by ``name`` and index."""
    extra_keys = list(extra_keys)
    checked = [validate_record(r, f"{name}, {unit} {i}", extra_keys) for i, r in enumerate(records)]
    if not checked:
        raise DataError(f"{name}: no records")
    return checked


def load_alpaca(source: Any, extra_keys: Iterable[str] = ()):
    """Load a .jsonl/.json/.csv path, a ``datasets.Dataset`` or a list of dicts into a validated ``datasets.Dataset``."""
    from datasets import Dataset, DatasetDict

    extra_keys = list(extra_keys)
    if isinstance(source, DatasetDict):
        raise DataError(f"got a DatasetDict with splits {list(source)}; pass one split, e.g. dataset['train']")
    if isinstance(source, Dataset):
        name = f"dataset {source.info.dataset_name or '(in memory)'}"
        _check_columns(name, source.column_names, extra_keys)
        records = validate_records(source, name, extra_keys)
    elif isinstance(source, (str, Path)):
        records = read_records(source, extra_keys)
    elif isinstance(source, Sequence) and not isinstance(source, (bytes, bytearray)):
        records = validate_records(source, "records", extra_keys, unit="record")
    else:
        raise DataError(f"cannot load Alpaca data from {type(source).__name__}; pass a .jsonl/.json/.csv path, "
                        f"a datasets.Dataset or a list of dicts")
    return Dataset.from_list(records)


