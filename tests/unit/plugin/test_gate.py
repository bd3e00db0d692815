"""``plugin.gate``: ``run_gate`` against a real server on 127.0.0.1 for every branch that puts
no load on the target (refused, critical failure, unreachable, a hook that fails or returns the
wrong thing): none of them starts Locust. The load itself is in tests/e2e/test_gate.py."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from pytest_stagegate import defaults
from pytest_stagegate.config import GateSettings, Target, load_config
from pytest_stagegate.load.plan import LoadPlan
from pytest_stagegate.load.result import ErrorRecord
from pytest_stagegate.plugin.gate import (
    describe_profile,
    load_log_path,
    probe,
    run_gate,
    top_errors,
    warmup_note,
)
from pytest_stagegate.plugin.options import RunOptions
from pytest_stagegate.plugin.state import RunSecrets
from pytest_stagegate.verdict import GateRecord, TestRecord
from tests.conftest import stagegate_yaml
from tests.servers import HTTPTestServer, refused_url


class Hooks:
    """The gate's two hooks, recording their calls; ``plan`` is what load_plan returns."""

    def __init__(self, plan: object = None, fail: str = "") -> None:
        self.plan = plan
        self.fail = fail
        self.calls: list[str] = []
        self.results: list[GateRecord] = []

    def load_plan(self, target: Target, plan: LoadPlan) -> object:
        self.calls.append("load_plan")
        if self.fail == "load_plan":
            raise RuntimeError("plan hook broke")
        return self.plan

    def gate_result(self, target: Target, gate: GateRecord) -> None:
        self.calls.append("gate_result")
        self.results.append(gate)
        if self.fail == "gate_result":
            raise RuntimeError(f"result hook broke with {target.base_url}")


def setup(
    tmp_path: Path, url: str, name: str = "local", **target: Any
) -> tuple[Target, GateSettings]:
    path = tmp_path / defaults.CONFIG_FILE
    path.write_text(stagegate_yaml(url, name=name, target=target))
    config = load_config(path)
    return config.resolve_target(name, {}), config.gate_settings(name)


def options(tmp_path: Path, **changes: Any) -> RunOptions:
    base = RunOptions(
        target="local",
        target_source="the default",
        config_path=tmp_path / defaults.CONFIG_FILE,
        config_source="found",
        rootdir=tmp_path,
        invocation_dir=tmp_path,
        gate=True,
        verdict_path=tmp_path / defaults.VERDICT_FILE,
        verdict_wanted=True,
    )
    return dataclasses.replace(base, **changes)


def gate(
    tmp_path: Path,
    target: Target,
    settings: GateSettings,
    hooks: Hooks,
    tests: list[TestRecord] | None = None,
) -> Any:
    lines: list[str] = []
    outcome = run_gate(
        options(tmp_path),
        target,
        settings,
        tests or [],
        baseline=None,
        hooks=hooks,
        write_line=lines.append,
    )
    assert lines == []  # nothing to say before a load
    return outcome


def test_a_protected_target_is_refused_without_a_request(
    tmp_path: Path, server: HTTPTestServer
) -> None:
    target, settings = setup(tmp_path, server.url, name="production", protected=True)
    hooks = Hooks()
    outcome = gate(tmp_path, target, settings, hooks)
    assert outcome.record.status == "refused"
    assert outcome.record.reason == (
        "target 'production' is protected, so no load was put on it (set "
        "targets.production.allow_load: true in stagegate.yaml to allow it)"
    )
    assert outcome.record.profile["users"] == 2
    assert server.total == 0
    assert hooks.calls == ["gate_result"]  # told, but never asked for a plan
    assert hooks.results == [outcome.record]
    assert (outcome.load_log, outcome.load_errors, outcome.problems) == (None, (), ())


def test_a_protected_target_that_allows_load_is_probed(
    tmp_path: Path, server: HTTPTestServer
) -> None:
    target, settings = setup(
        tmp_path, server.url, name="production", protected=True, allow_load=True
    )
    outcome = gate(tmp_path, target, settings, Hooks(plan=42))
    assert outcome.record.status == "error"  # stopped by the plan hook below, after the probe
    assert server.count("/") == 1


def test_a_failed_critical_test_stops_the_gate(tmp_path: Path, server: HTTPTestServer) -> None:
    target, settings = setup(tmp_path, server.url)
    tests = [
        TestRecord("t.py::test_ok", "passed", critical=True),
        TestRecord("t.py::test_login", "failed", critical=True),
        TestRecord("t.py::test_other", "failed"),
    ]
    hooks = Hooks()
    outcome = gate(tmp_path, target, settings, hooks, tests)
    assert outcome.record.status == "not_run"
    assert outcome.record.reason.startswith("the critical test t.py::test_login failed")
    assert "gate.run_after_critical_failure: true" in outcome.record.reason
    assert server.total == 0
    assert hooks.calls == ["gate_result"]


def test_a_failed_ordinary_test_does_not_stop_the_gate(
    tmp_path: Path, server: HTTPTestServer
) -> None:
    target, settings = setup(tmp_path, server.url)
    tests = [TestRecord("t.py::test_other", "error")]
    outcome = gate(tmp_path, target, settings, Hooks(plan="nope"), tests)
    assert outcome.record.status == "error"
    assert "returned str, not a LoadPlan" in outcome.record.reason


def test_run_after_critical_failure_lets_it_go_on(tmp_path: Path, server: HTTPTestServer) -> None:
    target, settings = setup(tmp_path, server.url)
    settings = dataclasses.replace(settings, run_after_critical_failure=True)
    tests = [TestRecord("t.py::test_login", "failed", critical=True)]
    hooks = Hooks(plan=1.5)
    outcome = gate(tmp_path, target, settings, hooks, tests)
    assert hooks.calls == ["load_plan", "gate_result"]
    assert "returned float" in outcome.record.reason


def test_an_unreachable_target_is_an_error(tmp_path: Path) -> None:
    target, settings = setup(tmp_path, refused_url())
    hooks = Hooks()
    outcome = gate(tmp_path, target, settings, hooks)
    assert outcome.record.status == "error"
    assert outcome.record.reason.startswith(
        f"target 'local' is unreachable over HTTP, so no load was put on it: GET {target.base_url}/"
    )
    assert "ConnectError" in outcome.record.reason
    assert hooks.calls == ["gate_result"]


def test_a_failing_plan_hook_is_an_error_of_the_gate(
    tmp_path: Path, server: HTTPTestServer
) -> None:
    target, settings = setup(tmp_path, server.url)
    outcome = gate(tmp_path, target, settings, Hooks(fail="load_plan"))
    assert outcome.record.status == "error"
    assert outcome.record.reason == (
        "A pytest_stagegate_load_plan hook failed: RuntimeError: plan hook broke"
    )
    assert outcome.problems == ()


def test_a_failing_result_hook_is_a_problem_of_the_run(tmp_path: Path) -> None:
    url = refused_url().replace("http://", "http://ci:hunter2-secret@")
    target, settings = setup(tmp_path, url)
    assert target.secrets  # the password in the URL is a secret
    outcome = gate(tmp_path, target, settings, Hooks(fail="gate_result"))
    assert outcome.record.status == "error"
    ((kind, message),) = outcome.problems
    assert kind == "error"
    assert message.startswith("A pytest_stagegate_gate_result hook failed: RuntimeError: ")
    assert "hunter2-secret" not in message and "***" in message


class PlanHook(Hooks):
    """A load_plan hook that keeps the plan it was given, then fails with ``message``."""

    def __init__(self, message: str) -> None:
        super().__init__()
        self.message = message
        self.given: list[LoadPlan] = []

    def load_plan(self, target: Target, plan: LoadPlan) -> object:
        self.given.append(plan)
        raise RuntimeError(self.message)


def test_the_runs_secrets_reach_the_plan_and_mask_every_message(
    tmp_path: Path, server: HTTPTestServer
) -> None:
    """A configure_target hook replaced the target with one without the configured target's
    token: the plan carries the token for the child to mask (never the signing key, which no
    other process may hold), and a hook's message with the token or the key is masked."""
    target, settings = setup(tmp_path, server.url)
    configured = dataclasses.replace(target, secrets=frozenset({"configured-token-0001"}))
    secrets = RunSecrets.of(target, configured, b"signing-key-never-shown-77")
    hooks = PlanHook("broke with configured-token-0001 and signing-key-never-shown-77")
    outcome = run_gate(
        options(tmp_path),
        target,
        settings,
        [],
        baseline=None,
        hooks=hooks,
        write_line=[].append,
        secrets=secrets,
    )
    ((plan,),) = (hooks.given,)
    assert plan.secrets == ["configured-token-0001"]
    assert outcome.record.status == "error"
    assert outcome.record.reason == (
        "A pytest_stagegate_load_plan hook failed: RuntimeError: broke with *** and ***"
    )


def test_probe(tmp_path: Path, server: HTTPTestServer) -> None:
    target, _ = setup(tmp_path, server.url)
    assert probe(target) is None
    assert server.count("/") == 1
    down, _ = setup(tmp_path, refused_url())
    assert "unreachable" in (probe(down) or "")


def test_describe_profile() -> None:
    plan = LoadPlan(host="http://127.0.0.1:1", users=5, spawn_rate=2.5, duration=30.0)
    profile = describe_profile(plan, workers=2, remote=3)
    assert profile == {
        "users": 5,
        "spawn_rate": 2.5,
        "duration_s": 30.0,
        "warmup_s": plan.warmup,
        "workers": 5,
        "remote_workers": 3,
        "scenario": "requests",
        "user_class": plan.user_class,
    }
    # a scenario with flows says so, and names them
    from pytest_stagegate.load.plan import PlannedFlow, PlannedRequest

    step = PlannedRequest("GET", "/a", "GET /a")
    flows = [PlannedFlow("checkout", 1, [step]), PlannedFlow("browse", 2, [step])]
    flowing = describe_profile(dataclasses.replace(plan, flows=flows), workers=0)
    assert (flowing["scenario"], flowing["flows"]) == ("flows", ["checkout", "browse"])


def test_top_errors_are_ranked_redacted_and_cut() -> None:
    target = Target(name="l", base_url="http://127.0.0.1:1", secrets=frozenset({"tok-secret"}))
    errors = [
        ErrorRecord(method="GET", name="GET /a", error="HTTP 500", occurrences=3),
        ErrorRecord(
            method="GET", name="GET /b", error="HTTP 404\n  with tok-secret", occurrences=2008
        ),
        ErrorRecord(method="GET", name="GET /c", error="x" * 300, occurrences=1),
        ErrorRecord(method="GET", name="GET /d", error="timeout", occurrences=2),
    ]
    assert top_errors(errors, target.redact) == [
        "2,008 x HTTP 404 with *** on GET /b",
        "3 x HTTP 500 on GET /a",
        "2 x timeout on GET /d",
    ]
    assert top_errors(errors[2:3], target.redact) == ["1 x " + "x" * 200 + " on GET /c"]


def test_load_log_path_next_to_the_verdict(tmp_path: Path) -> None:
    resolved = options(tmp_path, verdict_path=tmp_path / "out" / "v.json")
    assert load_log_path(resolved) == tmp_path / "out" / defaults.LOAD_LOG_FILE
    assert (tmp_path / "out").is_dir()  # made, as the verdict writer would
    assert load_log_path(options(tmp_path, verdict_wanted=False)) is None


def test_load_log_path_in_a_place_that_cannot_be_made(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    resolved = options(tmp_path, verdict_path=tmp_path / "file" / "v.json")
    assert load_log_path(resolved) is None


def test_a_load_stopped_in_its_warm_up_says_its_requests_were_all_there() -> None:
    # the trial's run: 193 requests, every one failed, stopped at 2 s of a 2 s warm-up
    note = warmup_note(193, 193, 0, 2.0)
    assert note.startswith("All 193 requests of the load were made in the warm-up")
    assert "193 of them failed" in note and "the tables count none of them" in note
    assert "failed" not in warmup_note(40, 0, 0, 2.0)
    assert warmup_note(193, 193, 12, 2.0) == ""  # some were measured: the table says it
    assert warmup_note(0, 0, 0, 2.0) == ""  # no request at all: nothing to explain
    assert warmup_note(193, 193, 0, 0.0) == ""  # no warm-up
