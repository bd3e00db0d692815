"""The fixtures' HTTP clients against real sockets: retries, the per-request deadline, recording."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator

import httpx
import pytest

from pytest_stagegate.config import Target
from pytest_stagegate.target.client import RequestLog, make_async_client, make_client, summarize
from tests.servers import HTTPTestServer, Route, refused_url


@pytest.fixture
def dripping_url() -> Iterator[str]:
    """A server that promises 1000 bytes and sends one every 0.2 s: each read succeeds."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def drip(conn: socket.socket) -> None:
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
            while not stop.wait(0.2):
                try:
                    conn.sendall(b"x")
                except OSError:
                    return

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            threading.Thread(target=drip, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join()
    listener.close()


def test_a_dripping_body_times_out_as_a_whole(dripping_url: str) -> None:
    target = Target(name="t", base_url=dripping_url, timeout=1.0)
    with make_client(target) as client, pytest.raises(httpx.ReadTimeout, match="timeout"):
        client.get("/")


def test_a_dripping_body_times_out_as_a_whole_async(dripping_url: str) -> None:
    target = Target(name="t", base_url=dripping_url, timeout=1.0)

    async def fetch() -> None:
        async with make_async_client(target) as client:
            await client.get("/")

    with pytest.raises(httpx.ReadTimeout):
        asyncio.run(fetch())


def test_a_5xx_is_never_retried_and_is_recorded() -> None:
    log = RequestLog()
    with HTTPTestServer({"/boom": Route(status=503)}) as server:
        target = Target(name="t", base_url=server.url, headers={"X-K": "v"})
        with make_client(target, log) as client:
            assert client.get("/boom").status_code == 503
        assert server.count("/boom") == 1
    (entry,) = log.take()
    assert (entry.method, entry.path, entry.status) == ("GET", "/boom", 503)
    assert entry.duration_ms > 0
    summary = summarize([entry])
    assert summary is not None and summary["failures"] == 1 and summary["count"] == 1


def test_a_refused_connection_is_retried_then_raised_and_recorded() -> None:
    log = RequestLog()
    target = Target(name="t", base_url=refused_url(), timeout=2.0)
    with make_client(target, log) as client, pytest.raises(httpx.ConnectError):
        client.get("/")
    (entry,) = log.take()
    assert entry.status is None and entry.error == "ConnectError"


def test_a_connection_refused_at_first_succeeds_once_the_server_is_up() -> None:
    server = HTTPTestServer({"/": Route()})
    server.start()
    port = server.port
    server.stop()
    later = HTTPTestServer({"/": Route()}, port=port)
    timer = threading.Timer(0.3, later.start)
    timer.start()
    try:
        target = Target(name="t", base_url=f"http://127.0.0.1:{port}")
        # More retries than the default, so httpx's backoff (0.5 s, 1 s, 2 s, ...) spans many
        # seconds: a slow machine starting the server late must not fail the test.
        with make_client(target, retries=6) as client:
            assert client.get("/").status_code == 200
    finally:
        timer.join()
        later.stop()


def test_summarize_of_nothing_is_none() -> None:
    assert summarize([]) is None
