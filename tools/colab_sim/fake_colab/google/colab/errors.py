"""Colab's error base class."""


class Error(Exception):
    """Base class of google.colab's errors."""
