"""Hugging Face tokens from the environment or Kaggle's or Colab's secrets, never typed into or printed by a notebook.

>>> t = Token("hf_abcdefghijklmnopqrstuvwxyz012345", "HF_TOKEN")
>>> t, f"{t}"
(Token('hf_****', 35 chars, from HF_TOKEN), 'hf_****')
"""

import os

from helpers.runtime import in_colab, in_kaggle

SECRET = "HF_TOKEN"  # the secret's name on Colab and on Kaggle


class MissingTokenError(RuntimeError):
    """No Hugging Face token in the environment, Kaggle's secrets or Colab's secrets."""


class Token:
    """A secret string that never shows itself: ``str``/``repr``/f-strings print a mask; ``.value`` is the secret."""

    __slots__ = ("_value", "source")

    def __init__(self, value: str, source: str) -> None:
        self._value, self.source = value, source

    @property
    def value(self) -> str:
        """The token itself: pass it to a library, never to print()."""
        return self._value

    def __str__(self) -> str:
        return ("hf_" if self._value.startswith("hf_") else "") + "****"

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)

    def __repr__(self) -> str:
        return f"Token({str(self)!r}, {len(self._value)} chars, from {self.source})"

    def __reduce__(self):
        raise TypeError("a Token is not pickled, so it cannot end up in a file")


def hf_token(required: bool = False) -> Token | None:
    """The token from $HF_TOKEN (or huggingface_hub's older $HUGGING_FACE_HUB_TOKEN), else the HF_TOKEN secret
    of this Kaggle or Colab notebook (Kaggle first: its image is built on Colab's), else None."""
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        if os.environ.get(name, "").strip():
            return Token(os.environ[name].strip(), name)
    value = where = None
    try:
        if in_kaggle():
            from kaggle_secrets import UserSecretsClient

            value, where = UserSecretsClient().get_secret(SECRET), f"Kaggle secret {SECRET}"
        elif in_colab():
            from google.colab import userdata

            value, where = userdata.get(SECRET), f"Colab secret {SECRET}"
    except Exception:  # not added or not attached, no secrets service, an older runtime
        value = None
    if value:
        return Token(value.strip(), where)
    if required:
        raise MissingTokenError(
            "No Hugging Face token found. Set the environment variable HF_TOKEN, or on Colab add a secret named "
            "HF_TOKEN (key icon in the left bar) and allow this notebook to access it, or on Kaggle add a secret "
            "named HF_TOKEN (Add-ons > Secrets) and attach it to this notebook. Never paste a token into a cell: "
            "it would be saved in the notebook."
        )
    return None
