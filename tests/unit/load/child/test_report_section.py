"""``load.child.report_section``: the gate's section in Locust's HTML report, in-process (the
module imports no locust)."""

from __future__ import annotations

import dataclasses

from pytest_stagegate.load.child.assemble import error_result
from pytest_stagegate.load.child.report_section import (
    ROOT,
    chart_limit,
    report_section,
    with_section,
)
from pytest_stagegate.load.plan import LatencyLimit, LoadPlan, PlannedStage
from pytest_stagegate.load.result import LoadResult, StageResult, TimelinePoint

PLAN = LoadPlan(host="http://127.0.0.1:9", users=2, spawn_rate=2, duration=6, warmup=1)


def measured(plan: LoadPlan, requests: int, *, timeline: bool = True) -> LoadResult:
    result = error_result(plan, "", 0, 0.0)
    points = tuple(
        TimelinePoint(t=0.5 * i, requests=10, failures=0, p95_ms=20.0 + i, judged=i > 2)
        for i in range(1, 13)
    )
    return dataclasses.replace(
        result,
        total=dataclasses.replace(result.total, requests=requests),
        timeline=points if timeline else (),
        stages=tuple(
            StageResult(s.name, 0.0, s.duration, s.judge, 0.0, 2.0, "users") for s in plan.stages
        ),
    )


def test_the_chart_draws_the_total_p95_budget_else_the_first_of_the_total() -> None:
    p99 = LatencyLimit("total", "p99", 900.0)
    p95 = LatencyLimit("total", "p95", 300.0)
    other = LatencyLimit("GET /a", "p95", 100.0)
    assert chart_limit([other, p99, p95]) == p95
    assert chart_limit([other, p99]) == p99
    assert chart_limit([other]) is None


def test_the_section_says_what_the_report_counts_and_holds_the_chart() -> None:
    plan = dataclasses.replace(
        PLAN,
        abort_latency=[LatencyLimit("total", "p95", 300.0)],
        stages=[PlannedStage("ramp", 2, users=2, judge=False), PlannedStage("peak", 4, users=2)],
    )
    section = report_section(measured(plan, 1234), plan)
    assert section.startswith('<section id="stagegate"') and section.endswith("</section>")
    assert (
        "verdict judges (1,234 requests); the 1s warm-up and the stage ramp (judge: false) "
        "are left out." in section
    )
    assert "budget total p95 &lt;= 300 ms" in section
    assert section.count("<svg") == 1


def test_without_a_timeline_or_a_warmup_the_section_only_counts() -> None:
    plan = dataclasses.replace(PLAN, warmup=0)
    section = report_section(measured(plan, 1, timeline=False), plan)
    assert "verdict judges (1 request)." in section
    assert "left out" not in section and "<svg" not in section


def test_the_section_goes_above_locusts_own_page() -> None:
    page = f"<html><head><script>'<body>'</script></head><body>\n{ROOT}\n</body></html>"
    out = with_section(page, "<section>S</section>")
    assert out.index("<section>S</section>") < out.index(ROOT)
    assert out.replace("<section>S</section>\n", "") == page
    # a page laid out otherwise: at the end of its body, or at the end
    assert with_section("<body>x</body>", "S") == "<body>xS\n</body>"
    assert with_section("x", "S") == "xS"


def test_the_html_chart_never_draws_a_service_time_or_regression_budget() -> None:
    service = LatencyLimit("total", "service_time_p95", 50.0)
    avg = LatencyLimit("total", "avg", 200.0)
    assert chart_limit([service, avg]) == avg
    assert chart_limit([service]) is None
