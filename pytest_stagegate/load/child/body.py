"""A response body in the load child: read to its end, at most the target's ``max_body``
bytes, never held (pure: the scenario passes the client's ``read``); or, for a request whose
expectations or captures read it, held whole (``collect``), still at most ``max_body``."""

from __future__ import annotations

import zlib
from collections.abc import Callable

from ...units import format_size

__all__ = ["BLOCK", "collect", "drain", "too_large"]

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


def collect(
    read: Callable[[int], bytes], cap: int, declared: int | None = None, encoding: str = ""
) -> tuple[bytes, str]:
    """The whole body, read with ``read(n)`` as raw (undecoded) blocks and decoded by its
    ``Content-Encoding`` (gzip or deflate; the scenario asks for ``identity``): ``(body, "")``,
    or ``(b"", reason)`` when the body, raw or decoded, is larger than ``cap`` bytes (nothing
    more is read) or cannot be decoded."""
    if declared is not None and declared > cap:
        return b"", too_large(cap)
    chunks: list[bytes] = []
    seen = 0
    if declared is not None and declared <= BLOCK:
        first = read(declared) if declared else b""
        seen = len(first)
        chunks.append(first)
        if seen == declared:
            return _decoded(chunks[0], cap, encoding)
    while True:
        chunk = read(BLOCK)
        if not chunk:
            break
        seen += len(chunk)
        if seen > cap:
            return b"", too_large(cap)
        chunks.append(chunk)
    return _decoded(b"".join(chunks), cap, encoding)


def _decoded(raw: bytes, cap: int, encoding: str) -> tuple[bytes, str]:
    coding = encoding.strip().lower()
    if not coding or coding == "identity":
        return raw, ""
    if coding not in ("gzip", "x-gzip", "deflate"):
        return b"", f"the response body's Content-Encoding {coding} cannot be read (expect)"
    # gzip (and zlib-wrapped deflate) detected by the header; raw deflate as a fallback
    for wbits in (zlib.MAX_WBITS | 32, -zlib.MAX_WBITS):
        try:
            inflater = zlib.decompressobj(wbits)
            body = inflater.decompress(raw, cap + 1)
        except zlib.error:
            continue
        if len(body) > cap or inflater.unconsumed_tail:
            return b"", too_large(cap)
        return body, ""
    return b"", f"the response body could not be decoded ({coding})"
