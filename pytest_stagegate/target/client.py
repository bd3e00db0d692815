"""httpx clients for a target, and the log of the requests they made.

The clients retry connection errors only (httpx's own ``retries``: a refused or failed connect),
never a response, whatever its status.

**Every request is bounded by the clock, not by bytes.** httpx's timeouts apply to each socket
operation: a server that sends its headers or its body one byte a second never trips them. Here
the guarded transport gives each request a deadline (``_DEADLINE``, a context variable, set
while the request is sent and while its body is read), and the network backend under httpcore
clamps every connect, write and read (TLS handshake included) to the time left before it: the
whole request, from connect to the last body byte, ends by the deadline with
``httpx.ConnectTimeout``, ``httpx.WriteTimeout`` or ``httpx.ReadTimeout``, whose message says
the request did not complete within the target's timeout. The deadline is the target's
``timeout``, or the request's own ``timeout=`` when that is shorter (the readiness wait and the
gate's probe pass what is left of their own wait).

**Every body is bounded in size.** More than the target's ``max_body`` bytes (raw, and again
once decoded: a compressed body is counted as it inflates) raises :class:`ResponseTooLarge`;
no more than the cap plus one network read is ever held.

Every request is recorded (method, path, status, duration to the response headers) into a
:class:`RequestLog`, so the verdict can report smoke latencies per test; a body that then fails
(timeout, too large, broken connection) amends that entry with its error and full duration.
"""

from __future__ import annotations

import contextvars
import functools
import math
import os
import ssl
import time
import typing
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

import httpcore
import httpx

from ..config import Target
from ..units import format_duration, format_size

__all__ = [
    "RecordedRequest",
    "RequestLog",
    "ResponseTooLarge",
    "make_async_client",
    "make_client",
    "summarize",
]

CONNECT_RETRIES = 2


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    status: int | None  # None: no response (connection error, timeout)
    duration_ms: float
    error: str = ""  # the exception's class name: no response, or a body that failed


@dataclass
class RequestLog:
    """Requests grouped by the test that was running when they were made."""

    current: list[RecordedRequest] = field(default_factory=list)

    def record(self, entry: RecordedRequest) -> None:
        self.current.append(entry)

    def amend(self, old: RecordedRequest, new: RecordedRequest) -> None:
        """Replace ``old`` (the same object) with ``new``, if it was not taken yet."""
        for i, entry in enumerate(self.current):
            if entry is old:
                self.current[i] = new
                return

    def take(self) -> list[RecordedRequest]:
        """Return and forget the requests made since the last call."""
        taken, self.current = self.current, []
        return taken


def summarize(requests: list[RecordedRequest]) -> dict[str, float] | None:
    """``{"count", "failures", "avg_ms", "p50_ms", "max_ms"}``, or None when there were none.
    A failure is no response, a 5xx, or a body that failed (timeout, too large)."""
    if not requests:
        return None
    # Once per test: plain arithmetic, the same numbers as statistics.fmean and median, a
    # fraction of their cost for the one or two requests of a smoke test.
    durations = sorted([r.duration_ms for r in requests])
    n = len(durations)
    half = n // 2
    median = durations[half] if n % 2 else (durations[half - 1] + durations[half]) / 2
    failures = 0
    for r in requests:
        if r.status is None or r.status >= 500 or r.error:
            failures += 1
    return {
        "count": n,
        "failures": failures,
        "avg_ms": round(math.fsum(durations) / n, 3),
        "p50_ms": round(median, 3),
        "max_ms": round(durations[-1], 3),
    }


class ResponseTooLarge(httpx.TransportError):
    """The response body is larger than the target's ``max_body``."""


# --- the deadline -----------------------------------------------------------------------------
class _Deadline(NamedTuple):
    at: float  # time.monotonic()
    budget: float  # seconds the whole request was given

    def message(self) -> str:
        return (
            f"no complete response within the request's timeout of "
            f"{format_duration(self.budget)} (connect, headers and body)"
        )


_DEADLINE: contextvars.ContextVar[_Deadline | None] = contextvars.ContextVar(
    "stagegate_request_deadline", default=None
)

_E = typing.TypeVar("_E", bound=httpcore.TimeoutException)


def _clamp(timeout: float | None, timed_out: type[_E]) -> tuple[float | None, _Deadline | None]:
    """``timeout`` cut to what is left of the current request's deadline, and that deadline
    when it was cut (so a timeout can say why); raises ``timed_out`` when nothing is left."""
    deadline = _DEADLINE.get()
    if deadline is None:
        return timeout, None
    left = deadline.at - time.monotonic()
    if left <= 0:
        raise timed_out(deadline.message())
    if timeout is None or left < timeout:
        return left, deadline
    return timeout, None


def _explained(exc: httpcore.TimeoutException, deadline: _Deadline | None) -> Exception:
    return type(exc)(deadline.message()) if deadline is not None else exc


class _ClampedStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        timeout, deadline = _clamp(timeout, httpcore.ReadTimeout)
        try:
            return self._inner.read(max_bytes, timeout)
        except httpcore.ReadTimeout as exc:
            raise _explained(exc, deadline) from None

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        timeout, deadline = _clamp(timeout, httpcore.WriteTimeout)
        try:
            self._inner.write(buffer, timeout)
        except httpcore.WriteTimeout as exc:
            raise _explained(exc, deadline) from None

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        timeout, deadline = _clamp(timeout, httpcore.ConnectTimeout)
        try:
            return _ClampedStream(self._inner.start_tls(ssl_context, server_hostname, timeout))
        except httpcore.ConnectTimeout as exc:
            raise _explained(exc, deadline) from None

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _ClampedBackend(httpcore.NetworkBackend):
    """httpcore's own backend, every operation bounded by the request's deadline."""

    def __init__(self) -> None:
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        timeout, deadline = _clamp(timeout, httpcore.ConnectTimeout)
        try:
            stream = self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        except httpcore.ConnectTimeout as exc:
            raise _explained(exc, deadline) from None
        return _ClampedStream(stream)

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        timeout, deadline = _clamp(timeout, httpcore.ConnectTimeout)
        try:
            stream = self._inner.connect_unix_socket(path, timeout, socket_options)
        except httpcore.ConnectTimeout as exc:
            raise _explained(exc, deadline) from None
        return _ClampedStream(stream)

    def sleep(self, seconds: float) -> None:  # the backoff between connection retries
        deadline = _DEADLINE.get()
        if deadline is not None:
            seconds = max(0.0, min(seconds, deadline.at - time.monotonic()))
        self._inner.sleep(seconds)


class _AsyncClampedStream(httpcore.AsyncNetworkStream):
    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self._inner = inner

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        timeout, deadline = _clamp(timeout, httpcore.ReadTimeout)
        try:
            return await self._inner.read(max_bytes, timeout)
        except httpcore.ReadTimeout as exc:
            raise _explained(exc, deadline) from None

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        timeout, deadline = _clamp(timeout, httpcore.WriteTimeout)
        try:
            await self._inner.write(buffer, timeout)
        except httpcore.WriteTimeout as exc:
            raise _explained(exc, deadline) from None

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        timeout, deadline = _clamp(timeout, httpcore.ConnectTimeout)
        try:
            inner = await self._inner.start_tls(ssl_context, server_hostname, timeout)
        except httpcore.ConnectTimeout as exc:
            raise _explained(exc, deadline) from None
        return _AsyncClampedStream(inner)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _AsyncClampedBackend(httpcore.AsyncNetworkBackend):
    def __init__(self) -> None:
        self._inner = httpcore.AnyIOBackend()  # asyncio and trio, through anyio

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        timeout, deadline = _clamp(timeout, httpcore.ConnectTimeout)
        try:
            stream = await self._inner.connect_tcp(
                host, port, timeout, local_address, socket_options
            )
        except httpcore.ConnectTimeout as exc:
            raise _explained(exc, deadline) from None
        return _AsyncClampedStream(stream)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        timeout, deadline = _clamp(timeout, httpcore.ConnectTimeout)
        try:
            stream = await self._inner.connect_unix_socket(path, timeout, socket_options)
        except httpcore.ConnectTimeout as exc:
            raise _explained(exc, deadline) from None
        return _AsyncClampedStream(stream)

    async def sleep(self, seconds: float) -> None:
        deadline = _DEADLINE.get()
        if deadline is not None:
            seconds = max(0.0, min(seconds, deadline.at - time.monotonic()))
        await self._inner.sleep(seconds)


def _budget(request: httpx.Request, total: float) -> float:
    """The target's timeout, or the request's own when shorter (its longest phase: a request
    given ``Timeout(10, connect=1)`` has 10 s in all)."""
    timeouts: dict[str, float | None] = request.extensions.get("timeout") or {}
    given = [float(t) for t in timeouts.values() if t is not None]
    return min(total, max(given)) if given else total


# --- the body -----------------------------------------------------------------------------------
def _too_large(cap: int, request: httpx.Request, declared: bool = False) -> ResponseTooLarge:
    what = "declares a body" if declared else "sent a body"
    return ResponseTooLarge(
        f"the response {what} larger than the target's max_body of {format_size(cap)}; "
        f"raise targets.NAME.max_body in stagegate.yaml if that is expected",
        request=request,
    )


def _declared_length(request: httpx.Request, response: httpx.Response) -> int | None:
    if request.method == "HEAD" or response.status_code in (204, 304):
        return None
    try:
        return int(response.headers.get("content-length", ""))
    except ValueError:
        return None


class _BodyGuard:
    """What the two body streams share: the deadline, the cap, the log entry to amend."""

    def __init__(
        self,
        transport: _Guard,
        request: httpx.Request,
        deadline: _Deadline,
        entry: RecordedRequest,
        start: float,
        declared: int | None,
    ) -> None:
        self.transport = transport
        self.request = request
        self.deadline = deadline
        self.entry = entry
        self.start = start
        self.declared = declared
        self.seen = 0

    def first(self) -> None:
        cap = self.transport.max_body
        if self.declared is not None and self.declared > cap:
            raise _too_large(cap, self.request, declared=True)

    def count(self, chunk: bytes) -> None:
        self.seen += len(chunk)
        if self.seen > self.transport.max_body:
            raise _too_large(self.transport.max_body, self.request)

    def failed(self, exc: BaseException) -> None:
        self.transport.amend(self.entry, replace(self.entry, **_failure(exc, self.start)))


class _DeadlineStream(httpx.SyncByteStream):
    """A response body read under the request's deadline, no larger than ``max_body``."""

    def __init__(self, inner: httpx.SyncByteStream, guard: _BodyGuard) -> None:
        self._inner = inner
        self._guard = guard

    def __iter__(self) -> Iterator[bytes]:
        guard = self._guard
        try:
            guard.first()
            chunks = iter(self._inner)
            while True:
                token = _DEADLINE.set(guard.deadline)
                try:
                    chunk = next(chunks, None)
                finally:
                    _DEADLINE.reset(token)
                if chunk is None:
                    return
                guard.count(chunk)
                yield chunk
        except httpx.HTTPError as exc:
            guard.failed(exc)
            raise

    def close(self) -> None:
        self._inner.close()


class _AsyncDeadlineStream(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream, guard: _BodyGuard) -> None:
        self._inner = inner
        self._guard = guard

    async def __aiter__(self) -> AsyncIterator[bytes]:
        guard = self._guard
        try:
            guard.first()
            chunks = self._inner.__aiter__()
            while True:
                token = _DEADLINE.set(guard.deadline)
                try:
                    chunk = await chunks.__anext__()
                except StopAsyncIteration:
                    return
                finally:
                    _DEADLINE.reset(token)
                guard.count(chunk)
                yield chunk
        except httpx.HTTPError as exc:
            guard.failed(exc)
            raise

    async def aclose(self) -> None:
        await self._inner.aclose()


class _CappedResponse(httpx.Response):
    """A response whose decoded body, too, stops at ``max_body``: a small compressed body can
    inflate to any size. Too large once decoded, or not decodable, amends the log entry like a
    raw body that failed."""

    _stagegate_guard: _BodyGuard  # set by ``_Guard.response``, right after construction

    def _check_decoded(self, seen: int) -> None:
        guard = self._stagegate_guard
        cap = guard.transport.max_body
        if seen > cap:
            exc = _too_large(cap, self.request)
            guard.failed(exc)
            raise exc

    def iter_bytes(self, chunk_size: int | None = None) -> Iterator[bytes]:
        seen = 0
        try:
            for chunk in super().iter_bytes(chunk_size):
                seen += len(chunk)
                self._check_decoded(seen)
                yield chunk
        except httpx.DecodingError as exc:  # a body that cannot be decoded failed too
            self._stagegate_guard.failed(exc)
            raise

    async def aiter_bytes(self, chunk_size: int | None = None) -> AsyncIterator[bytes]:
        seen = 0
        try:
            async for chunk in super().aiter_bytes(chunk_size):
                seen += len(chunk)
                self._check_decoded(seen)
                yield chunk
        except httpx.DecodingError as exc:
            self._stagegate_guard.failed(exc)
            raise


# --- the transports -----------------------------------------------------------------------------
class _Guard:
    """What the two transports share: the budget, the cap, the log."""

    def __init__(self, total: float, max_body: int, log: RequestLog | None) -> None:
        self.total = total
        self.max_body = max_body
        self.log = log

    def record(self, entry: RecordedRequest) -> None:
        if self.log is not None:
            self.log.record(entry)

    def amend(self, old: RecordedRequest, new: RecordedRequest) -> None:
        if self.log is not None:
            self.log.amend(old, new)

    def begin(self, request: httpx.Request) -> tuple[float, _Deadline]:
        budget = _budget(request, self.total)
        return time.perf_counter(), _Deadline(time.monotonic() + budget, budget)

    def response(
        self,
        request: httpx.Request,
        response: httpx.Response,
        start: float,
        deadline: _Deadline,
        stream: type[_DeadlineStream] | type[_AsyncDeadlineStream],
    ) -> httpx.Response:
        entry = _entry(request, response.status_code, start)
        self.record(entry)
        declared = _declared_length(request, response)
        guard = _BodyGuard(self, request, deadline, entry, start, declared)
        wrapped = stream(response.stream, guard)  # type: ignore[arg-type]
        if "content-encoding" not in response.headers and type(response) is httpx.Response:
            # Nothing to decode: the decoded body is the raw one, which ``wrapped`` bounds, and
            # cannot fail to decode. httpx's own response is kept, its stream replaced.
            response.stream = wrapped
            response.request = request
            return response
        if type(response) is httpx.Response:
            # re-typed in place (the subclass adds methods and the guard, nothing else) rather
            # than built again, which would copy the headers and re-run Response's checks
            response.__class__ = _CappedResponse
            assert isinstance(response, _CappedResponse)
            response.stream = wrapped
            response.request = request
            capped = response
        else:
            capped = _CappedResponse(
                status_code=response.status_code,
                headers=response.headers,
                stream=wrapped,
                extensions=response.extensions,
                request=request,
            )
        capped._stagegate_guard = guard
        return capped


class _GuardedTransport(httpx.BaseTransport, _Guard):
    """Bounds each request by a total deadline and its body by ``max_body``; records it."""

    def __init__(
        self, inner: httpx.BaseTransport, total: float, max_body: int, log: RequestLog | None
    ) -> None:
        _Guard.__init__(self, total, max_body, log)
        self._inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        start, deadline = self.begin(request)
        token = _DEADLINE.set(deadline)
        try:
            response = self._inner.handle_request(request)
        except httpx.TransportError as exc:
            self.record(_entry(request, None, start, exc))
            raise
        finally:
            _DEADLINE.reset(token)
        return self.response(request, response, start, deadline, _DeadlineStream)

    def close(self) -> None:
        self._inner.close()


class _AsyncGuardedTransport(httpx.AsyncBaseTransport, _Guard):
    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        total: float,
        max_body: int,
        log: RequestLog | None,
    ) -> None:
        _Guard.__init__(self, total, max_body, log)
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        start, deadline = self.begin(request)
        token = _DEADLINE.set(deadline)
        try:
            response = await self._inner.handle_async_request(request)
        except httpx.TransportError as exc:
            self.record(_entry(request, None, start, exc))
            raise
        finally:
            _DEADLINE.reset(token)
        return self.response(request, response, start, deadline, _AsyncDeadlineStream)

    async def aclose(self) -> None:
        await self._inner.aclose()


def _failure(exc: BaseException, start: float) -> dict[str, Any]:
    return {
        "duration_ms": (time.perf_counter() - start) * 1000,
        "error": type(exc).__name__,
    }


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


def _shared_ssl_context(verify: bool) -> ssl.SSLContext:
    """The process's SSL context for ``verify`` (httpx's: certifi's CAs, or ``SSL_CERT_FILE`` /
    ``SSL_CERT_DIR`` as they are now), made once. Loading the CA bundle takes tens of
    milliseconds, twice per client before (httpx's transport and the pool built again here), and
    ``ahttp`` builds a client per test; a context is safe to share between connections."""
    return _ssl_context(verify, os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))


@functools.lru_cache(maxsize=8)
def _ssl_context(verify: bool, cafile: str | None, capath: str | None) -> ssl.SSLContext:
    return httpx.create_ssl_context(verify=verify)  # reads the same two variables


class _HTTPTransport(httpx.HTTPTransport):
    """httpx's transport over httpcore's pool with the clamped network backend (httpx takes
    no backend of its own: its pool is rebuilt with the same settings and that backend)."""

    def __init__(self, *, verify: bool, retries: int, limits: httpx.Limits) -> None:
        ssl_context = _shared_ssl_context(verify)
        super().__init__(verify=ssl_context, retries=retries, limits=limits)
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            retries=retries,
            network_backend=_ClampedBackend(),
        )


class _AsyncHTTPTransport(httpx.AsyncHTTPTransport):
    def __init__(self, *, verify: bool, retries: int, limits: httpx.Limits) -> None:
        ssl_context = _shared_ssl_context(verify)
        super().__init__(verify=ssl_context, retries=retries, limits=limits)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            retries=retries,
            network_backend=_AsyncClampedBackend(),
        )


def make_client(
    target: Target, log: RequestLog | None = None, *, retries: int = CONNECT_RETRIES
) -> httpx.Client:
    """A ``httpx.Client`` for ``target``; the caller closes it."""
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=20)  # httpx's default
    inner = _HTTPTransport(verify=target.verify_tls, retries=retries, limits=limits)
    transport = _GuardedTransport(inner, target.timeout, target.max_body, log)
    return httpx.Client(transport=transport, **_client_kwargs(target))


def make_async_client(target: Target, log: RequestLog | None = None) -> httpx.AsyncClient:
    """A ``httpx.AsyncClient`` for ``target``.

    It keeps no idle connection, so it never holds a socket bound to an event loop that a test
    has already closed: safe to leave unclosed at the end of any async test, whatever runs it
    (anyio, pytest-asyncio).
    """
    inner = _AsyncHTTPTransport(
        verify=target.verify_tls,
        retries=CONNECT_RETRIES,
        limits=httpx.Limits(max_keepalive_connections=0),
    )
    transport = _AsyncGuardedTransport(inner, target.timeout, target.max_body, log)
    return httpx.AsyncClient(transport=transport, **_client_kwargs(target))
