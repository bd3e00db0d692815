"""httpx clients for a target, and the log of the requests they made.

The clients retry connection errors only (httpx's own ``retries``: a refused or failed connect),
never a response, whatever its status. Every request is recorded (method, path, status,
duration to the response headers) into a :class:`RequestLog`, so the verdict can report smoke
latencies per test.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from .config import Target

CONNECT_RETRIES = 2


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    status: int | None  # None: no response (connection error, timeout)
    duration_ms: float
    error: str = ""


@dataclass
class RequestLog:
    """Requests grouped by the test that was running when they were made."""

    current: list[RecordedRequest] = field(default_factory=list)

    def record(self, entry: RecordedRequest) -> None:
        self.current.append(entry)

    def take(self) -> list[RecordedRequest]:
        """Return and forget the requests made since the last call."""
        taken, self.current = self.current, []
        return taken


def summarize(requests: list[RecordedRequest]) -> dict[str, float] | None:
    """``{"count", "failures", "avg_ms", "p50_ms", "max_ms"}``, or None when there were none."""
    if not requests:
        return None
    durations = [r.duration_ms for r in requests]
    failures = sum(1 for r in requests if r.status is None or r.status >= 500)
    return {
        "count": len(requests),
        "failures": failures,
        "avg_ms": round(statistics.fmean(durations), 3),
        "p50_ms": round(statistics.median(durations), 3),
        "max_ms": round(max(durations), 3),
    }


class _RecordingTransport(httpx.BaseTransport):
    def __init__(self, inner: httpx.BaseTransport, log: RequestLog) -> None:
        self._inner = inner
        self._log = log

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        start = time.perf_counter()
        try:
            response = self._inner.handle_request(request)
        except httpx.TransportError as exc:
            self._log.record(_entry(request, None, start, exc))
            raise
        self._log.record(_entry(request, response.status_code, start))
        return response

    def close(self) -> None:
        self._inner.close()


class _AsyncRecordingTransport(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport, log: RequestLog) -> None:
        self._inner = inner
        self._log = log

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        start = time.perf_counter()
        try:
            response = await self._inner.handle_async_request(request)
        except httpx.TransportError as exc:
            self._log.record(_entry(request, None, start, exc))
            raise
        self._log.record(_entry(request, response.status_code, start))
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


def _entry(
    request: httpx.Request, status: int | None, start: float, exc: Exception | None = None
) -> RecordedRequest:
    return RecordedRequest(
        method=request.method,
        path=request.url.path,
        status=status,
        duration_ms=(time.perf_counter() - start) * 1000,
        error=type(exc).__name__ if exc else "",
    )


def _client_kwargs(target: Target) -> dict[str, Any]:
    return {
        "base_url": target.base_url,
        "headers": dict(target.headers),
        "timeout": target.timeout,
    }


def make_client(target: Target, log: RequestLog | None = None) -> httpx.Client:
    """A ``httpx.Client`` for ``target``; the caller closes it."""
    inner = httpx.HTTPTransport(retries=CONNECT_RETRIES, verify=target.verify_tls)
    transport = _RecordingTransport(inner, log) if log is not None else inner
    return httpx.Client(transport=transport, **_client_kwargs(target))


def make_async_client(target: Target, log: RequestLog | None = None) -> httpx.AsyncClient:
    """A ``httpx.AsyncClient`` for ``target``.

    It keeps no idle connection, so it never holds a socket bound to an event loop that a test
    has already closed: safe to leave unclosed at the end of any async test, whatever runs it
    (anyio, pytest-asyncio).
    """
    inner = httpx.AsyncHTTPTransport(
        retries=CONNECT_RETRIES,
        verify=target.verify_tls,
        limits=httpx.Limits(max_keepalive_connections=0),
    )
    transport = _AsyncRecordingTransport(inner, log) if log is not None else inner
    return httpx.AsyncClient(transport=transport, **_client_kwargs(target))
