"""Hugging Face tokens come from the environment or Kaggle's or Colab's secrets; no notebook holds or prints one."""

import json
import re
import sys
import types
from pathlib import Path

import pytest

from helpers.runtime import in_kaggle
from helpers.secrets import MissingTokenError, hf_token

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
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "KAGGLE_KERNEL_RUN_TYPE"):
        monkeypatch.delenv(name, raising=False)
    return secrets


class BackendError(Exception):
    """What Kaggle's kaggle_web_client raises when a secret is not attached to the notebook."""


@pytest.fixture
def kaggle(monkeypatch):
    """A stand-in for Kaggle's kaggle_secrets module (docker-python patches/kaggle_secrets.py) inside a Kaggle notebook."""
    secrets: dict[str, str] = {}
    calls: list[str] = []

    class UserSecretsClient:
        def get_secret(self, label):
            calls.append(label)
            if label not in secrets:
                raise BackendError(
                    f"Unexpected response from the service. Response: no secret {label}"
                )
            value = secrets[label]
            if isinstance(value, Exception):
                raise value
            return value

    module = types.ModuleType("kaggle_secrets")
    module.UserSecretsClient = UserSecretsClient
    monkeypatch.setitem(sys.modules, "kaggle_secrets", module)
    monkeypatch.setenv("KAGGLE_KERNEL_RUN_TYPE", "Interactive")
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return types.SimpleNamespace(secrets=secrets, calls=calls)


def test_token_comes_from_kaggle_secrets(kaggle, capsys):
    kaggle.secrets["HF_TOKEN"] = SECRET
    token = hf_token()
    assert token.value == SECRET and token.source == "Kaggle secret HF_TOKEN"
    print(token, repr(token), f"{token}")
    assert SECRET not in capsys.readouterr().out


def test_kaggle_secret_not_attached_is_none_not_a_crash(kaggle):
    assert hf_token() is None and kaggle.calls == ["HF_TOKEN"]
    with pytest.raises(MissingTokenError, match="on Kaggle add a secret named HF_TOKEN"):
        hf_token(required=True)


@pytest.mark.parametrize(
    "error", [ConnectionError("Please ensure internet is on."), RuntimeError("no JWT token")]
)
def test_kaggle_client_errors_are_none(kaggle, error):
    kaggle.secrets["HF_TOKEN"] = error
    assert hf_token() is None


def test_kaggle_secrets_are_not_asked_outside_kaggle(kaggle, monkeypatch):
    monkeypatch.delenv("KAGGLE_KERNEL_RUN_TYPE")
    kaggle.secrets["HF_TOKEN"] = SECRET
    assert not in_kaggle()
    assert hf_token() is None and kaggle.calls == []


def test_environment_wins_over_kaggle(kaggle, monkeypatch):
    kaggle.secrets["HF_TOKEN"] = "hf_from_kaggle_xxxxxxxxxxxxxxxxxxx"
    monkeypatch.setenv("HF_TOKEN", SECRET)
    assert hf_token().value == SECRET and kaggle.calls == []


def test_kaggle_wins_over_a_colab_marker(kaggle, colab, monkeypatch):
    # Kaggle's image is built on Colab's, so a Colab marker may be present on Kaggle too.
    monkeypatch.setenv("KAGGLE_KERNEL_RUN_TYPE", "Batch")
    monkeypatch.setenv("COLAB_RELEASE_TAG", "release-colab-external-images")
    kaggle.secrets["HF_TOKEN"] = SECRET
    colab["HF_TOKEN"] = "hf_from_colab_xxxxxxxxxxxxxxxxxxxx"
    token = hf_token()
    assert token.value == SECRET and token.source == "Kaggle secret HF_TOKEN"


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
    assert not TOKEN_RE.search(text), (
        f"{path.name} contains something that looks like a Hugging Face token"
    )
    for i, cell in enumerate(nb["cells"]):
        source = "".join(cell["source"])
        if cell["cell_type"] != "code":
            continue
        assert not re.search(r"""token\s*=\s*["']""", source), (
            f"{path.name} cell {i} hard-codes a token"
        )
        assert not re.search(r"""login\(\s*["']""", source), (
            f"{path.name} cell {i} logs in with a literal token"
        )
        assert not re.search(r"print\([^)]*\.value", source), (
            f"{path.name} cell {i} prints a token's value"
        )
