"""tools.quality: CI's guard on the CPU default model's scores, read from what the executed notebooks wrote."""

import json

import pytest

from tools import quality

RECORDED = {"scores_06.json": {"fine-tuned": {"sentiment": 1.0, "parity": 0.5, "overall": 0.7}}}


def test_scores_within_tolerance_pass():
    measured = {
        "scores_06.json": {"fine-tuned": {"sentiment": 0.9, "parity": 0.6, "overall": 0.68}}
    }
    assert quality.regressions(RECORDED, measured) == []


def test_a_fallen_score_is_named():
    measured = {
        "scores_06.json": {"fine-tuned": {"sentiment": 0.85, "parity": 0.5, "overall": 0.66}}
    }
    problems = quality.regressions(RECORDED, measured)
    assert [p.split(":")[0] for p in problems] == [
        "scores_06.json 'fine-tuned' sentiment",
        "scores_06.json 'fine-tuned' overall",
    ]


def test_a_missing_family_is_a_regression():
    measured = {"scores_06.json": {"fine-tuned": {"sentiment": 1.0, "overall": 0.7}}}
    assert "parity" in quality.regressions(RECORDED, measured)[0]


def test_a_missing_file_says_which(tmp_path):
    with pytest.raises(FileNotFoundError, match="scores_06.json"):
        quality.read_scores(tmp_path)


def test_the_command_reads_the_notebooks_files(tmp_path, monkeypatch, capsys):
    table = {
        "fine-tuned": {"overall": 0.5},
        "base": {"overall": 0.0},
        "responses only": {"overall": 0.9},
    }
    for name in quality.GUARDED:
        (tmp_path / name).write_text(json.dumps(table))
    recorded = tmp_path / "recorded.json"
    monkeypatch.setattr(quality, "RECORDED", recorded)
    assert quality.main([str(tmp_path), "--record"]) == 0
    assert json.loads(recorded.read_text())["scores_07.json"] == {
        "responses only": {"overall": 0.9}
    }
    table["fine-tuned"]["overall"] = 0.4
    (tmp_path / "scores_06.json").write_text(json.dumps(table))
    assert quality.main([str(tmp_path)]) == 1
    assert "recorded 0.500, now 0.4" in capsys.readouterr().err


def test_the_recorded_scores_are_the_cpu_defaults():
    recorded = json.loads(quality.RECORDED.read_text())
    assert set(recorded) == set(quality.GUARDED)
    assert all(
        0 < recorded[name][column]["overall"] <= 1
        for name, columns in quality.GUARDED.items()
        for column in columns
    )
