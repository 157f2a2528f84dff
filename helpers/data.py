"""Check Alpaca-style data strictly (a bad record raises DataError naming the file, the line or record and
the field, so nothing is dropped silently), and format it with the Alpaca prompt. The notebooks read JSON Lines;
the training path (helpers.train, ``course train``) also reads a .json array, a .csv file with a header row, a
``datasets.Dataset`` or a list of dicts, with the same rules and messages.

    >>> validate_record({"instruction": "Sort.", "outptu": "1, 2"}, "data.jsonl, line 3")
    Traceback (most recent call last):
    helpers.data.DataError: data.jsonl, line 3: unknown field 'outptu' (did you mean 'output'?); allowed: ['input', 'instruction', 'output']
    >>> load_alpaca([{"instruction": "Sort.", "outptu": "1, 2"}])
    Traceback (most recent call last):
    helpers.data.DataError: records, record 0: unknown field 'outptu' (did you mean 'output'?); allowed: ['input', 'instruction', 'output']
"""

import csv
import difflib
import io
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

ALPACA_PROMPT = """Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.

### Instruction:
{}

### Input:
{}

### Response:
{}"""

REQUIRED = ("instruction", "output")
OPTIONAL = ("input",)
SUFFIXES = (".jsonl", ".json", ".csv")
_JSON_TYPES = {
    dict: "object",
    list: "array",
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
    type(None): "null",
}


class DataError(ValueError):
    """A record or file that cannot be used, with where and why."""


def _described(value: Any) -> str:
    """The value's JSON type name ('number', 'null', ...) and its repr, cut to 40 characters."""
    text = repr(value)
    return f"{_JSON_TYPES.get(type(value), type(value).__name__)} {text if len(text) <= 40 else text[:37] + '...'}"


def _unknown_message(unknown: list[str], allowed: list[str]) -> str:
    parts = []
    for key in unknown:
        guess = difflib.get_close_matches(key.strip().lower(), allowed, n=1, cutoff=0.6)
        parts.append(f"'{key}'" + (f" (did you mean '{guess[0]}'?)" if guess else ""))
    return f"unknown field{'s' * (len(unknown) > 1)} {', '.join(parts)}; allowed: {allowed}"


def validate_record(record: Any, where: str, extra_keys: Iterable[str] = ()) -> dict[str, str]:
    """Check one record; return it with its fields in a fixed order, ``input`` (and extra keys) "" when absent."""
    extra = [k for k in extra_keys if k not in REQUIRED + OPTIONAL]
    if not isinstance(record, Mapping):
        raise DataError(
            f"{where}: expected an object with 'instruction' and 'output', got {_described(record)}"
        )
    _check_names(where, [str(k) for k in record], extra)
    for key in (k for k in (*REQUIRED, *OPTIONAL, *extra) if k in record):
        value = record[key]
        if not isinstance(value, str):
            raise DataError(f"{where}: field '{key}' must be a string, got {_described(value)}")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise DataError(
                f"{where}: field '{key}' holds an invalid character (a lone surrogate such as "
                f"\\ud800)"
            ) from None
    for key in REQUIRED:
        if not record[key].strip():
            raise DataError(
                f"{where}: field '{key}' is empty" + (" (only whitespace)" if record[key] else "")
            )
    return {
        "instruction": record["instruction"],
        "input": record.get("input", ""),
        "output": record["output"],
        **{k: record.get(k, "") for k in extra},
    }


def _no_duplicate_keys(where: str):
    """An ``object_pairs_hook`` that rejects an object with the same key twice."""

    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        for key, value in pairs:
            if key in seen:
                raise DataError(f"{where}: field '{key}' appears twice in the same object")
            seen[key] = value
        return seen

    return hook


def _decode(path: Path) -> str:
    """The file's text: UTF-8, a leading BOM removed; otherwise a DataError with the line of the bad byte."""
    raw = path.read_bytes()
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DataError(
            f"{path}: the file is UTF-16 (it starts with a UTF-16 byte-order mark); save it as UTF-8"
        )
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        raise DataError(
            f"{path}, line {line}: not UTF-8 text (byte 0x{raw[err.start]:02x} at offset {err.start}: "
            f"{err.reason}); save the file as UTF-8"
        ) from None


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
        raise DataError(
            f"{path}: unsupported file type '{suffix or '(none)'}'; use one of {list(SUFFIXES)}"
        )
    text = _decode(path)
    if not text.strip():
        raise DataError(f"{path}: no records (the file is empty or has only blank lines)")
    if suffix == ".csv":
        records = _read_csv(text, path, extra_keys)
    elif suffix == ".json" and text.lstrip().startswith("["):
        records = _read_json_array(text, path, extra_keys)
    else:
        records = [
            validate_record(record, where, extra_keys) for where, record in _json_lines(text, path)
        ]
    if not records:
        raise DataError(
            f"{path}: no records (only a header row)" if suffix == ".csv" else f"{path}: no records"
        )
    return records


def _check_names(where: str, names: list[str], extra: Iterable[str], noun: str = "field") -> None:
    """A record's fields or a table's columns: none unknown, the required ones present."""
    allowed = sorted({*REQUIRED, *OPTIONAL, *extra})
    unknown = [name for name in names if name not in allowed]
    if unknown:
        raise DataError(f"{where}: {_unknown_message(unknown, allowed).replace('field', noun)}")
    missing = [name for name in REQUIRED if name not in names]
    if missing:
        found = f"; found {names}" if noun == "column" else ""
        raise DataError(
            f"{where}: missing required {noun}{'s' * (len(missing) > 1)} "
            f"{', '.join(map(repr, missing))}{found}"
        )


def _check_columns(where: str, columns: list[str], extra_keys: list[str]) -> None:
    """A table's columns (a CSV header, a Dataset's): none unknown, the required ones present."""
    _check_names(where, list(columns), extra_keys, noun="column")


def _read_json_array(text: str, path: Path, extra_keys: list[str]) -> list[dict[str, str]]:
    try:
        items = json.loads(text, object_pairs_hook=_no_duplicate_keys(str(path)))
    except json.JSONDecodeError as err:
        raise DataError(
            f"{path}, line {err.lineno}: invalid JSON: {err.msg} at column {err.colno}"
        ) from None
    return [validate_record(item, f"{path}, item {i}", extra_keys) for i, item in enumerate(items)]


def _read_csv(text: str, path: Path, extra_keys: list[str]) -> list[dict[str, str]]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader)
        where = f"{path}, line {reader.line_num} (header)"
        duplicates = sorted({c for c in header if header.count(c) > 1})
        if duplicates:
            raise DataError(
                f"{where}: column{'s' if len(duplicates) > 1 else ''} {duplicates} appear twice"
            )
        _check_columns(where, header, extra_keys)
        records = []
        for row in reader:
            where = f"{path}, line {reader.line_num}"
            if not row:
                continue  # a blank line
            if len(row) != len(header):
                more = len(row) > len(header)
                raise DataError(
                    f"{where}: {len(row)} values but the header has {len(header)} columns "
                    f"({'more values than columns; quote fields that contain commas' if more else 'a value is missing'})"
                )
            records.append(validate_record(dict(zip(header, row)), where, extra_keys))
    except csv.Error as err:
        raise DataError(f"{path}, line {reader.line_num}: malformed CSV: {err}") from None
    return records


def validate_records(
    records: Iterable[Any], name: str, extra_keys: Iterable[str] = (), unit: str = "row"
) -> list[dict[str, str]]:
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
        raise DataError(
            f"got a DatasetDict with splits {list(source)}; pass one split, e.g. dataset['train']"
        )
    if isinstance(source, Dataset):
        name = f"dataset {source.info.dataset_name or '(in memory)'}"
        _check_columns(name, source.column_names, extra_keys)
        records = validate_records(source, name, extra_keys)
    elif isinstance(source, (str, Path)):
        records = read_records(source, extra_keys)
    elif isinstance(source, Sequence) and not isinstance(source, (bytes, bytearray)):
        records = validate_records(source, "records", extra_keys, unit="record")
    else:
        raise DataError(
            f"cannot load Alpaca data from {type(source).__name__}; pass a .jsonl/.json/.csv path, "
            f"a datasets.Dataset or a list of dicts"
        )
    return Dataset.from_list(records)


def json_lines(path: str | Path) -> Iterator[tuple[str, Any]]:
    """Yield ``(where, object)`` for each non-blank line of a UTF-8 JSON Lines file, where = "FILE, line N";
    a line that is not one JSON value, or an object with a key twice, raises DataError naming the line."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found (current folder: {Path.cwd()})")
    yield from _json_lines(_decode(path), path)


def _json_lines(text: str, path: Path) -> Iterator[tuple[str, Any]]:
    # Split on "\n" only: str.splitlines() would also split inside strings at U+2028 and friends.
    for lineno, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        where = f"{path}, line {lineno}"
        try:
            yield where, json.loads(line, object_pairs_hook=_no_duplicate_keys(where))
        except json.JSONDecodeError as err:
            cut_off = err.pos >= len(line.rstrip())  # the object goes on past the end of the line
            hint = "; a JSON Lines file holds one whole object per line" if cut_off else ""
            raise DataError(
                f"{where}: invalid JSON: {err.msg} at column {err.colno}{hint}"
            ) from None


def check_alpaca_file(path: str | Path, extra_keys: Iterable[str] = ()) -> int:
    """Check every record of a data file before ``load_dataset`` reads it; print and return how many there are."""
    count = len(read_records(path, extra_keys))
    print(f"{Path(path).name}: {count} records, each with the Alpaca fields as non-empty strings")
    return count


def format_alpaca(example: Mapping[str, str], eos_token: str) -> dict[str, str]:
    """Fill the Alpaca prompt with one record and append the EOS token (so generation learns to stop)."""
    return {
        "text": ALPACA_PROMPT.format(
            example["instruction"], example.get("input", ""), example["output"]
        )
        + eos_token
    }


def prompt_for(instruction: str, input_text: str = "") -> str:
    """The Alpaca prompt up to '### Response:', ready for generation."""
    return ALPACA_PROMPT.format(instruction, input_text, "")
