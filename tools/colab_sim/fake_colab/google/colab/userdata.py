"""userdata.get as on a runtime with no secret defined."""

from google.colab import errors


class NotebookAccessError(Exception):
    """The notebook has no access to the requested secret."""

    def __init__(self, key):
        super().__init__(f"Notebook does not have access to secret {key}")


class SecretNotFoundError(errors.Error):
    """The requested secret does not exist."""

    def __init__(self, key):
        super().__init__(f"Secret {key} does not exist.")


def get(key):
    raise SecretNotFoundError(key)
