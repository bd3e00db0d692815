"""The run, in a local process or a master: start the load, check it every 0.5 s (early abort,
progress), stop it, collect the workers' final reports and build the result."""

# Locust's events, Message and report functions are untyped; every call to them would need
# its own ignore.
# mypy: disable-error-code="no-untyped-call"
from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import time
from collections.abc import Mapping
from typing import Any

import gevent
import gevent.event
import gevent.pool
import locust.stats
from locust.env import Environment
from locust.exception import RPCError
from locust.rpc import Message
from locust.runners import STATE_STOPPED, MasterRunner, Runner

from ..._atomic import atomic_write_text
from ..._redact import Redactor
from ...histogram import LogHistogram
from ...units import format_duration
from ..plan import EXIT_PORT_BUSY, FINAL_REPORT_TIMEOUT, WORKER_CONNECT_TIMEOUT, LoadPlan
from ..result import (
    ErrorRecord,
    LoadResult,
    ProcessUsage,
    Status,
    request_label,
    unwrapped_error,
)
from ..usage import UsageStats
from ..worker_token import take_token, token_problem
from .abort import (
    ABORT_START,
    LatencyRule,
    RecentTicks,
    RequestCounts,
    saturated_now,
)
from .arrivals import Schedule, Slots, Windows
from .assemble import assemble_result, merge_errors, redact_endpoints
from .captured import note
from .data import exhausted_reason
from .deadline import deadline_watch, in_flight, waiting
from .failure import LoadFailure, last_line
from .gatekeeper import GatedMasterRunner
from .lean import bind
from .locust_setup import (
    MSG_HELLO,
    MSG_ROWS_END,
    MSG_WINDOW,
    REPORT_KEY,
    WORKER_REPORT_INTERVAL,
    ShapeWatch,
    StagesShape,
    UnjudgedErrors,
    all_errors,
    ignore_late_errors,
    judge_locust_stats,
    quiet_locust_stats,
)
from .monitor import UsageMonitor
from .output import EventStream
from .recorder import EndpointTally, Recorder, Timeline, keeps_locust_stats
from .report_section import report_section, with_section
from .runtime import freeze_startup_objects, orphan_watch
from .scenario import arrivals_of, build_environment, data_of, iterations_running

__all__ = ["TICK", "Controller", "unanswered_requests"]

log = logging.getLogger("pytest_stagegate.load")

TICK = 0.5  # seconds between checks


class Controller:
    """One run in local or master mode; ``run()`` returns its ``LoadResult``."""

    def __init__(
        self, plan: LoadPlan, args: argparse.Namespace, stream: EventStream, redact: Redactor
    ) -> None:
        self.plan = plan
        self.args = args
        self.stream = stream
        self.redact = redact
        self.master = args.mode == "master"
        self.expected_workers = args.workers if self.master else 0
        self.recorder = Recorder()
        self.usage = UsageMonitor("master" if self.master else "local", plan.saturation_cpu)
        self.worker_usage: dict[str, ProcessUsage] = {}
        self.worker_recent: dict[str, ProcessUsage] = {}  # each worker's latest, for abort
        self.hellos: list[str] = []
        self.finals: set[str] = set()
        self.done = gevent.event.Event()
        self.status: Status = "completed"
        self.reason = ""
        self.group = gevent.pool.Group()
        self.load_start = math.inf
        self.warmup_end = math.inf
        self.stop_time = math.inf
        self.recent = RecentTicks()
        self.counts = RequestCounts()
        self.latency = LatencyRule(
            plan.abort_latency, plan.abort_latency_factor, plan.abort_latency_for
        )
        self.recent_p95 = 0.0
        # latency over time: a master hears from its workers once a second (their reports)
        self.timeline = (
            Timeline(Windows.of(plan), ticks_per_point=math.ceil(WORKER_REPORT_INTERVAL / TICK))
            if self.master
            else Timeline(Windows.of(plan))
        )
        self.timeline_at = (0.0, 0, 0)  # the last point's end (s from the load start), counts
        self.slots: Slots | None = None  # the open model's, in a local run
        self.env: Environment | None = None
        self.runner: Runner | None = None
        self.stopping_ourselves = False
        # Locust's statistics count the judged requests only; the others' errors are kept aside
        self.unjudged_errors = UnjudgedErrors()
        self.shape_watch: ShapeWatch | None = None
        # the data file's unique rows ran out: the greenlet that ends the load once the
        # iterations with a row under way are over; each worker's latest (rows closed, running)
        self.rows_end: gevent.Greenlet | None = None
        self.worker_rows: dict[str, tuple[bool, int]] = {}
        # the workers prove this before they are counted (gatekeeper); out of the environment
        # before the project's code (a locustfile) is imported
        self.worker_token = take_token() if self.master else None

    # setup ------------------------------------------------------------------------------
    def setup(self) -> None:
        env = self.env = build_environment(self.plan)
        if self.master:
            token = self.worker_token
            problem = token_problem(token)
            if problem is not None or token is None:
                raise LoadFailure(f"The load master cannot check its workers: {problem}.")
            try:
                runner: Runner = env._create_runner(
                    GatedMasterRunner,
                    master_bind_host=self.args.master_host,
                    master_bind_port=self.args.master_port,
                    token=token,
                    target=self.plan.host,
                )
            except (SystemExit, RPCError) as e:
                # Locust exits or raises when the port is taken; the parent retries elsewhere
                if isinstance(e, RPCError) and "already in use" not in str(e):
                    raise
                raise LoadFailure(
                    f"The load master's port {self.args.master_port} was taken.",
                    exit_code=EXIT_PORT_BUSY,
                ) from None
            runner.register_message(MSG_HELLO, self._on_hello)
            env.events.worker_report.add_listener(self._on_worker_report)
        else:
            self.slots = self.recorder.slots = arrivals_of(env)
            self.recorder.feeder = data_of(env)
            env.stagegate_on_flow = self.recorder.on_flow  # type: ignore[attr-defined]
            env.events.request.add_listener(self.recorder.on_request)
            runner = env.create_local_runner()
            if not keeps_locust_stats(self.plan):
                quiet_locust_stats(runner.stats)
            else:
                judge_locust_stats(runner.stats, self.recorder, self.unjudged_errors)
            bind(env, self.recorder, runner.stats)  # the lean path records here directly
        if env.shape_class is not None:
            self.shape_watch = ShapeWatch(env.shape_class)
        self.runner = runner
        env.events.init.fire(environment=env, runner=runner, web_ui=None)
        self.usage.start(self.group)
        self.group.spawn(orphan_watch)
        self.group.spawn(deadline_watch)
        freeze_startup_objects()

    def _on_hello(self, environment: Environment, msg: Message) -> None:
        if msg.node_id not in self.hellos:
            self.hellos.append(msg.node_id)

    def _on_worker_report(self, client_id: str, data: dict[str, Any]) -> None:
        doc = data.get(REPORT_KEY)
        if not doc:
            return
        self.recorder.absorb(doc)
        self.unjudged_errors.absorb(doc.get("ue") or {})
        for value in doc.get("cv") or ():  # a worker's captured values: secrets here too
            note(str(value))
        self.worker_usage[client_id] = ProcessUsage.from_dict(doc["usage"], "worker usage")
        if doc.get("recent_usage"):
            self.worker_recent[client_id] = ProcessUsage.from_dict(
                doc["recent_usage"], "worker recent usage"
            )
        if "ir" in doc:
            self.worker_rows[client_id] = (bool(doc.get("rc")), int(doc["ir"]))
        if doc.get("final"):
            self.finals.add(client_id)

    def wait_for_workers(self) -> None:
        deadline = time.monotonic() + WORKER_CONNECT_TIMEOUT
        while len(self.hellos) < self.expected_workers:
            if time.monotonic() > deadline:
                refused = ""
                if isinstance(self.runner, GatedMasterRunner):
                    refused = self.runner.refused_summary()
                raise LoadFailure(
                    f"Only {len(self.hellos)} of {self.expected_workers} load workers connected "
                    f"within {WORKER_CONNECT_TIMEOUT:g} s.{refused}"
                )
            gevent.sleep(0.05)

    # the run ----------------------------------------------------------------------------
    def run(self) -> LoadResult:
        plan = self.plan
        self.setup()
        assert self.runner is not None and self.env is not None
        if self.master:
            self.wait_for_workers()
        history = None
        if plan.html_report:
            # library mode does not record history: without it the report's charts are empty
            locust.stats.HISTORY_STATS_INTERVAL_SEC = max(1, round(plan.duration / 300))
            history = gevent.spawn(locust.stats.stats_history, self.runner)
        self.load_start = time.time()
        self.warmup_end = self.load_start + plan.warmup
        self.recorder.begin(self.load_start, plan)
        if self.slots is not None:
            self.slots.begin(self.load_start)
        self.usage.window_start = self.warmup_end
        self.counts.add(self.load_start, 0, 0)
        if self.master:
            # relative for workers with their own clock, absolute for those sharing this one
            remaining = max(0.0, self.warmup_end - time.time())
            self.runner.send_message(
                MSG_WINDOW,
                {
                    "warmup_end": self.warmup_end,
                    "warmup_remaining": remaining,
                    # the master's plan decides: a remote worker's own plan has no report path
                    "locust_stats": keeps_locust_stats(plan),
                    **self.schedule_message(),
                },
            )
        starter = self.start_load()
        self.stream.emit("started", load_start=self.load_start, duration=plan.duration)
        self.group.spawn(self._ticker)
        self.group.spawn(self._progress)
        self.done.wait(timeout=plan.duration)
        self.stop_time = time.time()
        self.usage.window_end = self.stop_time
        self.stop_load(starter)
        result = self.result(plan.html_report)
        html = self.write_html(result) if plan.html_report else None
        if history is not None:
            history.kill(block=False)
        self.group.kill(block=False)
        return dataclasses.replace(result, html_report=html)

    def start_load(self) -> gevent.Greenlet | None:
        """Start the users: by the load shape when there is one (the gate's closed-model stages,
        timed from the load start, or a locustfile's shape; on the master, which tells the
        workers), else ``plan.users`` at ``plan.spawn_rate``. A master's ``start`` waits for
        the spawning: it runs in the greenlet returned."""
        runner, env, plan = self.runner, self.env, self.plan
        assert runner is not None and env is not None
        shape = env.shape_class
        if shape is not None:
            if isinstance(shape, StagesShape):
                shape.anchor = self.load_start
            runner.start_shape()
            return None
        if self.master:
            return gevent.spawn(runner.start, plan.users, self.spawn_rate)
        runner.start(plan.users, self.spawn_rate)
        return None

    @property
    def spawn_rate(self) -> float:
        """The open model's users all start at once: the schedule starts the iterations."""
        return float(max(self.plan.users, 1)) if self.plan.open_model else self.plan.spawn_rate

    def schedule_message(self) -> dict[str, Any]:
        """For the workers (``MSG_WINDOW``): the load start, absolute for those sharing this
        clock and as the time since for the others, the master's schedule and windows (a remote
        worker's own plan may differ), and each worker's share of the open model's slots (the
        k-th to say hello takes the slots i % W == k)."""
        plan = self.plan
        return {
            "load_start": self.load_start,
            "load_elapsed": time.time() - self.load_start,
            "schedule": {
                "warmup": plan.warmup,
                "rate": plan.rate,
                "stages": [dataclasses.asdict(st) for st in plan.stages],
                "arrival_lag": plan.arrival_lag,
                "duration": plan.duration,
            },
            "slot_of": {node: k for k, node in enumerate(self.hellos)},
            "slot_workers": len(self.hellos),
        }

    def stop_load(self, starter: gevent.Greenlet | None) -> None:
        runner = self.runner
        assert runner is not None
        self.stopping_ourselves = True
        if starter is not None and not starter.ready():
            starter.kill(block=True)
        if isinstance(runner, MasterRunner):
            runner.stop(send_stop_to_client=False)
            # quit, not stop: only a quitting worker sends a final report
            # (docs/load-engine.md, Distributed mode)
            for client in list(runner.clients.all):
                runner.server.send_to_client(Message("quit", None, client.id))
            deadline = time.monotonic() + FINAL_REPORT_TIMEOUT
            while set(self.hellos) - self.finals and time.monotonic() < deadline:
                gevent.sleep(0.05)
            missing = len(set(self.hellos) - self.finals)
            if missing:
                log.warning("%d load worker(s) sent no final report", missing)
            runner.greenlet.kill(block=True)
        else:
            # no iteration starts any more; the slots nobody could start in time are dropped
            if self.slots is not None:
                self.slots.close(time.time())
            # before quit() kills the users: their requests in flight vanish with them
            # (warm-up ones too: a hang that began in the warm-up left nothing to measure);
            # the judged ones are measured at their waits so far
            self.recorder.unfinished += unanswered_requests(self.load_start)
            # (a locustfile's requests are not tracked: their late answers still count)
            self.recorder.on_unanswered(waiting(), stop=not self.plan.locustfile)
            if not self.plan.locustfile:
                ignore_late_errors(runner.stats)
            runner.quit()

    def _stop(self, status: Status, reason: str) -> None:
        if not self.done.is_set():
            self.status = status
            self.reason = self.redact(reason)
            self.done.set()

    # periodic checks ----------------------------------------------------------------------
    def _ticker(self) -> None:
        while not self.done.is_set():
            gevent.sleep(TICK)
            try:
                self._tick()
            except Exception:
                log.exception("stagegate load check failed")

    def _tick(self) -> None:
        now = time.time()
        elapsed = now - self.load_start
        rec = self.recorder
        fresh, warm = rec.take_fresh()
        self.recent.add(now, fresh, warm)
        self.add_timeline_point(now, fresh, warm)
        self.counts.add(now, rec.run_requests, rec.run_failures)
        self.recent_p95 = self.recent.p95()
        runner = self.runner
        if runner is not None and runner.state == STATE_STOPPED and not self.stopping_ourselves:
            self._stop("completed", self._stopped_reason())
            return
        plan = self.plan
        if self.rows_end is None and rec.data_ran_out() is not None:
            # the data file's unique rows are used up: a plain end, once the iterations under
            # way are over (the checks go on meanwhile)
            self.rows_end = self.group.spawn(self._end_of_rows)
        if not plan.abort_enabled or elapsed < ABORT_START:
            return
        burst = self.counts.burst(plan.abort_min_requests, plan.abort_error_rate)
        if burst is not None:
            self._stop("aborted", burst.reason(elapsed, self._top_error()))
        check = self.latency.check(now, self.recent.measured(), self.generator_saturated_now)
        if check.held is not None:
            log.warning(
                "%s of %s is over %g times its budget, but the load generator is "
                "saturated: not stopping the load for latency.",
                check.held.metric,
                check.held.endpoint,
                plan.abort_latency_factor,
            )
        if check.breach is not None:
            self._stop("aborted", check.breach.reason(elapsed))

    def _end_of_rows(self) -> None:
        """The unique rows ran out (here or in a worker): no process hands out a row any more;
        the iterations with a row under way end (each within its requests' timeouts), then
        the load stops, its reason counting every row taken."""
        plan, rec = self.plan, self.recorder
        deadline = time.monotonic() + plan.timeout + 1.0
        if self.master:
            assert self.runner is not None
            self.runner.send_message(MSG_ROWS_END, None)
            deadline += WORKER_REPORT_INTERVAL  # their counts come with their reports

            def under_way() -> bool:
                states = [self.worker_rows.get(c, (False, 1)) for c in self.hellos]
                return any(not closed or running for closed, running in states)

        else:
            if rec.feeder is not None:
                rec.feeder.close()

            def under_way() -> bool:
                return iterations_running() > 0

        while under_way() and time.monotonic() < deadline and not self.done.is_set():
            gevent.sleep(0.05)
        self._stop("completed", exhausted_reason(plan, rec.data_ran_out() or 0))

    def add_timeline_point(
        self, now: float, fresh: Mapping[str, EndpointTally], warm: Mapping[str, LogHistogram]
    ) -> None:
        """The requests that ended since the last point, judged or not."""
        rec = self.recorder
        start, requests, failures = self.timeline_at
        # the checks go on while the workers' final reports come in: those count at the stop
        end = max(start, min(now, self.stop_time) - self.load_start)
        self.timeline.add(
            start,
            end,
            rec.run_requests - requests,
            rec.run_failures - failures,
            [ep.hist for ep in fresh.values()] + list(warm.values()),
        )
        self.timeline_at = (end, rec.run_requests, rec.run_failures)

    def _stopped_reason(self) -> str:
        """Why the load stopped before the duration, in the words of what stopped it."""
        watch = self.shape_watch
        if watch is None or watch.ended_after is None:
            return "The locustfile stopped the load before the duration ended."
        if isinstance(watch.shape, StagesShape):
            return ""  # the gate's stages are over: the run's own end
        return (
            f"The locustfile's load shape {watch.name} ended the load after "
            f"{format_duration(round(watch.ended_after, 1))}, before the gate's duration "
            f"({format_duration(self.plan.duration)}) was over."
        )

    def _top_error(self) -> str:
        runner = self.runner
        if runner is None:
            return ""
        errors = list(all_errors(runner.stats, self.unjudged_errors))
        if not errors:
            return ""
        top = max(errors, key=lambda e: e.occurrences)
        error = unwrapped_error(locust.stats.StatsError.parse_error(top.error))
        where = request_label(str(top.name), str(top.method))
        return f" (most often {error} on {where}, {top.occurrences:,} times)"

    def generator_saturated_now(self) -> bool:
        """Over the last few seconds: this process's own samples in local mode, the workers'
        latest reports in distributed mode (a worker not heard from yet does not count)."""
        if self.master:
            processes = [self.worker_recent[c] for c in self.hellos if c in self.worker_recent]
        else:
            processes = [self.usage.recent_snapshot()]
        return saturated_now(processes, self.plan.saturation_cpu)

    def _progress(self) -> None:
        interval = max(0.1, self.plan.progress_interval)
        # the open model: the rate now (its level on the schedule) and the iterations dropped
        schedule = Schedule.of(self.plan) if self.plan.open_model else None
        while not self.done.is_set():
            gevent.sleep(interval)
            if self.done.is_set():
                return
            now = time.time()
            runner = self.runner
            model: dict[str, Any] = {}
            if schedule is not None:
                level = schedule.level(now - self.load_start)
                model = {"rate": float(f"{level:.3g}"), "dropped": self.recorder.slot_counts()[1]}
            self.stream.emit(
                "progress",
                **model,
                elapsed=round(now - self.load_start, 2),
                duration=self.plan.duration,
                users=runner.user_count if runner is not None else 0,
                rps=round(self.counts.rps(), 1),
                p95_ms=round(self.recent_p95, 2),
                requests=self.recorder.run_requests,
                failures=self.recorder.run_failures,
                warmup=now < self.warmup_end,
            )

    # outputs ----------------------------------------------------------------------------
    def write_html(self, result: LoadResult) -> str | None:
        """Locust's HTML report of the judged requests, with the gate's chart of latency over
        time in a section of its own (``report_section``), redacted."""
        from locust.html import get_html_report

        path = self.plan.html_report
        assert path is not None and self.env is not None and self.runner is not None
        try:
            total = self.runner.stats.total
            if math.isfinite(self.warmup_end):  # the report's rates are over the judged time
                total.start_time = max(total.start_time, self.warmup_end)
            html = get_html_report(self.env, show_download_link=False)
            html = with_section(html, report_section(result, self.plan))
            atomic_write_text(path, self.redact(html))
        except Exception as e:
            log.warning("Could not write the HTML report to %s: %s", path, last_line(e))
            return None
        return path

    def result(self, html: str | None) -> LoadResult:
        rec = self.recorder
        # the requests since the last tick, the workers' final reports
        self.add_timeline_point(time.time(), *rec.take_fresh())
        iterations_due, dropped = rec.slot_counts()
        processes = [self.usage.snapshot()]
        for i, client in enumerate(self.hellos, start=1):
            role = f"worker {i}"
            usage = self.worker_usage.get(client)
            processes.append(UsageStats().usage(role) if usage is None else _with_role(usage, role))
        return assemble_result(
            self.plan,
            status=self.status,
            reason=self.reason,
            load_start=self.load_start,
            warmup_end=self.warmup_end,
            stop_time=self.stop_time,
            finished=time.time(),
            workers=self.expected_workers,
            run_requests=rec.run_requests,
            run_failures=rec.run_failures,
            endpoints=redact_endpoints(rec.measured, self.redact),
            errors=self._errors(),
            processes=processes,
            html_report=html,
            unanswered=rec.unfinished,
            unanswered_measured=rec.unanswered_measured,
            iterations_due=iterations_due,
            dropped=dropped,
            stage_endpoints={
                k: redact_endpoints(eps, self.redact) for k, eps in rec.stage_measured.items()
            },
            stage_counts=rec.stage_totals([st.judge for st in self.plan.stages]),
            stage_slots=rec.stage_slot_counts(),
            timeline=self.timeline.points(),
            flows=rec.flows_measured,
        )

    def _errors(self) -> tuple[ErrorRecord, ...]:
        if self.runner is None:
            return ()
        return merge_errors(
            (
                (
                    str(e.name),
                    str(e.method),
                    locust.stats.StatsError.parse_error(e.error),
                    int(e.occurrences),
                )
                for e in all_errors(self.runner.stats, self.unjudged_errors)
            ),
            self.redact,
        )


def unanswered_requests(since: float) -> int:
    """The requests of the declarative scenario still waiting for an answer now that started at
    or after ``since`` (epoch seconds): what the whole-request watchdog (``deadline``) holds.
    A hang longer than the load leaves nothing else behind. A locustfile's own requests are
    not tracked."""
    return in_flight(since)


def _with_role(usage: ProcessUsage, role: str) -> ProcessUsage:
    return dataclasses.replace(usage, role=role)
