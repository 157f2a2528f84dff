"""Hugging Face tokens come from the environment or Colab's secrets; no notebook holds or prints one."""

import json
import re
import sys
import types
from pathlib import Path

import pytest

from helpers.secrets import hf_token

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
TOKEN_RE = re.compile(r"hf_[A-Za-z0-9]{20,}")
SECRET = "hf_" + "Zk4pW9" * 6


@pytest.fixture
def colab(monkeypatch):
    """A stand-in for google.colab.userdata holding the secrets a learner added."""
    secrets: dict[str, str] = {}

    class SecretNotFoundError(Exception):
        pass

    def get(name):
        if name not in secrets:
            raise SecretNotFoundError(name)
        return secrets[name]

    google = types.ModuleType("google")
    colab_mod = types.ModuleType("google.colab")
    colab_mod.userdata = types.SimpleNamespace(get=get)
    google.colab = colab_mod
    monkeypatch.setitem(sys.modules, "google", google)
    monkeypatch.setitem(sys.modules, "google.colab", colab_mod)
    monkeypatch.setitem(sys.modules, "google.colab.userdata", colab_mod.userdata)
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return secrets


def test_token_comes_from_colab_secrets(colab, capsys):
    colab["HF_TOKEN"] = SECRET
    token = hf_token()
    assert token.value == SECRET and token.source == "Colab secret HF_TOKEN"
    print(token)
    assert SECRET not in capsys.readouterr().out


def test_missing_colab_secret_is_none_not_a_crash(colab):
    assert hf_token() is None


def test_environment_wins_over_colab(colab, monkeypatch):
    colab["HF_TOKEN"] = "hf_from_colab_xxxxxxxxxxxxxxxxxxxx"
    monkeypatch.setenv("HF_TOKEN", SECRET)
    assert hf_token().value == SECRET


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_notebook_holds_or_prints_a_token(path):
    nb = json.loads(path.read_text())
    text = json.dumps(nb)
    assert not TOKEN_RE.search(text), f"{path.name} contains something that looks like a Hugging Face token"
    for i, cell in enumerate(nb["cells"]):
        source = "".join(cell["source"])
        if cell["cell_type"] != "code":
            continue
        assert not re.search(r"""token\s*=\s*["']""", source), f"{path.name} cell {i} hard-codes a token"
        assert not re.search(r"""login\(\s*["']""", source), f"{path.name} cell {i} logs in with a literal token"
        assert not re.search(r"print\([^)]*\.value", source), f"{path.name} cell {i} prints a token's value"
