"""A fault-injecting HTTP server on 127.0.0.1: the ways a broken deployment misbehaves on the wire.

Raw sockets and one thread per connection, so every byte on the wire is under control (unlike
``tests.servers.HTTPTestServer``, which always speaks correct HTTP)::

    from tests.faults import FaultServer

    with FaultServer("hang") as server:          # started on a free port; stopped on exit
        server.url                               # "http://127.0.0.1:41234"
        ...
        server.count("/healthz")                 # requests read on /healthz so far
        server.total                             # requests read on all paths

Modes (``MODES``), and the options that tune them:

``refuse``
    Nothing listens: the URL is a closed port, every connection is refused.
``hang``
    Accepts, reads the request, never answers; the connection is held until the server stops.
``slow``
    Answers 200 after ``delay`` seconds (default 2.0); with ``slow_every=K``, only every K-th
    request is slow and the others are answered at once (a latency tail: p95 over budget while
    most requests are fast).
``burst5xx``
    Answers ``status`` (default 503) to every ``every``-th request (default 3: the 3rd, 6th,
    ...), counted over the faulty requests; with ``window=(start, end)`` instead answers
    ``status`` to every request received from ``start`` to ``end`` seconds after the server
    started (a burst of errors during a deploy) and 200 outside it. Give ``every=None`` with a
    window for the window alone.
``reset``
    Sends the status line, headers (``Content-Length: 1000``) and the first 100 bytes of the
    body, then closes with a TCP RST (``SO_LINGER`` 0): "connection reset" mid-response.
``malformed``
    Answers ``garbage`` (default ``b"HELLO\\r\\n\\r\\n"``, not an HTTP status line) and closes.
``drip``
    Sends valid headers announcing ``Content-Length: 1000000``, then one byte of body every
    ``drip_interval`` seconds (default 1.0) "forever": until the server stops, or, when
    ``drip_limit`` is given, until the connection has dripped that many seconds; then the server
    closes it (FIN) and counts it in ``drips_cut``. A client whose timeout only bounds each
    socket read (not the whole response) never times out here; ``drip_limit`` turns such a
    hang into a late "incomplete body" error, and ``drips_cut`` tells who gave up first.
``slow_headers``
    Sends the status line and headers (padded to about 300 bytes) one byte every
    ``drip_interval`` seconds, then the body ``ok``: a server that is alive but never finishes
    its headers in time. ``drip_limit`` and ``drips_cut`` work as for ``drip``. A client whose
    timeout only bounds each socket read never times out here.
``huge_body``
    Answers 200 with a body of ``body_size`` bytes (``Content-Length``), sent as fast as the
    client reads; with ``body_size=None`` (the default) an endless chunked body. ``bodies_cut``
    counts the responses the client stopped reading (closed the connection) before their end.
``tls_untrusted``
    HTTPS with a self-signed certificate for 127.0.0.1 generated at start (with the
    ``cryptography`` package if installed, else ``openssl req -x509``; ``tls_unavailable()``
    says why neither works, for a skip). A client that verifies certificates aborts the
    handshake (counted in ``tls_rejections``); one that does not gets 200 "ok".
``flapping_ready``
    Alternates 503 and 200 per request, starting with 503 (an unhealthy and a healthy backend
    behind a round-robin balancer); with ``flap_first=K``, answers 503 to the first K requests
    and 200 from then on (a deployment that takes a while to warm up).

``paths`` restricts the fault to those paths (matched exactly, without the query string);
other paths get 200 "ok" at once. It has no effect on ``refuse`` and ``tls_untrusted``, which
act on the connection. Answers are HTTP/1.1 with keep-alive (a connection serves requests
until the client closes it or a fault ends it), the body ``ok`` for 200 and ``unavailable`` for
5xx.

``stop()`` (or leaving the ``with`` block) stops accepting, releases hanging, slow and dripping
handlers, closes every connection still held, and joins the threads.
"""

from __future__ import annotations

import contextlib
import importlib.util
import shutil
import socket
import ssl
import struct
import subprocess
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Collection
from pathlib import Path
from typing import Literal, get_args
from urllib.parse import urlsplit

from tests.servers import free_port

__all__ = ["MODES", "FaultServer", "Mode", "make_self_signed", "tls_unavailable"]

Mode = Literal[
    "refuse",
    "hang",
    "slow",
    "burst5xx",
    "reset",
    "malformed",
    "drip",
    "slow_headers",
    "huge_body",
    "tls_untrusted",
    "flapping_ready",
]
MODES: tuple[Mode, ...] = get_args(Mode)

RECV_POLL = 0.2  # seconds a blocked read waits before looking at the stop flag
MAX_HEADER_BYTES = 64 * 1024
DRIP_LENGTH = 1_000_000
SLOW_HEADER_PAD = 240  # bytes of padding header: ~300 bytes of headers in all
BODY_BLOCK = 64 * 1024
RESET_LENGTH = 1000
RESET_SENT = 100


# --- TLS: a self-signed certificate made at test time -----------------------------------------
def tls_unavailable() -> str | None:
    """None when a self-signed certificate can be made here; otherwise why not (a skip reason)."""
    if importlib.util.find_spec("cryptography") is None and shutil.which("openssl") is None:
        return (
            "tls_untrusted needs a self-signed certificate: neither the 'cryptography' "
            "package nor the 'openssl' command is available"
        )
    return None


def make_self_signed(directory: Path) -> tuple[Path, Path]:
    """Write a self-signed certificate for 127.0.0.1 and its key into ``directory``.

    Returns ``(cert_path, key_path)``. Uses ``cryptography`` when installed, else ``openssl``.
    """
    cert, key = directory / "cert.pem", directory / "key.pem"
    try:
        _self_signed_cryptography(cert, key)
    except ImportError:
        subprocess.run(
            [
                "openssl", "req", "-x509", "-nodes", "-days", "1",
                "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                "-keyout", str(key), "-out", str(cert),
                "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )  # fmt: skip
    return cert, key


def _self_signed_cryptography(cert_path: Path, key_path: Path) -> None:
    import datetime
    import ipaddress

    # optional: where it is absent, make_self_signed falls back to the openssl command
    from cryptography import x509  # type: ignore[import-not-found,unused-ignore]
    from cryptography.hazmat.primitives import hashes, serialization  # type: ignore[import-not-found,unused-ignore]
    from cryptography.hazmat.primitives.asymmetric import ec  # type: ignore[import-not-found,unused-ignore]
    from cryptography.x509.oid import NameOID  # type: ignore[import-not-found,unused-ignore]

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


# --- the server -------------------------------------------------------------------------------
class _Stopped(Exception):
    """The server is stopping, or the peer went away: drop the connection."""


class _Request:
    __slots__ = ("close", "method", "path")

    def __init__(self, method: str, path: str, close: bool) -> None:
        self.method = method
        self.path = path
        self.close = close


class FaultServer:
    """An HTTP server on 127.0.0.1 that misbehaves as ``mode`` says. See the module docstring."""

    def __init__(
        self,
        mode: Mode,
        *,
        paths: Collection[str] | None = None,
        delay: float = 2.0,
        slow_every: int | None = None,
        every: int | None = 3,
        window: tuple[float, float] | None = None,
        status: int = 503,
        garbage: bytes = b"HELLO\r\n\r\n",
        drip_interval: float = 1.0,
        drip_limit: float | None = None,
        flap_first: int | None = None,
        body_size: int | None = None,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; one of {', '.join(MODES)}")
        if mode == "burst5xx" and every is None and window is None:
            raise ValueError("burst5xx needs every=K or window=(start, end)")
        for name, value in (("every", every), ("slow_every", slow_every)):
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        self.mode: Mode = mode
        self.paths = frozenset(paths) if paths is not None else None
        self.delay = delay
        self.slow_every = slow_every
        self.every = every
        self.window = window
        self.status = status
        self.garbage = garbage
        self.drip_interval = drip_interval
        self.drip_limit = drip_limit
        self.flap_first = flap_first
        self.body_size = body_size

        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._threads: set[threading.Thread] = set()
        self._connections: set[socket.socket] = set()
        self._counts: dict[str, int] = defaultdict(int)
        self._faulty_seen = 0
        self._started_at = 0.0
        self._port = 0
        self._ssl: ssl.SSLContext | None = None
        self._tmp: Path | None = None
        self.connections_accepted = 0
        self.drips_cut = 0  # drip connections the server closed because drip_limit ran out
        self.tls_rejections = 0  # TLS handshakes the client aborted
        self.bodies_cut = 0  # huge bodies the client stopped reading before their end

    # lifecycle -----------------------------------------------------------------------------
    def start(self) -> FaultServer:
        self._started_at = time.monotonic()
        if self.mode == "refuse":
            self._port = free_port()  # bound a moment ago, closed now: nothing listens
            return self
        if self.mode == "tls_untrusted":
            reason = tls_unavailable()
            if reason is not None:
                raise RuntimeError(reason)
            self._tmp = Path(tempfile.mkdtemp(prefix="faults-tls-"))
            cert, key = make_self_signed(self._tmp)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert, key)
            self._ssl = context
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(256)
        listener.settimeout(RECV_POLL)
        self._listener = listener
        self._port = int(listener.getsockname()[1])
        self._accept_thread = threading.Thread(
            target=self._accept_loop, name=f"faults-{self.mode}-accept", daemon=True
        )
        self._accept_thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # releases hanging, slow and dripping handlers
        if self._accept_thread is not None:
            self._accept_thread.join(timeout=5)
            self._accept_thread = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            connections = list(self._connections)
            threads = list(self._threads)
        for conn in connections:
            _close(conn)
        for thread in threads:
            thread.join(timeout=5)
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # addresses and counters ----------------------------------------------------------------
    @property
    def port(self) -> int:
        if not self._port:
            raise RuntimeError("the server is not started")
        return self._port

    @property
    def url(self) -> str:
        scheme = "https" if self.mode == "tls_untrusted" else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def count(self, path: str) -> int:
        """Requests read on ``path`` (answered or not)."""
        with self._lock:
            return self._counts.get(path, 0)

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self._counts.values())

    # accepting -----------------------------------------------------------------------------
    def _accept_loop(self) -> None:
        listener = self._listener
        assert listener is not None
        while not self._stopping.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(
                target=self._serve, args=(conn,), name=f"faults-{self.mode}-conn", daemon=True
            )
            with self._lock:
                self.connections_accepted += 1
                self._connections.add(conn)
                self._threads.add(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        sock = conn
        try:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._ssl is not None:
                sock = self._handshake(conn)
            buffer = bytearray()
            while not self._stopping.is_set():
                request = self._read_request(sock, buffer)
                if request is None:
                    return
                if not self._answer(sock, request) or request.close:
                    return
        except (_Stopped, OSError):
            pass
        finally:
            _close(sock)
            with self._lock:
                self._connections.discard(conn)
                self._connections.discard(sock)
                self._threads.discard(threading.current_thread())

    def _handshake(self, conn: socket.socket) -> socket.socket:
        assert self._ssl is not None
        conn.settimeout(5.0)
        tls = self._ssl.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
        with self._lock:  # stop() closes what it finds here: the wrapper from now on
            self._connections.discard(conn)
            self._connections.add(tls)
        try:
            tls.do_handshake()
        except (ssl.SSLError, OSError):
            with self._lock:
                self.tls_rejections += 1
                self._connections.discard(tls)
            _close(tls)
            raise _Stopped from None
        return tls

    # reading -------------------------------------------------------------------------------
    def _recv(self, sock: socket.socket) -> bytes:
        sock.settimeout(RECV_POLL)
        while not self._stopping.is_set():
            try:
                data = sock.recv(65536)
            except TimeoutError:
                continue
            if not data:
                raise _Stopped
            return data
        raise _Stopped

    def _read_request(self, sock: socket.socket, buffer: bytearray) -> _Request | None:
        try:
            while b"\r\n\r\n" not in buffer:
                if len(buffer) > MAX_HEADER_BYTES:
                    return None
                buffer += self._recv(sock)
        except _Stopped:
            return None
        head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        try:
            method, target, version = lines[0].split(" ", 2)
        except ValueError:
            return None
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length") or 0)
        body = bytearray(rest)
        while len(body) < length:
            body += self._recv(sock)
        buffer[:] = body[length:]
        path = urlsplit(target).path or "/"
        close = headers.get("connection", "").lower() == "close" or version == "HTTP/1.0"
        with self._lock:
            self._counts[path] += 1
        return _Request(method.upper(), path, close)

    # answering -----------------------------------------------------------------------------
    def _answer(self, sock: socket.socket, request: _Request) -> bool:
        """Answer ``request``; False when the connection must end."""
        mode = self.mode
        if mode in ("refuse", "tls_untrusted") or (
            self.paths is not None and request.path not in self.paths
        ):
            return self._respond(sock, request, 200)
        with self._lock:
            self._faulty_seen += 1
            index = self._faulty_seen  # 1-based, over the faulty requests only
        if mode == "hang":
            self._stopping.wait()
            return False
        if mode == "slow":
            slow = self.slow_every is None or index % self.slow_every == 0
            if slow and self._stopping.wait(self.delay):
                return False
            return self._respond(sock, request, 200)
        if mode == "burst5xx":
            return self._respond(sock, request, self._burst_status(index))
        if mode == "flapping_ready":
            if self.flap_first is not None:
                healthy = index > self.flap_first
            else:
                healthy = index % 2 == 0
            return self._respond(sock, request, 200 if healthy else 503)
        if mode == "reset":
            head = _head(200, RESET_LENGTH, keep_alive=True)
            sock.sendall(head + b"x" * RESET_SENT)
            self._stopping.wait(0.05)  # let the client read the headers before the RST
            # SO_LINGER 0 turns close() into a RST: the client sees "connection reset"
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
            return False
        if mode == "malformed":
            sock.sendall(self.garbage)
            return False
        if mode == "drip":
            self._drip(sock)
            return False
        if mode == "slow_headers":
            return self._slow_headers(sock)
        if mode == "huge_body":
            return self._huge_body(sock)
        raise AssertionError(f"unhandled mode {mode!r}")

    def _burst_status(self, index: int) -> int:
        if self.window is not None:
            start, end = self.window
            if start <= time.monotonic() - self._started_at < end:
                return self.status
        if self.every is not None and index % self.every == 0:
            return self.status
        return 200

    def _drip(self, sock: socket.socket) -> None:
        sock.sendall(_head(200, DRIP_LENGTH, keep_alive=True))
        started = time.monotonic()
        for _ in range(DRIP_LENGTH):
            if self._stopping.wait(self.drip_interval):
                return
            if self.drip_limit is not None and time.monotonic() - started >= self.drip_limit:
                with self._lock:
                    self.drips_cut += 1
                return
            sock.sendall(b"x")

    def _slow_headers(self, sock: socket.socket) -> bool:
        head = _head(200, 2, keep_alive=False, extra={"X-Pad": "p" * SLOW_HEADER_PAD})
        started = time.monotonic()
        for i in range(len(head)):
            if i and self._stopping.wait(self.drip_interval):
                return False
            if self.drip_limit is not None and time.monotonic() - started >= self.drip_limit:
                with self._lock:
                    self.drips_cut += 1
                return False
            sock.sendall(head[i : i + 1])
        sock.sendall(b"ok")
        return False

    def _huge_body(self, sock: socket.socket) -> bool:
        block = b"x" * BODY_BLOCK
        try:
            if self.body_size is None:
                sock.sendall(_head(200, None, keep_alive=False))
                chunk = b"%x\r\n%s\r\n" % (len(block), block)
                while not self._stopping.is_set():
                    sock.sendall(chunk)
                return False
            sock.sendall(_head(200, self.body_size, keep_alive=False))
            left = self.body_size
            while left > 0 and not self._stopping.is_set():
                sock.sendall(block[: min(left, BODY_BLOCK)])
                left -= BODY_BLOCK
        except OSError:
            with self._lock:
                self.bodies_cut += 1
        return False

    def _respond(self, sock: socket.socket, request: _Request, status: int) -> bool:
        body = b"ok" if status < 400 else b"unavailable"
        keep_alive = not request.close
        head = _head(status, len(body), keep_alive=keep_alive)
        sock.sendall(head if request.method == "HEAD" else head + body)
        return keep_alive


_REASONS = {200: "OK", 500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}


def _head(
    status: int,
    length: int | None,
    *,
    keep_alive: bool,
    extra: dict[str, str] | None = None,
) -> bytes:
    """The status line and headers; ``length=None``: a chunked body."""
    reason = _REASONS.get(status, "Status")
    connection = "keep-alive" if keep_alive else "close"
    size = "Transfer-Encoding: chunked" if length is None else f"Content-Length: {length}"
    more = "".join(f"{k}: {v}\r\n" for k, v in (extra or {}).items())
    return (
        f"HTTP/1.1 {status} {reason}\r\n"
        f"Content-Type: text/plain\r\n"
        f"{size}\r\n"
        f"{more}"
        f"Connection: {connection}\r\n"
        f"\r\n"
    ).encode("ascii")


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
