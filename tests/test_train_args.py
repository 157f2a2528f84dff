"""python -m helpers.train (the notebooks' catch-up) takes its step count from $COURSE_MAX_STEPS, as notebooks
04 and 07 take MAX_STEPS, so a short test run shortens every training path without editing the course."""

import pytest

from helpers.train import parse_args


@pytest.mark.parametrize(("env", "expected"), [(None, None), ("0", None), ("", None), ("7", 7)])
def test_max_steps_defaults_to_the_environment(monkeypatch, env, expected):
    if env is None:
        monkeypatch.delenv("COURSE_MAX_STEPS", raising=False)
    else:
        monkeypatch.setenv("COURSE_MAX_STEPS", env)
    assert parse_args([]).max_steps == expected
    assert parse_args(["--max-steps", "3"]).max_steps == 3  # a flag wins


def test_a_step_count_below_one_is_refused(monkeypatch, capsys):
    monkeypatch.setenv("COURSE_MAX_STEPS", "-2")
    with pytest.raises(SystemExit):
        parse_args([])
    assert "--max-steps must be at least 1, got -2" in capsys.readouterr().err
