"""Closed-model stages, a locustfile's load shape and Locust's HTML report, end to end: real
Locust in child processes against real servers on 127.0.0.1 (three short runs).

No assertion is about speed: the ramp is checked against the line it must stay under (a user
count is never above the level the stages ask for one tick ahead), never against a time.
The ramp's arithmetic is tested in-process in tests/unit/load/child/test_shape.py.
"""

from __future__ import annotations

import json
import math
import textwrap
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from pytest_stagegate.load.child.shape import TICK, level_at
from pytest_stagegate.load.plan import LoadPlan, PlannedRequest, PlannedStage
from pytest_stagegate.load.process import Progress, run_load
from tests.conftest import write_stagegate
from tests.servers import HTTPTestServer, Route


def _embedded(html: str, key: str) -> Any:
    """A value of the JSON Locust embeds in its report (``window.templateArgs``), parsed."""
    start = html.index(f'"{key}": ')
    return json.JSONDecoder().raw_decode(html, start + len(f'"{key}": '))[0]


def test_closed_stages_ramp_the_users_on_the_master(
    serve: Callable[[Mapping[str, Route]], HTTPTestServer],
) -> None:
    # a master and a worker: the shape runs on the master, which sends the users to the worker
    server = serve({"/a": Route(latency=0.01)})
    stages = [PlannedStage("up", 3.0, users=6), PlannedStage("hold", 1.0, users=6)]
    plan = LoadPlan(
        host=server.url,
        users=6,
        spawn_rate=100,  # what a plain run would do: every user at once
        duration=4.0,
        wait=(0.01, 0.01),
        requests=[PlannedRequest("GET", "/a", "GET /a")],
        stages=stages,
        progress_interval=0.25,
    )
    progress: list[Progress] = []
    result = run_load(plan, workers=1, on_progress=progress.append)
    assert result.status == "completed", result.reason
    assert result.reason == ""  # the stages' end is the run's own end, nothing to explain
    assert result.total.requests > 0 and server.count("/a") > 0
    users = [(p.elapsed, p.users) for p in progress]
    # never above the level one tick ahead (the shape asks for it, Locust never overshoots)
    over = [(e, u) for e, u in users if u > math.floor(level_at(stages, e + TICK) + 0.5)]
    assert not over, users
    assert any(u < 6 for _, u in users), users  # it ramped...
    assert max(u for _, u in users) == 6, users  # ...to the last stage's level
    assert [(s.name, s.level_from, s.level_to, s.unit) for s in result.stages] == [
        ("up", 0.0, 6.0, "users"),
        ("hold", 6.0, 6.0, "users"),
    ]
    # each stage's requests by their start, as the verdict judges them: both stages are
    # judged, so they add up to the judged total, and every request is in one of them
    counts = [s.requests for s in result.stages]
    assert sum(c or 0 for c in counts) == result.total.requests == result.requests_including_warmup
    assert sum(s.failures or 0 for s in result.stages) == result.total.failures
    assert all(c for c in counts), counts


def test_a_locustfiles_load_shape_is_honoured_and_its_end_ends_the_load(
    tmp_path: Path, serve: Callable[[Mapping[str, Route]], HTTPTestServer]
) -> None:
    locustfile = tmp_path / "shaped_locustfile.py"
    locustfile.write_text(
        textwrap.dedent(
            """
            from locust import FastHttpUser, LoadTestShape, constant, task

            class Burst(LoadTestShape):
                def tick(self):
                    return (3, 10) if self.get_run_time() < 1.5 else None

            class Shopper(FastHttpUser):
                wait_time = constant(0.01)

                @task
                def a(self):
                    self.client.get("/a")
            """
        )
    )
    server = serve({"/a": Route()})
    plan = LoadPlan(
        host=server.url,
        users=1,  # the shape's 3 users win
        spawn_rate=1,
        duration=30.0,  # the gate's bound; the shape ends the load long before
        locustfile=str(locustfile),
        progress_interval=0.25,
    )
    progress: list[Progress] = []
    result = run_load(plan, on_progress=progress.append)
    assert result.status == "completed", result.reason
    assert result.reason.startswith("The locustfile's load shape Burst ended the load after ")
    assert result.reason.endswith("before the gate's duration (30s) was over.")
    assert max(p.users for p in progress) == 3, progress
    assert result.total.requests > 0 and server.count("/a") >= result.total.requests


def test_the_html_report_counts_the_requests_of_the_verdict(
    pytester: pytest.Pytester, serve: Callable[[Mapping[str, Route]], HTTPTestServer]
) -> None:
    # a warm-up, failures in and out of it: Locust's report and the verdict count the same
    server = serve({"/": Route(latency=0.005), "/boom": Route(status=500)})
    write_stagegate(
        pytester,
        server.url,
        gate={
            "load": {"duration": "3s", "warmup": "1s", "requests": ["GET /", "GET /boom"]},
            "budgets": {"total": {"p95": "500ms"}},
        },
    )
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest("--gate", "--gate-report", "report.html")
    assert result.ret == 1, result.stdout.str()  # /boom fails the gate; the counts are the point
    verdict = json.loads((pytester.path / "stagegate-verdict.json").read_text())
    total = next(e for e in verdict["gate"]["endpoints"] if e["name"] == "total")
    html = (pytester.path / "report.html").read_text()
    rows = {row["name"]: row for row in _embedded(html, "requests_statistics")}
    assert rows["Aggregated"]["num_requests"] == total["requests"] > 0
    assert rows["Aggregated"]["num_failures"] == total["failures"] > 0
    failures = _embedded(html, "failures_statistics")
    assert sum(f["occurrences"] for f in failures) == total["failures"]
    assert server.total > total["requests"]  # the warm-up was loaded too, and left out of both
    # the gate's own section: what the report counts, and the chart of latency over time
    section = html[html.index('<section id="stagegate"') :]
    section = section[: section.index("</section>")]
    assert f"verdict judges ({total['requests']:,} requests)" in section
    assert "the 1s warm-up is left out" in section
    assert "<svg" in section and "budget 500 ms" in section
    assert html.index('<section id="stagegate"') < html.index('<div id="root"></div>')
