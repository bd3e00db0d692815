"""``plugin.fixtures``: they read the target and the request log from ``config.stash`` (put
there by the session), in-process."""

from __future__ import annotations

import json
from datetime import datetime, timezone

# httpx imports httpcore lazily, on its first connection: imported here, it is in the
# sys.modules snapshot that pytester restores after an in-process run, so later tests see the
# same httpcore classes httpx mapped its errors from.
import httpcore  # noqa: F401
import pytest

from pytest_stagegate.config import GateSettings, Target
from pytest_stagegate.plugin.fixtures import _state
from pytest_stagegate.plugin.records import TestRecorder
from pytest_stagegate.plugin.state import RUN_STATE, RunState
from pytest_stagegate.target.client import RequestLog
from tests.conftest import write_stagegate
from tests.servers import HTTPTestServer


def test_the_state_comes_from_the_stash(pytester: pytest.Pytester) -> None:
    config = pytester.parseconfig()
    state = RunState(
        target=Target(name="local", base_url="http://127.0.0.1:1"),
        known_targets=("local",),
        gate_settings=GateSettings(),
        request_log=RequestLog(),
        recorder=TestRecorder(),
        started_at=datetime.now(timezone.utc),
    )
    config.stash[RUN_STATE] = state
    assert _state(config) is state


def test_an_inactive_plugin_fails_the_test_that_asks(pytester: pytest.Pytester) -> None:
    config = pytester.parseconfig()
    with pytest.raises(pytest.fail.Exception) as info:
        _state(config)
    assert str(info.value).startswith(
        f"pytest-stagegate is not active: there is no stagegate.yaml in {pytester.path} or any "
        "directory above it up to "
    )
    # --target alone would be a usage error without a file; --stagegate-config works
    assert "--target" not in str(info.value)
    assert str(info.value).endswith("or pass --stagegate-config PATH/TO/stagegate.yaml.")


def test_fixtures_in_a_run(pytester: pytest.Pytester, server: HTTPTestServer) -> None:
    write_stagegate(
        pytester, server.url, target={"headers": {"X-Team": "checkout"}, "vars": {"id": 7}}
    )
    pytester.makepyfile(
        """
        import pytest

        def test_sync(http, target, base_url, target_vars):
            assert base_url == target.base_url == str(http.base_url).rstrip("/")
            assert target_vars == {"id": 7}
            assert http.get("/api/products").json() == [1, 2, 3]
            assert http.get("/boom").status_code == 500

        @pytest.mark.anyio
        async def test_async(ahttp):
            assert (await ahttp.get("/api/products")).status_code == 200
        """
    )
    result = pytester.runpytest_inprocess("--verdict", "v.json", "-p", "no:randomly")
    result.assert_outcomes(passed=2)
    assert server.count("/api/products") == 2
    assert {k.lower(): v for k, v in server.last_headers("/boom").items()}["x-team"] == "checkout"
    records = {
        r["nodeid"].split("::")[-1].split("[")[0]: r
        for r in json.loads((pytester.path / "v.json").read_text())["tests"]["records"]
    }
    # each test's requests go to its own record, through the request log in the stash
    assert records["test_sync"]["requests"]["count"] == 2
    assert records["test_sync"]["requests"]["failures"] == 1
    assert records["test_async"]["requests"]["count"] == 1


def test_an_active_run_binds_its_fixtures_to_its_config(
    pytester: pytest.Pytester, server: HTTPTestServer
) -> None:
    """The fixtures an active run registers take no argument: a test using them resolves no
    pytestconfig/request chain for every test (pytest builds a FixtureDef for ``request`` at
    each lookup); ``base_url`` is still the module's, over the run's ``target``."""
    write_stagegate(pytester, server.url, target={"vars": {"id": 7}})
    pytester.makeconftest(
        """
        def pytest_collection_modifyitems(items):
            for item in items:
                chain = [n for n in ("pytestconfig", "request") if n in item.fixturenames]
                print("CHAIN", item.name, chain)
        """
    )
    pytester.makepyfile(
        """
        def test_http(http):
            assert http.get("/api/products").status_code == 200

        def test_all(http, target, base_url, target_vars, ahttp):
            assert base_url == target.base_url == str(ahttp.base_url).rstrip("/")
            assert target_vars == {"id": 7}
        """
    )
    result = pytester.runpytest_inprocess("-s", "-p", "no:randomly")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["CHAIN test_http []", "CHAIN test_all []"])
