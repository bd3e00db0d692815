"""target/readiness.py: the readiness wait on a fake clock (no real waiting) against a real
server on 127.0.0.1, and the version check's messages."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pytest

from pytest_stagegate import defaults
from pytest_stagegate.config import ReadyCheck, Target, VersionCheck
from pytest_stagegate.errors import TargetNotReady
from pytest_stagegate.target.readiness import MAX_INTERVAL, check_version, wait_ready
from tests.faults import FaultServer
from tests.servers import HTTPTestServer, Route, refused_url

Serve = Callable[[Mapping[str, Route]], HTTPTestServer]


class FakeClock:
    """A monotonic clock that moves only when the wait sleeps; ``on_sleep`` runs after each
    sleep with the number of sleeps so far, so a test can change the server mid-wait."""

    def __init__(self, on_sleep: Callable[[int], None] | None = None) -> None:
        self.now = 1000.0  # not 0: the wait must measure from its own start
        self.sleeps: list[float] = []
        self._on_sleep = on_sleep

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.sleeps.append(seconds)
        self.now += seconds
        if self._on_sleep is not None:
            self._on_sleep(len(self.sleeps))


def target(url: str, **kwargs: object) -> Target:
    return Target(name="staging", base_url=url, **kwargs)  # type: ignore[arg-type]


def wait(url: str, check: ReadyCheck, clock: FakeClock, **kwargs: object) -> float:
    return wait_ready(target(url, **kwargs), check, clock=clock.monotonic, sleep=clock.sleep)


def test_ready_at_once_waits_nothing(serve: Serve) -> None:
    server = serve({"/healthz": Route()})
    clock = FakeClock()
    assert wait(server.url, ReadyCheck("/healthz"), clock) == 0.0
    assert clock.sleeps == []
    assert server.count("/healthz") == 1


def test_polls_with_a_doubling_interval_until_2xx(serve: Serve) -> None:
    route = Route(status=503)
    server = serve({"/healthz": route})

    def deploy_finishes(sleeps: int) -> None:
        if sleeps == 3:
            route.status = 200

    clock = FakeClock(deploy_finishes)
    waited = wait(server.url, ReadyCheck("/healthz", timeout=60, interval=0.25), clock)
    assert clock.sleeps == [0.25, 0.5, 1.0]
    assert waited == pytest.approx(1.75)
    assert server.count("/healthz") == 4


def test_the_interval_doubles_up_to_5_s_and_the_last_sleep_ends_at_the_deadline(
    serve: Serve,
) -> None:
    server = serve({"/healthz": Route(status=503)})
    clock = FakeClock()
    with pytest.raises(TargetNotReady) as excinfo:
        wait(server.url, ReadyCheck("/healthz", timeout=30, interval=1), clock)
    assert MAX_INTERVAL == defaults.READY_MAX_INTERVAL == 5.0
    assert clock.sleeps == [1, 2, 4, 5, 5, 5, 5, 3]
    assert sum(clock.sleeps) == 30
    # one attempt before every sleep; none after the deadline
    assert server.count("/healthz") == 8
    message = str(excinfo.value)
    assert message == (
        f"Target 'staging' did not become ready: GET {server.url}/healthz did not answer 2xx "
        "within 30s (8 attempts over 30.0 s; last: HTTP 503 Service Unavailable). Check that "
        "the deployment finished, or raise targets.staging.ready.timeout."
    )


def test_an_unreachable_target_times_out_naming_the_connection_error() -> None:
    url = refused_url()
    clock = FakeClock()
    with pytest.raises(TargetNotReady) as excinfo:
        wait(url, ReadyCheck("/healthz", timeout=2, interval=0.5), clock)
    assert clock.sleeps == [0.5, 1.0, 0.5]
    message = str(excinfo.value)
    assert f"GET {url}/healthz did not answer 2xx within 2s" in message
    assert "(3 attempts over 2.0 s; last: ConnectError" in message


def test_the_timeout_message_hides_secrets(serve: Serve) -> None:
    server = serve({"/healthz": Route(status=500)})
    clock = FakeClock()
    check = ReadyCheck("/healthz?token=s3cr3t-value", timeout=1, interval=1)
    with pytest.raises(TargetNotReady) as excinfo:
        wait(server.url, check, clock, secrets=frozenset({"s3cr3t-value"}))
    assert "s3cr3t-value" not in str(excinfo.value)
    assert "token=***" in str(excinfo.value)
    assert "last: HTTP 500 Internal Server Error" in str(excinfo.value)


def test_defaults_come_from_defaults_py() -> None:
    check = ReadyCheck("/healthz")
    assert (check.timeout, check.interval) == (defaults.READY_TIMEOUT, defaults.READY_INTERVAL)


# -- the version check -------------------------------------------------------------------------


def test_version_as_plain_text(serve: Serve) -> None:
    server = serve({"/version": Route(body=b"  1.4.2\n")})
    assert check_version(target(server.url), VersionCheck("/version", expect="1.4.2")) == "1.4.2"


def test_version_from_a_dotted_json_field(serve: Serve) -> None:
    body = b'{"build": {"tags": ["x", "abc123"]}}'
    server = serve({"/version": Route(body=body, content_type="application/json")})
    check = VersionCheck("/version", expect="abc123", field="build.tags.1")
    assert check_version(target(server.url), check) == "abc123"


def test_wrong_build_names_the_field_both_versions_and_the_setting(serve: Serve) -> None:
    server = serve({"/version": Route(body=b'{"sha": "old"}', content_type="application/json")})
    with pytest.raises(TargetNotReady) as excinfo:
        check_version(target(server.url), VersionCheck("/version", expect="new", field="sha"))
    assert str(excinfo.value) == (
        f"Target 'staging' runs the wrong build: field 'sha' of GET {server.url}/version says "
        "'old', but 'new' was expected. Wait for the deployment to finish, or check "
        "targets.staging.version.expect."
    )


def test_missing_json_field(serve: Serve) -> None:
    server = serve({"/version": Route(body=b"not json")})
    with pytest.raises(TargetNotReady, match=r"has no JSON field 'sha'\.$"):
        check_version(target(server.url), VersionCheck("/version", expect="x", field="sha"))


def test_version_endpoint_answering_an_error(serve: Serve) -> None:
    server = serve({"/version": Route(status=404)})
    with pytest.raises(TargetNotReady, match=r"/version answered HTTP 404 Not Found\.$"):
        check_version(target(server.url), VersionCheck("/version", expect="x"))


def test_version_of_an_unreachable_target() -> None:
    url = refused_url()
    with pytest.raises(TargetNotReady) as excinfo:
        check_version(target(url), VersionCheck("/version", expect="x"))
    assert str(excinfo.value).startswith(
        f"Could not read the version of target 'staging': GET {url}/version: ConnectError"
    )


# --- bounded by the clock, not by bytes (issue 10) -------------------------------------------
def test_polls_whose_headers_drip_end_the_wait_not_ready() -> None:
    """Each poll drips its headers a byte every 0.2 s (never a read timeout): each one ends at
    the target's timeout, and the wait ends not ready (real clock: the requests are real)."""
    with FaultServer("slow_headers", drip_interval=0.2, drip_limit=20.0) as server:
        check = ReadyCheck("/healthz", timeout=1.5, interval=0.1)
        with pytest.raises(TargetNotReady, match="did not become ready") as info:
            wait_ready(target(server.url, timeout=0.6), check)
        assert server.drips_cut == 0  # the client gave up, not the server
    assert "ReadTimeout" in str(info.value) and "within 1.5s" in str(info.value)


def test_the_ready_timeout_bounds_a_dripping_poll_longer_than_what_is_left() -> None:
    """A target timeout (30 s) far longer than the wait (1 s): the one poll is cut at the end
    of the wait, so the wait as a whole stays within ``ready.timeout``."""
    with FaultServer("slow_headers", drip_interval=0.2, drip_limit=20.0) as server:
        check = ReadyCheck("/healthz", timeout=1.0, interval=0.1)
        with pytest.raises(TargetNotReady, match="ReadTimeout") as info:
            wait_ready(target(server.url, timeout=30.0), check)
        assert server.drips_cut == 0
        assert server.count("/healthz") == 1
    assert "(1 attempts" in str(info.value)


def test_a_version_whose_headers_drip_is_a_timeout() -> None:
    with FaultServer("slow_headers", drip_interval=0.2, drip_limit=20.0) as server:
        with pytest.raises(TargetNotReady, match=r"Could not read the version.*ReadTimeout"):
            check_version(target(server.url, timeout=0.5), VersionCheck("/version", "1.2.3"))
        assert server.drips_cut == 0


def test_a_ready_answer_larger_than_max_body_is_not_ready(serve: Serve) -> None:
    server = serve({"/healthz": Route(body=b"x" * 5000)})
    clock = FakeClock()
    check = ReadyCheck("/healthz", timeout=1.0, interval=0.5)
    with pytest.raises(TargetNotReady, match="ResponseTooLarge: the response declares a body"):
        wait(server.url, check, clock, max_body=1000)


def test_a_version_larger_than_max_body_is_an_error() -> None:
    with (
        FaultServer("huge_body") as server,  # endless, chunked: no declared length
        pytest.raises(TargetNotReady, match="larger than the target's max_body of 1KB"),
    ):
        check_version(target(server.url, max_body=1024), VersionCheck("/version", "1"))
