"""The plugin end to end: pytest runs through pytester against real servers on 127.0.0.1."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from tests.conftest import write_stagegate
from tests.servers import HTTPTestServer, Route, refused_url

GOLDEN = Path(__file__).parents[1] / "golden"


@pytest.fixture
def shop(serve: Callable[[Mapping[str, Route]], HTTPTestServer]) -> HTTPTestServer:
    return serve(
        {
            "/healthz": Route(body=b'{"status": "ok"}', content_type="application/json"),
            "/version": Route(
                body=b'{"build": {"sha": "abc123"}}', content_type="application/json"
            ),
            "/api/products": Route(body=b"[1, 2, 3]", content_type="application/json"),
            "/api/cart": Route(status=201),
            "/boom": Route(status=500),
        }
    )


def write_config(pytester: pytest.Pytester, text: str) -> None:
    pytester.makefile(".yaml", stagegate=textwrap.dedent(text))


def test_inert_without_a_config_file(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_one(): pass")
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    result.stdout.no_fnmatch_line("*stagegate:*")


def test_fixtures_point_at_the_target(pytester: pytest.Pytester, shop: HTTPTestServer) -> None:
    write_stagegate(
        pytester, shop.url, target={"headers": {"X-Team": "checkout"}, "vars": {"product_id": 7}}
    )
    pytester.makepyfile(
        """
        import pytest

        def test_sync(http, target, base_url, target_vars):
            assert base_url == target.base_url == str(http.base_url).rstrip("/")
            assert target_vars["product_id"] == 7
            assert http.get("/api/products").json() == [1, 2, 3]

        @pytest.mark.anyio
        async def test_async(ahttp):
            response = await ahttp.get("/api/products")
            assert response.status_code == 200
        """
    )
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        ["stagegate: target 'local' (http://127.0.0.1:*) from the default*"]
    )
    assert shop.count("/api/products") == 2
    headers = {k.lower(): v for k, v in shop.last_headers("/api/products").items()}
    assert headers["x-team"] == "checkout"


def test_target_precedence_option_env_ini(
    pytester: pytest.Pytester, shop: HTTPTestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = ["local", "a", "b", "c"]
    write_config(
        pytester,
        "targets:\n" + "".join(f"  {n}:\n    base_url: {shop.url}\n" for n in names),
    )
    pytester.makeini("[pytest]\nstagegate_target = c\n")
    pytester.makepyfile("def test_name(target): print('NAME', target.name)")
    assert "from ini stagegate_target" in pytester.runpytest("-s").stdout.str()
    monkeypatch.setenv("STAGEGATE_TARGET", "b")
    assert "NAME b" in pytester.runpytest("-s").stdout.str()
    result = pytester.runpytest("-s", "--target", "a")
    result.stdout.fnmatch_lines(["*target 'a'*from --target*", "*NAME a*"])


@pytest.mark.parametrize(
    ("config", "args", "expected"),
    [
        (
            "targets:\n  local:\n    base_url: http://127.0.0.1:1\n",
            ["--target", "stagin"],
            "*'stagin'*local*",
        ),
        ("targets:\n  local:\n    base_url: [oops\n", [], "*stagegate.yaml:*"),
        ("targets:\n  local:\n    base_ulr: http://127.0.0.1:1\n", [], "*base_url*"),
        (
            "targets:\n  local:\n    base_url: http://127.0.0.1:1\n    timeout: fast\n",
            [],
            "*stagegate.yaml:4*timeout*",
        ),
        (
            "targets:\n  local:\n    base_url: http://127.0.0.1:1\n    headers:\n"
            "      Authorization: Bearer ${STAGEGATE_TEST_UNSET_TOKEN}\n",
            [],
            "*STAGEGATE_TEST_UNSET_TOKEN*local*",
        ),
    ],
    ids=["unknown-target", "yaml-syntax", "unknown-key", "bad-duration", "missing-secret"],
)
def test_bad_input_is_a_usage_error(
    pytester: pytest.Pytester, config: str, args: list[str], expected: str
) -> None:
    write_config(pytester, config)
    pytester.makepyfile("def test_one(): pass")
    result = pytester.runpytest_subprocess(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([expected])
    assert "Traceback" not in result.stderr.str() + result.stdout.str()


def test_missing_secret_of_another_target_is_fine(
    pytester: pytest.Pytester, shop: HTTPTestServer
) -> None:
    staging = {
        "base_url": "https://staging.invalid",
        "headers": {"Authorization": "Bearer ${STAGEGATE_TEST_UNSET_TOKEN}"},
    }
    write_stagegate(pytester, shop.url, targets={"staging": staging})
    pytester.makepyfile("def test_one(http): assert http.get('/healthz').status_code == 200")
    pytester.runpytest().assert_outcomes(passed=1)


def test_waits_for_a_target_that_becomes_ready(
    pytester: pytest.Pytester, serve: Callable[[Mapping[str, Route]], HTTPTestServer]
) -> None:
    unready = 3  # /healthz answers 503 to the first polls, 200 after them
    events: list[str] = []  # what the server answered, in arrival order

    healthz = Route(status=503)

    def poll(index: int, elapsed: float) -> float:
        # A latency callable runs before the status is sent: it decides the answer.
        healthz.status = 503 if index < unready else 200
        events.append(f"healthz {healthz.status}")
        return 0.0

    def product(index: int, elapsed: float) -> float:
        events.append("products")
        return 0.0

    healthz.latency = poll
    server = serve({"/healthz": healthz, "/api/products": Route(latency=product)})
    write_stagegate(pytester, server.url, target={"ready": {"path": "/healthz", "timeout": "60s"}})
    pytester.makepyfile("def test_one(http): assert http.get('/api/products').status_code == 200")
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["stagegate: target 'local' ready after *"])
    # The run polled until the target was ready, and the test ran only after that.
    assert events == [*["healthz 503"] * unready, "healthz 200", "products"]


def test_a_target_that_never_gets_ready_stops_the_run(pytester: pytest.Pytester) -> None:
    write_stagegate(
        pytester, refused_url(), target={"ready": {"path": "/healthz", "timeout": "1s"}}
    )
    pytester.makepyfile("def test_one(): raise AssertionError('must not run')")
    result = pytester.runpytest("--verdict", "verdict.json")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*did not become ready*GET http://127.0.0.1:*/healthz*1s*"])
    # pytest's last word on the stop names no exception class (was "! _pytest.outcomes.Exit: ")
    result.stdout.fnmatch_lines(["! pytest-stagegate stopped the run: Target 'local' did not *"])
    assert "_pytest" not in result.stdout.str() and "Exit:" not in result.stdout.str()
    verdict = json.loads((pytester.path / "verdict.json").read_text())
    assert verdict["verdict"] == "error"
    assert any("did not become ready" in reason for reason in verdict["reasons"])
    assert verdict["tests"]["total"] == 0


def test_wrong_build_stops_the_run(pytester: pytest.Pytester, shop: HTTPTestServer) -> None:
    version = {"path": "/version", "field": "build.sha", "expect": "def456"}
    write_stagegate(pytester, shop.url, target={"version": version})
    pytester.makepyfile("def test_one(): pass")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*wrong build*'abc123'*'def456' was expected*"])
    result.stdout.fnmatch_lines(["! pytest-stagegate stopped the run: Target 'local' runs the *"])
    assert "_pytest" not in result.stdout.str() and "Exit:" not in result.stdout.str()


@pytest.mark.parametrize("extra", [[], ["-p", "no:skipping"]], ids=["default", "no-skipping"])
def test_protected_target_never_receives_destructive_requests(
    pytester: pytest.Pytester, shop: HTTPTestServer, extra: list[str]
) -> None:
    # With pytest's skipping plugin disabled the skip marks mean nothing: the plugin's own
    # setup hook must still keep the tests, and their fixtures, away from the target.
    production = {"base_url": shop.url, "protected": True}
    write_stagegate(pytester, shop.url, targets={"production": production})
    # a conftest may mark tests itself, in a collection hook that runs after the plugin's own
    pytester.makeconftest(
        """
        import pytest

        def pytest_collection_modifyitems(items):
            for item in items:
                if item.name == "test_marked_late":
                    item.add_marker(pytest.mark.destructive)
        """
    )
    pytester.makepyfile(
        """
        import pytest

        def test_marked_late(http):
            http.post("/api/cart", json={})

        @pytest.fixture
        def seeded_cart(http):
            http.post("/api/cart", json={})

        @pytest.mark.destructive
        def test_write(http):
            http.post("/api/cart", json={})

        @pytest.mark.destructive
        def test_write_again(seeded_cart):
            pass

        def test_read(http):
            assert http.get("/api/products").status_code == 200
        """
    )
    result = pytester.runpytest("--target", "production", "-rs", "-W", "error", *extra)
    result.assert_outcomes(passed=1, skipped=3)
    result.stdout.fnmatch_lines(["*destructive test not run: target 'production' is protected*"])
    result.stdout.fnmatch_lines(
        ["*3 destructive test(s) skipped for safety: target 'production' is protected*"]
    )
    assert shop.count("/api/cart") == 0
    assert shop.count("/api/products") == 1


def test_targets_marker(pytester: pytest.Pytester, shop: HTTPTestServer) -> None:
    write_stagegate(pytester, shop.url, targets={"staging": {"base_url": shop.url}})
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.targets("staging")
        def test_staging_only(): pass

        @pytest.mark.targets("local", "staging")
        def test_both(): pass
        """
    )
    result = pytester.runpytest("-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*runs only on staging; target is 'local'*"])


def test_targets_marker_with_an_unknown_name_is_an_error(
    pytester: pytest.Pytester, shop: HTTPTestServer
) -> None:
    write_stagegate(pytester, shop.url)
    pytester.makepyfile("import pytest\n@pytest.mark.targets('stagign')\ndef test_x(): pass\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*'stagign'*known: local*"])


def test_markers_are_registered(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(
        [
            "@pytest.mark.smoke:*",
            "@pytest.mark.critical:*",
            "@pytest.mark.destructive:*",
            "@pytest.mark.targets(*names):*",
        ]
    )


def test_hooks_configure_target_and_prepare_once_under_xdist(
    pytester: pytest.Pytester, shop: HTTPTestServer
) -> None:
    write_config(pytester, "targets:\n  local:\n    base_url: http://127.0.0.1:1\n")
    pytester.makeconftest(
        f"""
        import dataclasses

        def pytest_stagegate_configure_target(config, target):
            return dataclasses.replace(target, base_url={shop.url!r})

        def pytest_stagegate_prepare(config, target, client):
            client.post("/api/cart")
        """
    )
    pytester.makepyfile(
        "\n".join(
            f"def test_{i}(http): assert http.get('/api/products').status_code == 200"
            for i in range(6)
        )
    )
    result = pytester.runpytest_subprocess("-n", "2")
    result.assert_outcomes(passed=6)
    assert shop.count("/api/cart") == 1
    assert shop.count("/api/products") == 6


def test_importing_the_plugin_is_light() -> None:
    """Every pytest run in the environment imports the plugin; most never use it."""
    code = "\n".join(
        [
            "import sys",
            "import pytest_stagegate.plugin as plugin",
            "heavy = {'httpx', 'yaml', 'locust', 'gevent', 'jsonschema'} & set(sys.modules)",
            "import pytest_stagegate.config as config",
            "import pytest_stagegate.defaults as defaults",
            "print(sorted(heavy), defaults.CONFIG_FILE == config.CONFIG_FILENAME, plugin.__name__)",
        ]
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[] True pytest_stagegate.plugin"


def test_a_run_stopped_by_a_usage_error_leaves_no_old_verdict(pytester: pytest.Pytester) -> None:
    golden = GOLDEN / "verdict-pass.json"
    (pytester.path / "stagegate-verdict.json").write_text(golden.read_text())
    (pytester.path / "stagegate-junit.xml").write_text("<testsuites/>")
    write_config(pytester, "targets:\n  local:\n    base_ulr: http://127.0.0.1:1\n")
    pytester.makepyfile("def test_one(): pass")
    result = pytester.runpytest("--gate")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert not (pytester.path / "stagegate-verdict.json").exists()
    assert not (pytester.path / "stagegate-junit.xml").exists()
    verify = subprocess.run(
        [sys.executable, "-m", "pytest_stagegate.cli", "verify", "stagegate-verdict.json",
         "--target", "staging"],
        cwd=pytester.path,
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert verify.returncode == 1 and "no such file" in verify.stdout


def test_help_and_markers_work_without_the_targets_secrets(pytester: pytest.Pytester) -> None:
    write_config(
        pytester,
        "targets:\n  local:\n    base_url: http://127.0.0.1:1\n"
        "    headers: {Authorization: 'Bearer ${STAGEGATE_TEST_UNSET_TOKEN}'}\n",
    )
    assert pytester.runpytest("--help").ret == 0
    assert pytester.runpytest("--markers").ret == 0
