"""Hugging Face tokens from the environment or Kaggle's or Colab's secrets, never typed into or printed by a notebook.

Set ``HF_TOKEN`` in the environment; on Colab add it under the key icon (Secrets) as ``HF_TOKEN`` and
allow this notebook to read it; on Kaggle add it under Add-ons > Secrets as ``HF_TOKEN`` and attach it to
this notebook. ``hf_token()`` returns a :class:`Token` whose ``str``/``repr`` are
masked, so printing it, logging it or leaving it as a cell's output shows no secret; pass
``token.value`` where a library needs the string.

Example:
    >>> t = Token("hf_abcdefghijklmnopqrstuvwxyz012345", "HF_TOKEN")
    >>> t
    Token('hf_****', 35 chars, from HF_TOKEN)
    >>> print(t)
    hf_****
"""

from __future__ import annotations

import os

ENV_NAMES = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")  # the second is huggingface_hub's older name
COLAB_SECRET = "HF_TOKEN"
KAGGLE_SECRET = "HF_TOKEN"


class MissingTokenError(RuntimeError):
    """No Hugging Face token in the environment, Kaggle's secrets or Colab's secrets."""


class Token:
    """A secret string that never shows itself: ``str``/``repr``/f-strings print a mask; ``.value`` is the secret."""

    __slots__ = ("_value", "source")

    def __init__(self, value: str, source: str) -> None:
        self._value = value
        self.source = source

    @property
    def value(self) -> str:
        """The token itself: pass it to a library (``token=t.value``), never to print()."""
        return self._value

    def masked(self) -> str:
        """The token with everything after its 'hf_' prefix hidden."""
        return ("hf_" if self._value.startswith("hf_") else "") + "****"

    def __str__(self) -> str:
        return self.masked()

    def __format__(self, spec: str) -> str:
        return format(self.masked(), spec)

    def __repr__(self) -> str:
        return f"Token({self.masked()!r}, {len(self._value)} chars, from {self.source})"

    def __reduce__(self):
        raise TypeError("a Token is not pickled, so it cannot end up in a file")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Token) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


def in_kaggle() -> bool:
    """True inside a Kaggle notebook (interactive or a saved run): Kaggle sets KAGGLE_KERNEL_RUN_TYPE there."""
    return "KAGGLE_KERNEL_RUN_TYPE" in os.environ


def _from_kaggle() -> str | None:
    """The HF_TOKEN Kaggle secret, or None outside Kaggle or when it is not added or not attached to this notebook."""
    if not in_kaggle():
        return None
    try:
        from kaggle_secrets import UserSecretsClient

        return UserSecretsClient().get_secret(KAGGLE_SECRET) or None
    except Exception:  # not attached (BackendError), no secrets token (CredentialError), no internet (ConnectionError)
        return None


def _from_colab() -> str | None:
    """The HF_TOKEN Colab secret, or None outside Colab or when it is not set or not shared with this notebook."""
    from helpers.runtime import in_colab

    if not in_colab():
        return None
    try:
        from google.colab import userdata

        return userdata.get(COLAB_SECRET) or None
    except Exception:  # SecretNotFoundError, NotebookAccessError, or an older Colab without userdata
        return None


def hf_token(required: bool = False) -> Token | None:
    """The Hugging Face token from $HF_TOKEN (or $HUGGING_FACE_HUB_TOKEN), else Kaggle's, else Colab's secrets, else None.

    Kaggle comes before Colab: Kaggle's image is built on Colab's, so a Colab marker may be there too.
    """
    for name in ENV_NAMES:
        value = os.environ.get(name, "").strip()
        if value:
            return Token(value, name)
    value = _from_kaggle()
    if value:
        return Token(value.strip(), f"Kaggle secret {KAGGLE_SECRET}")
    value = _from_colab()
    if value:
        return Token(value.strip(), f"Colab secret {COLAB_SECRET}")
    if required:
        raise MissingTokenError(
            "No Hugging Face token found. Set the environment variable HF_TOKEN, or on Colab add a secret named "
            "HF_TOKEN (key icon in the left bar) and allow this notebook to access it, or on Kaggle add a secret "
            "named HF_TOKEN (Add-ons > Secrets) and attach it to this notebook. Never paste a token into a cell: "
            "it would be saved in the notebook.")
    return None
