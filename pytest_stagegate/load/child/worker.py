"""Worker mode: generate load for a master, and send it this process's measurements (histograms
and CPU) with every report, a final one when the master says quit."""

# Locust's events and Message are untyped; every call to them would need its own ignore.
# mypy: disable-error-code="no-untyped-call"
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import os
import time
from collections.abc import Mapping
from typing import Any

import gevent.pool
from locust.env import Environment
from locust.rpc import Message
from locust.runners import STATE_STOPPED, WorkerRunner
from locust.stats import RequestStats

from ..plan import LoadPlan, PlannedStage
from ..worker_token import take_token, token_problem
from .arrivals import Schedule, Windows
from .captured import take_new
from .controller import unanswered_requests
from .deadline import deadline_watch, waiting
from .failure import EXIT_OK, LoadFailure
from .gatekeeper import GatedWorkerRunner
from .lean import bind
from .locust_setup import (
    MSG_HELLO,
    MSG_ROWS_END,
    MSG_WINDOW,
    REPORT_KEY,
    UnjudgedErrors,
    ignore_late_errors,
    judge_locust_stats,
    quiet_locust_stats,
)
from .monitor import UsageMonitor
from .recorder import Recorder, keeps_locust_stats
from .runtime import freeze_startup_objects, orphan_watch
from .scenario import arrivals_of, build_environment, data_of, iterations_running

__all__ = ["master_schedule", "run_worker"]

log = logging.getLogger("pytest_stagegate.load")


def master_schedule(plan: LoadPlan, data: Mapping[str, Any]) -> LoadPlan:
    """``plan`` with the master's warm-up, rate, stages and arrival lag from its window
    message (a remote worker's own stagegate.yaml may differ; the master's plan decides); as it
    is for a master that sends none."""
    sched = data.get("schedule")
    if not isinstance(sched, Mapping):
        return plan
    return dataclasses.replace(
        plan,
        warmup=float(sched.get("warmup", plan.warmup)),
        rate=None if sched.get("rate") is None else float(sched["rate"]),
        stages=[PlannedStage(**st) for st in sched.get("stages", [])],
        arrival_lag=float(sched.get("arrival_lag", plan.arrival_lag)),
        duration=float(sched.get("duration", plan.duration)),
    )


def run_worker(plan: LoadPlan, args: argparse.Namespace) -> int:
    # out of the environment before the project's code (a locustfile) is imported
    token = take_token()
    problem = token_problem(token)
    if problem is not None or token is None:
        raise LoadFailure(f"The load worker cannot prove itself to its master: {problem}.")
    env = build_environment(plan)
    recorder = Recorder()
    usage = UsageMonitor("worker", plan.saturation_cpu)
    # listeners before the runner exists: the runner starts reporting as soon as it connects
    env.events.request.add_listener(recorder.on_request)
    slots = recorder.slots = arrivals_of(env)  # the open model's share of this worker
    env.stagegate_on_flow = recorder.on_flow  # type: ignore[attr-defined]
    feeder = recorder.feeder = data_of(env)  # the data file's rows: this worker's share
    if feeder is not None:
        feeder.waiting = True  # no row before the master says which share is this worker's
    # Locust's statistics (the master's HTML report) count the judged requests only; the
    # others' errors go with the reports (``judge_locust_stats``)
    unjudged_errors = UnjudgedErrors()

    def on_stopping(environment: Environment, **_: Any) -> None:
        usage.window_end = time.time()
        if slots is not None:  # no iteration starts any more; the late unpulled are dropped
            slots.close(time.time())
        # before the users are killed: their requests in flight vanish with them
        recorder.unfinished += unanswered_requests(0.0)  # this run's, warm-up included
        # the judged ones at their waits so far (a locustfile's requests are not tracked:
        # their late answers still count)
        recorder.on_unanswered(waiting(), stop=not plan.locustfile)
        if not plan.locustfile and environment.runner is not None:
            ignore_late_errors(environment.runner.stats)

    env.events.test_stopping.add_listener(on_stopping)
    runner_ref: list[WorkerRunner] = []

    def on_report(client_id: str, data: dict[str, Any]) -> None:
        doc = recorder.drain()
        doc["ue"] = unjudged_errors.drain()  # the errors Locust's statistics leave out
        doc["cv"] = take_new()  # captured values: secrets for the master's redactor too
        doc["usage"] = usage.snapshot().to_dict()
        doc["recent_usage"] = usage.recent_snapshot().to_dict()  # the master's "saturated now?"
        # the report sent after stop() holds every request this worker will ever make
        doc["final"] = bool(runner_ref) and runner_ref[0].state == STATE_STOPPED
        if feeder is not None:  # the master ends the load once these are over (MSG_ROWS_END)
            doc["ir"] = iterations_running()  # iterations with a data row under way
            doc["rc"] = feeder.ran_out  # no row is handed out any more
        data[REPORT_KEY] = doc

    env.events.report_to_master.add_listener(on_report)
    group = gevent.pool.Group()
    group.spawn(orphan_watch)
    group.spawn(deadline_watch)
    # Locust's create_worker_runner, with the token handshake (gatekeeper): no cache of
    # response times on a worker
    env.stats = RequestStats(use_response_times_cache=False)
    runner = env._create_runner(
        GatedWorkerRunner,
        master_host=args.master_host,
        master_port=args.master_port,
        token=token,
        target=plan.host,  # stated in public form: the master refuses another target
    )
    runner_ref.append(runner)
    bind(env, recorder, runner.stats)  # the lean path records here directly

    def on_window(environment: Environment, msg: Message) -> None:
        data = msg.data
        if "load_start" not in data:  # a master of 0.2 sends the warm-up's end only
            if args.shared_clock:
                recorder.warmup_end = float(data["warmup_end"])
            else:
                recorder.warmup_end = time.time() + float(data["warmup_remaining"])
        else:
            if args.shared_clock:  # the master's machine: its absolute time is exact
                load_start = float(data["load_start"])
            else:  # another machine's clock may be off: count from the message's arrival
                load_start = time.time() - float(data["load_elapsed"])
            master_plan = master_schedule(plan, data)
            recorder.begin(load_start, master_plan)
            if slots is not None:
                share = data.get("slot_of", {}).get(runner.client_id)
                if share is None:
                    log.warning("The load master gave this worker no share of the arrivals.")
                else:
                    slots.schedule = Schedule.of(master_plan)
                    slots.windows = Windows.of(master_plan)
                    slots.lag = master_plan.arrival_lag
                    slots.begin(load_start, int(share), int(data["slot_workers"]))
        if feeder is not None:
            share = data.get("slot_of", {}).get(runner.client_id)
            if share is None:
                log.warning("The load master gave this worker no share of the data file's rows.")
            else:
                feeder.share(int(share), int(data["slot_workers"]))
        usage.window_start = recorder.warmup_end
        # sent before the users start; a worker's own locustfile keeps them whatever the master says
        if not msg.data.get("locust_stats", True) and not keeps_locust_stats(plan):
            quiet_locust_stats(runner.stats)
        else:
            judge_locust_stats(runner.stats, recorder, unjudged_errors)

    runner.register_message(MSG_WINDOW, on_window)

    def on_rows_end(environment: Environment, msg: Message) -> None:
        if feeder is not None:
            feeder.close()

    runner.register_message(MSG_ROWS_END, on_rows_end)
    env.events.init.fire(environment=env, runner=runner, web_ui=None)
    usage.start(group)
    freeze_startup_objects()
    runner.send_message(MSG_HELLO, {"pid": os.getpid()})
    runner.greenlet.join()
    group.kill(block=False)
    # zmq sends from a background thread: without a lingering close and a context term, the
    # final report queued by "quit" may die with the process
    with contextlib.suppress(Exception):
        sock = runner.client.socket
        sock.close(linger=2000)
        sock.context.term()
    return EXIT_OK
