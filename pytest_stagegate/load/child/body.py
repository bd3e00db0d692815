"""A response body in the load child: read to its end, at most the target's ``max_body``
bytes, never held (pure: the scenario passes the client's ``read``)."""

from __future__ import annotations

from collections.abc import Callable

from ...units import format_size

__all__ = ["BLOCK", "drain", "too_large"]

BLOCK = 64 * 1024  # bytes per read: what is held at a time


def too_large(cap: int) -> str:
    """The failure of a request whose body is over the cap: one message per cap, so Locust
    counts them as one error."""
    return (
        f"response body larger than the target's max_body of {format_size(cap)} "
        f"(targets.NAME.max_body)"
    )


def drain(read: Callable[[int], bytes], cap: int, declared: int | None = None) -> tuple[int, str]:
    """Read a body to its end with ``read(n)`` (``b""`` at the end), dropping every block.
    Returns ``(bytes read, "")``, or ``(bytes read, reason)`` as soon as the body is known to be
    larger than ``cap``: its declared length (then nothing is read) or the bytes that came."""
    seen = 0
    if declared is not None:
        if declared > cap:
            return 0, too_large(cap)
        if declared <= BLOCK:
            # the usual case, a small body of known length: one read, none to see the end
            seen = len(read(declared)) if declared else 0
            if seen == declared:
                return seen, ""
    while True:
        chunk = read(BLOCK)
        if not chunk:
            return seen, ""
        seen += len(chunk)
        if seen > cap:
            return seen, too_large(cap)
