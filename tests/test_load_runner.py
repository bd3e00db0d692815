"""The load engine end to end: real Locust in child processes against real servers.

Every run is short (1-4 s of load, a few users) and bounded by ``run_load``'s own deadline.
The assertions are about outcomes (statuses, counts, which requests were measured), never
about speed: this runs on a 2-core machine next to other work.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import textwrap
import time
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
from tests.servers import HTTPTestServer, Route, refused_url

ROOT = Path(__file__).resolve().parents[1]
SECRET = "s3cr3t-T0KEN-value"


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
            if "pytest_stagegate.load.runner" in " ".join(child.cmdline()):
                pids.add(child.pid)
        except psutil.Error:
            pass
    return pids


def run_child(plan: LoadPlan, tmp_path: Path) -> tuple[subprocess.CompletedProcess[str], dict]:
    """The runner started by hand, to see its raw stdout and stderr."""
    result = tmp_path / "result.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest_stagegate.load.runner", "--result", str(result)],
        input=plan.to_json(),
        capture_output=True,
        text=True,
        timeout=plan.duration + 60,
        env=env,
    )
    return proc, json.loads(result.read_text())


# --- the parent side stays free of locust --------------------------------------------------
def test_process_module_does_not_import_locust_or_gevent() -> None:
    code = (
        "import sys\n"
        "import pytest_stagegate.load.process, pytest_stagegate.load.result\n"
        "bad = sorted(m for m in ('locust', 'gevent') if m in sys.modules)\n"
        "assert not bad, bad\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=60)


def test_bucketing_keeps_three_significant_digits() -> None:
    code = (
        "from pytest_stagegate.load.runner import bucket_response_time_3sig as b\n"
        "print([b(x) for x in (106.4, 1064.0, 10.64, 1.064, 0.01234, 0, 99.96, 23456.7)])\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, env=env, capture_output=True, text=True
    ).stdout
    assert out.strip() == "[106, 1060, 10.6, 1.06, 0.0123, 0, 100, 23500]"


# --- declarative runs ----------------------------------------------------------------------
def test_healthy_run_completes_and_excludes_the_warmup() -> None:
    # slow for the server's first second, fast after: the warm-up (1.5 s) covers the slow
    # phase with 0.5 s to spare, so no measured request may be slow
    def phased(index: int, elapsed: float) -> float:
        return 0.2 if elapsed < 1.0 else 0.0

    routes = {"/a": Route(latency=phased), "/b": Route(latency=phased)}
    progress: list[Progress] = []
    with HTTPTestServer(routes) as server:
        plan = plan_for(
            server.url,
            users=3,
            spawn_rate=3,
            duration=3.0,
            warmup=1.5,
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
    assert result.warmup_seconds == 1.5
    assert result.measured_seconds == pytest.approx(result.load_seconds - 1.5, abs=0.05)
    # the warm-up's requests, all the slow ones among them, are left out of the measurements
    assert result.requests_including_warmup > stats[TOTAL].requests
    assert result.requests_including_warmup <= received
    assert stats[TOTAL].max_ms < 150
    assert result.failures_including_warmup == 0 and result.errors == ()
    assert progress and progress[0].warmup and progress[0].users > 0
    assert progress[-1].requests > 0


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
def test_refusing_target_is_aborted_early() -> None:
    plan = plan_for(refused_url(), duration=30.0)
    result = run_load(plan, grace=10)
    assert result.status == "aborted"
    assert "failed" in result.reason and "Stopped the load" in result.reason
    assert "ConnectionRefusedError" in result.reason
    assert result.load_seconds < plan.duration
    assert result.errors and "ConnectionRefusedError" in result.errors[0].error
    assert result.failures_including_warmup == result.requests_including_warmup > 0


def test_hanging_target_ends_with_failures() -> None:
    with HTTPTestServer({"/a": Route(hang=True)}) as server:
        plan = plan_for(server.url, duration=2.5, timeout=0.5)
        result = run_load(plan, grace=5)
    assert result.status in ("completed", "aborted"), result.reason
    assert result.failures_including_warmup > 0
    assert result.errors


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
    assert [e.error for e in result.errors] == ["CatchResponseError('rejected Bearer ***')"]
    text = log.read_text()
    assert "sent Bearer ***" in text and SECRET not in text


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


def test_overdue_children_are_killed(tmp_path: Path) -> None:
    # a locustfile that never lets the stop finish: the parent's deadline (duration + grace)
    # must end the child
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


def test_light_load_is_not_saturated() -> None:
    with HTTPTestServer() as server:
        plan = plan_for(server.url, users=1, spawn_rate=1, duration=2.0, wait=(0.2, 0.2))
        result = run_load(plan)
    assert result.status == "completed", result.reason
    assert result.generator.saturated is False
    assert result.generator.processes == 1
    assert "kept up" in result.generator.note
    assert dict(result.generator)["saturated"] is False


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
    with HTTPTestServer({"/hang": Route(hang=True), "/reset": Route(reset=True)}) as server:
        with pytest.raises(TimeoutError):
            _get(server.url + "/hang", timeout=0.3)
        with pytest.raises((ConnectionResetError, urllib.error.URLError)):
            _get(server.url + "/reset")
        t0 = time.monotonic()
    assert time.monotonic() - t0 < 5  # stopping releases the hanging handler
    with pytest.raises(urllib.error.URLError) as refused:
        _get(refused_url())
    assert isinstance(refused.value.reason, ConnectionRefusedError)
