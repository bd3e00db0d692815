"""Real HTTP servers on 127.0.0.1 for tests and benchmarks: no mocks, real sockets.

``HTTPTestServer`` is a threaded HTTP/1.1 (keep-alive) server on a free port whose behaviour is
set per path with ``Route``::

    from tests.servers import HTTPTestServer, Route, refused_url

    routes = {
        "/fast": Route(),                                # 200 "ok" at once
        "/slow": Route(latency=0.2),                     # 200 after 200 ms
        "/jitter": Route(latency=(0.100, 0.112), seed=7),  # seeded uniform latency, in seconds
        "/boom": Route(status=500, body=b"oops"),
        "/json": Route(body=b'{"a": 1}', content_type="application/json"),
        "/hang": Route(hang=True),                       # reads the request, never answers
        "/reset": Route(reset=True),                     # closes the connection with a TCP RST
    }
    with HTTPTestServer(routes) as server:               # started; stopped on exit
        server.url                                       # "http://127.0.0.1:41234"
        ...
        server.count("/slow")                            # requests received on /slow so far
        server.total                                     # requests received on all paths
        server.last_headers("/fast")                     # headers of the latest request there

Paths are matched exactly, without the query string; any other path gets ``default`` (200 "ok"
unless given). ``latency`` is in seconds and can be: a number; ``(low, high)``, drawn uniformly
from ``random.Random(seed)`` in arrival order (deterministic for one client, reproducible
across runs); a sequence of numbers, cycled in arrival order; or a callable
``(index, elapsed) -> seconds`` where ``index`` counts requests on that route from 0 and
``elapsed`` is seconds since the server received its first request (for phase-dependent
behaviour, e.g. a slow warm-up). ``hang`` routes hold the connection until the server stops.

A stalling server (coordinated omission made visible): ``Route(stalls=Stalls(period=2.0,
length=0.5))`` answers at once, except that every ``period`` seconds from the server's start it
stalls for ``length`` seconds (the last ``length`` seconds of each period): a request that
arrives during a stall is held until the stall ends, then answered. The schedule is fixed from
``server.started`` (``time.monotonic()``), so the truth is known: ``server.held`` maps each
stall (0, 1, ...) to the requests it held, ``server.answered(path)`` counts the answers sent.

A route may answer per request: ``Route(respond=fn)`` calls ``fn(request)`` with a
``Request`` (method, path, query, headers, body, ``index`` on that route from 0; ``.json()``,
``.header(name)``) and sends what it returns: ``(status, payload)`` or ``(status, payload,
headers)``, where a bytes payload goes out as is (with the route's ``content_type``) and any
other payload as JSON. ``server.last_body(path)`` is the body of the latest request there.
``httpbin_routes()`` is an httpbin-like API built this way, for scenarios (logins, tokens, JSON
bodies, headers, some 5xx answers): see its docstring.

``refused_url()`` is the URL of a port nothing listens on (connections are refused).

The server answers a few thousand requests per second (threads, GIL): enough for tests with a
handful of users, too slow to measure a load generator's ceiling (the benchmarks use their own
asyncio server in a separate process).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
import socket
import struct
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

__all__ = [
    "HTTPTestServer",
    "Request",
    "Route",
    "Stalls",
    "free_port",
    "httpbin_routes",
    "master_port",
    "refused_url",
    "serving",
    "token_for",
]

Latency = None | float | tuple[float, float] | Sequence[float] | Callable[[int, float], float]


@dataclass(frozen=True)
class Stalls:
    """A stall of ``length`` seconds at the end of every ``period`` seconds from the server's
    start: stall k covers ``[(k + 1) * period - length, (k + 1) * period)``."""

    period: float = 5.0
    length: float = 0.5

    def __post_init__(self) -> None:
        if not 0 < self.length < self.period:
            raise ValueError(f"a stall needs 0 < length < period, got {self}")

    def stall_at(self, t: float) -> int | None:
        """The stall (0-based) under way ``t`` seconds after the start, or None."""
        k, phase = divmod(t, self.period)
        return int(k) if phase >= self.period - self.length else None

    def hold(self, t: float) -> float:
        """Seconds a request arriving ``t`` seconds after the start is held (0 outside stalls)."""
        phase = t % self.period
        return self.period - phase if phase >= self.period - self.length else 0.0


@dataclass(frozen=True)
class Request:
    """One request as a ``Route(respond=...)`` function sees it."""

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]  # names as the client sent them; see ``header()``
    body: bytes
    index: int  # requests on this route before this one

    def header(self, name: str) -> str | None:
        """The value of header ``name`` (any case), or None."""
        wanted = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == wanted), None)

    def json(self) -> Any:
        """The body as JSON; None when it is empty or not JSON."""
        try:
            return json.loads(self.body) if self.body else None
        except ValueError:
            return None


Reply = tuple[int, Any] | tuple[int, Any, Mapping[str, str]]


@dataclass
class Route:
    """How the server answers one path. See the module docstring."""

    status: int = 200
    body: bytes = b"ok"
    content_type: str = "text/plain"
    headers: Mapping[str, str] = field(default_factory=dict)
    latency: Latency = None
    seed: int = 0
    hang: bool = False
    reset: bool = False
    stalls: Stalls | None = None  # held through the server's stalls, on top of ``latency``
    respond: Callable[[Request], Reply] | None = None  # answers per request: see the docstring

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(self.seed)
        self._index = 0
        self._responded = 0

    def _reply(self, request: Request) -> tuple[int, bytes, str, Mapping[str, str]]:
        """(status, body, content type, extra headers) of this request."""
        if self.respond is None:
            return self.status, self.body, self.content_type, self.headers
        with self._lock:
            index = self._responded
            self._responded += 1
        reply = self.respond(
            Request(request.method, request.path, request.query, request.headers,
                    request.body, index)
        )  # fmt: skip
        status, payload = reply[0], reply[1]
        extra = {**self.headers, **(reply[2] if len(reply) == 3 else {})}
        if isinstance(payload, bytes):
            return status, payload, self.content_type, extra
        return status, json.dumps(payload).encode(), "application/json", extra

    def _next_delay(self, elapsed: float) -> float:
        # one lock for index and RNG so the i-th request always gets the i-th draw
        with self._lock:
            index = self._index
            self._index += 1
            latency = self.latency
            if latency is None:
                return 0.0
            if isinstance(latency, (int, float)):
                return float(latency)
            if callable(latency):
                return float(latency(index, elapsed))
            if isinstance(latency, tuple) and len(latency) == 2:
                return self._rng.uniform(latency[0], latency[1])
            return float(latency[index % len(latency)])


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ephemeral_range() -> tuple[int, int]:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as fh:
            low, high = (int(part) for part in fh.read().split())
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default
    return low, high


def master_port() -> int:
    """A port for a load master that binds it later (``--gate-master-bind``, a remote
    worker's ``--master-port``): free now, and below the kernel's ephemeral range.

    ``free_port()`` hands out an ephemeral port, which is free again the moment it returns:
    under ``pytest -n 2`` another test's server, client connection or ``free_port()`` can take
    it before the master binds, and a master on a port its workers were told cannot move.
    The kernel gives ephemeral ports (``bind(("", 0))``, outgoing connections) only from
    ``ip_local_port_range``, so a random port below it is taken in between only by another
    ``master_port()`` drawing the same one of thousands."""
    low, _ = _ephemeral_range()
    floor = 20000 if low > 21000 else 1024
    rng = random.SystemRandom()
    for _ in range(200):
        port = rng.randrange(floor, low)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue  # in use here: draw again
            return port
    return free_port()  # no free port below the range: the old way


def refused_url() -> str:
    """``http://127.0.0.1:PORT`` where nothing listens: every connection is refused."""
    return f"http://127.0.0.1:{free_port()}"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024

    owner: HTTPTestServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        # load generators drop connections mid-response when they stop: not a server error
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like a real deployment behind a proxy
    server: _Server

    def setup(self) -> None:
        super().setup()
        # headers and body go out in two writes: with Nagle's algorithm and the client's
        # delayed ACK, every answer would take 40 ms more than configured
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.owner._track(self.connection, add=True)

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()
        self.server.owner._track(self.connection, add=False)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # tests read counters, not access logs

    def _handle(self) -> None:
        owner = self.server.owner
        url = urlsplit(self.path)
        path = url.path
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        route = owner.routes.get(path, owner.default)
        headers = dict(self.headers.items())
        elapsed = owner._record(path, headers, body)
        if route.hang:
            owner._stopping.wait()
            self.close_connection = True
            return
        if route.reset:
            # SO_LINGER 0 turns close() into a RST: the client sees "connection reset"
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            # closed here, before socketserver's shutdown(SHUT_WR) would send a polite FIN
            self.connection.close()
            self.close_connection = True
            return
        delay = route._next_delay(elapsed)
        if route.stalls is not None:
            delay += owner._stall(route.stalls)
        if delay > 0:
            time.sleep(delay)
        request = Request(self.command, path, dict(parse_qsl(url.query)), headers, body, 0)
        status, payload, content_type, extra = route._reply(request)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in extra.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)
        owner._answered_one(path)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle


class HTTPTestServer:
    """A threaded HTTP/1.1 server on 127.0.0.1 with per-path behaviour and request counters."""

    def __init__(
        self,
        routes: Mapping[str, Route] | None = None,
        *,
        default: Route | None = None,
        port: int = 0,
        host: str = "127.0.0.1",
    ) -> None:
        self.routes: dict[str, Route] = dict(routes or {})
        self.host = host  # another address only in a network namespace a test made itself
        self.default = default if default is not None else Route()
        self._port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._counts: dict[str, int] = defaultdict(int)
        self._answered: dict[str, int] = defaultdict(int)
        self._held: dict[int, int] = defaultdict(int)
        self.started = 0.0  # time.monotonic() at start(): the origin of a Stalls schedule
        self._last_headers: dict[str, dict[str, str]] = {}
        self._last_body: dict[str, bytes] = {}
        self._first_request: float | None = None
        self._connections: set[socket.socket] = set()
        self._stopping = threading.Event()

    # lifecycle -------------------------------------------------------------------------------
    def start(self) -> HTTPTestServer:
        server = _Server((self.host, self._port), _Handler)
        server.owner = self
        self._server = server
        self.started = time.monotonic()
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._stopping.set()  # releases hanging handlers
        self._server.shutdown()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:  # idle keep-alive connections would otherwise linger
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None

    def __enter__(self) -> HTTPTestServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # addresses -------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the server is not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # counters --------------------------------------------------------------------------------
    def count(self, path: str) -> int:
        """Requests received on ``path`` (answered or not)."""
        with self._lock:
            return self._counts.get(path, 0)

    @property
    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self._counts.values())

    def answered(self, path: str) -> int:
        """Answers sent on ``path`` (a request still held, or cut off, is not answered)."""
        with self._lock:
            return self._answered.get(path, 0)

    @property
    def held(self) -> dict[int, int]:
        """Stall index -> requests that arrived during it and were held (``Route.stalls``)."""
        with self._lock:
            return dict(self._held)

    def last_headers(self, path: str) -> dict[str, str]:
        """Headers of the latest request on ``path`` (names as the client sent them)."""
        with self._lock:
            return dict(self._last_headers.get(path, {}))

    def last_body(self, path: str) -> bytes:
        """The body of the latest request on ``path`` (b"" if none)."""
        with self._lock:
            return self._last_body.get(path, b"")

    def reset_counters(self) -> None:
        with self._lock:
            self._counts.clear()
            self._answered.clear()
            self._held.clear()
            self._last_headers.clear()
            self._last_body.clear()

    # internals -------------------------------------------------------------------------------
    def _record(self, path: str, headers: dict[str, str], body: bytes = b"") -> float:
        now = time.monotonic()
        with self._lock:
            if self._first_request is None:
                self._first_request = now
            self._counts[path] += 1
            self._last_headers[path] = headers
            self._last_body[path] = body
            return now - self._first_request

    def _stall(self, stalls: Stalls) -> float:
        """Seconds to hold a request arriving now; counts it in its stall."""
        t = time.monotonic() - self.started
        stall = stalls.stall_at(t)
        if stall is None:
            return 0.0
        with self._lock:
            self._held[stall] += 1
        return stalls.hold(t)

    def _answered_one(self, path: str) -> None:
        with self._lock:
            self._answered[path] += 1

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)


def token_for(user: str) -> str:
    """The access token ``httpbin_routes()`` gives ``user`` at ``POST /api/login``."""
    return "tok-" + hashlib.sha256(f"httpbin:{user}".encode()).hexdigest()[:24]


def httpbin_routes(*, items: int = 3, fail_every: int = 4) -> dict[str, Route]:
    """An httpbin-like API (fresh routes: each counts its own requests):

    - ``POST /api/login`` ``{"user": U, "password"?: P}`` -> 200 ``{"access_token":
      token_for(U), "user": U}`` with the header ``X-Session: sess-U``; 400 without a user;
    - ``GET /api/me`` with ``Authorization: Bearer <token>`` -> 200 ``{"user": U}``; 401 with
      no token, or one /api/login did not give;
    - ``GET /api/items`` -> 200 ``{"items": [{"id": 1, "sku": "A-1"}, ...], "total": n}``
      (``items`` of them; 0 for an empty list);
    - ``/anything`` (any method) -> 200, the request echoed: ``{"method", "path", "query",
      "headers", "json"}``;
    - ``GET /api/flaky`` -> 503 for every ``fail_every``-th request on it (the 4th, 8th, ...),
      200 ``{"ok": true}`` otherwise;
    - ``GET /text`` -> 200 ``text/plain`` "hello from httpbin" (not JSON).
    """
    users: dict[str, str] = {}  # token -> user
    listing = [{"id": i, "sku": f"A-{i}"} for i in range(1, items + 1)]

    def login(request: Request) -> Reply:
        body = request.json()
        user = body.get("user") if isinstance(body, dict) else None
        if not isinstance(user, str) or not user:
            return 400, {"error": "expected {user, password}"}
        token = token_for(user)
        users[token] = user
        return 200, {"access_token": token, "user": user}, {"X-Session": f"sess-{user}"}

    def me(request: Request) -> Reply:
        scheme, _, token = (request.header("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or token not in users:
            return 401, {"error": "log in first"}
        return 200, {"user": users[token]}

    def anything(request: Request) -> Reply:
        return 200, {
            "method": request.method,
            "path": request.path,
            "query": dict(request.query),
            "headers": dict(request.headers),
            "json": request.json(),
        }

    def flaky(request: Request) -> Reply:
        if (request.index + 1) % fail_every == 0:
            return 503, {"error": "try again"}
        return 200, {"ok": True}

    return {
        "/api/login": Route(respond=login),
        "/api/me": Route(respond=me),
        "/api/items": Route(respond=lambda _: (200, {"items": listing, "total": len(listing)})),
        "/anything": Route(respond=anything),
        "/api/flaky": Route(respond=flaky),
        "/text": Route(body=b"hello from httpbin"),
    }


@contextlib.contextmanager
def serving(routes: Mapping[str, Route] | None = None, **kwargs: Any) -> Iterator[HTTPTestServer]:
    """``with serving({...}) as server:`` — shorthand for ``with HTTPTestServer({...})``."""
    with HTTPTestServer(routes, **kwargs) as server:
        yield server
