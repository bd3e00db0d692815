"""``plugin.session``: ``StagegateRun.start`` on a real config (``pytester.parseconfig``), its
usage errors, the files it forgets, and in-process runs (``pytester.inline_run``) that read the
``RunState`` it leaves in ``config.stash``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# httpx imports httpcore lazily, on its first connection: imported here, it is in the
# sys.modules snapshot that pytester restores after an in-process run, so later tests see the
# same httpcore classes httpx mapped its errors from.
import httpcore  # noqa: F401
import pytest

from pytest_stagegate import defaults
from pytest_stagegate.config import ReadyCheck, Target, VersionCheck
from pytest_stagegate.plugin.options import RunOptions
from pytest_stagegate.plugin.session import (
    StagegateRun,
    _target_from_dict,
    _target_to_dict,
    forget_previous_verdict,
)
from pytest_stagegate.plugin.state import RUN_STATE, RunState
from tests.conftest import write_stagegate
from tests.servers import HTTPTestServer, refused_url

GOLDEN = Path(__file__).parents[2] / "golden"


@pytest.fixture(autouse=True)
def no_target_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STAGEGATE_TARGET", raising=False)


def start(pytester: pytest.Pytester, *args: str) -> tuple[StagegateRun, pytest.Config]:
    config = pytester.parseconfig(*args)
    return StagegateRun.start(config, RunOptions.from_config(config)), config


def usage_error(pytester: pytest.Pytester, *args: str) -> str:
    with pytest.raises(pytest.UsageError) as info:
        start(pytester, *args)
    return str(info.value)


# -- start: the state, in the stash -------------------------------------------------------------


def test_start_puts_the_state_in_the_stash(pytester: pytest.Pytester) -> None:
    write_stagegate(
        pytester,
        "http://127.0.0.1:1",
        targets={
            "staging": {"base_url": "http://127.0.0.1:2", "protected": True, "allow_load": True}
        },
    )
    run, config = start(pytester, "--target", "staging", "--gate")
    state = config.stash[RUN_STATE]
    assert state is run.state
    assert state.target.name == "staging" and state.target.protected
    assert state.known_targets == ("local", "staging")
    assert state.gate_settings.load.users == 2
    assert (state.problems, state.gate, state.verdict, state.baseline) == ([], None, None, None)
    assert run.config_path == pytester.path / defaults.CONFIG_FILE


def test_gate_on_a_protected_target_without_load_is_a_usage_error(
    pytester: pytest.Pytester,
) -> None:
    write_stagegate(
        pytester,
        "http://127.0.0.1:1",
        targets={"production": {"base_url": "http://127.0.0.1:2", "protected": True}},
    )
    with pytest.raises(pytest.UsageError, match="'production' is protected and takes no load"):
        start(pytester, "--target", "production", "--gate")
    start(pytester, "--target", "production")  # the smoke tests alone are fine


def test_the_configure_target_hook_replaces_the_target(pytester: pytest.Pytester) -> None:
    write_stagegate(pytester, "http://127.0.0.1:1")
    pytester.makeconftest(
        """
        import dataclasses

        def pytest_stagegate_configure_target(config, target):
            return dataclasses.replace(target, base_url="http://127.0.0.1:9")
        """
    )
    _, config = start(pytester)
    assert config.stash[RUN_STATE].target.base_url == "http://127.0.0.1:9"


def test_a_baseline_is_read_at_the_start(pytester: pytest.Pytester) -> None:
    write_stagegate(pytester, "http://127.0.0.1:1")
    (pytester.path / "prod.json").write_text((GOLDEN / "verdict-pass.json").read_text())
    _, config = start(pytester, "--gate", "--gate-baseline", "prod.json")
    baseline = config.stash[RUN_STATE].baseline
    assert baseline is not None and "total" in baseline


# -- start: usage errors, before anything runs --------------------------------------------------


def test_a_broken_config_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", stagegate="targets:\n  local:\n    base_ulr: http://x\n")
    message = usage_error(pytester)
    assert message.startswith("pytest-stagegate: ") and "base_url" in message


def test_an_unknown_target_from_the_environment_says_so(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_stagegate(pytester, "http://127.0.0.1:1")
    monkeypatch.setenv("STAGEGATE_TARGET", "stagin")
    assert usage_error(pytester).endswith("(target 'stagin' was chosen by env STAGEGATE_TARGET)")
    assert "was chosen by" not in usage_error(pytester, "--target", "stagin")


def test_baseline_and_report_need_the_gate(pytester: pytest.Pytester) -> None:
    write_stagegate(pytester, "http://127.0.0.1:1")
    expected = (
        "pytest-stagegate: --gate-baseline and --gate-report only apply to a gated run: add --gate."
    )
    assert usage_error(pytester, "--gate-baseline", "prod.json") == expected
    assert usage_error(pytester, "--gate-report", "r.html") == expected


def test_the_gate_needs_a_scenario(pytester: pytest.Pytester) -> None:
    write_stagegate(pytester, "http://127.0.0.1:1", gate={"load": {"requests": None}})
    assert "--gate needs a scenario" in usage_error(pytester, "--gate")
    start(pytester)  # without --gate, no scenario is needed


def test_remote_workers_need_a_bind_address(pytester: pytest.Pytester) -> None:
    write_stagegate(pytester, "http://127.0.0.1:1")
    assert usage_error(pytester, "--gate", "--gate-remote-workers", "2") == (
        "pytest-stagegate: --gate-remote-workers needs --gate-master-bind HOST:PORT, the "
        f"address the remote workers connect to (e.g. 0.0.0.0:{defaults.MASTER_PORT})."
    )


def test_an_unknown_load_path_is_a_usage_error(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_stagegate(pytester, "http://127.0.0.1:1")
    monkeypatch.setenv("STAGEGATE_LOAD_PATH", "bogus")
    assert usage_error(pytester, "--gate").startswith(
        "pytest-stagegate: $STAGEGATE_LOAD_PATH is 'bogus', which names no request path"
    )
    start(pytester)  # without --gate nothing is loaded: no reason to refuse
    monkeypatch.setenv("STAGEGATE_LOAD_PATH", "locust")
    start(pytester, "--gate")


def test_a_missing_baseline_is_a_usage_error(pytester: pytest.Pytester) -> None:
    write_stagegate(pytester, "http://127.0.0.1:1")
    message = usage_error(pytester, "--gate", "--gate-baseline", "missing.json")
    assert message.startswith("pytest-stagegate: --gate-baseline: ")


def test_an_unwritable_verdict_is_a_usage_error(pytester: pytest.Pytester) -> None:
    write_stagegate(pytester, "http://127.0.0.1:1")
    (pytester.path / "out").mkdir()
    assert usage_error(pytester, "--verdict", "out") == (
        "pytest-stagegate: --verdict out: is a directory; give a file name"
    )
    assert usage_error(pytester, "--verdict-junit", "out").startswith(
        "pytest-stagegate: --verdict-junit out: "
    )


def test_gate_history_on_the_command_line_needs_the_gate(pytester: pytest.Pytester) -> None:
    """Like --gate-metrics: the option asks for something an ungated run never does; the ini
    key is a project setting, quiet when the run is not gated."""
    write_stagegate(pytester, "http://127.0.0.1:1")
    assert usage_error(pytester, "--gate-history", "hist") == (
        "pytest-stagegate: --gate-history only applies to a gated run: add --gate."
    )
    start(pytester, "-o", "stagegate_history=hist")  # no error
    start(pytester, "--gate", "--gate-history", "hist")
    assert not (pytester.path / "hist" / "probe").exists()


def test_a_history_that_is_a_file_names_the_setting_used(pytester: pytest.Pytester) -> None:
    write_stagegate(pytester, "http://127.0.0.1:1")
    (pytester.path / "afile").write_text("x")
    from_ini = usage_error(pytester, "--gate", "-o", "stagegate_history=afile")
    assert from_ini.startswith(
        f"pytest-stagegate: ini stagegate_history {pytester.path / 'afile'}: is not a directory"
    )
    from_option = usage_error(pytester, "--gate", "--gate-history", "afile")
    assert from_option.startswith("pytest-stagegate: --gate-history afile: is not a directory")
    (pytester.path / "afile").unlink()
    (pytester.path / "afile").mkdir()
    (pytester.path / "afile" / "probe").mkdir()  # the probe file cannot be written
    assert usage_error(pytester, "--gate", "-o", "stagegate_history=afile").startswith(
        f"pytest-stagegate: ini stagegate_history {pytester.path / 'afile'}: "
    )


def test_no_config_file_is_a_usage_error(pytester: pytest.Pytester) -> None:
    assert usage_error(pytester, "--target", "local").startswith(
        f"pytest-stagegate: no {defaults.CONFIG_FILE} in {pytester.path} or any directory above"
    )


# -- forgetting the previous verdict ------------------------------------------------------------


def leftovers(folder: Path) -> list[Path]:
    paths = [folder / name for name in (defaults.VERDICT_FILE, defaults.JUNIT_FILE)]
    paths.append(folder / defaults.LOAD_LOG_FILE)
    for path in paths:
        path.write_text("from an earlier run")
    return paths


def test_forget_previous_verdict(pytester: pytest.Pytester) -> None:
    paths = leftovers(pytester.path)
    forget_previous_verdict(RunOptions.from_config(pytester.parseconfig("--target", "x")))
    assert all(p.exists() for p in paths)  # no verdict asked for: nothing to forget
    forget_previous_verdict(
        RunOptions.from_config(pytester.parseconfig("--gate", "--collect-only"))
    )
    assert all(p.exists() for p in paths)  # a listing writes no verdict
    forget_previous_verdict(RunOptions.from_config(pytester.parseconfig("--gate")))
    assert not any(p.exists() for p in paths)


# -- the target for xdist workers -------------------------------------------------------------


def test_the_target_travels_to_xdist_workers_whole() -> None:
    target = Target(
        name="staging",
        base_url="https://staging.invalid",
        headers={"Authorization": "Bearer t"},
        ready=ReadyCheck(path="/healthz"),
        version=VersionCheck(path="/version", field="sha", expect="abc"),
        vars={"id": 7},
        protected=True,
        secrets=frozenset({"t"}),
    )
    data = _target_to_dict(target)
    assert json.loads(json.dumps(data)) == data  # execnet sends plain data
    assert _target_from_dict(data) == target


# -- in-process runs --------------------------------------------------------------------------


class Probe:
    """Keeps the run's state when pytest unconfigures, for the test to read."""

    state: RunState | None = None

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self.state = config.stash.get(RUN_STATE, None)


def run(pytester: pytest.Pytester, *args: str) -> tuple[Any, RunState]:
    probe = Probe()
    recorder = pytester.inline_run("-p", "no:randomly", *args, plugins=[probe])
    assert probe.state is not None
    return recorder, probe.state


def test_markers_skip_and_the_state_counts_them(
    pytester: pytest.Pytester, server: HTTPTestServer
) -> None:
    write_stagegate(
        pytester,
        server.url,
        targets={"production": {"base_url": server.url, "protected": True}},
    )
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.destructive
        def test_write(): pass

        @pytest.mark.targets("local")
        def test_local_only(): pass

        @pytest.mark.targets(["production", "local"])
        @pytest.mark.critical
        def test_read(): pass
        """
    )
    recorder, state = run(pytester, "--target", "production", "--verdict", "v.json")
    recorder.assertoutcome(passed=1, skipped=2)
    records = {r.nodeid.split("::")[1]: r for r in state.recorder.records()}
    assert records["test_write"].safety_skip is True
    assert records["test_local_only"].safety_skip is False
    assert records["test_read"].critical is True
    assert state.recorder.flagged("elsewhere_skip") == [records["test_local_only"].nodeid]
    assert state.verdict is not None and state.verdict_data is not None
    assert state.verdict_data == json.loads((pytester.path / "v.json").read_text())
    assert state.verdict_data["tests"]["safety_skipped"] == 1


def test_an_unknown_marker_target_is_a_problem_and_a_usage_error(
    pytester: pytest.Pytester, server: HTTPTestServer
) -> None:
    write_stagegate(pytester, server.url)
    pytester.makepyfile("import pytest\n@pytest.mark.targets('stagign')\ndef test_x(): pass\n")
    recorder, state = run(pytester, "--verdict", "v.json")
    assert recorder.ret == pytest.ExitCode.USAGE_ERROR
    ((kind, problem),) = state.problems
    assert kind == "error" and "'stagign'" in problem and "known: local" in problem


def test_a_collection_error_is_a_problem(pytester: pytest.Pytester, server: HTTPTestServer) -> None:
    write_stagegate(pytester, server.url)
    pytester.makepyfile(test_broken="raise ImportError('no such module')")
    pytester.makepyfile(test_fine="def test_ok(): pass")
    _, state = run(pytester, "--verdict", "v.json")
    assert ("error", "Collecting test_broken.py failed.") in state.problems
    assert state.verdict is not None and state.verdict.state == "error"


def test_a_failing_verdict_sets_the_exit_status(
    pytester: pytest.Pytester, server: HTTPTestServer
) -> None:
    write_stagegate(pytester, server.url)
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.critical
        @pytest.mark.flaky(reruns=1)
        def test_login(request):
            if request.node.execution_count == 1:
                raise AssertionError("first attempt")
        """
    )
    recorder, state = run(pytester, "--verdict", "v.json")
    assert state.verdict is not None and state.verdict.state == "fail"  # a flaky critical test
    assert recorder.ret == pytest.ExitCode.TESTS_FAILED  # though pytest itself passed


def test_a_target_that_never_gets_ready_stops_the_run(pytester: pytest.Pytester) -> None:
    write_stagegate(
        pytester, refused_url(), target={"ready": {"path": "/healthz", "timeout": "0.5s"}}
    )
    pytester.makepyfile("def test_one(): raise AssertionError('must not run')")
    recorder, state = run(pytester, "--verdict", "v.json")
    assert recorder.ret == pytest.ExitCode.TESTS_FAILED
    ((kind, problem),) = state.problems
    assert kind == "error" and "did not become ready" in problem
    assert state.recorder.records() == []


def test_a_failing_prepare_hook_stops_the_run(
    pytester: pytest.Pytester, server: HTTPTestServer
) -> None:
    write_stagegate(pytester, server.url)
    pytester.makeconftest(
        """
        def pytest_stagegate_prepare(config, target, client):
            client.post("/api/products")
            raise RuntimeError("seed failed")
        """
    )
    pytester.makepyfile("def test_one(): raise AssertionError('must not run')")
    recorder, state = run(pytester, "--verdict", "v.json")
    assert recorder.ret == pytest.ExitCode.TESTS_FAILED
    assert state.problems == [
        ("error", "pytest_stagegate_prepare failed: RuntimeError: seed failed")
    ]
    assert server.count("/api/products") == 1


def test_collect_only_neither_prepares_nor_writes(
    pytester: pytest.Pytester, server: HTTPTestServer
) -> None:
    write_stagegate(pytester, server.url, target={"ready": {"path": "/healthz"}})
    pytester.makepyfile("def test_one(): pass")
    _, state = run(pytester, "--collect-only", "--gate")
    assert server.total == 0
    assert state.verdict is None and state.gate is None
    assert not (pytester.path / defaults.VERDICT_FILE).exists()
