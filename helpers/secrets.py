"""Hugging Face tokens from the environment or Kaggle's or Colab's secrets, never typed into or printed by a notebook.

Set ``HF_TOKEN`` in the environment; on Colab add it under the key icon (Secrets) and allow this notebook
to read it; on Kaggle add it under Add-ons > Secrets and attach it. ``hf_token()`` returns a :class:`Token`
whose ``str``, ``repr`` and f-string forms are masked; pass ``token.value`` where a library needs it.

Example:
    >>> t = Token("hf_abcdefghijklmnopqrstuvwxyz012345", "HF_TOKEN")
    >>> t, f"{t}"
    (Token('hf_****', 35 chars, from HF_TOKEN), 'hf_****')
"""

from __future__ import annotations

import os

from helpers.runtime import in_colab, in_kaggle

ENV_NAMES = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")  # the second is huggingface_hub's older name
SECRET = "HF_TOKEN"  # the secret's name on Colab and on Kaggle


class MissingTokenError(RuntimeError):
    """No Hugging Face token in the environment, Kaggle's secrets or Colab's secrets."""


class Token:
    """A secret string that never shows itself: ``str``/``repr``/f-strings print a mask; ``.value`` is the secret."""

    __slots__ = ("_value", "source")

    def __init__(self, value: str, source: str) -> None:
        self._value, self.source = value, source

    value = property(lambda self: self._value, doc="The token itself: pass it to a library, never to print().")

    def masked(self) -> str:
        """The token with everything after its 'hf_' prefix hidden."""
        return ("hf_" if self._value.startswith("hf_") else "") + "****"

    __str__ = masked

    def __format__(self, spec: str) -> str:
        return format(self.masked(), spec)

    def __repr__(self) -> str:
        return f"Token({self.masked()!r}, {len(self._value)} chars, from {self.source})"

    def __reduce__(self):
        raise TypeError("a Token is not pickled, so it cannot end up in a file")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Token) and other._value == self._value

    __hash__ = lambda self: hash(self._value)  # noqa: E731
    __bool__ = lambda self: bool(self._value)  # noqa: E731


def _from_secrets() -> tuple[str, str] | None:
    """(value, where) of the HF_TOKEN secret of this Kaggle or Colab notebook, or None (absent, not shared, elsewhere).

    Kaggle first: its image is built on Colab's, so a Colab marker may be there too.
    """
    try:
        if in_kaggle():
            from kaggle_secrets import UserSecretsClient

            return UserSecretsClient().get_secret(SECRET) or None, f"Kaggle secret {SECRET}"
        if in_colab():
            from google.colab import userdata

            return userdata.get(SECRET) or None, f"Colab secret {SECRET}"
    except Exception:  # not added or not attached, no secrets service, an older runtime
        return None
    return None


def hf_token(required: bool = False) -> Token | None:
    """The Hugging Face token from $HF_TOKEN (or $HUGGING_FACE_HUB_TOKEN), else Kaggle's or Colab's secret, else None."""
    for name in ENV_NAMES:
        if os.environ.get(name, "").strip():
            return Token(os.environ[name].strip(), name)
    found = _from_secrets()
    if found and found[0]:
        return Token(found[0].strip(), found[1])
    if required:
        raise MissingTokenError(
            "No Hugging Face token found. Set the environment variable HF_TOKEN, or on Colab add a secret named "
            "HF_TOKEN (key icon in the left bar) and allow this notebook to access it, or on Kaggle add a secret "
            "named HF_TOKEN (Add-ons > Secrets) and attach it to this notebook. Never paste a token into a cell: "
            "it would be saved in the notebook.")
    return None
