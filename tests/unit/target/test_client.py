"""The fixtures' HTTP clients against real sockets: retries, the per-request deadline, recording."""

from __future__ import annotations

import asyncio
import gzip
import socket
import threading
from collections.abc import Iterator

import httpx
import psutil
import pytest

from pytest_stagegate.config import Target
from pytest_stagegate.target.client import (
    RecordedRequest,
    RequestLog,
    ResponseTooLarge,
    _shared_ssl_context,
    make_async_client,
    make_client,
    summarize,
)
from tests.faults import FaultServer, tls_unavailable
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


# --- every wait bounded by the clock, every body by max_body (issue 10) ----------------------
SLOW = {"drip_interval": 0.2, "drip_limit": 20.0}  # ~300 header bytes: a minute, cut at 20 s


def test_headers_dripping_byte_by_byte_time_out_at_the_deadline() -> None:
    """Each byte arrives well within a read's timeout; the whole request does not."""
    log = RequestLog()
    with FaultServer("slow_headers", **SLOW) as server:
        target = Target(name="t", base_url=server.url, timeout=1.0)
        with (
            make_client(target, log) as client,
            pytest.raises(httpx.ReadTimeout, match="within the request's timeout of 1s"),
        ):
            client.get("/")
        # the client gave up at its deadline, not the server at its drip limit
        assert server.drips_cut == 0
    (entry,) = log.take()
    assert entry.status is None and entry.error == "ReadTimeout"


def test_headers_dripping_byte_by_byte_time_out_at_the_deadline_async() -> None:
    log = RequestLog()
    with FaultServer("slow_headers", **SLOW) as server:
        target = Target(name="t", base_url=server.url, timeout=1.0)

        async def fetch() -> None:
            async with make_async_client(target, log) as client:
                await client.get("/")

        with pytest.raises(httpx.ReadTimeout, match="within the request's timeout of 1s"):
            asyncio.run(fetch())
        assert server.drips_cut == 0
    (entry,) = log.take()
    assert entry.status is None and entry.error == "ReadTimeout"


@pytest.fixture
def two_phase_url() -> Iterator[str]:
    """Headers that take ~1 s, then a body that takes ~2.4 s more: the headers alone fit in a
    2.5 s timeout with a wide margin (a busy machine must not miss it), both together do not."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n"
    step = 1.0 / len(head)

    def serve(conn: socket.socket) -> None:
        with conn:
            conn.recv(65536)
            try:
                for i in range(len(head)):
                    conn.sendall(head[i : i + 1])
                    if stop.wait(step):
                        return
                for _ in range(8):
                    conn.sendall(b"x")
                    if stop.wait(0.3):
                        return
            except OSError:
                return

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join()
    listener.close()


def test_headers_and_body_share_one_deadline(two_phase_url: str) -> None:
    log = RequestLog()
    target = Target(name="t", base_url=two_phase_url, timeout=2.5)
    with make_client(target, log) as client, pytest.raises(httpx.ReadTimeout, match="timeout"):
        client.get("/")
    (entry,) = log.take()
    # the headers came in time (status recorded); the body did not (the entry says so)
    assert entry.status == 200 and entry.error == "ReadTimeout"
    summary = summarize([entry])
    assert summary is not None and summary["failures"] == 1


def test_the_same_request_passes_with_time_for_both_phases(two_phase_url: str) -> None:
    """The counterpart: the deadline is the whole request's, not shorter."""
    target = Target(name="t", base_url=two_phase_url, timeout=10.0)
    with make_client(target) as client:
        assert client.get("/").content == b"x" * 8


def test_a_shorter_timeout_given_to_a_request_bounds_the_whole_request() -> None:
    """What the readiness wait and the gate's probe rely on: ``timeout=`` shorter than the
    target's is the whole request's deadline."""
    with FaultServer("slow_headers", **SLOW) as server:
        target = Target(name="t", base_url=server.url, timeout=30.0)
        with (
            make_client(target) as client,
            pytest.raises(httpx.ReadTimeout, match="timeout of 500ms"),
        ):
            client.get("/", timeout=0.5)
        assert server.drips_cut == 0


def test_a_body_larger_than_max_body_is_an_error_and_is_recorded() -> None:
    log = RequestLog()
    with HTTPTestServer({"/big": Route(body=b"x" * 2000), "/fits": Route(body=b"y" * 1000)}) as s:
        target = Target(name="t", base_url=s.url, max_body=1000)
        with make_client(target, log) as client:
            assert client.get("/fits").content == b"y" * 1000  # exactly the cap is fine
            with pytest.raises(ResponseTooLarge, match="larger than the target's max_body of"):
                client.get("/big")
    fits, big = log.take()
    assert fits.error == "" and (big.status, big.error) == (200, "ResponseTooLarge")
    assert isinstance(ResponseTooLarge("x"), httpx.TransportError)


def test_a_body_larger_than_max_body_is_an_error_async() -> None:
    with HTTPTestServer({"/big": Route(body=b"x" * 2000)}) as server:
        target = Target(name="t", base_url=server.url, max_body=1000)

        async def fetch() -> None:
            async with make_async_client(target) as client:
                await client.get("/big")

        with pytest.raises(ResponseTooLarge, match="max_body of 1000B"):
            asyncio.run(fetch())


def test_a_compressed_body_is_capped_as_it_inflates() -> None:
    bomb = gzip.compress(b"\0" * (4 * 1024 * 1024))  # 4 MB of zeros in a few KB
    route = Route(body=bomb, headers={"Content-Encoding": "gzip"})
    with HTTPTestServer({"/bomb": route}) as server:
        target = Target(name="t", base_url=server.url, max_body=1024 * 1024)
        assert len(bomb) < target.max_body
        with make_client(target) as client, pytest.raises(ResponseTooLarge):
            client.get("/bomb")


def test_a_body_too_large_only_once_inflated_is_recorded_as_a_failure() -> None:
    """The raw body fits; the decoded one does not: the log entry says so, like a raw one."""
    bomb = gzip.compress(b"\0" * (4 * 1024 * 1024))
    zipped = gzip.compress(b"z" * 1000)
    routes = {
        "/bomb": Route(body=bomb, headers={"Content-Encoding": "gzip"}),
        "/fits": Route(body=zipped, headers={"Content-Encoding": "gzip"}),
    }
    log = RequestLog()
    with HTTPTestServer(routes) as server:
        target = Target(name="t", base_url=server.url, max_body=1024 * 1024)
        assert len(bomb) < target.max_body
        with make_client(target, log) as client:
            assert client.get("/fits").content == b"z" * 1000
            with pytest.raises(ResponseTooLarge, match="max_body of 1MB"):
                client.get("/bomb")

            async def fetch() -> None:
                async with make_async_client(target, log) as async_client:
                    await async_client.get("/bomb")

            with pytest.raises(ResponseTooLarge, match="max_body of 1MB"):
                asyncio.run(fetch())
    fits, bomb_sync, bomb_async = log.take()
    assert (fits.status, fits.error) == (200, "")
    assert (bomb_sync.status, bomb_sync.error) == (200, "ResponseTooLarge")
    assert (bomb_async.status, bomb_async.error) == (200, "ResponseTooLarge")
    summary = summarize([fits, bomb_sync, bomb_async])
    assert summary is not None and (summary["count"], summary["failures"]) == (3, 2)


def test_a_body_that_cannot_be_decoded_is_recorded_as_a_failure() -> None:
    garbage = Route(body=b"not gzip at all", headers={"Content-Encoding": "gzip"})
    log = RequestLog()
    with HTTPTestServer({"/bad": garbage}) as server:
        target = Target(name="t", base_url=server.url)
        with make_client(target, log) as client, pytest.raises(httpx.DecodingError):
            client.get("/bad")
    (entry,) = log.take()
    assert (entry.status, entry.error) == (200, "DecodingError")
    summary = summarize([entry])
    assert summary is not None and summary["failures"] == 1


def test_an_endless_body_ends_at_max_body_and_memory_stays_bounded() -> None:
    """A resource bound, not a timing: an endless stream read with the default cap (16MB)
    stops there, and the process grows by far less than 200 MB."""
    process = psutil.Process()
    with FaultServer("huge_body") as server:
        target = Target(name="t", base_url=server.url)
        before = process.memory_info().rss
        with make_client(target) as client, pytest.raises(ResponseTooLarge, match="16MB"):
            client.get("/")
        grown = process.memory_info().rss - before
    assert grown < 200 * 1024 * 1024, f"the process grew by {grown / 2**20:.0f} MB"
    assert server.bodies_cut == 1  # the client hung up; the server did not stop by itself


def test_a_declared_length_over_the_cap_fails_before_the_body_is_read() -> None:
    with FaultServer("huge_body", body_size=10 * 1024**3) as server:  # "10 GB"
        target = Target(name="t", base_url=server.url, max_body=1024 * 1024)
        with make_client(target) as client:
            with pytest.raises(ResponseTooLarge, match="declares a body larger"):
                client.get("/")
            with client.stream("GET", "/") as response:  # headers alone are fine
                assert response.status_code == 200


def test_clients_share_one_ssl_context_per_setting_and_keep_their_own_setting() -> None:
    """The CA bundle is loaded once per verify_tls setting (not twice per client: ``ahttp``
    makes one per test), and a client that does not verify never makes one that does stop
    verifying, or the reverse, in any order, sync or async."""
    reason = tls_unavailable()
    if reason:
        pytest.skip(reason)
    assert _shared_ssl_context(True) is _shared_ssl_context(True)
    assert _shared_ssl_context(False) is not _shared_ssl_context(True)

    async def async_get(target: Target) -> int:
        async with make_async_client(target) as client:
            return (await client.get("/")).status_code

    with FaultServer("tls_untrusted") as server:
        for verify in (False, True, False, True):
            target = Target(name="t", base_url=server.url, verify_tls=verify)
            with make_client(target) as client:
                if verify:
                    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                        client.get("/")
                    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                        asyncio.run(async_get(target))
                else:
                    assert client.get("/").status_code == 200
                    assert asyncio.run(async_get(target)) == 200


def test_summary_numbers() -> None:
    """avg, median (odd and even counts) and max of the per-test summary, failures counted."""
    entries = [
        RecordedRequest("GET", "/", status, ms, error)
        for status, ms, error in [
            (200, 4.0, ""),
            (500, 1.0, ""),
            (None, 3.0, "ConnectError"),
            (200, 2.0, "ReadTimeout"),
        ]
    ]
    assert summarize(entries) == {
        "count": 4, "failures": 3, "avg_ms": 2.5, "p50_ms": 2.5, "max_ms": 4.0,
    }  # fmt: skip
    assert summarize(entries[:3]) == {
        "count": 3, "failures": 2, "avg_ms": 2.667, "p50_ms": 3.0, "max_ms": 4.0,
    }  # fmt: skip
