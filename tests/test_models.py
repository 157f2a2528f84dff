"""Model choice: COURSE_MODEL, the parameter, and the auto default."""

from helpers import models


def test_explicit_name_passes_through(monkeypatch):
    monkeypatch.setenv("COURSE_MODEL", "tiny")
    assert models.choose_model("unsloth/llama-3-8b-bnb-4bit") == "unsloth/llama-3-8b-bnb-4bit"


def test_environment_variable_is_used_when_the_parameter_is_empty(monkeypatch):
    monkeypatch.setenv("COURSE_MODEL", "some-org/some-model")
    assert models.choose_model("") == "some-org/some-model"


def test_auto_without_gpu_is_the_tiny_model(monkeypatch):
    monkeypatch.delenv("COURSE_MODEL", raising=False)
    monkeypatch.setattr(models, "has_cuda", lambda: False)
    path = models.choose_model()
    assert models.is_tiny(path)


def test_auto_with_gpu_is_the_8b_model(monkeypatch):
    monkeypatch.setenv("COURSE_MODEL", "auto")
    monkeypatch.setattr(models, "has_cuda", lambda: True)
    assert models.choose_model() == models.GPU_DEFAULT == "unsloth/llama-3-8b-bnb-4bit"


def test_is_tiny_is_false_for_hub_names():
    assert not models.is_tiny("unsloth/llama-3-8b-bnb-4bit")
