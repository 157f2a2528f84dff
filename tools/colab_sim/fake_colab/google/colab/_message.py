"""The front-end channel: there is no browser in the simulation, so every request fails as Colab's does
when the user does not answer."""


class MessageError(RuntimeError):
    """Raised when the front end answers a request with an error."""


def blocking_request(request_type, request="", timeout_sec=5, parent=None):
    raise MessageError(f"Error: no Colab front end to answer {request_type!r} (colab-sim)")
