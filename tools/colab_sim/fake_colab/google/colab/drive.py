"""drive.mount as on a runtime where the user does not grant access."""

from google.colab._message import MessageError


def mount(mountpoint, force_remount=False, timeout_ms=120000, readonly=False):
    raise MessageError("Error: credential propagation was unsuccessful")


def flush_and_unmount(timeout_ms=24 * 60 * 60 * 1000):
    raise ValueError("Drive is not mounted, so it cannot be unmounted.")
