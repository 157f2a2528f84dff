"""The strict Alpaca loader (helpers.data: one read_records for .jsonl, .json and .csv, shared by the notebooks
and the command): every malformed input gets a DataError that says what and where.

Each case writes a small file (or builds a Dataset / list) and asserts the exact parts of the message
a learner needs: the file, the line (or row), and the field or problem.
"""

import json
import re
from pathlib import Path

import pytest
from datasets import Dataset, DatasetDict

from helpers import data as course_data
from helpers.data import (
    ALPACA_PROMPT,
    DataError,
    format_alpaca,
    load_alpaca,
    prompt_for,
    read_records,
    validate_record,
)
from helpers.paths import EVAL_FILE, TRAIN_FILE

ROOT = Path(__file__).resolve().parent.parent

GOOD = {"instruction": "Sort the numbers.", "input": "3, 1", "output": "1, 3"}
GOOD_LINE = json.dumps(GOOD)


def write(tmp_path: Path, text: str | bytes, name: str = "data.jsonl") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8", newline="")
    return path


def error_of(source, **kwargs) -> str:
    with pytest.raises(DataError) as info:
        load_alpaca(source, **kwargs)
    return str(info.value)


# ---------------------------------------------------------------------------------------------- good input


def test_the_course_files_load():
    train = load_alpaca(TRAIN_FILE)
    evals = load_alpaca(EVAL_FILE, extra_keys=["family"])
    assert train.column_names == ["instruction", "input", "output"]
    assert evals.column_names == ["instruction", "input", "output", "family"]
    assert len(train) > 1000 and len(evals) >= 100
    assert all(evals["family"])


def test_input_is_optional_and_defaults_to_empty(tmp_path):
    path = write(tmp_path, json.dumps({"instruction": "Say hi.", "output": "hi"}) + "\n")
    assert load_alpaca(path)[0] == {"instruction": "Say hi.", "input": "", "output": "hi"}


def test_empty_input_string_is_fine(tmp_path):
    path = write(tmp_path, json.dumps({**GOOD, "input": ""}) + "\n")
    assert load_alpaca(path)[0]["input"] == ""


@pytest.mark.parametrize(
    "text",
    [
        GOOD_LINE,  # no trailing newline
        GOOD_LINE + "\n",  # trailing newline
        GOOD_LINE + "\n\n\n",  # several trailing newlines
        "\n\n" + GOOD_LINE + "\n   \n\t\n",  # blank and whitespace-only lines around
        "\ufeff" + GOOD_LINE + "\n",  # a UTF-8 byte-order mark
        GOOD_LINE + "\r\n" + GOOD_LINE + "\r\n",  # Windows line ends
    ],
    ids=[
        "no-trailing-newline",
        "trailing-newline",
        "many-trailing-newlines",
        "blank-lines",
        "bom",
        "crlf",
    ],
)
def test_harmless_formatting_is_accepted(tmp_path, text):
    records = load_alpaca(write(tmp_path, text))
    assert len(records) == text.count('"instruction"')
    assert records[0] == GOOD


def test_line_separator_characters_inside_strings_do_not_split_lines(tmp_path):
    record = {**GOOD, "output": "a\u2028b\u0085c"}
    path = write(tmp_path, json.dumps(record, ensure_ascii=False) + "\n" + GOOD_LINE + "\n")
    assert load_alpaca(path)[0]["output"] == "a\u2028b\u0085c"


def test_blank_line_numbers_still_count(tmp_path):
    path = write(tmp_path, GOOD_LINE + "\n\n\n" + '{"instruction": "x"}\n')
    assert "data.jsonl, line 4: missing required field 'output'" in error_of(path)


def test_extra_keys_are_allowed_when_named_and_default_to_empty(tmp_path):
    path = write(tmp_path, json.dumps({**GOOD, "family": "sort"}) + "\n" + GOOD_LINE + "\n")
    records = load_alpaca(path, extra_keys=["family"])
    assert records["family"] == ["sort", ""]
    assert "unknown field 'family'" in error_of(path)


def test_json_array_file(tmp_path):
    path = write(tmp_path, json.dumps([GOOD, GOOD], indent=2), name="alpaca_data.json")
    assert len(load_alpaca(path)) == 2
    bad = write(tmp_path, json.dumps([GOOD, {"instruction": "x"}]), name="bad.json")
    assert "bad.json, item 1: missing required field 'output'" in error_of(bad)


def test_csv_file(tmp_path):
    path = write(
        tmp_path, 'instruction,input,output\n"Sort the numbers.","3, 1","1, 3"\n\n', name="d.csv"
    )
    assert load_alpaca(path)[0] == GOOD


def test_csv_without_input_column_and_with_bom_and_crlf(tmp_path):
    path = write(tmp_path, "\ufeffinstruction,output\r\nSay hi.,hi\r\n", name="d.csv")
    assert load_alpaca(path)[0] == {"instruction": "Say hi.", "input": "", "output": "hi"}


def test_csv_multiline_quoted_field(tmp_path):
    path = write(tmp_path, 'instruction,output\n"Write two lines.","one\ntwo"\n', name="d.csv")
    assert load_alpaca(path)[0]["output"] == "one\ntwo"


def test_dataset_and_list_sources():
    assert load_alpaca(Dataset.from_list([GOOD]))[0] == GOOD
    assert load_alpaca([GOOD, {"instruction": "Say hi.", "output": "hi"}])[1]["input"] == ""


@pytest.mark.parametrize(
    "name, text",
    [
        ("d.jsonl", GOOD_LINE),
        ("d.json", json.dumps([GOOD])),
        ("lines.json", GOOD_LINE + "\n"),  # a .json file that holds JSON Lines
        ("d.csv", 'instruction,input,output\n"Sort the numbers.","3, 1","1, 3"\n'),
    ],
    ids=["jsonl", "json-array", "json-lines-in-json", "csv"],
)
def test_read_records_returns_plain_dicts(tmp_path, name, text):
    assert read_records(write(tmp_path, text, name=name)) == [GOOD]


def test_read_records_names_the_record_in_every_format(tmp_path):
    bad = {"instruction": "x", "outptu": "y"}
    cases = {
        "d.jsonl": (GOOD_LINE + "\n" + json.dumps(bad), "d.jsonl, line 2"),
        "d.json": (json.dumps([GOOD, bad]), "d.json, item 1"),
        "d.csv": ("instruction,output\nx,y\nz,\n", "d.csv, line 3"),
    }
    for name, (text, where) in cases.items():
        with pytest.raises(DataError, match=re.escape(where) + ": "):
            read_records(write(tmp_path, text, name=name))


def test_read_records_has_one_home():
    """One reader for every format, in helpers.data: the notebooks, the training path and the command share it."""
    homes = [
        p.relative_to(ROOT).as_posix()
        for p in sorted([*(ROOT / "helpers").glob("*.py"), *(ROOT / "tools").rglob("*.py")])
        if re.search(r"^def read_records\(", p.read_text(), flags=re.M)
    ]
    assert homes == ["helpers/data.py"]


# ---------------------------------------------------------------------------------------- file problems


def test_missing_file(tmp_path):
    message = error_of(tmp_path / "nope.jsonl")
    assert "nope.jsonl: file not found" in message


def test_a_folder_is_not_a_file(tmp_path):
    folder = tmp_path / "d.jsonl"
    folder.mkdir()
    assert "is a folder" in error_of(folder)


@pytest.mark.parametrize("name", ["data.txt", "data.parquet", "data"])
def test_wrong_extension(tmp_path, name):
    message = error_of(write(tmp_path, GOOD_LINE, name=name))
    assert f"{name}: unsupported file type" in message and ".jsonl" in message and ".csv" in message


def test_not_utf8_names_the_line(tmp_path):
    path = write(
        tmp_path,
        (GOOD_LINE + "\n").encode()
        + '{"instruction": "caf\u00e9", "output": "x"}'.encode("latin-1"),
    )
    message = error_of(path)
    assert "data.jsonl, line 2: not UTF-8" in message and "0xe9" in message


def test_utf16_is_named(tmp_path):
    path = write(tmp_path, (GOOD_LINE + "\n").encode("utf-16"))
    assert "UTF-16" in error_of(path)


@pytest.mark.parametrize(
    "text", ["", "\n\n  \n\t\n", "\ufeff"], ids=["empty", "only-blank-lines", "only-bom"]
)
def test_empty_file(tmp_path, text):
    assert "data.jsonl: no records (the file is empty or has only blank lines)" in error_of(
        write(tmp_path, text)
    )


# ---------------------------------------------------------------------------------------- line problems


@pytest.mark.parametrize(
    "line, detail",
    [
        ('{"instruction": "x", "output": "y"', "invalid JSON: Expecting ',' delimiter"),
        (
            "{'instruction': 'x', 'output': 'y'}",
            "invalid JSON: Expecting property name enclosed in double quotes",
        ),
        ('{"instruction": "x", "output": "y"} {"a": 1}', "invalid JSON: Extra data"),
        (
            '{"instruction": "x", "output": "y",}',
            "invalid JSON: ",
        ),  # the wording differs across Pythons
        ("instruction: x", "invalid JSON: Expecting value"),
    ],
    ids=["unclosed", "single-quotes", "two-objects", "trailing-comma", "not-json"],
)
def test_invalid_json_line(tmp_path, line, detail):
    message = error_of(write(tmp_path, GOOD_LINE + "\n" + line + "\n"))
    assert "data.jsonl, line 2: " in message and detail in message and "column" in message


def test_pretty_printed_json_in_a_jsonl_file(tmp_path):
    message = error_of(write(tmp_path, json.dumps(GOOD, indent=2)))
    assert "line 1: invalid JSON" in message and "one whole object per line" in message
    assert "one whole object" not in error_of(write(tmp_path, '{"instruction": x}'))


@pytest.mark.parametrize(
    "line, got",
    [
        ("[1, 2]", "got array [1, 2]"),
        ('"just text"', "got string 'just text'"),
        ("42", "got number 42"),
        ("true", "got boolean True"),
        ("null", "got null None"),
    ],
    ids=["array", "string", "number", "boolean", "null"],
)
def test_line_that_is_not_an_object(tmp_path, line, got):
    message = error_of(write(tmp_path, line + "\n"))
    assert (
        "data.jsonl, line 1: expected an object with 'instruction' and 'output'" in message
        and got in message
    )


def test_duplicate_key_in_an_object(tmp_path):
    path = write(tmp_path, '{"instruction": "x", "output": "a", "output": "b"}\n')
    assert "data.jsonl, line 1: field 'output' appears twice in the same object" in error_of(path)


# -------------------------------------------------------------------------------------- field problems


@pytest.mark.parametrize(
    "record, detail",
    [
        ({"input": "i", "output": "o"}, "missing required field 'instruction'"),
        ({"instruction": "x", "input": "i"}, "missing required field 'output'"),
        ({"input": "i"}, "missing required fields 'instruction', 'output'"),
        ({}, "missing required fields 'instruction', 'output'"),
        ({"instruction": "x", "output": ""}, "field 'output' is empty"),
        ({"instruction": "x", "output": "  \n\t"}, "field 'output' is empty (only whitespace)"),
        ({"instruction": "", "output": "o"}, "field 'instruction' is empty"),
        ({"instruction": " ", "output": "o"}, "field 'instruction' is empty (only whitespace)"),
        ({"instruction": "x", "output": 5}, "field 'output' must be a string, got number 5"),
        ({"instruction": "x", "output": 2.5}, "field 'output' must be a string, got number 2.5"),
        ({"instruction": "x", "output": None}, "field 'output' must be a string, got null"),
        ({"instruction": "x", "output": ["a"]}, "field 'output' must be a string, got array"),
        ({"instruction": "x", "output": {"a": 1}}, "field 'output' must be a string, got object"),
        ({"instruction": "x", "output": True}, "field 'output' must be a string, got boolean"),
        ({"instruction": 7, "output": "o"}, "field 'instruction' must be a string, got number 7"),
        (
            {"instruction": "x", "input": None, "output": "o"},
            "field 'input' must be a string, got null",
        ),
        (
            {"instruction": "x", "input": 3, "output": "o"},
            "field 'input' must be a string, got number 3",
        ),
        ({"instruction": "x", "output": "o", "response": "r"}, "unknown field 'response'"),
        (
            {"instruction": "x", "output": "o", "text": "t", "id": "1"},
            "unknown fields 'text', 'id'",
        ),
        ({"instruction": "x", "outptu": "o"}, "unknown field 'outptu' (did you mean 'output'?)"),
        (
            {"Instruction": "x", "output": "o"},
            "unknown field 'Instruction' (did you mean 'instruction'?)",
        ),
    ],
    ids=[
        "no-instruction",
        "no-output",
        "neither",
        "empty-object",
        "empty-output",
        "whitespace-output",
        "empty-instruction",
        "whitespace-instruction",
        "output-int",
        "output-float",
        "output-null",
        "output-list",
        "output-dict",
        "output-bool",
        "instruction-int",
        "input-null",
        "input-int",
        "unknown-key",
        "unknown-keys",
        "typo",
        "capitalised",
    ],
)
def test_bad_field(tmp_path, record, detail):
    path = write(tmp_path, GOOD_LINE + "\n" + GOOD_LINE + "\n" + json.dumps(record) + "\n")
    message = error_of(path)
    assert "data.jsonl, line 3: " in message
    assert detail in message


def test_unknown_key_message_lists_the_allowed_fields():
    with pytest.raises(DataError, match=r"allowed: \['input', 'instruction', 'output'\]"):
        validate_record({**GOOD, "extra": "x"}, "here")


def test_extra_key_must_be_a_string_too(tmp_path):
    path = write(tmp_path, json.dumps({**GOOD, "family": 3}) + "\n")
    assert "line 1: field 'family' must be a string, got number 3" in error_of(
        path, extra_keys=["family"]
    )


def test_lone_surrogate(tmp_path):
    path = write(tmp_path, '{"instruction": "x", "output": "\\ud800"}\n')
    assert "line 1: field 'output' holds an invalid character" in error_of(path)


def test_first_bad_record_stops_loading_nothing_is_skipped(tmp_path):
    lines = [GOOD_LINE] * 5 + ['{"instruction": "x", "output": ""}'] + [GOOD_LINE] * 5
    assert "line 6:" in error_of(write(tmp_path, "\n".join(lines)))


# ------------------------------------------------------------------------------------------------ CSV


@pytest.mark.parametrize(
    "text, detail",
    [
        (
            "instruction,input\nx,y\n",
            "line 1 (header): missing required column 'output'; found ['instruction', 'input']",
        ),
        ("input\ny\n", "line 1 (header): missing required columns 'instruction', 'output'"),
        ("instruction,output,response\nx,y,z\n", "line 1 (header): unknown column 'response'"),
        (
            "instruction,ouput\nx,y\n",
            "line 1 (header): unknown column 'ouput' (did you mean 'output'?)",
        ),
        ("instruction,output,output\nx,y,z\n", "line 1 (header): column ['output'] appear twice"),
        (
            "instruction,input,output\nSort.,3, 1,1, 3\n",
            "line 2: 5 values but the header has 3 columns (more values",
        ),
        (
            "instruction,input,output\nSort.,3\n",
            "line 2: 2 values but the header has 3 columns (a value is missing)",
        ),
        ("instruction,output\nx,y\nz,\n", "line 3: field 'output' is empty"),
        ("instruction,output\nx,y\n,,\n", "line 3: 3 values but the header has 2 columns"),
        ("instruction,output\n,\n", "line 2: field 'instruction' is empty"),
        ('instruction,output\nx,"unclosed\n', "malformed CSV"),
        ('instruction,output\nx,"a"b\n', "line 2: malformed CSV"),
    ],
    ids=[
        "missing-output-column",
        "missing-both-columns",
        "unknown-column",
        "typo-column",
        "duplicate-column",
        "extra-values",
        "short-row",
        "empty-output-cell",
        "commas-only-row",
        "empty-row-cells",
        "unclosed-quote",
        "stray-quote",
    ],
)
def test_bad_csv(tmp_path, text, detail):
    message = error_of(write(tmp_path, text, name="d.csv"))
    assert "d.csv" in message and detail in message


@pytest.mark.parametrize(
    "text, detail",
    [
        ("", "no records (the file is empty or has only blank lines)"),
        ("\n\n", "no records (the file is empty or has only blank lines)"),
        ("instruction,input,output\n", "no records (only a header row)"),
    ],
    ids=["empty", "blank-lines", "header-only"],
)
def test_empty_csv(tmp_path, text, detail):
    assert detail in error_of(write(tmp_path, text, name="d.csv"))


# --------------------------------------------------------------------------------- Dataset and lists


def test_dataset_with_a_bad_row():
    ds = Dataset.from_list([GOOD, {**GOOD, "output": " "}, GOOD])
    assert "dataset (in memory), row 1: field 'output' is empty" in error_of(ds)


def test_dataset_with_a_null_cell():
    ds = Dataset.from_list([GOOD, {"instruction": "x", "input": None, "output": "y"}])
    assert "row 1: field 'input' must be a string, got null" in error_of(ds)


def test_dataset_with_a_non_string_column():
    ds = Dataset.from_dict({"instruction": ["x"], "output": [3]})
    assert "row 0: field 'output' must be a string, got number 3" in error_of(ds)


def test_dataset_missing_and_unknown_columns():
    assert "missing required column 'output'" in error_of(Dataset.from_dict({"instruction": ["x"]}))
    message = error_of(Dataset.from_dict({"instruction": ["x"], "output": ["y"], "text": ["z"]}))
    assert "unknown column 'text'" in message


def test_empty_dataset_and_empty_list():
    assert "no records" in error_of(Dataset.from_dict({"instruction": [], "output": []}))
    assert "records: no records" in error_of([])


def test_dataset_dict_asks_for_a_split():
    message = error_of(DatasetDict({"train": Dataset.from_list([GOOD])}))
    assert "DatasetDict" in message and "dataset['train']" in message


def test_list_with_a_bad_record():
    assert "records, record 1: expected an object" in error_of([GOOD, "oops"])


def test_unsupported_source_type():
    assert "cannot load Alpaca data from int" in error_of(42)


def test_data_error_is_a_value_error():
    assert issubclass(DataError, ValueError)


# --------------------------------------------------------------------------------------- formatting


def test_format_alpaca_fills_the_prompt_and_appends_eos():
    text = format_alpaca(GOOD, eos_token="</s>")["text"]
    assert text == ALPACA_PROMPT.format(GOOD["instruction"], GOOD["input"], GOOD["output"]) + "</s>"
    assert text.startswith(prompt_for(GOOD["instruction"], GOOD["input"]))
    assert prompt_for("x").endswith("### Response:\n")


# --------------------------------------------------------------------------- the notebooks' JSON Lines loader


def test_the_notebooks_loader_reads_json_lines_with_the_same_checks(tmp_path, capsys):
    path = write(tmp_path, GOOD_LINE + "\n\n" + GOOD_LINE)
    assert course_data.check_alpaca_file(path) == 2
    assert (
        capsys.readouterr().out
        == f"{path.name}: 2 records, each with the Alpaca fields as non-empty strings\n"
    )
    assert course_data.read_records(path) == [GOOD, GOOD]
    bad = write(tmp_path, GOOD_LINE + '\n{"instruction": "x"}', name="bad.jsonl")
    with pytest.raises(DataError, match=r"bad.jsonl, line 2: missing required field 'output'"):
        course_data.check_alpaca_file(bad)


def test_the_notebooks_loader_reads_the_other_formats_with_the_same_reader(tmp_path, capsys):
    path = write(tmp_path, "instruction,output\nSay hi.,hi\n", name="d.csv")
    assert course_data.check_alpaca_file(path) == 1 and capsys.readouterr().out.startswith(
        "d.csv: 1 records"
    )
    with pytest.raises(
        DataError, match=r"d.txt: unsupported file type '.txt'; use one of \['.jsonl', '.json'"
    ):
        course_data.check_alpaca_file(write(tmp_path, GOOD_LINE, name="d.txt"))
