"""The load engine end to end: real Locust in child processes against real servers.

Every run is short (1-5 s of load, a few users) and bounded by ``run_load``'s own deadline.
The assertions are about outcomes (statuses, counts, which requests were measured), never
about speed: this runs on a 2-core machine next to other work. The child's pure parts
(rounding, recorder, abort rules, result assembly) are tested in-process in tests/unit/load/.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import psutil
import pytest

from pytest_stagegate.budgets import TOTAL
from pytest_stagegate.errors import LoadError
from pytest_stagegate.histogram import exact_percentile
from pytest_stagegate.load import process as load_process
from pytest_stagegate.load.plan import LatencyLimit, LoadPlan, PlannedRequest
from pytest_stagegate.load.process import Progress, run_load
from pytest_stagegate.load.result import LoadResult
from tests.import_graph import locust_free
from tests.servers import HTTPTestServer, Route, master_port, refused_url

ROOT = Path(__file__).resolve().parents[2]
SECRET = "s3cr3t-T0KEN-value"
OTHER_SECRET = "an0ther-s3cr3t-T0KEN"
HANG_DETECTOR = 120.0  # seconds: only a hang takes this long; never a measure of speed


def plan_for(url: str, **overrides: Any) -> LoadPlan:
    fields: dict[str, Any] = {
        "host": url,
        "users": 2,
        "spawn_rate": 2,
        "duration": 2.0,
        "requests": [PlannedRequest("GET", "/a", "GET /a")],
    }
    fields.update(overrides)
    return LoadPlan(**fields)


def runner_pids() -> set[int]:
    pids = set()
    for child in psutil.Process().children(recursive=True):
        try:
            if "pytest_stagegate.load.child" in " ".join(child.cmdline()):
                pids.add(child.pid)
        except psutil.Error:
            pass
    return pids


def run_child(
    plan: LoadPlan, tmp_path: Path
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """The load child started by hand, to see its raw stdout and stderr."""
    result = tmp_path / "result.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest_stagegate.load.child", "--result", str(result)],
        input=plan.to_json(),
        capture_output=True,
        text=True,
        timeout=plan.duration + 60,
        env=env,
    )
    return proc, json.loads(result.read_text())


# --- the parent side stays free of locust --------------------------------------------------
# Derived from the tree: every module whose executed imports reach no locust or gevent (the
# pytest side, plus the child's pure modules that the unit tests import).
PYTEST_SIDE = locust_free(ROOT / "pytest_stagegate")


def test_the_pytest_side_never_imports_locust_or_gevent() -> None:
    # the derivation itself must see the glue, or this test would prove nothing
    assert {"pytest_stagegate.plugin", "pytest_stagegate.plugin.session"} <= set(PYTEST_SIDE)
    code = (
        "import importlib, sys\n"
        f"for name in {PYTEST_SIDE!r}:\n"
        "    importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('locust', 'gevent'))\n"
        "assert not bad, bad\n"
        f"missing = [m for m in {PYTEST_SIDE!r} if m not in sys.modules]\n"
        "assert not missing, missing\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr


def in_child(code: str, stdin: str | None = None) -> str:
    """What ``code`` prints, run in a fresh interpreter: locust must not enter this process."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-c", code],
        input=stdin,
        check=True,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout


def test_the_childs_locust_rounds_to_three_digits() -> None:
    # the function is tested in tests/unit/load/child/test_rounding.py; this is Locust's own
    # statistics with it installed, as every child process installs it
    code = (
        "from pytest_stagegate.load.child.locust_setup import install_locust_settings\n"
        "from locust.stats import RequestStats\n"
        "install_locust_settings()\n"
        "stats = RequestStats()\n"
        "for ms in (106.4, 1064.0, 10.64):\n"
        "    stats.log_request('GET', '/a', ms, 10)\n"
        "print(sorted(stats.get('/a', 'GET').response_times))\n"
    )
    out = in_child(code)
    assert out.strip() == "[10.6, 106, 1060]"  # Locust's own 2 digits: [11, 110, 1100]


def test_quiet_locust_stats_drops_requests_and_keeps_errors() -> None:
    code = (
        "from locust.stats import RequestStats\n"
        "from pytest_stagegate.load.child.locust_setup import quiet_locust_stats\n"
        "stats = RequestStats()\n"
        "quiet_locust_stats(stats)\n"
        "stats.log_request('GET', '/a', 12.5, 10)\n"
        "stats.log_error('GET', '/a', ValueError('boom'))\n"
        "print(stats.total.num_requests, [e.occurrences for e in stats.errors.values()])\n"
    )
    out = in_child(code)
    assert out.strip() == "0 [1]"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("not json", "The load plan could not be read: json.decoder.JSONDecodeError"),
        (
            json.dumps({**json.loads(plan_for("http://127.0.0.1:9").to_json()), "schema": 2}),
            "the load plan is schema 2; this version of pytest-stagegate reads schema 3",
        ),
    ],
    ids=["garbage", "other-schema"],
)
def test_a_plan_the_child_cannot_read_is_an_error_result(
    tmp_path: Path, text: str, expected: str
) -> None:
    result_path = tmp_path / "result.json"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest_stagegate.load.child", "--result", str(result_path)],
        input=text,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=HANG_DETECTOR,
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(result_path.read_text())
    assert doc["status"] == "error"
    assert expected in doc["reason"]


# --- declarative runs ----------------------------------------------------------------------
def test_healthy_run_completes_and_excludes_the_warmup() -> None:
    routes = {"/a": Route(), "/b": Route()}
    progress: list[Progress] = []
    with HTTPTestServer(routes) as server:
        plan = plan_for(
            server.url,
            users=3,
            spawn_rate=3,
            duration=3.0,
            warmup=2.0,
            requests=[
                PlannedRequest("GET", "/a", "GET /a", weight=2),
                PlannedRequest("GET", "/b?id=1", "GET /b/{id}"),
            ],
        )
        result = run_load(plan, on_progress=progress.append)
        received = server.total
    assert result.status == "completed", result.reason
    assert result.reason == ""
    stats = result.endpoint_stats(["p99.9"])
    assert set(stats) == {"GET /a", "GET /b/{id}", TOTAL}
    assert stats["GET /a"].requests > 0 and stats["GET /b/{id}"].requests > 0
    assert stats[TOTAL].requests == stats["GET /a"].requests + stats["GET /b/{id}"].requests
    assert stats[TOTAL].rps > 0
    assert "p99.9" in stats[TOTAL].percentiles and "p95" in stats[TOTAL].percentiles
    assert result.warmup_seconds == 2.0
    assert result.measured_seconds == pytest.approx(result.load_seconds - 2.0, abs=0.05)
    # the warm-up's requests, all the slow ones among them, are left out of the measurements
    assert result.requests_including_warmup > stats[TOTAL].requests
    assert result.requests_including_warmup <= received
    # every answered request, and those still waiting at the stop at their waits so far
    assert result.total.histogram.count == stats[TOTAL].requests + result.unanswered_measured
    assert result.failures_including_warmup == 0 and result.errors == ()
    assert progress and progress[0].warmup and progress[0].users > 0
    assert progress[-1].requests > 0


def test_a_request_started_in_the_warmup_is_not_measured_when_it_ends_after(
    tmp_path: Path,
) -> None:
    # Each user's first request is named apart and answered 2.5 s later: it starts in the
    # 1.5 s warm-up (the users start at once) and ends in the measured window. It counts by
    # when it started, so it is in the run's counts and not in the measured endpoints: by name,
    # not by how long anything took.
    locustfile = tmp_path / "first_request_locustfile.py"
    locustfile.write_text(
        textwrap.dedent(
            """
            from locust import FastHttpUser, constant, task

            class FirstSlow(FastHttpUser):
                wait_time = constant(0.01)

                def on_start(self):
                    self.client.get("/first", name="first")

                @task
                def a(self):
                    self.client.get("/a", name="GET /a")
            """
        )
    )
    routes = {"/first": Route(latency=2.5), "/a": Route()}
    with HTTPTestServer(routes) as server:
        plan = plan_for(
            server.url,
            users=2,
            spawn_rate=2,
            duration=5.0,
            warmup=1.5,
            locustfile=str(locustfile),
            requests=[],
        )
        result = run_load(plan)
        first = server.count("/first")
        received = server.total
    assert result.status == "completed", result.reason
    assert first == 2
    assert [e.name for e in result.endpoints] == ["GET /a"]
    assert 0 < result.total.requests < result.requests_including_warmup <= received
    # both first requests were answered before the stop and counted in the run
    assert result.requests_including_warmup >= result.total.requests + first


def test_expect_status_decides_success() -> None:
    routes = {"/gone": Route(status=404), "/made": Route(status=200)}
    with HTTPTestServer(routes) as server:
        plan = plan_for(
            server.url,
            duration=1.5,
            wait=(0.01, 0.01),
            requests=[
                PlannedRequest("GET", "/gone", "gone", expect_status=[404]),
                PlannedRequest("POST", "/made", "made", json={"a": 1}, expect_status=[201]),
            ],
        )
        result = run_load(plan)
    assert result.status == "completed", result.reason
    stats = result.endpoint_stats()
    assert stats["gone"].requests > 0 and stats["gone"].failures == 0
    assert stats["made"].requests > 0 and stats["made"].failures == stats["made"].requests
    (error,) = result.errors
    assert error.name == "made" and error.method == "POST"
    assert "HTTP 200, expected 201" in error.error


def test_http_user_class_sends_the_target_headers() -> None:
    with HTTPTestServer() as server:
        plan = plan_for(
            server.url,
            duration=1.5,
            user_class="http",
            wait=(0.02, 0.02),
            headers={"X-Stage": "staging"},
            requests=[PlannedRequest("GET", "/a", "GET /a", headers={"X-Req": "1"})],
        )
        result = run_load(plan)
        headers = server.last_headers("/a")
    assert result.status == "completed", result.reason
    assert result.total.requests > 0
    assert headers["X-Stage"] == "staging" and headers["X-Req"] == "1"


def test_precise_percentiles_match_the_clients_own_timings(tmp_path: Path) -> None:
    samples_path = tmp_path / "samples.json"
    locustfile = tmp_path / "timed_locustfile.py"
    locustfile.write_text(
        textwrap.dedent(
            """
            import json
            from locust import FastHttpUser, events, task

            SAMPLES = []

            @events.request.add_listener
            def keep(response_time, **kwargs):
                SAMPLES.append(response_time)

            @events.test_stop.add_listener
            def dump(environment, **kwargs):
                path = environment.stagegate_target["vars"]["samples_path"]
                with open(path, "w") as f:
                    json.dump(SAMPLES, f)

            class Timed(FastHttpUser):
                @task
                def a(self):
                    self.client.get("/a", name="GET /a")
            """
        )
    )
    routes = {"/a": Route(latency=(0.100, 0.112), seed=42)}  # around 106 ms
    with HTTPTestServer(routes) as server:
        plan = plan_for(
            server.url,
            users=4,
            spawn_rate=4,
            duration=3.0,
            locustfile=str(locustfile),
            requests=[],
            vars={"samples_path": str(samples_path)},
        )
        result = run_load(plan)
    assert result.status == "completed", result.reason
    samples = json.loads(samples_path.read_text())
    hist = result.total.histogram
    assert hist.count == len(samples) > 50
    for p in (50, 90, 95):
        exact = exact_percentile(samples, p)
        assert hist.percentile(p) == pytest.approx(exact, rel=0.005)
    exact_p50 = exact_percentile(samples, 50)
    locust_rounded = round(exact_p50, -1)  # Locust's default bucketing: 2 significant digits
    assert abs(locust_rounded - exact_p50) / exact_p50 > 0.005


# --- broken targets ------------------------------------------------------------------------
@pytest.mark.parametrize("saturation_cpu", [90.0, 0.0], ids=["kept-up", "saturated"])
def test_refusing_target_is_aborted_early(saturation_cpu: float) -> None:
    # a 0% threshold makes every CPU sample "saturated": errors abort all the same
    plan = plan_for(refused_url(), duration=30.0, saturation_cpu=saturation_cpu)
    result = run_load(plan, grace=10)
    assert result.status == "aborted"
    assert "failed" in result.reason and "Stopped the load" in result.reason
    assert "ConnectionRefusedError" in result.reason
    assert result.load_seconds < plan.duration
    assert result.errors and "ConnectionRefusedError" in result.errors[0].error
    assert result.failures_including_warmup == result.requests_including_warmup > 0


def test_hanging_target_is_aborted_on_errors() -> None:
    # every request runs out of the target's timeout and is recorded as a failure
    # (load/child/deadline.py), so the error abort ends the run long before its 30 s
    with HTTPTestServer({"/a": Route(hang=True)}) as server:
        plan = plan_for(server.url, users=4, duration=30.0, timeout=0.5, abort_min_requests=5)
        result = run_load(plan, grace=5)
    assert result.status == "aborted", result.reason
    assert "Stopped the load" in result.reason and "failed" in result.reason
    assert result.failures_including_warmup == result.requests_including_warmup > 0
    assert result.errors and result.total.requests == result.total.failures


def test_latency_far_over_budget_aborts() -> None:
    with HTTPTestServer({"/a": Route(latency=0.1)}) as server:
        plan = plan_for(
            server.url,
            users=4,
            spawn_rate=4,
            duration=20.0,
            abort_latency=[LatencyLimit(endpoint="GET /a", metric="p95", limit_ms=5)],
            abort_latency_factor=3.0,
            abort_latency_for=1.0,
        )
        result = run_load(plan, grace=10)
    assert result.status == "aborted", result.reason
    assert "p95 of GET /a" in result.reason and "budget of 5 ms" in result.reason
    assert result.load_seconds < plan.duration


@pytest.mark.parametrize("workers", [0, 1], ids=["local", "distributed"])
def test_latency_does_not_abort_while_the_generator_is_saturated(
    tmp_path: Path, workers: int
) -> None:
    # The same latency as above, but a 0% threshold makes every CPU sample "saturated": the
    # latency may be the generator's own queueing, so the run goes on to the end (where it is
    # judged saturated, and its latency budgets inconclusive) instead of failing as "aborted".
    log = tmp_path / "load.log"
    with HTTPTestServer({"/a": Route(latency=0.1)}) as server:
        plan = plan_for(
            server.url,
            users=4,
            spawn_rate=4,
            duration=4.0,  # without the hold, the abort comes after 3 s (2 s + 1 s in a row)
            abort_latency=[LatencyLimit(endpoint="GET /a", metric="p95", limit_ms=5)],
            abort_latency_factor=3.0,
            abort_latency_for=1.0,
            saturation_cpu=0.0,
        )
        result = run_load(plan, workers=workers, grace=10, log_path=log)
    assert result.status == "completed", result.reason
    assert result.generator.saturated is True
    assert result.total.histogram.percentile(95) > 15  # it was over 3 times its budget
    held = "the load generator is saturated: not stopping the load for latency"
    assert held in log.read_text()


# --- distributed ---------------------------------------------------------------------------
def test_two_workers_merge_to_the_servers_count() -> None:
    with HTTPTestServer({"/a": Route(latency=0.005)}) as server:
        plan = plan_for(server.url, users=4, spawn_rate=4, duration=2.5, wait=(0.01, 0.01))
        result = run_load(plan, workers=2)
        received = server.total
    assert result.status == "completed", result.reason
    assert result.workers == 2
    assert [p.role for p in result.generator.per_process] == ["master", "worker 1", "worker 2"]
    assert result.generator.processes == 2
    # warm-up 0: every request counts; the server may also have seen a few cut off at the stop
    assert result.total.requests == result.requests_including_warmup > 0
    assert received - 4 <= result.total.requests <= received


def test_a_remote_workers_clock_skew_does_not_move_its_window(tmp_path: Path) -> None:
    # A worker "on another machine" whose clock is an hour behind the master's: it counts
    # from the warm-up message's arrival by its own clock, so it still measures the requests
    # after the warm-up (with the master's absolute time it would measure none).
    locustfile = tmp_path / "skewed_locustfile.py"
    locustfile.write_text(
        textwrap.dedent(
            """
            import sys
            import time

            from locust import FastHttpUser, task

            if sys.argv[sys.argv.index("--mode") + 1] == "worker":
                _real_time = time.time
                time.time = lambda: _real_time() - 3600.0

            class Paced(FastHttpUser):
                @task
                def a(self):
                    self.client.get("/a", name="GET /a")
            """
        )
    )
    port = master_port()
    token = "clock-skew-test-worker-token"  # the remote worker proves it to the master
    with HTTPTestServer({"/a": Route(latency=0.005)}) as server:
        plan = plan_for(
            server.url,
            users=2,
            duration=3.0,
            warmup=1.5,
            wait=(0.01, 0.01),
            locustfile=str(locustfile),
            requests=[],
        )
        worker = subprocess.Popen(
            [sys.executable, "-m", "pytest_stagegate.load.child", "--mode", "worker",
             "--master-host", "127.0.0.1", "--master-port", str(port)],
            stdin=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": str(ROOT), "STAGEGATE_WORKER_TOKEN": token},
        )  # fmt: skip
        try:
            assert worker.stdin is not None
            worker.stdin.write(plan.to_json().encode())
            worker.stdin.close()
            result = run_load(
                plan, remote_workers=1, master_bind=("127.0.0.1", port), worker_token=token
            )
            assert worker.wait(timeout=HANG_DETECTOR) == 0
        finally:
            worker.kill()
            worker.wait()
    assert result.status == "completed", result.reason
    assert result.workers == 1
    assert 0 < result.total.requests < result.requests_including_warmup


def test_no_grace_still_leaves_a_distributed_run_time_to_stop(tmp_path: Path) -> None:
    # abort.grace: 0 is allowed; the master's final reports and the HTML report come on top
    # (STOP_ALLOWANCE), so the run is not killed as overdue
    report = tmp_path / "report.html"
    with HTTPTestServer() as server:
        plan = plan_for(server.url, duration=2.0, wait=(0.01, 0.01), html_report=str(report))
        result = run_load(plan, workers=1, grace=0)
    assert result.status == "completed", result.reason
    assert result.html_report == str(report) and report.exists()


def test_a_taken_master_port_is_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    ports = [blocker.getsockname()[1]]
    real = load_process._free_port
    monkeypatch.setattr(load_process, "_free_port", lambda: ports.pop() if ports else real())
    try:
        with HTTPTestServer() as server:
            result = run_load(plan_for(server.url, users=1, duration=1.0), workers=1)
    finally:
        blocker.close()
    assert ports == []  # the first attempt really met the taken port
    assert result.status == "completed", result.reason
    assert result.total.requests > 0


# --- locustfiles ---------------------------------------------------------------------------
def test_locustfile_sees_the_target_headers_and_vars(tmp_path: Path) -> None:
    locustfile = tmp_path / "shop_locustfile.py"
    locustfile.write_text(
        textwrap.dedent(
            """
            from locust import FastHttpUser, HttpUser, task

            class Browse(FastHttpUser):
                weight = 1

                @task
                def product(self):
                    target = self.environment.stagegate_target
                    pid = target["vars"]["product_id"]
                    self.client.get(f"/products/{pid}", name="GET /products/{id}")

            class Legacy(HttpUser):
                weight = 1

                @task
                def home(self):
                    self.client.get("/home", name="GET /home")
            """
        )
    )
    with HTTPTestServer() as server:
        plan = plan_for(
            server.url,
            users=2,
            duration=1.5,
            locustfile=str(locustfile),
            requests=[],
            headers={"Authorization": "Bearer abc"},
            vars={"product_id": 42},
            target_name="staging",
        )
        result = run_load(plan)
        fast_headers = server.last_headers("/products/42")
        http_headers = server.last_headers("/home")
    assert result.status == "completed", result.reason
    assert {e.name for e in result.endpoints} == {"GET /products/{id}", "GET /home"}
    assert fast_headers["Authorization"] == "Bearer abc"
    assert http_headers["Authorization"] == "Bearer abc"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("def broken(:\n    pass\n", "SyntaxError"),
        ("import locust\nVALUE = 1\n", "defines no User class"),
        ("raise RuntimeError('no config for ' + 'this')\n", "RuntimeError: no config for this"),
    ],
    ids=["syntax-error", "no-user-class", "raises"],
)
def test_bad_locustfile_is_a_clear_error(tmp_path: Path, source: str, expected: str) -> None:
    locustfile = tmp_path / "bad_locustfile.py"
    locustfile.write_text(source)
    log = tmp_path / "load.log"
    result = run_load(
        plan_for(refused_url(), locustfile=str(locustfile), requests=[]), log_path=log
    )
    assert result.status == "error"
    assert str(locustfile) in result.reason and expected in result.reason
    assert "Traceback" not in result.reason
    assert result.total.requests == 0


def test_missing_locustfile_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.py"
    result = run_load(plan_for(refused_url(), locustfile=str(missing), requests=[]))
    assert result.status == "error"
    assert f"The locustfile {missing} does not exist" in result.reason


# --- reports and secrets -------------------------------------------------------------------
def test_html_report_has_charts_and_no_secret(tmp_path: Path) -> None:
    report = tmp_path / "report.html"
    log = tmp_path / "load.log"
    locustfile = tmp_path / "leaky_locustfile.py"
    locustfile.write_text(
        textwrap.dedent(
            """
            import logging
            from locust import FastHttpUser, task

            class Leaky(FastHttpUser):
                @task
                def a(self):
                    self.client.get("/a", name="GET /a")

                @task
                def boom(self):
                    # a careless locustfile puts the token in a failure and in the log
                    auth = self.environment.stagegate_target["headers"]["Authorization"]
                    with self.client.get("/boom", name="GET /boom", catch_response=True) as r:
                        r.failure(f"rejected {auth}")
                    logging.warning("sent %s", auth)
            """
        )
    )
    with HTTPTestServer({"/a": Route(latency=0.01), "/boom": Route(latency=0.01)}) as server:
        plan = plan_for(
            server.url,
            duration=2.5,
            locustfile=str(locustfile),
            requests=[],
            headers={"Authorization": f"Bearer {SECRET}"},
            secrets=[SECRET],
            html_report=str(report),
        )
        result = run_load(plan, log_path=log)
        seen = server.last_headers("/a")
    assert seen["Authorization"] == f"Bearer {SECRET}"  # the secret was really used
    assert result.status == "completed", result.reason
    assert result.html_report == str(report)
    html = report.read_text()
    assert SECRET not in html and "rejected Bearer ***" in html
    start = html.index('"history": [')
    history = json.JSONDecoder().raw_decode(html, start + len('"history": '))[0]
    # Locust's current_rps needs 3 s of history to be non-zero; latency and users do not
    assert len(history) >= 2
    assert any(h["response_time_percentile_0.95"][1] > 0 for h in history)
    assert any(h["user_count"][1] > 0 for h in history)
    assert SECRET not in json.dumps(result.to_dict())
    # Locust's CatchResponseError('...') is unwrapped where the child records it
    assert [e.error for e in result.errors] == ["rejected Bearer ***"]
    text = log.read_text()
    assert "sent Bearer ***" in text and SECRET not in text


def _report_statistics(html: str) -> dict[str, dict[str, Any]]:
    start = html.index('"requests_statistics": [')
    rows = json.JSONDecoder().raw_decode(html, start + len('"requests_statistics": '))[0]
    return {row["name"]: row for row in rows}


@pytest.mark.parametrize("workers", [0, 2])
def test_declarative_run_keeps_locusts_statistics_for_the_report(
    tmp_path: Path, workers: int
) -> None:
    # Locust's own per-request statistics are switched off when nothing reads them; a report
    # reads them, in every process (the workers learn it from the master)
    report = tmp_path / "report.html"
    with HTTPTestServer({"/a": Route(latency=0.005), "/bad": Route(status=500)}) as server:
        plan = plan_for(
            server.url,
            duration=2.5,
            wait=(0.01, 0.01),
            requests=[PlannedRequest("GET", "/a", "GET /a"), PlannedRequest("GET", "/bad", "bad")],
            html_report=str(report),
        )
        result = run_load(plan, workers=workers)
    assert result.status == "completed", result.reason
    rows = _report_statistics(report.read_text())
    measured = result.endpoint_stats()
    # the report counts the warm-up and the requests cut off at the stop too: at least as many
    assert rows["GET /a"]["num_requests"] >= measured["GET /a"].requests > 0
    assert rows["bad"]["num_failures"] >= measured["bad"].failures > 0
    assert rows["Aggregated"]["num_requests"] == result.requests_including_warmup


@pytest.mark.parametrize("workers", [0, 2])
def test_errors_are_listed_without_locusts_statistics(workers: int) -> None:
    with HTTPTestServer({"/a": Route(latency=0.005), "/bad": Route(status=500)}) as server:
        plan = plan_for(
            server.url,
            duration=2.0,
            wait=(0.01, 0.01),
            requests=[PlannedRequest("GET", "/a", "GET /a"), PlannedRequest("GET", "/bad", "bad")],
        )
        result = run_load(plan, workers=workers)
    assert result.status == "completed", result.reason
    (error,) = result.errors
    assert (error.name, error.method) == ("bad", "GET") and "500" in error.error
    assert error.occurrences == result.failures_including_warmup > 0


def test_a_locustfile_still_reads_locusts_own_statistics(tmp_path: Path) -> None:
    out = tmp_path / "seen.txt"
    locustfile = tmp_path / "reads_stats.py"
    locustfile.write_text(
        textwrap.dedent(
            f"""
            from locust import FastHttpUser, constant, events, task

            @events.test_stop.add_listener
            def _seen(environment, **_):
                with open({str(out)!r}, "w") as f:
                    f.write(str(environment.stats.total.num_requests))

            class Reader(FastHttpUser):
                wait_time = constant(0.01)

                @task
                def a(self):
                    self.client.get("/a")
            """
        )
    )
    with HTTPTestServer({"/a": Route()}) as server:
        plan = plan_for(server.url, duration=1.5, locustfile=str(locustfile), requests=[])
        result = run_load(plan)
    assert result.status == "completed", result.reason
    assert int(out.read_text()) == result.requests_including_warmup > 0


def test_request_names_are_redacted_in_the_result(tmp_path: Path) -> None:
    # a locustfile that puts a token in the URL and gives no name=: Locust names the request
    # by its URL, secret and all
    locustfile = tmp_path / "token_in_url_locustfile.py"
    locustfile.write_text(
        textwrap.dedent(
            """
            from locust import FastHttpUser, task

            class TokenInUrl(FastHttpUser):
                @task
                def a(self):
                    for token in self.environment.stagegate_target["vars"]["tokens"]:
                        self.client.get(f"/a?token={token}")
                        self.client.get(f"/boom?token={token}")
            """
        )
    )
    with HTTPTestServer({"/boom": Route(status=500)}) as server:
        plan = plan_for(
            server.url,
            duration=1.5,
            wait=(0.01, 0.01),
            locustfile=str(locustfile),
            requests=[],
            vars={"tokens": [SECRET, OTHER_SECRET]},
            secrets=[SECRET, OTHER_SECRET],
            abort_enabled=False,
        )
        result = run_load(plan)
    assert result.status == "completed", result.reason
    document = json.dumps(result.to_dict())
    assert SECRET not in document and OTHER_SECRET not in document
    # the two URLs read the same once redacted: one endpoint, both tokens' requests in it
    by_name = {e.name: e for e in result.endpoints}
    assert set(by_name) == {"/a?token=***", "/boom?token=***"}
    assert by_name["/a?token=***"].method == "GET"
    assert by_name["/boom?token=***"].failures == by_name["/boom?token=***"].requests > 0
    assert result.total.requests == sum(e.requests for e in result.endpoints)
    assert [(e.name, e.method) for e in result.errors] == [("/boom?token=***", "GET")]


def test_child_keeps_stdout_for_events_and_redacts_stderr(tmp_path: Path) -> None:
    locustfile = tmp_path / "chatty_locustfile.py"
    locustfile.write_text(
        textwrap.dedent(
            """
            import logging
            from locust import FastHttpUser, events, task

            @events.init.add_listener
            def chat(environment, **kwargs):
                auth = environment.stagegate_target["headers"]["Authorization"]
                print("printing", auth)
                logging.warning("logging %s", auth)

            class Chatty(FastHttpUser):
                @task
                def a(self):
                    self.client.get("/a")
            """
        )
    )
    with HTTPTestServer() as server:
        plan = plan_for(
            server.url,
            duration=1.5,
            locustfile=str(locustfile),
            requests=[],
            headers={"Authorization": f"Bearer {SECRET}"},
            secrets=[SECRET],
            progress_interval=0.5,
        )
        proc, doc = run_child(plan, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert doc["status"] == "completed"
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert events[0]["event"] == "started"
    assert {e["event"] for e in events[1:]} == {"progress"}
    assert "printing Bearer ***" in proc.stderr and "logging Bearer ***" in proc.stderr
    assert SECRET not in proc.stdout + proc.stderr


# --- the kill path -------------------------------------------------------------------------
def test_interrupt_kills_every_child() -> None:
    seen: set[int] = set()

    def interrupt(progress: Progress) -> None:
        seen.update(runner_pids())
        raise KeyboardInterrupt

    with HTTPTestServer() as server:
        plan = plan_for(server.url, duration=60.0, progress_interval=0.5)
        with pytest.raises(KeyboardInterrupt):
            run_load(plan, workers=1, on_progress=interrupt)
    assert len(seen) == 2  # the master and its worker were running
    assert not [pid for pid in seen if psutil.pid_exists(pid)]
    assert not runner_pids()


def test_overdue_children_are_killed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a locustfile that never lets the stop finish: the parent's deadline (duration + grace +
    # the stop allowance, 0 here to keep the test short) must end the child
    monkeypatch.setattr(load_process, "STOP_ALLOWANCE", 0.0)
    locustfile = tmp_path / "stuck_locustfile.py"
    locustfile.write_text(
        textwrap.dedent(
            """
            from locust import User, events, task

            @events.test_stopping.add_listener
            def stuck(**kwargs):
                import time
                time.sleep(3600)

            class Idle(User):
                @task
                def nothing(self):
                    import gevent
                    gevent.sleep(0.1)
            """
        )
    )
    seen: set[int] = set()
    plan = plan_for(refused_url(), duration=1.0, locustfile=str(locustfile), requests=[])
    result = run_load(plan, grace=2.0, on_progress=lambda p: seen.update(runner_pids()))
    assert result.status == "error"
    assert "did not stop in time" in result.reason
    assert seen and not [pid for pid in seen if psutil.pid_exists(pid)]


def test_a_load_that_never_starts_is_killed_with_its_own_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The master hangs importing the locustfile. With remote workers expected, the startup
    # allowance includes their connect time, and the reason says the load never started.
    monkeypatch.setattr(load_process, "STARTUP_TIMEOUT", 1.0)
    monkeypatch.setattr(load_process, "WORKER_CONNECT_TIMEOUT", 1.0)
    locustfile = tmp_path / "hanging_import_locustfile.py"
    locustfile.write_text("import time\ntime.sleep(3600)\n")
    plan = plan_for(refused_url(), locustfile=str(locustfile), requests=[])
    result = run_load(
        plan,
        remote_workers=1,
        master_bind=("127.0.0.1", master_port()),
        worker_token="never-started-worker-token",
    )
    assert result.status == "error"
    assert "The load master never started the load" in result.reason
    assert "2 s after the load run began" in result.reason
    assert "1 s for its 1 remote worker(s) to connect" in result.reason
    assert "did not stop in time" not in result.reason
    assert result.workers == 1
    assert not runner_pids()


@pytest.mark.parametrize("where", ["log-is-a-directory", "log-under-a-file"])
def test_an_unwritable_log_is_a_load_error_and_leaks_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    if where == "log-is-a-directory":
        log = tmp_path / "stagegate-load.log"
        log.mkdir()
    else:
        (tmp_path / "a-file").write_text("")
        log = tmp_path / "a-file" / "stagegate-load.log"
    with pytest.raises(LoadError, match="Could not write the load log") as raised:
        run_load(plan_for(refused_url()), log_path=log)
    assert str(log) in str(raised.value)
    assert list(temp.iterdir()) == []  # the stagegate-load-* directory is gone
    assert not runner_pids()


def test_no_temporary_directory_is_a_load_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "missing"))
    with pytest.raises(LoadError, match="temporary directory"):
        run_load(plan_for(refused_url()))


def test_a_worker_dying_mid_run_is_an_error() -> None:
    killed: list[int] = []

    def kill_a_worker(progress: Progress) -> None:
        if killed:
            return
        for child in psutil.Process().children(recursive=True):
            with contextlib.suppress(psutil.Error):
                if "--mode worker" in " ".join(child.cmdline()):
                    child.kill()
                    killed.append(child.pid)
                    return

    with HTTPTestServer() as server:
        plan = plan_for(server.url, duration=20.0, wait=(0.05, 0.05), progress_interval=0.5)
        result = run_load(plan, workers=1, on_progress=kill_a_worker, grace=5)
    assert killed
    assert result.status == "error"
    assert "load worker 1 exited with code -9 during the run" in result.reason


def test_a_missing_interpreter_raises_load_error() -> None:
    with pytest.raises(LoadError, match="Could not start the load process"):
        run_load(plan_for(refused_url()), python="/nonexistent/python3")


# --- saturation ----------------------------------------------------------------------------
def test_busy_generator_is_flagged_saturated() -> None:
    with HTTPTestServer() as server:
        # a 1% threshold: any real work counts as saturation, whatever the machine's speed
        plan = plan_for(server.url, users=4, spawn_rate=4, duration=3.0, saturation_cpu=1.0)
        result = run_load(plan)
    assert result.status == "completed", result.reason
    assert result.generator.saturated is True
    assert "saturated" in result.generator.note
    assert result.generator.per_process[0].hot_samples >= 2


def test_light_load_reports_its_generator_health() -> None:
    # Whether a shared machine stalled this process's event loop is not for this test to
    # say (the rule itself is tested in tests/unit/load/test_usage.py, on fixed samples); what
    # is reported must be whole
    # and agree with itself.
    with HTTPTestServer() as server:
        plan = plan_for(server.url, users=1, spawn_rate=1, duration=2.0, wait=(0.2, 0.2))
        result = run_load(plan)
    assert result.status == "completed", result.reason
    generator = result.generator
    assert generator.processes == 1
    assert [p.role for p in generator.per_process] == ["local"]
    assert generator.per_process[0].cpu_samples >= 1
    assert generator.saturation_cpu == 90.0
    assert generator.saturated is ("was saturated" in generator.note)
    assert generator.to_dict()["saturated"] is generator.saturated


def test_result_round_trips_through_json() -> None:
    with HTTPTestServer() as server:
        result = run_load(plan_for(server.url, duration=1.0))
    again = LoadResult.from_dict(json.loads(json.dumps(result.to_dict())))
    assert again.to_dict() == result.to_dict()


# --- the shared test server ----------------------------------------------------------------
def _get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_server_routes_count_and_headers() -> None:
    routes = {"/boom": Route(status=503, body=b"down"), "/x": Route(headers={"X-A": "1"})}
    with HTTPTestServer(routes) as server:
        assert _get(server.url + "/boom?q=1") == (503, b"down")
        assert _get(server.url + "/anything") == (200, b"ok")
        req = urllib.request.Request(server.url + "/x", headers={"X-Probe": "yes"})
        with urllib.request.urlopen(req, timeout=2) as resp:
            assert resp.headers["X-A"] == "1"
        assert server.counts == {"/boom": 1, "/anything": 1, "/x": 1}
        assert server.total == 3 and server.count("/nope") == 0
        assert server.last_headers("/x")["X-Probe"] == "yes"


def test_server_seeded_latency_is_reproducible() -> None:
    first, second = Route(latency=(0.0, 0.01), seed=5), Route(latency=(0.0, 0.01), seed=5)
    assert [first._next_delay(0) for _ in range(5)] == [second._next_delay(0) for _ in range(5)]
    cycled = Route(latency=[0.1, 0.2])
    assert [cycled._next_delay(0) for _ in range(3)] == [0.1, 0.2, 0.1]
    phased = Route(latency=lambda i, elapsed: 0.5 if elapsed < 1 else 0.0)
    assert phased._next_delay(0.5) == 0.5 and phased._next_delay(2.0) == 0.0


def test_server_hang_reset_and_refused() -> None:
    server = HTTPTestServer({"/hang": Route(hang=True), "/reset": Route(reset=True)}).start()
    try:
        with pytest.raises(TimeoutError):
            _get(server.url + "/hang", timeout=0.3)
        with pytest.raises((ConnectionResetError, urllib.error.URLError)):
            _get(server.url + "/reset")
    finally:
        # stopping releases the hanging handler: stop() returns (a hang detector, not a timer)
        stopper = threading.Thread(target=server.stop, daemon=True)
        stopper.start()
        stopper.join(timeout=HANG_DETECTOR)
    assert not stopper.is_alive()
    assert server.count("/hang") == 1
    with pytest.raises(urllib.error.URLError) as refused:
        _get(refused_url())
    assert isinstance(refused.value.reason, ConnectionRefusedError)
