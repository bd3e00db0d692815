"""httpx clients for a target, and the log of the requests they made.

The clients retry connection errors only (httpx's own ``retries``: a refused or failed connect),
never a response, whatever its status. A request, body included, never takes longer than the
target's ``timeout`` (plus one read's worth): httpx's own timeouts are per read. Every request
is recorded (method, path, status, duration to the response headers) into a
:class:`RequestLog`, so the verdict can report smoke latencies per test.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from ..config import Target

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


class _DeadlineStream(httpx.SyncByteStream):
    """A response body that must arrive before a deadline.

    httpx's timeouts apply to each read, so a body that drips a byte a second would never time
    out; the target's ``timeout`` is meant per request.
    """

    def __init__(self, inner: httpx.SyncByteStream, deadline: float, request: httpx.Request):
        self._inner = inner
        self._deadline = deadline
        self._request = request

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._inner:
            _check_deadline(self._deadline, self._request)
            yield chunk

    def close(self) -> None:
        self._inner.close()


class _AsyncDeadlineStream(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream, deadline: float, request: httpx.Request):
        self._inner = inner
        self._deadline = deadline
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            _check_deadline(self._deadline, self._request)
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()


def _check_deadline(deadline: float, request: httpx.Request) -> None:
    if time.perf_counter() > deadline:
        raise httpx.ReadTimeout(
            "the response did not arrive within the target's timeout", request=request
        )


class _GuardedTransport(httpx.BaseTransport):
    """Bounds each request by a total deadline and records it into a RequestLog."""

    def __init__(
        self, inner: httpx.BaseTransport, total: float, log: RequestLog | None = None
    ) -> None:
        self._inner = inner
        self._total = total
        self._log = log

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        start = time.perf_counter()
        try:
            response = self._inner.handle_request(request)
        except httpx.TransportError as exc:
            self._record(_entry(request, None, start, exc))
            raise
        self._record(_entry(request, response.status_code, start))
        assert isinstance(response.stream, httpx.SyncByteStream)
        return _with_stream(
            response, _DeadlineStream(response.stream, start + self._total, request), request
        )

    def _record(self, entry: RecordedRequest) -> None:
        if self._log is not None:
            self._log.record(entry)

    def close(self) -> None:
        self._inner.close()


class _AsyncGuardedTransport(httpx.AsyncBaseTransport):
    def __init__(
        self, inner: httpx.AsyncBaseTransport, total: float, log: RequestLog | None = None
    ) -> None:
        self._inner = inner
        self._total = total
        self._log = log

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        start = time.perf_counter()
        try:
            response = await self._inner.handle_async_request(request)
        except httpx.TransportError as exc:
            self._record(_entry(request, None, start, exc))
            raise
        self._record(_entry(request, response.status_code, start))
        assert isinstance(response.stream, httpx.AsyncByteStream)
        return _with_stream(
            response, _AsyncDeadlineStream(response.stream, start + self._total, request), request
        )

    def _record(self, entry: RecordedRequest) -> None:
        if self._log is not None:
            self._log.record(entry)

    async def aclose(self) -> None:
        await self._inner.aclose()


def _with_stream(
    response: httpx.Response,
    stream: httpx.SyncByteStream | httpx.AsyncByteStream,
    request: httpx.Request,
) -> httpx.Response:
    return httpx.Response(
        status_code=response.status_code,
        headers=response.headers,
        stream=stream,
        extensions=response.extensions,
        request=request,
    )


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


def make_client(
    target: Target, log: RequestLog | None = None, *, retries: int = CONNECT_RETRIES
) -> httpx.Client:
    """A ``httpx.Client`` for ``target``; the caller closes it."""
    inner = httpx.HTTPTransport(retries=retries, verify=target.verify_tls)
    transport = _GuardedTransport(inner, target.timeout, log)
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
    transport = _AsyncGuardedTransport(inner, target.timeout, log)
    return httpx.AsyncClient(transport=transport, **_client_kwargs(target))
