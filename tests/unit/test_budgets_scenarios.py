"""Budgets on scenarios: status classes (``status_Nxx``), groups (a glob over request names),
flows (a journey's iterations), judged on hand-made ``LoadResult``s. Pure, no load."""

from __future__ import annotations

import dataclasses
import json
import xml.etree.ElementTree as ET

import pytest

from pytest_stagegate.budgets import (
    TOTAL,
    Budget,
    Check,
    Waiver,
    covered_names,
    evaluate,
    is_glob,
    parse_budget,
)
from pytest_stagegate.config.model import StageSpec
from pytest_stagegate.histogram import LogHistogram
from pytest_stagegate.load.result import (
    EndpointResult,
    GeneratorHealth,
    LoadResult,
    StageResult,
    merge_endpoints,
)
from pytest_stagegate.plugin.gate import judge_stages
from pytest_stagegate.verdict import GateRecord, baseline_stats, validate_verdict
from pytest_stagegate.verdict.junit import to_xml
from pytest_stagegate.verdict.report import covers_text, render
from tests.verdict_samples import verdict


def hist(*values: float) -> LogHistogram:
    h = LogHistogram()
    for v in values:
        h.record(v)
    return h


def ep(
    name: str,
    samples: list[float],
    *,
    failures: int = 0,
    classes: dict[str, int] | None = None,
    method: str = "GET",
) -> EndpointResult:
    """``samples`` are the successes; ``failures`` more requests failed at 1 ms, apart."""
    return EndpointResult(
        name=name,
        method=method,
        requests=len(samples) + failures,
        failures=failures,
        histogram=hist(*samples),
        failed_histogram=hist(*[1.0] * failures),
        status_classes=dict(classes or {}),
    )


A = [float(10 + i % 50) for i in range(200)]  # 10..59 ms
B = [100.0 + i for i in range(100)]  # 100..199 ms
C = [500.0] * 100


def shop(
    *,
    flows: tuple[EndpointResult, ...] = (),
    stages: tuple[StageResult, ...] = (),
) -> LoadResult:
    endpoints = (
        ep("GET /api/a", A, classes={"2xx": 200}),
        ep("GET /api/b", B, failures=12, classes={"2xx": 100, "5xx": 12}),
        ep("POST /cart", C, classes={"2xx": 100}),
    )
    return LoadResult(
        status="completed",
        reason="",
        started_at="2025-01-15T10:00:00Z",
        finished_at="2025-01-15T10:00:10Z",
        load_seconds=10.0,
        measured_seconds=10.0,
        users=10,
        workers=0,
        endpoints=endpoints,
        total=merge_endpoints(TOTAL, endpoints),
        errors=(),
        generator=GeneratorHealth.unknown(),
        flows=flows,
        stages=stages,
    )


def judge(
    result: LoadResult, *budgets: Budget, min_samples: int = 100, **kw: object
) -> list[Check]:
    keys = [b.endpoint for b in budgets]
    return evaluate(
        budgets,
        result.endpoint_stats(["p99"]),
        min_samples=min_samples,
        groups=result.group_stats(keys, ["p99"]),
        **kw,  # type: ignore[arg-type]
    )


# --- status classes --------------------------------------------------------------------------


def test_status_budgets_parse_as_rates() -> None:
    assert parse_budget(TOTAL, "status_5xx", "0.1%") == Budget(TOTAL, "status_5xx", 0.001)
    assert parse_budget("GET /a", "status_4xx", 0.02).limit == 0.02
    with pytest.raises(ValueError, match="ambiguous"):
        parse_budget(TOTAL, "status_5xx", 2)


def test_a_status_share_over_its_limit_fails_in_the_budgets_words() -> None:
    (check,) = judge(shop(), Budget(TOTAL, "status_5xx", 0.001))
    assert check.outcome == "fail"
    assert check.observed == pytest.approx(12 / 412)
    assert check.unit == "ratio" and check.samples == 412
    assert check.message == (
        "Share of 5xx responses of total was 2.91%, over its budget of 0.1% (12 of 412 requests)."
    )
    (held,) = judge(shop(), Budget("GET /api/a", "status_5xx", 0.001))
    assert held.outcome == "pass" and held.observed == 0.0
    assert held.message.startswith("Share of 5xx responses of GET /api/a was 0%, within")


def test_a_status_share_on_few_requests_fails_only_when_more_could_not_rescue_it() -> None:
    result = shop()
    (certain,) = judge(result, Budget("GET /api/b", "status_5xx", 0.01), min_samples=200)
    assert certain.outcome == "fail"  # 12 of at least 200 is 6% whatever the rest
    assert "even if the 88 missing ones had all been answered otherwise" in certain.message
    (open_,) = judge(result, Budget("GET /api/b", "status_5xx", 0.1), min_samples=200)
    assert open_.outcome == "inconclusive"
    assert "only 112 requests were measured" in open_.message


def test_no_recorded_status_classes_is_inconclusive_not_a_pass() -> None:
    plain = dataclasses.replace(shop(), endpoints=(ep("GET /x", A),))  # a locustfile's, say
    (check,) = judge(plain, Budget("GET /x", "status_5xx", 0.001))
    assert check.outcome == "inconclusive"
    assert "did not record the status classes" in check.message
    zeros = {"2xx": 0, "3xx": 0, "4xx": 0, "5xx": 0}  # a custom client's responses: no status
    custom = dataclasses.replace(shop(), endpoints=(ep("GET /x", A, classes=zeros),))
    (unclassed,) = judge(custom, Budget("GET /x", "status_5xx", 0.001))
    assert unclassed.outcome == "inconclusive"
    refused = dataclasses.replace(shop(), endpoints=(ep("GET /x", [], failures=150),))
    no_response, all_failed = judge(refused, Budget("GET /x", "status_5xx", 0.001))
    assert no_response.outcome == "pass"  # none answered: no 5xx ...
    assert (all_failed.metric, all_failed.outcome) == ("error_rate", "fail")  # ... yet it fails


# --- groups ----------------------------------------------------------------------------------


def test_globs_and_what_they_cover() -> None:
    assert is_glob("GET /api/*") and is_glob("GET /a?") and is_glob("GET /[ab]")
    assert not is_glob("GET /api/products") and not is_glob(TOTAL)
    names = ["GET /api/b", "GET /api/a", "POST /cart", TOTAL, "get /api/c"]
    assert covered_names("GET /api/*", names) == ["GET /api/a", "GET /api/b"]  # case matters
    assert covered_names("*", names) == ["GET /api/a", "GET /api/b", "POST /cart", "get /api/c"]


def test_a_glob_judges_its_names_merged_exactly() -> None:
    result = shop()
    groups = result.group_stats(["GET /api/*"], ["p99"])
    group = groups["GET /api/*"]
    assert (group.kind, group.covers) == ("group", ("GET /api/a", "GET /api/b"))
    assert (group.requests, group.failures) == (312, 12)
    assert group.status_classes == {"2xx": 300, "5xx": 12}
    merged = hist(*A, *B)
    assert group.percentiles["p99"] == merged.percentile(99.0)
    assert group.max_ms == 199.0 and group.latency_samples == 300
    (check,) = judge(result, Budget("GET /api/*", "p99", 150.0))
    assert check.outcome == "fail" and check.covers == ("GET /api/a", "GET /api/b")
    assert check.message.startswith("P99 of GET /api/* (2 names) was ")
    (share,) = judge(result, Budget("GET /api/*", "status_5xx", 0.05))
    assert share.outcome == "pass" and "(12 of 312 requests)" in share.message


def test_a_glob_that_covered_nothing_is_inconclusive_saying_so() -> None:
    (check,) = judge(shop(), Budget("GET /admin/*", "p95", 300.0))
    assert check.outcome == "inconclusive" and check.covers == ()
    assert check.message == (
        "The pattern 'GET /admin/*' matched no request name, so its p95 budget could not be "
        "checked; the requests made were 'GET /api/a', 'GET /api/b', 'POST /cart'."
    )


def test_groups_get_no_default_error_budget_and_names_keep_theirs() -> None:
    checks = judge(shop(), Budget("GET /api/*", "p99", 1000.0), default_error_rate=0.01)
    judged = [(c.endpoint, c.metric) for c in checks]
    assert judged == [
        ("GET /api/*", "p99"),
        ("GET /api/a", "error_rate"),
        ("GET /api/b", "error_rate"),
        ("POST /cart", "error_rate"),
        (TOTAL, "error_rate"),
    ]


def test_a_name_run_only_in_on_start_gets_no_default_error_budget_but_still_fails_when_all_do() -> (
    None
):
    endpoints = (
        ep("GET /api/a", A, classes={"2xx": 200}),
        ep("POST /login", [5.0] * 8, classes={"2xx": 8}),  # once per user: 8 users
    )
    result = dataclasses.replace(
        shop(), endpoints=endpoints, total=merge_endpoints(TOTAL, endpoints)
    )
    checks = judge(result, default_error_rate=0.01, once_per_user=["POST /login"])
    assert [(c.endpoint, c.outcome) for c in checks] == [
        ("GET /api/a", "pass"),
        (TOTAL, "pass"),
    ]
    # without the rule, the login's default budget is inconclusive on every run (8 < 100)
    plain = judge(result, default_error_rate=0.01)
    assert ("POST /login", "inconclusive") in [(c.endpoint, c.outcome) for c in plain]
    failed = (ep("GET /api/a", A), ep("POST /login", [], failures=8))
    broken = dataclasses.replace(shop(), endpoints=failed, total=merge_endpoints(TOTAL, failed))
    checks = judge(broken, default_error_rate=0.01, once_per_user=["POST /login"])
    login = [c for c in checks if c.endpoint == "POST /login"]
    assert [(c.metric, c.outcome) for c in login] == [("error_rate", "fail")]


def test_once_per_user_names_are_those_only_in_on_start() -> None:
    from pytest_stagegate.config.model import FlowSpec, LoadSettings, RequestSpec

    login = RequestSpec("POST", "/login", "POST /login")
    listing = RequestSpec("GET", "/items", "GET /items")
    again = RequestSpec("GET", "/me", "GET /me")
    load = LoadSettings(
        flows=(FlowSpec("shop", steps=(listing,), on_start=(login, again)),),
        requests=(again,),
    )
    assert load.once_per_user == {"POST /login"}


# --- flows -----------------------------------------------------------------------------------


def checkout(ok: int = 100, failed: int = 0, ms: float = 1500.0) -> EndpointResult:
    return ep("checkout", [ms] * ok, failures=failed, method="FLOW")


def test_a_flow_judges_its_iterations() -> None:
    result = shop(flows=(checkout(ok=95, failed=5),))
    p95, errors = judge(
        result,
        Budget("checkout", "p95", 2000.0),
        Budget("checkout", "error_rate", 0.01),
        min_samples=50,
    )
    assert p95.outcome == "pass" and p95.samples == 95 and p95.covers == ()
    assert p95.message == (
        "P95 of flow checkout was 1,500 ms, within its budget of 2,000 ms "
        "(95 iterations; 5 other failed not counted)."
    )
    assert errors.outcome == "fail" and errors.observed == 0.05
    assert errors.message == (
        "Error rate of flow checkout was 5%, over its budget of 1% (100 iterations, 5 failed)."
    )
    (status,) = judge(result, Budget("checkout", "status_5xx", 0.01))
    assert status.outcome == "inconclusive" and "no status of their own" in status.message


def test_a_flow_whose_iterations_all_failed_fails_with_or_without_budgets() -> None:
    result = shop(flows=(checkout(ok=0, failed=40),))
    checks = judge(result, default_error_rate=0.01)
    failed = [c for c in checks if c.endpoint == "checkout"]
    assert [(c.metric, c.outcome) for c in failed] == [("error_rate", "fail")]
    assert failed[0].message == (
        "Every iteration of flow checkout failed: 40 iterations, all failed; it has no error "
        "budget, but a flow whose iterations all failed always fails the gate."
    )
    waived = judge(result, waivers=[Waiver("checkout", "stagegate.yaml:9")])
    assert [c.outcome for c in waived if c.endpoint == "checkout"] == ["fail"]
    (budgeted,) = judge(result, Budget("checkout", "error_rate", 0.5))
    assert budgeted.outcome == "fail"
    assert budgeted.message.startswith("Every iteration of flow checkout failed: 40 iterations")
    ran = judge(shop(flows=(checkout(),)))
    assert ran == []  # a flow that completed needs no check of its own


def test_precedence_is_request_name_then_flow_then_glob() -> None:
    glob_flow = ep("GET /api/*", [9000.0] * 100, method="FLOW")  # a flow named like the glob
    same = ep("POST /cart", [1.0] * 100, method="FLOW")  # a flow named like a request
    result = shop(flows=(glob_flow, same))
    groups = result.group_stats(["GET /api/*", "POST /cart"], ["p95"])
    assert groups["GET /api/*"].kind == "flow"
    assert "POST /cart" not in groups
    flow_wins, name_wins = judge(
        result, Budget("GET /api/*", "max", 1000.0), Budget("POST /cart", "max", 100.0)
    )
    assert flow_wins.observed == 9000.0 and flow_wins.covers == ()
    assert name_wins.observed == 500.0


# --- stages ----------------------------------------------------------------------------------


def test_stage_budgets_judge_globs_on_the_stage_and_refuse_flows() -> None:
    endpoints = (ep("GET /api/a", [400.0] * 100), ep("GET /api/b", [100.0] * 100))
    peak = StageResult(
        "peak", 0.0, 10.0, True, 10.0, 10.0, "users",
        endpoints=endpoints, total=merge_endpoints(TOTAL, endpoints),
    )  # fmt: skip
    spec = StageSpec(
        "peak",
        10.0,
        users=10,
        budgets=(Budget("GET /api/*", "p95", 300.0), Budget("checkout", "p95", 2000.0)),
    )
    (glob, flow), _ = judge_stages(
        [spec], shop(stages=(peak,), flows=(checkout(),)), min_samples=50, flows=["checkout"]
    )
    assert (glob.outcome, glob.stage, glob.covers) == ("fail", "peak", ("GET /api/a", "GET /api/b"))
    assert glob.message.startswith("P95 of GET /api/* (2 names) in stage peak was 4")
    assert flow.outcome == "inconclusive" and flow.stage == "peak"
    assert "stage peak kept no iterations of flow checkout apart" in flow.message


# --- the verdict -----------------------------------------------------------------------------


def gate_record() -> GateRecord:
    result = shop(flows=(checkout(ok=95, failed=5),))
    budgets = [Budget("GET /api/*", "p99", 150.0), Budget("checkout", "p95", 2000.0)]
    groups = result.group_stats([b.endpoint for b in budgets])
    stats = result.endpoint_stats()
    return GateRecord(
        status="completed",
        endpoints=list(stats.values()),
        checks=evaluate(budgets, stats, min_samples=50, groups=groups),
        flows=[s for s in groups.values() if s.kind == "flow"],
    )


def test_the_verdict_records_covers_status_classes_and_flows_and_validates() -> None:
    data = json.loads(json.dumps(verdict(gate=gate_record()).to_dict()))
    validate_verdict(data)
    gate = data["gate"]
    glob, flow = gate["checks"]
    assert glob["covers"] == ["GET /api/a", "GET /api/b"] and "covers" not in flow
    by_name = {e["name"]: e for e in gate["endpoints"]}
    assert by_name["GET /api/b"]["status_classes"] == {"2xx": 100, "5xx": 12}
    assert by_name[TOTAL]["status_classes"] == {"2xx": 400, "5xx": 12}
    assert [(f["name"], f["requests"], f["failures"]) for f in gate["flows"]] == [
        ("checkout", 100, 5)
    ]
    baseline = baseline_stats(data)
    assert baseline["checkout"].kind == "flow" and baseline["checkout"].requests == 100
    assert baseline["GET /api/b"].status_classes == {"2xx": 100, "5xx": 12}


def test_a_flow_regression_reads_the_baseline_flow_and_a_glob_says_why_not() -> None:
    baseline = baseline_stats(json.loads(json.dumps(verdict(gate=gate_record()).to_dict())))
    slower = shop(flows=(checkout(ms=1800.0),))
    flow, glob = judge(
        slower,
        Budget("checkout", "p95_regression", 0.1),
        Budget("GET /api/*", "p95_regression", 0.1),
        baseline=baseline,
        min_samples=50,
    )
    assert flow.outcome == "fail" and flow.baseline == 1500.0
    assert glob.outcome == "inconclusive"
    assert "a verdict records request names and flows, not the merged stats" in glob.message


def test_report_terminal_and_junit_show_the_covered_names_briefly() -> None:
    assert covers_text({"covers": ["a", "b"]}) == "(2 names: a, b)"
    assert covers_text({"covers": ["a", "b", "c", "d"]}) == "(4 names: a, b, c, ...)"
    assert covers_text({"covers": []}) == "" and covers_text({}) == ""
    data = verdict(gate=gate_record()).to_dict()
    text = render(data)
    assert "p99 of GET /api/* (2 names: GET /api/a, GET /api/b)" in text
    flow_rows = [line for line in text.splitlines() if line.startswith("checkout")]
    assert len(flow_rows) == 1 and "100" in flow_rows[0]  # the flows table
    assert "iterations" in text
    root = ET.fromstring(to_xml(data))
    case = next(c for c in root.iter("testcase") if c.get("name", "").startswith("p99 of GET"))
    assert case.get("name") == "p99 of GET /api/* <= 150 ms"  # stable: no names in it
    assert case.findtext("system-out") == "covers 2 names: GET /api/a, GET /api/b"
    failure = case.find("failure")
    assert failure is not None and "covers: 2 names: GET /api/a, GET /api/b" in (failure.text or "")
