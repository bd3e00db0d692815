"""The lean request path of the declarative scenario (docs/load-engine.md, Lean request path).

Locust's runner still spawns the users, shapes the load, distributes it and writes its HTML
report; only the request itself skips Locust's per-request machinery (the session wrapper, its
response objects, ``catch_response``, the request event with its keyword arguments). Each user
has a ``LeanSession``: geventhttpclient's clients, one connection pool per origin as
FastHttpUser's ``UserAgent`` keeps, keep-alive, the target's timeout per connect and read and
its TLS setting. A ``LeanRequest`` sends one planned request on it, reads the body to its end
(``body.drain`` or ``collect``, at most ``max_body``), judges it and records it once:

- into the gate's ``Recorder`` directly (``Sink``), with Locust's error list (``log_error``) and,
  when Locust's statistics are kept (the HTML report), ``log_request``: what Locust's own
  listener would do, without the event;
- or, when something else listens to ``events.request`` (a user's listener, OpenTelemetry),
  by firing the event as Locust's session would, with the same arguments: every listener, the
  recorder among them, sees every request exactly as before.

What goes on the wire is what FastHttpUser sends: the same request line and headers
(geventhttpclient's ``User-Agent``, ``Accept-Encoding: gzip, deflate, br`` unless set, the
base URL's credentials as Basic auth, JSON bodies with their content type), built once per
plain request and per origin. Redirects are followed (at most 30, as FastHttpUser) and cookies
kept per user (``http.cookiejar``, through geventhttpclient's request adapters): the slow path,
taken only once a server sets a cookie or redirects. The outcome is Locust's too: a status that
FastHttpUser deems invalid fails as ``LocustBadStatusCode``, a connect or read timeout as
``RetriesExceeded``, a failed expectation as ``CatchResponseError``, so the errors read the same.

``STAGEGATE_LOAD_PATH=locust`` (read by the child) keeps every request on Locust's
FastHttpUser instead: a debugging switch, and the other side of the test that both paths judge
alike (tests/e2e/test_lean_path.py)."""

from __future__ import annotations

import errno
import json as _json
import os
import re
import time
from collections.abc import Callable, Mapping
from http.cookiejar import CookieJar
from typing import Any

from gevent import getcurrent
from gevent.socket import error as _SocketError
from geventhttpclient.client import IDEMPOTENT_METHODS, HTTPClient
from geventhttpclient.header import Headers
from geventhttpclient.response import (
    HTTPConnectionClosed,
    HTTPParseError,
    HTTPSocketPoolResponse,
)
from geventhttpclient.url import URL, requote_uri
from geventhttpclient.useragent import (
    CompatRequest,
    CompatResponse,
    EmptyResponse,
    RetriesExceeded,
)
from locust.contrib.fasthttp import (
    FAILURE_EXCEPTIONS,
    FastResponse,
    LocustBadStatusCode,
    LocustUserAgent,
    _construct_basic_auth_str,
    insecure_ssl_context_factory,
)
from locust.exception import CatchResponseError

from ..plan import LOAD_PATH_ENV, LoadPlan, engine_of
from .body import collect, drain
from .deadline import RequestTimedOut, enter, leave
from .recorder import SERVICE_KEY, WINDOW_KEY, Recorder

__all__ = [
    "LOAD_PATH_ENV",
    "LeanRequest",
    "LeanSession",
    "Outcome",
    "Sink",
    "bind",
    "lean_wanted",
    "locust_error",
]

MAX_REDIRECTS = 30  # FastHttpUser's
CONCURRENCY = 10  # FastHttpUser's connections per origin
VALID_CODES = LocustUserAgent.valid_response_codes  # FastHttpUser's rule without expect_status
REDIRECT_CODES = LocustUserAgent.redirect_response_codes
_ABSOLUTE = re.compile(r"^https?://", re.IGNORECASE).match
# a request target geventhttpclient's requote_uri leaves as it is (checked by the unit tests)
_PLAIN_URI = re.compile(r"[A-Za-z0-9/_.~!$&'()*+,;=:@?-]*").fullmatch
# a rendered request target the templated fast path sends as it is (``LeanRequest._rendered``):
# origin-form, one leading slash, characters requote_uri leaves alone (``%`` too, when
# requote_uri leaves the target as it is: an escape of a reserved character, as quote_plus
# writes them), no path parameters (``;`` before the query) and no empty query, which
# urlparse would drop
_SENDABLE = re.compile(
    r"/(?!/)[A-Za-z0-9/_.~!$%&'()*+,=:@-]*(?:\?[A-Za-z0-9/_.~!$%&'()*+,;=:@?-]+)?"
).fullmatch
_TEMPORARY_ERRNOS = frozenset({errno.ETIMEDOUT, errno.ENOLINK, errno.ENOENT, errno.EPIPE})


def lean_wanted(plan: LoadPlan) -> bool:
    """Whether the declarative scenario of ``plan`` runs on the lean path: FastHttpUser's
    scenario (``user_class: fast``) unless ``STAGEGATE_LOAD_PATH=locust`` (the pytest process
    and ``stagegate worker`` refuse any other value before the load: ``load_path_problem``)."""
    return engine_of(plan, os.environ) == "lean"


class Outcome:
    """What a step left for its flow (one per request): whether it succeeded, the values it
    captured (None when its captures could not be taken), and when it ended (epoch s)."""

    __slots__ = ("captured", "end", "ok")

    def __init__(self) -> None:
        self.ok = False
        self.captured: dict[str, str] | None = None
        self.end = 0.0


# -- errors as FastHttpUser reports them -----------------------------------------------------


def _temporary(e: BaseException) -> bool:
    """geventhttpclient's ``UserAgent._handle_error``: the errors it would retry."""
    import socket
    import ssl

    import gevent

    return (
        isinstance(e, (socket.timeout, gevent.Timeout))
        or (isinstance(e, OSError) and e.errno in _TEMPORARY_ERRNOS)
        or (isinstance(e, ssl.SSLError) and "read operation timed out" in str(e))
        or isinstance(e, EmptyResponse)
    )


def locust_error(e: Exception, url: str) -> Exception:
    """The error FastHttpUser records for ``e``, raised while sending to ``url`` (before a
    response): with ``max_retries`` 0, a temporary error (a connect or read timeout, a broken
    pipe) comes back as ``RetriesExceeded(url, 0, original=e)``, any other as it is."""
    if _temporary(e):
        return RetriesExceeded(url, 0, original=e)
    return e


# -- the wire ----------------------------------------------------------------------------------


def _exchange(client: HTTPClient, method: str, data: bytes) -> HTTPSocketPoolResponse:
    """``HTTPClient.request`` with the request already built (``data``: head and body): a
    pooled connection, the request sent, the response's headers read. A kept-alive connection
    the server closed meanwhile is retried as geventhttpclient retries it (idempotent methods,
    at most the pool's size + 1 times)."""
    pool = client._connection_pool
    attempts = pool.size + 1
    while True:
        sock = pool.get_socket()
        try:
            sock.sendall(data)
        except _SocketError as e:
            if e.errno not in (errno.ECONNRESET, errno.EPIPE):
                pool.release_socket(sock)
                raise
            # the server may have answered early (a 401 to a big body) before it closed;
            # no answer, or half of one (a parse error), is retried as geventhttpclient does
            try:
                return HTTPSocketPoolResponse(
                    sock, pool, block_size=client.block_size, method=method
                )
            except (_SocketError, HTTPParseError):
                if attempts > 0 and method in IDEMPOTENT_METHODS:
                    attempts -= 1
                    continue
                raise
        except BaseException:  # a timeout thrown in, the load's stop: never leak the socket
            pool.release_socket(sock)
            raise
        try:
            return HTTPSocketPoolResponse(sock, pool, block_size=client.block_size, method=method)
        except HTTPConnectionClosed:
            if attempts > 0 and method in IDEMPOTENT_METHODS:
                attempts -= 1
                continue
            raise


def _body_bytes(json_body: Any) -> bytes:
    """FastHttpUser's JSON body: ``json.dumps`` as it calls it, utf-8."""
    return _json.dumps(json_body).encode("utf-8")


def origin(url: URL) -> tuple[str, str, int | None]:
    """The key of ``url``'s client in a ``LeanSession`` (FastHttpUser's pool's)."""
    return (url.scheme, url.host, url.port)


class LeanSession:
    """One user's HTTP client: geventhttpclient's clients by origin (FastHttpUser's
    ``HTTPClientPool``: ``CONCURRENCY`` connections each, the target's timeout per connect and
    read, TLS verified unless ``insecure``), and the user's cookies (``jar``, from the first
    cookie a server sets)."""

    __slots__ = ("base", "clients", "jar", "options")

    def __init__(self, base: str, timeout: float, insecure: bool) -> None:
        self.base = base
        import gevent.ssl

        self.options: dict[str, Any] = {
            "network_timeout": timeout,
            "connection_timeout": timeout,
            "concurrency": CONCURRENCY,
            "insecure": insecure,
            "ssl_context_factory": (
                insecure_ssl_context_factory if insecure else gevent.ssl.create_default_context
            ),
        }
        self.clients: dict[tuple[str, str, int | None], HTTPClient] = {}
        self.jar: CookieJar | None = None

    def client(self, url: URL, key: tuple[str, str, int | None] | None = None) -> HTTPClient:
        """The client of ``url``'s origin; ``key`` its ``origin(url)`` when known (a request
        sent again and again: parsing the origin out of the URL is a cost per request)."""
        if key is None:
            key = origin(url)
        client = self.clients.get(key)
        if client is None:
            client = self.clients[key] = HTTPClient.from_url(url, **self.options)
        return client

    def close(self) -> None:
        for client in self.clients.values():
            client.close()
        self.clients.clear()


class _Base:
    """The base URL without its credentials, and the Basic auth they make (FastHttpSession's)."""

    __slots__ = ("auth", "url")

    def __init__(self, host: str) -> None:
        self.url = host
        self.auth: str | None = None
        parsed = URL(host)
        if parsed.user and parsed.password:
            from urllib.parse import unquote, urlparse, urlunparse

            p = urlparse(host)
            netloc = p.netloc.rpartition("@")[2]
            self.url = str(urlunparse((p.scheme, netloc, p.path, p.params, p.query, p.fragment)))
            self.auth = _construct_basic_auth_str(  # type: ignore[no-untyped-call]
                unquote(p.username or ""), unquote(p.password or "")
            )


def _merged_headers(base: _Base, headers: Mapping[str, str], json_body: bool) -> dict[str, str]:
    """The headers FastHttpSession.request sends for ``headers``: Basic auth of the base URL,
    Accept-Encoding unless set, JSON's content type and Accept."""
    out = dict(headers)
    if base.auth is not None:
        out["Authorization"] = base.auth
    if "Accept-Encoding" not in out and "accept-encoding" not in out:
        out["Accept-Encoding"] = "gzip, deflate, br"
    if json_body:
        if "Content-Type" not in out and "content-type" not in out:
            out["Content-Type"] = "application/json"
        if "Accept" not in out and "accept" not in out:
            out["Accept"] = "application/json"
    return out


def _agent_headers(headers: Mapping[str, str]) -> Headers:
    """``UserAgent.urlopen``'s: geventhttpclient's default headers, then ``headers``."""
    merged = HTTPClient.DEFAULT_HEADERS.copy()
    merged.update(headers)
    return merged


def _head(client: HTTPClient, method: str, uri: str, headers: Headers, body: bytes) -> bytes:
    """The request line and headers as ``HTTPClient.request`` builds them (validated)."""
    return client._build_request(method, uri, body=body, headers=headers).encode("latin-1")


def _uri(url: str) -> tuple[URL, str]:
    split = URL(url)
    return split, split.quoted_uri


_LENGTH_ONE = "Content-Length: 1\r\n\r\n"


class _Shape:
    """What every rendered request of a ``LeanRequest`` sends alike when only its target and
    body vary (its headers fixed, no cookie jar): built once from ``HTTPClient._build_request``
    so the bytes are geventhttpclient's. ``prefix`` is the base URL's path (the target is
    ``prefix + path``), ``line_tail`` the request line after the target (`` HTTP/1.1\r\n``),
    ``fields_empty`` the header block of a request without a body (its ``Content-Length: 0``
    for a method that carries one), ``fields_body`` the header block of a request with a body
    but for its ``Content-Length`` (None: a header set by hand decides, so no fast path for a
    body), ``headers`` the merged headers (a redirect or cookie goes on with them)."""

    __slots__ = (
        "body_parts",
        "empty_parts",
        "fields_body",
        "fields_empty",
        "headers",
        "key",
        "line_tail",
        "order",
        "prefix",
        "split",
    )

    def __init__(
        self,
        prefix: str,
        split: URL,
        line_tail: str,
        fields_empty: str,
        fields_body: str | None,
        headers: Headers,
    ) -> None:
        self.prefix = prefix
        self.split = split
        self.key = origin(split)
        self.line_tail = line_tail
        self.fields_empty = fields_empty
        self.fields_body = fields_body
        self.headers = headers
        # rendered headers (``_shape(..., rendered=True)``): the header blocks as literal parts
        # around each header's value, ``order`` the header whose value fills each gap
        self.order: tuple[str, ...] = ()
        self.empty_parts: list[str] = []
        self.body_parts: list[str] | None = None


_SLOT = re.compile("\x80([0-9]+)\x80")  # a header value's place in a rendered header block
_FIELD_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*").fullmatch  # geventhttpclient's rule
_VALUE_DECIDES = frozenset({"host", "content-length", "transfer-encoding"})


def _shape(
    base: _Base,
    session: LeanSession,
    method: str,
    headers: Mapping[str, str],
    has_body: bool,
    rendered: bool = False,
) -> _Shape | None:
    """The ``_Shape`` of a rendered request on ``base``, or None when the fast path could send
    other bytes than the slow one (a base URL with a query, parameters or characters to quote,
    a proxy, a header that is not sendable): such a request is built in full every time.
    ``rendered``: ``headers``' values change per request (only their names count here): the
    block is built with a marker for each value and kept in parts around them (``order``); a
    header whose value decides more than its own line (Host, Content-Length,
    Transfer-Encoding) leaves such a request to the slow path."""
    names = list(headers)
    if rendered:
        if any(name.lower() in _VALUE_DECIDES for name in names):
            return None
        headers = {name: f"\x80{i}\x80" for i, name in enumerate(names)}
    split = URL(base.url)
    prefix = split.path
    probe = URL(base.url + "/x")
    if (
        split.params
        or split.query
        or split.fragment
        or (prefix and not _SENDABLE(prefix))
        or probe.netloc != split.netloc
        or probe.request_uri != prefix + "/x"
        or f"{split.scheme}://{split.netloc}{prefix}" != base.url
    ):
        return None
    merged = _agent_headers(_merged_headers(base, headers, has_body))
    client = session.client(split)
    if client.use_proxy:
        return None
    try:
        empty = client._build_request(method, "/", body=b"", headers=merged)
        one = client._build_request(method, "/", body=b"x", headers=merged)
    except ValueError:
        return None
    lead = f"{method} /"
    cut = empty.find("\r\n") + 2
    if not empty.startswith(lead) or cut < 2 or one[:cut] != empty[:cut]:
        return None
    fields_one = one[cut:]
    fields_body = fields_one[: -len(_LENGTH_ONE)] if fields_one.endswith(_LENGTH_ONE) else None
    shape = _Shape(prefix, split, empty[len(lead) : cut], empty[cut:], fields_body, merged)
    if rendered:
        pieces = _SLOT.split(shape.fields_empty)
        shape.empty_parts = pieces[0::2]
        shape.order = tuple(names[int(i)] for i in pieces[1::2])
        if fields_body is not None:
            pieces = _SLOT.split(fields_body)
            if tuple(names[int(i)] for i in pieces[1::2]) != shape.order:
                return None
            shape.body_parts = pieces[0::2]
    return shape


# -- recording ---------------------------------------------------------------------------------


def _is_runner_listener(handler: Any) -> bool:
    return getattr(handler, "__qualname__", "").startswith("Runner.__init__.")


class Sink:
    """Where a lean request is recorded (one per process, on ``environment.stagegate_sink``):
    straight into the recorder, Locust's error list and (when kept) Locust's statistics; or,
    when a listener other than these is on ``events.request``, through the event itself. The
    listeners are looked at again whenever their number changes (one listener added after the
    load started still sees every later request)."""

    def __init__(self, event: Any) -> None:
        self.event = event
        self.recorder: Recorder | None = None
        self.stats: Any = None
        self._seen = -1
        self._fire = True

    def bind(self, recorder: Recorder, stats: Any) -> None:
        self.recorder = recorder
        self.stats = stats
        self._seen = -1

    def firing(self) -> bool:
        """Whether requests go through ``events.request`` (someone else listens)."""
        handlers = self.event._handlers
        if len(handlers) != self._seen:
            self._seen = len(handlers)
            rec = self.recorder
            self._fire = rec is None or any(
                h != rec.on_request and not _is_runner_listener(h) for h in handlers
            )
        return self._fire

    def record(
        self,
        method: str,
        name: str,
        ms: float,
        length: int,
        exc: BaseException | None,
        start: float,
        window: Any,
        service: float | None,
        status: int,
        response: Any,
        url: str,
    ) -> None:
        if self.firing():
            context: dict[str, Any] = {}
            if window is not None:
                context[WINDOW_KEY] = window
            if service is not None:
                context[SERVICE_KEY] = service
            self.event.fire(
                request_type=method,
                name=name,
                response_time=ms,
                response_length=length,
                response=FastResponse(response) if response is not None else None,
                context=context,
                exception=exc,
                start_time=start,
                url=url,
            )
            return
        rec = self.recorder
        assert rec is not None
        rec.add_request(method, name, ms, exc, start, window, service, status // 100)
        stats = self.stats
        stats.log_request(method, name, ms, length)
        if exc is not None:
            stats.log_error(method, name, exc)


def bind(env: Any, recorder: Recorder, stats: Any) -> None:
    """Lean requests of ``env``'s users go to ``recorder`` and Locust's ``stats`` (a process
    that runs users, once its runner and listeners are in place)."""
    sink = getattr(env, "stagegate_sink", None)
    if isinstance(sink, Sink):
        sink.bind(recorder, stats)


# -- one planned request -----------------------------------------------------------------------

# judge(code, response, body, out) -> the failure (a text, an exception) or None
Judge = Callable[[int, Any, "bytes | None", Any], "str | BaseException | None"]


class LeanRequest:
    """One planned request on the lean path: ``send(user, path, headers, json, intended,
    window, out)``. ``path``, ``headers`` and ``json`` are the fixed ones (``prepare``) unless
    given rendered; ``intended`` (the open model) is when it should have started: its latency
    runs from then, its service time from the send. ``judge`` decides a response whose body
    arrived whole (None: FastHttpUser's rule, a status it deems invalid fails)."""

    def __init__(
        self,
        plan: LoadPlan,
        method: str,
        name: str,
        *,
        hold: bool,
        judge: Judge | None,
        path: str,
        headers: Mapping[str, str],
        json_body: Any = None,
    ) -> None:
        self.method = method
        self.name = name
        self.cap = plan.max_body
        self.hold = hold
        self.judge = judge
        self.timeout = plan.timeout
        self.timeout_ms = plan.timeout * 1000
        self.head_request = method == "HEAD"
        self.base = _Base(plan.host)
        self.fixed_headers = dict(headers)
        # the fixed request, built on first use per origin (``_fixed``)
        self.fixed_path = path
        self.fixed_json = json_body
        self._fixed: tuple[str, URL, HTTPClient | None, bytes, bytes, Headers, bytes] | None = None
        self._fixed_key: tuple[str, str, int | None] | None = None
        # the rendered request's parts, without and with a body (``_rendered``): False until
        # built, None when a rendered request is built in full every time
        self._shapes: list[_Shape | bool | None] = [False, False]
        # and per set of rendered header names, with or without a body
        self._header_shapes: dict[tuple[bool, tuple[str, ...]], _Shape | None] = {}

    # building ------------------------------------------------------------------------------
    def _url(self, path: str) -> str:
        return path if _ABSOLUTE(path) else f"{self.base.url}{path}"

    def _parts(
        self, path: str, headers: Mapping[str, str], json_body: Any
    ) -> tuple[str, Headers, bytes]:
        body = b"" if json_body is None else _body_bytes(json_body)
        merged = _merged_headers(self.base, headers, json_body is not None)
        return self._url(path), _agent_headers(merged), body

    def _fixed_request(self, session: LeanSession) -> tuple[str, URL, HTTPClient, bytes]:
        fixed = self._fixed
        if fixed is None:
            url, headers, body = self._parts(self.fixed_path, self.fixed_headers, self.fixed_json)
            split, uri = _uri(url)
            client = session.client(split)
            data = _head(client, self.method, uri, headers, body) + body
            fixed = self._fixed = (url, split, None, data, body, headers, b"")
            self._fixed_key = origin(split)
        url, split, _, data, _, _, _ = fixed
        return url, split, session.client(split, self._fixed_key), data

    # sending -------------------------------------------------------------------------------
    def _open(
        self,
        session: LeanSession,
        path: str | None,
        headers: Mapping[str, str] | None,
        json_body: Any,
    ) -> tuple[Any, str]:
        """The response (headers read) and the URL it answers."""
        if session.jar is None:
            if path is None and headers is None and json_body is None:
                url, _, client, data = self._fixed_request(session)
                resp = _exchange(client, self.method, data)
                if resp.get_code() in REDIRECT_CODES or "set-cookie" in resp:
                    return self._follow(session, resp, url, self._fixed_compat())
                return resp, url
            rendered = self._rendered(session, path, headers, json_body)
            if rendered is not None:
                return rendered
        fixed = self._fixed
        if path is None and headers is None and json_body is None and fixed is not None:
            url, merged, body = fixed[0], fixed[5].copy(), fixed[4]
        else:
            url, merged, body = self._parts(
                self.fixed_path if path is None else path,
                self.fixed_headers if headers is None else headers,
                self.fixed_json if json_body is None else json_body,
            )
        req = CompatRequest(url, method=self.method, headers=merged, payload=body or None)
        return self._send_compat(session, req, 0)

    def _fixed_compat(self) -> CompatRequest:
        assert self._fixed is not None
        url, _, _, _, body, headers, _ = self._fixed
        return CompatRequest(url, method=self.method, headers=headers.copy(), payload=body or None)

    def _rendered(
        self,
        session: LeanSession,
        path: str | None,
        headers: Mapping[str, str] | None,
        json_body: Any,
    ) -> tuple[Any, str] | None:
        """The fast path of a rendered request (its target, its body, its headers' values; no
        cookie jar): the cached header block around the target, the header values and the
        body's length, the bytes the slow path would build (``_Shape``); None when this request
        needs the slow path."""
        if path is None:
            path = self.fixed_path
        if json_body is None:
            json_body = self.fixed_json
        has_body = json_body is not None
        shape: _Shape | bool | None
        if headers is None:
            shape = self._shapes[has_body]
            if shape is False:
                shape = self._shapes[has_body] = _shape(
                    self.base, session, self.method, self.fixed_headers, has_body
                )
        else:
            key = (has_body, tuple(headers))
            if key in self._header_shapes:
                shape = self._header_shapes[key]
            else:
                shape = self._header_shapes[key] = _shape(
                    self.base, session, self.method, headers, has_body, rendered=True
                )
        if not isinstance(shape, _Shape) or path[:1] != "/":
            return None
        target = shape.prefix + path
        if not _SENDABLE(target) or ("%" in target and requote_uri(target) != target):
            return None
        fields = shape.fields_body if has_body else shape.fields_empty
        if headers is not None:
            parts = shape.body_parts if has_body else shape.empty_parts
            if parts is None:
                return None
            joined = [parts[0]]
            for name, part in zip(shape.order, parts[1:], strict=True):
                value = headers[name]
                if not isinstance(value, str) or not _FIELD_VALUE(value):
                    return None  # the slow path refuses it with geventhttpclient's error
                joined += (value, part)
            fields = "".join(joined)
        if has_body:
            body = _body_bytes(json_body)
            if fields is None:
                return None
            head = f"{self.method} {target}{shape.line_tail}{fields}Content-Length: {len(body)}"
            data = head.encode("latin-1") + b"\r\n\r\n" + body
        else:
            body = b""
            data = f"{self.method} {target}{shape.line_tail}{fields}".encode("latin-1")
        url = self.base.url + path
        resp = _exchange(session.client(shape.split, shape.key), self.method, data)
        if resp.get_code() in REDIRECT_CODES or "set-cookie" in resp:
            merged = (
                shape.headers.copy()
                if headers is None
                else _agent_headers(_merged_headers(self.base, headers, has_body))
            )
            req = CompatRequest(url, method=self.method, headers=merged, payload=body or None)
            return self._follow(session, resp, url, req)
        return resp, url

    def _send_compat(self, session: LeanSession, req: CompatRequest, hops: int) -> tuple[Any, str]:
        """The slow path: cookies, redirects (``UserAgent.urlopen``'s steps, FastHttpUser's
        limits)."""
        while True:
            jar = session.jar
            if jar is not None:
                jar.add_cookie_header(req)
            split = req.url_split
            client = session.client(split)
            uri = split.quoted_uri
            body = req.payload if isinstance(req.payload, bytes) else b""
            data = _head(client, req.method, uri, req.headers, body) + body
            resp = _exchange(client, req.method, data)
            resp, url = self._after(session, resp, req, hops)
            if resp is not None:
                return resp, url
            hops += 1

    def _follow(
        self, session: LeanSession, resp: Any, url: str, req: CompatRequest
    ) -> tuple[Any, str]:
        out, url = self._after(session, resp, req, 0)
        if out is not None:
            return out, url
        return self._send_compat(session, req, 1)

    def _after(
        self, session: LeanSession, resp: Any, req: CompatRequest, hops: int
    ) -> tuple[Any, str]:
        """Cookies taken from ``resp``; None if it redirects (``req`` now points there)."""
        if "set-cookie" in resp or session.jar is not None:
            if session.jar is None:
                session.jar = CookieJar()
            session.jar.extract_cookies(CompatResponse(resp, req), req)  # type: ignore[arg-type]
        code = resp.get_code()
        location = resp.get("location") if code in REDIRECT_CODES else None
        if not isinstance(location, str) or not location:
            return resp, req.url
        if hops >= MAX_REDIRECTS:
            resp.release()
            raise RetriesExceeded(req.url, f"Redirection limit reached ({MAX_REDIRECTS})")
        resp.release()
        req.redirect(code, location)
        return None, req.url

    def send(
        self,
        user: Any,
        path: str | None,
        headers: Mapping[str, str] | None,
        json_body: Any,
        intended: float | None,
        window: Any,
        out: Any,
    ) -> None:
        session: LeanSession = user.stagegate_http
        method = self.method
        me = getcurrent()
        start = time.time()
        t0 = time.monotonic()
        enter(me, t0, self.timeout, method, self.name, intended, window)
        resp: Any = None
        exc: BaseException | None = None
        length = 0
        status = 0
        url = self.base.url
        try:
            try:
                resp, url = self._open(session, path, headers, json_body)
            except RequestTimedOut:
                raise
            except FAILURE_EXCEPTIONS as e:
                exc = locust_error(e, self._url(path or self.fixed_path))
            except (ValueError, TypeError, UnicodeError) as e:  # a header or path not sendable
                exc = e
            if resp is not None:
                status = resp.get_code()
                exc, length = self._respond(resp, status, url, out)
        except RequestTimedOut as e:  # the whole-request deadline (``deadline_watch``)
            leave(me)
            waited = 0.0 if intended is None else max(0.0, start - intended) * 1000
            if resp is not None:
                resp.release()
            user.environment.stagegate_sink.record(
                method,
                self.name,
                self.timeout_ms + waited,
                0,
                e,
                start,
                window,
                self.timeout_ms if intended is not None else None,
                0,
                None,
                url,
            )
            return
        except BaseException:
            leave(me)
            if resp is not None:
                resp.release()
            raise
        leave(me)
        ms = (time.monotonic() - t0) * 1000
        service = None
        if intended is not None:
            service = ms
            ms += max(0.0, start - intended) * 1000
        user.environment.stagegate_sink.record(
            method, self.name, ms, length, exc, start, window, service, status, resp, url
        )

    def _respond(
        self, resp: Any, code: int, url: str, out: Any
    ) -> tuple[BaseException | None, int]:
        """The body read to its end (or held), then the judgment: (the failure or None, bytes)."""
        declared = None
        if not self.head_request:
            value = resp.get("content-length")
            if value is not None:
                try:
                    declared = int(value)
                except (TypeError, ValueError):
                    declared = None
        body: bytes | None = None
        try:
            if self.hold:
                encoding = resp.get("content-encoding") or ""
                body, problem = collect(resp.read, self.cap, declared, str(encoding))
                length = len(body)
            else:
                length, problem = drain(resp.read, self.cap, declared)
        except RequestTimedOut:
            raise
        except Exception as e:  # reset, malformed: the request's failure, as Locust's
            return e, 0
        finally:
            resp.release()  # back to the pool when complete, else closed
        if problem:
            return CatchResponseError(problem), length
        judge = self.judge
        if judge is None:
            if code in VALID_CODES:
                return None, length
            return LocustBadStatusCode(url, code=code), length
        failure = judge(code, resp, body, out)
        if failure is None:
            return None, length
        if isinstance(failure, BaseException):
            return failure, length
        return CatchResponseError(failure), length
