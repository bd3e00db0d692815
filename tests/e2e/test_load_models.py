"""Load models end to end (issue 11), as a user runs them: a stagegate.yaml with ``rate:`` or
``stages:``, ``pytest --gate`` through pytester, real Locust against real servers on 127.0.0.1.

What is proved, with invariants and gross effects, never speed:
- the open model starts every scheduled iteration or counts it as dropped: the server's count
  plus the dropped ones is the schedule, up to the iterations in flight at the stop;
- a server stall shows in the open model's latency (from the schedule) and not in its service
  time, while the closed model sends at most one request per user into a stall (coordinated
  omission, seen on the server's side);
- too little concurrency for the rate drops iterations and makes latency budgets inconclusive;
- stages ramp the rate over two worker processes, whose shares add up to the one-process
  schedule; an unjudged ramp is left out, a stage's own budgets are checked, and Locust's HTML
  report counts what the verdict counts.
Loads are 2-3.5 s; four pytest runs in all.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pytest
import yaml

from tests.conftest import stagegate_yaml
from tests.servers import HTTPTestServer, Route, Stalls

Serve = Callable[[Mapping[str, Route]], HTTPTestServer]

# any 3 s of load holds a whole stall that ends 0.5 s or more before the stop (a stall at the
# very end would hold its requests past the stop: unanswered, not measured)
STALLS = Stalls(period=2.0, length=0.5)
WORK = "/work"  # the load's path: the gate's reachability probe asks for "/"


def open_config(
    url: str,
    load: Mapping[str, Any],
    budgets: Mapping[str, Any] | None = None,
) -> str:
    """conftest's stagegate.yaml with ``load`` in place of the small closed-model gate's users,
    spawn rate, duration and think time (None removes a key), and ``budgets`` in place of the
    default ones."""
    base: dict[str, Any] = {
        "users": None,
        "spawn_rate": None,
        "duration": None,
        "wait": None,
        "warmup": None,
        "requests": [f"GET {WORK}"],
        "abort": None,
    }
    text = stagegate_yaml(url, gate={"min_samples": 10, "load": {**base, **load}})
    doc = yaml.safe_load(text)
    doc["gate"]["budgets"] = dict(budgets or {"total": {"error_rate": "1%"}})
    return yaml.safe_dump(doc, sort_keys=False)


def run_gate(
    pytester: pytest.Pytester, config: str, *args: str
) -> tuple[pytest.RunResult, dict[str, Any]]:
    pytester.makefile(".yaml", stagegate=config)
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest("--gate", *args)
    verdict = json.loads((pytester.path / "stagegate-verdict.json").read_text())
    assert verdict["gate"]["status"] == "completed", result.stdout.str()
    return result, verdict


def load_of(verdict: Mapping[str, Any]) -> dict[str, Any]:
    """The verdict's load-model section (``gate.load``)."""
    return verdict["gate"]["load"]  # type: ignore[no-any-return]


def total_of(verdict: Mapping[str, Any]) -> dict[str, Any]:
    return next(e for e in verdict["gate"]["endpoints"] if e["name"] == "total")


def checks_of(verdict: Mapping[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """The whole run's checks (not a stage's) by (request name, metric)."""
    checks = verdict["gate"]["checks"]
    return {(c["endpoint"], c["metric"]): c for c in checks if not c.get("stage")}


def service_p50(endpoint: Mapping[str, Any]) -> float:
    """The service time (from the actual send) p50 of a verdict endpoint entry."""
    service = endpoint["service_time"]
    return float(service["percentiles"]["p50"])


def slots_due(rate: float, seconds: float) -> int:
    """Iterations a constant ``rate`` schedules in ``[0, seconds)``: slot i is due at i / rate."""
    return math.ceil(rate * seconds - 1e-9)


def assert_schedule_kept(
    load: Mapping[str, Any], received: int, in_flight: int, unjudged: int = 0
) -> None:
    """Every due iteration was sent (the server received it) or dropped, but for at most
    ``in_flight`` of them still on their way when the load stopped. ``unjudged``: iterations
    of unjudged windows (a ramp), which the server received too but ``iterations_due`` does not
    count."""
    due, dropped = load["iterations_due"], load["dropped"]
    assert 0 <= dropped <= due
    unsent = due + unjudged - dropped - received
    assert -unjudged <= unsent <= in_flight, (due, dropped, received, unjudged)


def test_a_stall_shows_in_the_open_models_latency_and_not_in_the_closed_ones(
    pytester: pytest.Pytester, serve: Serve
) -> None:
    # The open model: 50 iterations/s whatever the answers take, users (most concurrent
    # iterations) left to the default, enough to keep sending through a stall.
    stalling = serve({WORK: Route(stalls=STALLS)})
    result, verdict = run_gate(
        pytester,
        open_config(
            stalling.url,
            {"rate": "50/s", "duration": "3s"},
            budgets={"total": {"error_rate": "1%", "service_time_p50": "250ms"}},
        ),
    )
    load = load_of(verdict)
    assert load["model"] == "open" and load["rate"] == 50
    # every slot due up to the stop minus the arrival lag is counted, started or dropped (one
    # due later and not started yet was not late yet); the exact count: the stages test
    assert slots_due(50, 3.0 - 0.5) <= load["iterations_due"] <= slots_due(50, 3.0)
    users = verdict["gate"]["profile"]["users"]
    assert users == 25  # the default: half a second of the rate, as many as a stall holds
    assert_schedule_kept(load, stalling.count(WORK), in_flight=users)
    total = total_of(verdict)
    assert total["requests"] <= stalling.count(WORK)
    # the server held ~25 requests in each stall (0.5 s x 50/s) and the latency shows it: a
    # request due during a stall waits for its end, on average half the stall
    open_held = max(stalling.held.values())
    assert open_held >= 0.5 * 50 * STALLS.length
    open_p99 = total["percentiles"]["p99"]
    assert open_p99 >= 1000 * STALLS.length / 2, total
    # ... while most requests were answered at once: service time p50 is far from the stall
    assert service_p50(total) < 1000 * STALLS.length / 2, total
    check = checks_of(verdict)[("total", "service_time_p50")]
    assert check["outcome"] == "pass", check
    result.stdout.fnmatch_lines(["*pen model: 50 iterations/s*"])

    # The closed model on the same kind of server: one user waits for each answer, so at most
    # one request is ever held by a stall, and its p99 hides the stall the users sat through.
    closed = serve({WORK: Route(stalls=STALLS)})
    _, verdict = run_gate(
        pytester,
        open_config(closed.url, {"users": 1, "spawn_rate": 1, "duration": "2s"}),
    )
    assert load_of(verdict)["model"] == "closed"
    assert closed.held and max(closed.held.values()) == 1, closed.held
    assert total_of(verdict)["percentiles"]["p99"] < open_p99


def test_too_few_users_for_the_rate_make_latency_budgets_inconclusive(
    pytester: pytest.Pytester, serve: Serve
) -> None:
    # two users, 50 ms answers: at most 40 iterations/s can start, 100/s are asked. The p95
    # budget is over the arrival lag (0.5 s), so the dropped iterations could have made it
    # pass or fail: it can be neither.
    server = serve({WORK: Route(latency=0.05)})
    result, verdict = run_gate(
        pytester,
        open_config(
            server.url,
            {"rate": "100/s", "users": 2, "duration": "2s"},
            budgets={
                "total": {"p95": "2s", "error_rate": "1%", "service_time_p95": "5s"},
            },
        ),
    )
    assert result.ret == 1
    load = load_of(verdict)
    assert load["dropped"] > 0.01 * load["iterations_due"] > 0
    # every slot due up to the stop minus the arrival lag is counted, started or dropped (one
    # due later and not started yet was not late yet)
    assert slots_due(100, 2.0 - 0.5) <= load["iterations_due"] <= slots_due(100, 2.0)
    assert_schedule_kept(load, server.count(WORK), in_flight=2)
    checks = checks_of(verdict)
    # the latency budget is neither passed nor failed: the schedule was not kept ...
    latency = checks[("total", "p95")]
    assert latency["outcome"] == "inconclusive", latency
    assert "could not start" in latency["message"] or "dropped" in latency["message"], latency
    # ... while the budgets that do not depend on the schedule are judged
    assert checks[("total", "service_time_p95")]["outcome"] == "pass"
    assert checks[("total", "error_rate")]["outcome"] == "pass"
    assert verdict["verdict"] == "inconclusive" and verdict["promote"] is False
    reasons = " ".join(verdict["reasons"])
    assert "iterations" in reasons and "users" in reasons, verdict["reasons"]


def test_stages_ramp_the_rate_over_two_workers_judge_their_own_budgets_and_the_report_agrees(
    pytester: pytest.Pytester, serve: Serve
) -> None:
    # two worker processes split the ramp's slots; the totals are the one-process schedule
    server = serve({WORK: Route()})
    stages: Sequence[Mapping[str, Any]] = [
        {"duration": "1s", "rate": "20/s", "judge": False},  # 0 -> 20/s: 10 iterations
        {"name": "peak", "duration": "2s", "rate": "40/s",  # 20 -> 40/s: 60 iterations
         "budgets": {"total": {"p95": "500ms"}}},
        # 40 -> 0/s: 10 iterations; the peak's last slot is due 0.5 s before the stop, so
        # every one of them is counted however late the machine runs
        {"name": "down", "duration": "0.5s", "rate": 0, "judge": False},
    ]  # fmt: skip
    result, verdict = run_gate(
        pytester,
        open_config(server.url, {"stages": stages}),
        "--gate-workers",
        "2",
        "--gate-report",
        "report.html",
    )
    assert result.ret == 0, result.stdout.str()
    assert verdict["verdict"] == "pass"
    assert verdict["gate"]["profile"]["workers"] == 2
    load = load_of(verdict)
    assert load["model"] == "open"
    got = [
        (s["name"], s["judged"], s["level_from"], s["level_to"], s["start_s"], s["end_s"])
        for s in load["stages"]
    ]
    assert got == [
        ("stage 1", False, 0, 20, 0, 1),
        ("peak", True, 20, 40, 1, 3),
        ("down", False, 40, 0, 3, 3.5),
    ]
    # only the judged stage's iterations are due: the integral of its ramp, exactly, although
    # each worker ran half of them
    assert load["iterations_due"] == 60
    users = verdict["gate"]["profile"]["users"]
    assert_schedule_kept(load, server.count(WORK), in_flight=users, unjudged=20)
    total = total_of(verdict)
    assert 0 < total["requests"] <= server.count(WORK)
    # the stage's budget is checked on the stage's requests, apart from the whole run's
    (peak,) = [s for s in load["stages"] if s["name"] == "peak"]
    peak_total = next(e for e in peak["endpoints"] if e["name"] == "total")
    assert peak_total["requests"] == total["requests"]  # all the judged ones
    # every stage's requests, by due time as the verdict judges them (not by when they ended):
    # the judged stage's are the judged total, a ramp's no more than its slots
    assert (peak["requests"], peak["failures"]) == (total["requests"], total["failures"])
    ramp, _, down = load["stages"]
    assert ramp["requests"] <= 10 and down["requests"] <= 10, load["stages"]
    assert sum(s["requests"] for s in load["stages"]) <= server.count(WORK)
    # the stage's own iterations due and dropped, which its budgets' dropped rule judges: the
    # run's here (the one judged stage), summed over both workers' reports; none in the others
    assert (peak["iterations_due"], peak["dropped"]) == (60, load["dropped"])
    assert "iterations_due" not in ramp and "iterations_due" not in down
    (check,) = [c for c in verdict["gate"]["checks"] if c.get("stage")]
    assert (check["stage"], check["endpoint"], check["metric"]) == ("peak", "total", "p95")
    assert check["outcome"] == "pass"
    # its requests, and any due in it still waiting at the stop (judged at their waits so far)
    waiting = load["unanswered_measured"]
    assert peak_total["requests"] <= check["samples"] <= peak_total["requests"] + waiting
    assert "in stage peak" in check["message"]
    assert ("total", "p95") not in checks_of(verdict)  # not a budget of the whole run
    # the timeline marks the ramp as not judged
    timeline = load["timeline"]
    assert timeline and {p["judged"] for p in timeline} == {False, True}
    # Locust's HTML report counts the judged requests, as the verdict does, and has the chart
    html = (pytester.path / "report.html").read_text()
    start = html.index('"requests_statistics": [')
    rows = json.JSONDecoder().raw_decode(html, start + len('"requests_statistics": '))[0]
    aggregated = next(r for r in rows if r["name"] == "Aggregated")
    assert aggregated["num_requests"] == total["requests"]
    assert "<svg" in html
    # the terminal summary draws the chart, the stages named on it
    result.stdout.fnmatch_lines(["*+stage 1*+peak*+down*"])


def test_the_stall_schedule_is_what_the_tests_rely_on() -> None:
    # the schedule the e2e tests reason about: a stall at the end of every period
    stalls = Stalls(period=2.0, length=0.5)
    assert [stalls.stall_at(t) for t in (0.0, 1.49, 1.5, 1.99, 2.0, 3.6)] == [
        None, None, 0, 0, None, 1
    ]  # fmt: skip
    assert stalls.hold(1.5) == pytest.approx(0.5) and stalls.hold(1.9) == pytest.approx(0.1)
    assert stalls.hold(0.7) == 0.0
    with pytest.raises(ValueError, match="length < period"):
        Stalls(period=1.0, length=1.0)
