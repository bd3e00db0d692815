"""The load child process: Locust as a library, one bounded run, one result file.

    python -m pytest_stagegate.load.child --result PATH [--mode local|master|worker]
        [--workers N] [--master-host HOST] [--master-port PORT] [--shared-clock]   < plan.json

Only this module imports locust (which monkey-patches the standard library with gevent); the
pytest process starts it through ``load.process`` and never imports it.

Protocol with the parent
    stdin   the ``LoadPlan`` as JSON, read to EOF (never written to disk: it carries secrets).
    stdout  JSON lines only: ``{"event": "started", ...}`` once the load starts, then
            ``{"event": "progress", "elapsed", "duration", "users", "rps", "p95_ms",
            "requests", "failures", "warmup"}`` every ``plan.progress_interval`` seconds
            (local and master only). Anything else printed, by Locust or a locustfile, is sent
            to stderr so it cannot corrupt this stream.
    stderr  logs (WARNING and above), with ``plan.secrets`` replaced by ``***``.
    --result the result JSON (see ``load.result``), written atomically by the local or master
            process, on success, abort and error alike. Exit code 0 when it was written,
            3 when the master's port was taken (the parent retries with another), 1 otherwise.
            Workers write no result; the master collects their measurements.

Modes
    local   one process generates the load.
    master  waits (at most 30 s) for ``--workers`` workers, tells them when the warm-up ends,
            runs the load through them and collects their histograms; generates no load itself.
    worker  generates load for the master on ``--master-host:--master-port``.

    The warm-up's end reaches the workers as the seconds of warm-up left when the master sent
    it: each worker ends its warm-up that long after it receives the message, by its own clock,
    so a remote worker whose clock is off measures the same window (late by the message's
    transit, never by the skew). A worker started with ``--shared-clock`` (the gate's local
    workers, on the master's machine) uses the master's absolute time instead: exact.

The scenario
    Declarative (``plan.requests``): one FastHttpUser (or HttpUser, ``user_class: http``) with a
    task per request, weighted, named by the request name, with the target's headers plus the
    request's, ``plan.timeout`` per request, TLS verified unless ``plan.verify_tls`` is false,
    and ``expect_status`` checked when given (otherwise any status below 400 passes).

    A locustfile (``plan.locustfile``) is imported like Locust does; its User classes run with
    ``host = plan.host``. The target reaches it in two ways:
      * ``plan.headers`` become default headers: for a FastHttpUser subclass that leaves
        ``default_headers`` unset, as its ``default_headers``; for an HttpUser subclass, added
        to ``self.client.headers`` when the user is created (its ``on_start`` can still change
        them). A FastHttpUser subclass that keeps Locust's defaults for ``network_timeout``,
        ``connection_timeout`` and ``insecure`` gets the target's timeout and TLS setting too.
      * ``self.environment.stagegate_target`` is a dict with ``name``, ``base_url``,
        ``headers`` and ``vars`` (the target's free-form ``vars`` from stagegate.yaml), e.g.
        ``self.environment.stagegate_target["vars"]["product_id"]``, in every process.
    The locustfile's ``events.init`` listeners run as under the ``locust`` command; load shape
    classes are ignored (the gate owns users and duration); ``events.quitting`` is not fired
    (``test_stop`` is, in every process).

Measurement
    Every request's raw time goes into a ``LogHistogram`` per request name, counted in the
    measured window only if it *started* after the warm-up; workers ship their histograms to
    the master with every report (every second, not 3 s) and a final one when they quit.
    Memory stays flat: histograms, never sample lists. Everything the gate judges comes from
    these histograms.
    Locust keeps statistics of its own, with times rounded to 2 significant digits (a true
    106 ms shows as 110). Where they are still used, ``locust.stats.bucket_response_time``
    rounds to 3 digits instead, in every process: for the HTML report (``html_report``) and
    for a locustfile, whose own code may read ``environment.stats``. A declarative scenario
    without a report does not need them: Locust's per-request statistics are switched off
    there (``quiet_locust_stats``; its error list is kept), which spares every request the
    work the histograms already do.

Early abort (local and master, checked every 0.5 s once 2 s of load have passed)
    * errors: over the last 5 s (warm-up included: a broken deployment is broken then too),
      at least ``abort_min_requests`` requests and a failed share of at least
      ``abort_error_rate``; whether or not the load generator is saturated;
    * latency: for each ``plan.abort_latency`` limit, the metric over the last 3 s of
      post-warm-up requests (at least 5 of them) above ``abort_latency_factor`` times the limit
      for ``abort_latency_for`` seconds in a row, while the load generator is not saturated.
      A saturated generator reports its own queueing as latency, which makes latency results
      inconclusive, while an "aborted" run always fails the gate: so a check that finds the
      generator saturated right now (the rule below applied to the last 3 s of samples: this
      process's own in local mode, the workers' latest reports in distributed mode) does not
      abort and starts the "in a row" count over; the run goes on, and its end judges it.
    Either abort stops the load; the result's status is "aborted" and its reason says why.

Saturation
    Every load process samples its own CPU (psutil, % of one core) every 0.5 s and how late
    gevent wakes a 100 ms sleep (loop lag). A load-generating process is saturated when, over
    the measured window, at least 2 samples and 25% of them were at or above
    ``plan.saturation_cpu``, or the loop lag exceeded 50 ms in at least 3 samples and 5% of them
    (``load.usage``). The master's own figures are reported but do not count: it only
    aggregates.

Secrets
    ``plan.secrets`` are replaced by ``***`` in everything the child writes: its log, the HTML
    report, and every part of the result that comes from requests (endpoint names and
    methods, error names, methods and texts, the reason). Endpoints whose names become equal
    once redacted are merged.
"""

# Locust's events, Message and report functions are untyped; every call to them would need
# its own ignore.
# mypy: disable-error-code="no-untyped-call"
from __future__ import annotations

# isort: off
# Locust first: it monkey-patches the standard library, which must happen before anything
# imports ssl, socket or threading machinery (field notes).
import locust
import locust.runners
import locust.stats

# isort: on
import argparse
import collections
import contextlib
import gc
import itertools
import json
import logging
import math
import os
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

import gevent
import gevent.event
import gevent.pool
import psutil
from locust import HttpUser, between
from locust.contrib.fasthttp import FastHttpUser
from locust.env import Environment
from locust.exception import RPCError
from locust.rpc import Message
from locust.runners import STATE_STOPPED, MasterRunner, Runner, WorkerRunner
from locust.user import User

from ... import defaults
from ..._atomic import atomic_write_text
from ..._redact import Redactor
from ...histogram import LogHistogram
from ..plan import (
    EXIT_PORT_BUSY,
    FINAL_REPORT_TIMEOUT,
    WORKER_CONNECT_TIMEOUT,
    LatencyLimit,
    LoadPlan,
    PlannedRequest,
)
from ..usage import RecentUsage, UsageStats, judge_saturation

log = logging.getLogger("pytest_stagegate.load")

RESULT_SCHEMA = 1
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_ORPHANED = 70

WORKER_REPORT_INTERVAL = 1.0  # Locust's 3 s makes early abort and progress lag behind
TICK = 0.5
ABORT_START = 2.0  # seconds of load before the first abort check
ERROR_WINDOW = 5.0
RECENT_WINDOW = 3.0  # latency and saturation "now", for early abort
LATENCY_MIN_SAMPLES = 5
CPU_SAMPLE_INTERVAL = 0.5
LAG_PROBE = 0.1

MSG_HELLO = "stagegate_hello"  # worker -> master: my listeners are in place
MSG_WINDOW = "stagegate_window"  # master -> workers: when the warm-up ends
REPORT_KEY = "stagegate"


class LoadFailure(Exception):
    """The run cannot go on; ``str()`` is the reason for the result."""

    def __init__(self, reason: str, exit_code: int = EXIT_OK) -> None:
        super().__init__(reason)
        self.exit_code = exit_code


# --- precise Locust statistics -------------------------------------------------------------
def bucket_response_time_3sig(response_time: float) -> float:
    """Round to 3 significant digits: 106.4 -> 106, 10.64 -> 10.6, 1064 -> 1060.

    Replaces ``locust.stats.bucket_response_time`` (2 digits). Keys stay ints from 100 ms up,
    as Locust returns them; below, floats, which Locust's sorting, percentiles, msgpack
    transport and reports all accept. Locust calls it twice per request, so a float time from
    0.1 ms to 10 s takes a shortcut around ``round(x, ndigits)``, which is slow; a time on
    or next to a tie (1.125, 100.5), or an int, goes through ``round``, so the keys are
    always the ones ``round`` gives.
    """
    if type(response_time) is float and 0.1 <= response_time < 9995.0:
        if response_time >= 100.0:
            scale = 1.0 if response_time < 999.5 else 0.1
        elif response_time >= 10.0:
            scale = 10.0 if response_time < 99.95 else 0.0
        elif response_time >= 1.0:
            scale = 100.0 if response_time < 9.995 else 0.0
        else:
            scale = 1000.0 if response_time < 0.9995 else 0.0
        if scale:
            scaled = response_time * scale
            whole = int(scaled)
            fraction = scaled - whole
            if abs(fraction - 0.5) > 1e-6:  # not a tie, so no rounding rule to disagree on
                rounded = whole + 1 if fraction > 0.5 else whole
                if scale == 1.0:
                    return rounded
                if scale == 0.1:
                    return rounded * 10
                return rounded / scale
    if response_time <= 0:
        return 0
    digits = 2 - math.floor(math.log10(response_time))
    rounded_time = round(response_time, digits)
    return int(rounded_time) if rounded_time >= 100 else rounded_time


def keeps_locust_stats(plan: LoadPlan) -> bool:
    """Whether Locust's own per-request statistics are needed (see Measurement above)."""
    return bool(plan.html_report or plan.locustfile)


def _ignore_request(*args: Any, **kwargs: Any) -> None:
    return None


def quiet_locust_stats(stats: locust.stats.RequestStats) -> None:
    """Stop Locust recording requests in ``stats``; failures still reach ``stats.errors``.

    Locust's runner logs each request with ``stats.log_request`` (and a failure with
    ``stats.log_error`` besides): shadowing the one method on this instance leaves the rest,
    the error list and the workers' reports, as they are.
    """
    stats.log_request = _ignore_request  # type: ignore[method-assign]


def install_locust_settings() -> None:
    locust.stats.bucket_response_time = bucket_response_time_3sig  # type: ignore[assignment]
    locust.runners.WORKER_REPORT_INTERVAL = WORKER_REPORT_INTERVAL


# --- output: redaction, logging, the progress stream ---------------------------------------
class _RedactingFormatter(logging.Formatter):
    def __init__(self, redact: Redactor) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self._redact = redact

    def format(self, record: logging.LogRecord) -> str:
        return self._redact(super().format(record))


class _RedactingStream:
    """stderr for Python code: tracebacks printed by gevent's hub bypass logging."""

    def __init__(self, stream: IO[str], redact: Redactor) -> None:
        self._stream = stream
        self._redact = redact

    def write(self, text: str) -> int:
        self._stream.write(self._redact(text))
        return len(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def setup_io(redact: Redactor) -> IO[str]:
    """Keep the real stdout for JSON lines only; everything else writes to stderr, redacted."""
    events_out = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)  # C extensions and anything writing to fd 1 land in stderr
    sys.stderr = _RedactingStream(sys.stderr, redact)
    sys.stdout = sys.stderr  # print() from Locust or a locustfile
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_RedactingFormatter(redact))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    # INFO: Locust's own account of the run (ramp-up, stop) is what stagegate-load.log is for.
    root.setLevel(logging.INFO)
    return events_out


class EventStream:
    def __init__(self, out: IO[str]) -> None:
        self._out = out

    def emit(self, event: str, **fields: Any) -> None:
        try:
            self._out.write(json.dumps({"event": event, **fields}) + "\n")
            self._out.flush()
        except (OSError, ValueError):
            pass  # the parent stopped reading: it is killing us or gone; nothing to tell


# --- the scenario --------------------------------------------------------------------------
def _task(req: PlannedRequest, plan: LoadPlan, *, http: bool) -> Callable[[Any], None]:
    method = req.method.upper()
    path, name = req.path, req.name
    expect = frozenset(req.expect_status)
    kwargs: dict[str, Any] = {"name": name}
    headers = {**plan.headers, **req.headers}
    if headers:  # none: spare the client a merge per request
        kwargs["headers"] = headers
    if req.json is not None:
        kwargs["json"] = req.json
    if http:  # requests has no session-wide timeout or verify; FastHttpUser takes them per class
        kwargs["timeout"] = plan.timeout
        kwargs["verify"] = plan.verify_tls
    wanted = "/".join(str(s) for s in sorted(expect))

    if not expect:

        def task(user: Any) -> None:
            user.client.request(method, path, **kwargs)

    else:

        def task(user: Any) -> None:
            with user.client.request(method, path, catch_response=True, **kwargs) as resp:
                code = resp.status_code
                # status 0: no response at all; keep the connection error Locust recorded
                if code in expect:
                    resp.success()
                elif code:
                    resp.failure(f"HTTP {code}, expected {wanted}")

    bounded = _within_timeout(task, method, name, plan.timeout)
    bounded.__name__ = name
    bounded.__qualname__ = name
    return bounded


class RequestTimedOut(Exception):
    """A request, body included, took longer than the target's timeout."""


# The requests in flight, per user greenlet. One watchdog greenlet per load
# process checks them; a Timeout object per request would cost more than the watch.
_IN_FLIGHT: dict[Any, tuple[float, int, float]] = {}  # greenlet: (deadline, token, timeout)
_WATCH_INTERVAL = 0.1
_tokens = itertools.count()


def _within_timeout(
    task: Callable[[Any], None], method: str, name: str, timeout: float
) -> Callable[[Any], None]:
    """Bound a whole request, body included, by the target's timeout.

    Locust's timeouts (geventhttpclient's, requests') apply to each socket read: a body that
    drips a byte a second never times out, and a request still running when the load stops is
    never counted, so a dripping deployment would measure nothing at all. An overdue request
    gets ``RequestTimedOut`` thrown into it by ``_deadline_watch`` (within 0.1 s of its
    deadline); Locust's clients record it as the request's failure, and a client that lets it
    through is caught here and recorded once.
    """

    def bounded(user: Any) -> None:
        me = gevent.getcurrent()
        _IN_FLIGHT[me] = (time.monotonic() + timeout, next(_tokens), timeout)
        try:
            task(user)
        except RequestTimedOut as exc:
            user.environment.events.request.fire(
                request_type=method,
                name=name,
                response_time=timeout * 1000,
                response_length=0,
                response=None,
                context={},
                exception=exc,
            )
        finally:
            _IN_FLIGHT.pop(me, None)

    return bounded


def _deadline_watch() -> None:
    """Throw ``RequestTimedOut`` into every request past its deadline (see _within_timeout)."""
    hub = gevent.get_hub()
    while True:
        gevent.sleep(_WATCH_INTERVAL)
        now = time.monotonic()
        for glet, (deadline, token, timeout) in list(_IN_FLIGHT.items()):
            if now > deadline:
                _IN_FLIGHT[glet] = (math.inf, token, timeout)  # throw once
                hub.loop.run_callback(_expire, glet, token, timeout)


def _expire(glet: Any, token: int, timeout: float) -> None:
    entry = _IN_FLIGHT.get(glet)
    if entry is not None and entry[1] == token and not glet.dead:  # still in that request
        glet.throw(RequestTimedOut(f"no complete response within {timeout:g} s"))


def declarative_user(plan: LoadPlan) -> type[User]:
    if not plan.requests:
        raise LoadFailure("The load plan has neither requests nor a locustfile: nothing to run.")
    http = plan.user_class == "http"
    base: type[User] = HttpUser if http else FastHttpUser
    attrs: dict[str, Any] = {
        "host": plan.host,
        "wait_time": between(*plan.wait),
        "tasks": {_task(r, plan, http=http): max(1, int(r.weight)) for r in plan.requests},
        "__module__": __name__,
    }
    if not http:
        attrs.update(
            network_timeout=plan.timeout,
            connection_timeout=plan.timeout,
            insecure=not plan.verify_tls,
        )
    return type("StagegateUser", (base,), attrs)


def _overrides(cls: type, attr: str, base: type) -> bool:
    """Whether ``cls`` sets ``attr`` itself somewhere below ``base``."""
    for klass in cls.__mro__:
        if klass is base:
            return False
        if attr in vars(klass):
            return True
    return False


def adapt_user_class(cls: type[User], plan: LoadPlan) -> type[User]:
    """``cls`` with the target's headers (and timeout, TLS) where it does not set its own."""
    attrs: dict[str, Any] = {"__module__": cls.__module__, "__qualname__": cls.__qualname__}
    if issubclass(cls, FastHttpUser):
        if plan.headers and getattr(cls, "default_headers", None) is None:
            attrs["default_headers"] = dict(plan.headers)
        for attr in ("network_timeout", "connection_timeout"):
            if not _overrides(cls, attr, FastHttpUser):
                attrs[attr] = plan.timeout
        if not _overrides(cls, "insecure", FastHttpUser):
            attrs["insecure"] = not plan.verify_tls
    elif issubclass(cls, HttpUser) and plan.headers:
        headers = dict(plan.headers)

        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            cls.__init__(self, *args, **kwargs)
            self.client.headers.update(headers)

        attrs["__init__"] = __init__
    if len(attrs) == 2:
        return cls
    return type(cls.__name__, (cls,), attrs)


def _last_line(exc: BaseException) -> str:
    if isinstance(exc, SyntaxError):
        where = f" (line {exc.lineno})" if exc.lineno else ""
        return f"SyntaxError: {exc.msg}{where}"
    lines = traceback.format_exception_only(type(exc), exc)
    return lines[-1].strip() if lines else type(exc).__name__


def locustfile_users(plan: LoadPlan) -> list[type[User]]:
    from locust.util.load_locustfile import load_locustfile

    path = plan.locustfile or ""
    if not os.path.isfile(path):
        raise LoadFailure(f"The locustfile {path} does not exist.")
    try:
        user_classes, shapes = load_locustfile(os.path.abspath(path))
    except BaseException as e:  # SystemExit too: a locustfile may call sys.exit()
        raise LoadFailure(f"Could not import the locustfile {path}: {_last_line(e)}") from None
    if not user_classes:
        raise LoadFailure(
            f"The locustfile {path} defines no User class: it needs a subclass of "
            "locust.HttpUser, locust.FastHttpUser or locust.User with tasks (not abstract)."
        )
    if shapes:
        log.warning("The locustfile's load shape is ignored: the gate sets users and duration.")
    return [adapt_user_class(cls, plan) for cls in user_classes.values()]


def build_environment(plan: LoadPlan) -> Environment:
    users = locustfile_users(plan) if plan.locustfile else [declarative_user(plan)]
    env = Environment(
        user_classes=users,
        host=plan.host,
        events=locust.events,  # the locustfile's ``from locust import events`` listeners
        locustfile=os.path.basename(plan.locustfile) if plan.locustfile else "stagegate",
        stop_timeout=0.0,
    )
    env.stagegate_target = {  # type: ignore[attr-defined]
        "name": plan.target_name,
        "base_url": plan.host,
        "headers": dict(plan.headers),
        "vars": dict(plan.vars),
    }
    return env


# --- measurement ---------------------------------------------------------------------------
class _Endpoint:
    __slots__ = ("failures", "hist", "methods", "requests")

    def __init__(self) -> None:
        self.methods: set[str] = set()
        self.requests = 0
        self.failures = 0
        self.hist = LogHistogram()

    def add(self, other: _Endpoint) -> None:
        self.methods.update(other.methods)
        self.requests += other.requests
        self.failures += other.failures
        self.hist.merge(other.hist)


class Recorder:
    """Every request of the run: per request name, the measured window's requests since the
    last ``take_fresh`` (and the warm-up's times, for the progress line), the measured window
    so far, and counters for the whole run.

    Each request is recorded in one histogram only (it runs once per request, inside the load
    generator); the periodic checks take the fresh part, keep it for the recent past (early
    abort, progress) and fold it into the measured window. In a local or worker process it is
    fed by ``events.request``; on the master, by the workers' reports (``absorb``).
    """

    def __init__(self) -> None:
        self.warmup_end = math.inf  # unknown until told: until then everything is warm-up
        self.measured: dict[str, _Endpoint] = {}  # folded in by take_fresh()
        self.fresh: dict[str, _Endpoint] = {}
        self.fresh_warmup: dict[str, LogHistogram] = {}
        self.run_requests = 0
        self.run_failures = 0

    def on_request(
        self,
        request_type: str,
        name: str,
        response_time: float | None,
        exception: BaseException | None = None,
        start_time: float | None = None,
        **_: Any,
    ) -> None:
        self.run_requests += 1
        failed = exception is not None
        if failed:
            self.run_failures += 1
        if response_time is not None and not (response_time >= 0 and response_time < math.inf):
            response_time = None  # a custom client's garbage must not poison the histograms
        if start_time is None:
            start_time = time.time() - (response_time or 0.0) / 1000.0
        if start_time >= self.warmup_end:
            ep = self.fresh.get(name)
            if ep is None:
                ep = self.fresh[name] = _Endpoint()
            ep.methods.add(request_type)
            ep.requests += 1
            if failed:
                ep.failures += 1
            if response_time is not None:
                ep.hist.record(response_time)
        elif response_time is not None:
            warm = self.fresh_warmup.get(name)
            if warm is None:
                warm = self.fresh_warmup[name] = LogHistogram()
            warm.record(response_time)

    def take_fresh(self) -> tuple[dict[str, _Endpoint], dict[str, LogHistogram]]:
        """The measured and warm-up requests since the last call, by name; the measured ones
        are folded into ``measured``."""
        fresh, warm = self.fresh, self.fresh_warmup
        self.fresh, self.fresh_warmup = {}, {}
        for name, ep in fresh.items():
            into = self.measured.get(name)
            if into is None:
                into = self.measured[name] = _Endpoint()
            into.add(ep)
        return fresh, warm

    def drain(self) -> dict[str, Any]:
        """Everything since the last drain, msgpack-safe, then forget it (worker reports)."""
        doc = {
            "m": {
                name: [sorted(ep.methods), ep.requests, ep.failures, ep.hist.to_dict()]
                for name, ep in self.fresh.items()
            },
            "w": {name: h.to_dict() for name, h in self.fresh_warmup.items()},
            "rn": self.run_requests,
            "rf": self.run_failures,
        }
        self.fresh, self.fresh_warmup = {}, {}
        self.run_requests = self.run_failures = 0
        return doc

    def absorb(self, doc: Mapping[str, Any]) -> None:
        for name, (methods, requests, failures, hist) in doc.get("m", {}).items():
            ep = self.fresh.get(name)
            if ep is None:
                ep = self.fresh[name] = _Endpoint()
            ep.methods.update(methods)
            ep.requests += int(requests)
            ep.failures += int(failures)
            ep.hist.merge(LogHistogram.from_dict(hist))
        for name, hist in doc.get("w", {}).items():
            warm = self.fresh_warmup.get(name)
            if warm is None:
                warm = self.fresh_warmup[name] = LogHistogram()
            warm.merge(LogHistogram.from_dict(hist))
        self.run_requests += int(doc.get("rn", 0))
        self.run_failures += int(doc.get("rf", 0))


class UsageMonitor:
    """This process's CPU and event-loop lag: whole run, measured window, and the last
    ``RECENT_WINDOW`` seconds (is it saturated now?)."""

    def __init__(self, role: str, saturation_cpu: float) -> None:
        self.role = role
        self.threshold = saturation_cpu
        self.window_start = math.inf
        self.window_end = math.inf
        self.whole = UsageStats()
        self.measured = UsageStats()
        self.recent = RecentUsage(RECENT_WINDOW, saturation_cpu)

    def start(self, group: gevent.pool.Group) -> None:
        group.spawn(self._cpu_loop)
        group.spawn(self._lag_loop)

    def _targets(self) -> tuple[UsageStats, ...]:
        now = time.time()
        if self.window_start <= now < self.window_end:
            return (self.whole, self.measured)
        return (self.whole,)

    def _cpu_loop(self) -> None:
        proc = psutil.Process()
        proc.cpu_percent(None)
        while True:
            gevent.sleep(CPU_SAMPLE_INTERVAL)
            pct = proc.cpu_percent(None)
            self.recent.add_cpu(time.monotonic(), pct)
            for s in self._targets():
                s.add_cpu(pct, self.threshold)

    def _lag_loop(self) -> None:
        while True:
            t0 = time.perf_counter()
            gevent.sleep(LAG_PROBE)
            lag = max(0.0, (time.perf_counter() - t0 - LAG_PROBE) * 1000.0)
            self.recent.add_lag(time.monotonic(), lag)
            for s in self._targets():
                s.add_lag(lag)

    def snapshot(self) -> dict[str, Any]:
        # the measured window is what the verdict judges; a run aborted in its warm-up has none
        stats = self.measured if self.measured.cpu_n >= 2 else self.whole
        return stats.to_dict(self.role)

    def recent_snapshot(self) -> dict[str, Any]:
        return self.recent.to_dict(self.role)


def _metric(hist: LogHistogram, metric: str) -> float | None:
    if metric == "avg":
        return hist.mean_ms
    if metric == "max":
        return hist.max_ms
    if metric.startswith("p"):
        try:
            p = float(metric[1:])
        except ValueError:
            return None
        if 0 <= p <= 100:
            return hist.percentile(p)
    return None


def _merge(hists: Iterable[LogHistogram]) -> LogHistogram:
    total = LogHistogram()
    for h in hists:
        total.merge(h)
    return total


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="milliseconds")


def _fmt_s(seconds: float) -> str:
    return f"{seconds:.1f} s"


# --- the controller: local or master -------------------------------------------------------
class Controller:
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
        self.worker_usage: dict[str, dict[str, Any]] = {}
        self.worker_recent: dict[str, dict[str, Any]] = {}  # each worker's latest, for abort
        self.hellos: list[str] = []
        self.finals: set[str] = set()
        self.done = gevent.event.Event()
        self.status = "completed"
        self.reason = ""
        self.group = gevent.pool.Group()
        self.load_start = math.inf
        self.warmup_end = math.inf
        self.stop_time = math.inf
        # per tick: (time, the measured window's requests, the warm-up's times) by name
        self.ticks: collections.deque[
            tuple[float, dict[str, _Endpoint], dict[str, LogHistogram]]
        ] = collections.deque()
        self.counts: collections.deque[tuple[float, int, int]] = collections.deque()
        self.latency_since: dict[int, float] = {}
        self.latency_held = False  # a latency abort was held back: the generator was saturated
        self.recent_p95 = 0.0
        self.env: Environment | None = None
        self.runner: Runner | None = None
        self.stopping_ourselves = False

    # setup ------------------------------------------------------------------------------
    def setup(self) -> None:
        env = self.env = build_environment(self.plan)
        if self.master:
            try:
                runner: Runner = env.create_master_runner(
                    master_bind_host=self.args.master_host, master_bind_port=self.args.master_port
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
            env.events.request.add_listener(self.recorder.on_request)
            runner = env.create_local_runner()
            if not keeps_locust_stats(self.plan):
                quiet_locust_stats(runner.stats)
        self.runner = runner
        env.events.init.fire(environment=env, runner=runner, web_ui=None)
        self.usage.start(self.group)
        self.group.spawn(_orphan_watch)
        self.group.spawn(_deadline_watch)
        _freeze_startup_objects()

    def _on_hello(self, environment: Environment, msg: Message) -> None:
        if msg.node_id not in self.hellos:
            self.hellos.append(msg.node_id)

    def _on_worker_report(self, client_id: str, data: dict[str, Any]) -> None:
        doc = data.get(REPORT_KEY)
        if not doc:
            return
        self.recorder.absorb(doc)
        self.worker_usage[client_id] = doc["usage"]
        if doc.get("recent_usage"):
            self.worker_recent[client_id] = doc["recent_usage"]
        if doc.get("final"):
            self.finals.add(client_id)

    def wait_for_workers(self) -> None:
        deadline = time.monotonic() + WORKER_CONNECT_TIMEOUT
        while len(self.hellos) < self.expected_workers:
            if time.monotonic() > deadline:
                raise LoadFailure(
                    f"Only {len(self.hellos)} of {self.expected_workers} load workers connected "
                    f"within {WORKER_CONNECT_TIMEOUT:g} s."
                )
            gevent.sleep(0.05)

    # the run ----------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
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
        self.recorder.warmup_end = self.warmup_end
        self.usage.window_start = self.warmup_end
        self.counts.append((self.load_start, 0, 0))
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
                },
            )
            starter = gevent.spawn(self.runner.start, plan.users, plan.spawn_rate)
        else:
            self.runner.start(plan.users, plan.spawn_rate)
            starter = None
        self.stream.emit("started", load_start=self.load_start, duration=plan.duration)
        self.group.spawn(self._ticker)
        self.group.spawn(self._progress)
        self.done.wait(timeout=plan.duration)
        self.stop_time = time.time()
        self.usage.window_end = self.stop_time
        self.stop_load(starter)
        html = self.write_html() if plan.html_report else None
        if history is not None:
            history.kill(block=False)
        self.group.kill(block=False)
        return self.result_doc(html)

    def stop_load(self, starter: gevent.Greenlet | None) -> None:
        runner = self.runner
        assert runner is not None
        self.stopping_ourselves = True
        if starter is not None and not starter.ready():
            starter.kill(block=True)
        if isinstance(runner, MasterRunner):
            runner.stop(send_stop_to_client=False)
            # quit, not stop: only a quitting worker sends a final report (field notes)
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
            runner.quit()

    def _stop(self, status: str, reason: str) -> None:
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
        self.ticks.append((now, *rec.take_fresh()))
        while self.ticks and self.ticks[0][0] < now - RECENT_WINDOW:
            self.ticks.popleft()
        self.counts.append((now, rec.run_requests, rec.run_failures))
        while len(self.counts) > 2 and self.counts[1][0] <= now - ERROR_WINDOW:
            self.counts.popleft()
        recent_total = _merge(
            [ep.hist for _, eps, _ in self.ticks for ep in eps.values()]
            + [h for _, _, warm in self.ticks for h in warm.values()]
        )
        self.recent_p95 = recent_total.percentile(95)
        runner = self.runner
        if runner is not None and runner.state == STATE_STOPPED and not self.stopping_ourselves:
            self._stop("completed", "The locustfile stopped the load before the duration ended.")
            return
        if not self.plan.abort_enabled or elapsed < ABORT_START:
            return
        self._check_errors(now, elapsed)
        self._check_latency(now, elapsed)

    def _check_errors(self, now: float, elapsed: float) -> None:
        plan = self.plan
        t0, req0, fail0 = self.counts[0]
        _, req1, fail1 = self.counts[-1]
        requests, failures = req1 - req0, fail1 - fail0
        if requests < max(1, plan.abort_min_requests):
            return
        share = failures / requests
        if share < plan.abort_error_rate:
            return
        self._stop(
            "aborted",
            f"Stopped the load after {_fmt_s(elapsed)}: {share:.0%} of {requests:,} requests "
            f"in the last {_fmt_s(now - t0)} failed{self._top_error()}.",
        )

    def _top_error(self) -> str:
        runner = self.runner
        if runner is None or not runner.stats.errors:
            return ""
        top = max(runner.stats.errors.values(), key=lambda e: e.occurrences)
        error = locust.stats.StatsError.parse_error(top.error)
        where = (
            top.name if str(top.name).startswith(f"{top.method} ") else f"{top.method} {top.name}"
        )
        return f" (most often {error} on {where}, {top.occurrences:,} times)"

    def _check_latency(self, now: float, elapsed: float) -> None:
        plan = self.plan
        if not plan.abort_latency:
            return
        measured = [eps for _, eps, _ in self.ticks if eps]
        if not measured:
            return
        saturated: bool | None = None  # asked once per check, when a limit is exceeded
        for i, limit in enumerate(plan.abort_latency):
            hist = self._window_hist(measured, limit)
            if hist.count < LATENCY_MIN_SAMPLES:
                continue
            observed = _metric(hist, limit.metric)
            if observed is None:
                continue
            if observed <= limit.limit_ms * plan.abort_latency_factor:
                self.latency_since.pop(i, None)
                continue
            if saturated is None:
                saturated = self.generator_saturated_now()
            if saturated:
                # its own queueing, not the server's latency: inconclusive, never a failure
                self.latency_since.pop(i, None)
                if not self.latency_held:
                    self.latency_held = True
                    log.warning(
                        "%s of %s is over %g times its budget, but the load generator is "
                        "saturated: not stopping the load for latency.",
                        limit.metric,
                        limit.endpoint,
                        plan.abort_latency_factor,
                    )
                continue
            since = self.latency_since.setdefault(i, now)
            if now - since >= plan.abort_latency_for:
                self._stop(
                    "aborted",
                    f"Stopped the load after {_fmt_s(elapsed)}: {limit.metric} of "
                    f"{limit.endpoint} was {observed:,.0f} ms for {_fmt_s(now - since)}, more "
                    f"than {plan.abort_latency_factor:g} times its budget of "
                    f"{limit.limit_ms:,.0f} ms.",
                )
                return

    def generator_saturated_now(self) -> bool:
        """Over the last ``RECENT_WINDOW`` seconds: this process's own samples in local mode,
        the workers' latest reports in distributed mode (a worker not heard from yet does not
        count)."""
        if self.master:
            processes = [self.worker_recent[c] for c in self.hellos if c in self.worker_recent]
        else:
            processes = [self.usage.recent_snapshot()]
        return judge_saturation(processes, self.plan.saturation_cpu)[0]

    @staticmethod
    def _window_hist(ticks: list[dict[str, _Endpoint]], limit: LatencyLimit) -> LogHistogram:
        if limit.endpoint == "total":
            return _merge(ep.hist for eps in ticks for ep in eps.values())
        return _merge(eps[limit.endpoint].hist for eps in ticks if limit.endpoint in eps)

    def _progress(self) -> None:
        interval = max(0.1, self.plan.progress_interval)
        while not self.done.is_set():
            gevent.sleep(interval)
            if self.done.is_set():
                return
            now = time.time()
            rps = 0.0
            if len(self.counts) >= 2:
                (t0, r0, _), (t1, r1, _) = self.counts[0], self.counts[-1]
                rps = (r1 - r0) / (t1 - t0) if t1 > t0 else 0.0
            runner = self.runner
            self.stream.emit(
                "progress",
                elapsed=round(now - self.load_start, 2),
                duration=self.plan.duration,
                users=runner.user_count if runner is not None else 0,
                rps=round(rps, 1),
                p95_ms=round(self.recent_p95, 2),
                requests=self.recorder.run_requests,
                failures=self.recorder.run_failures,
                warmup=now < self.warmup_end,
            )

    # outputs ----------------------------------------------------------------------------
    def write_html(self) -> str | None:
        from locust.html import get_html_report

        path = self.plan.html_report
        assert path is not None and self.env is not None
        try:
            html = get_html_report(self.env, show_download_link=False)
            atomic_write_text(path, self.redact(html))
        except Exception as e:
            log.warning("Could not write the HTML report to %s: %s", path, _last_line(e))
            return None
        return path

    def result_doc(self, html: str | None) -> dict[str, Any]:
        plan = self.plan
        rec = self.recorder
        rec.take_fresh()  # the requests since the last tick, the workers' final reports
        measured = self.redacted_endpoints()
        endpoints = [
            {
                "name": name,
                "method": ",".join(sorted(ep.methods)),
                "requests": ep.requests,
                "failures": ep.failures,
                "histogram": ep.hist.to_dict(),
            }
            for name, ep in sorted(measured.items())
        ]
        total = _merge(ep.hist for ep in measured.values())
        processes = [self.usage.snapshot()]
        for i, client in enumerate(self.hellos, start=1):
            usage = dict(self.worker_usage.get(client) or UsageStats().to_dict(""))
            usage["role"] = f"worker {i}"
            processes.append(usage)
        saturated, note = judge_saturation(processes, plan.saturation_cpu)
        loaders = [p for p in processes if p["role"] != "master"] or processes
        errors = self.redacted_errors()
        return {
            "schema": RESULT_SCHEMA,
            "status": self.status,
            "reason": self.reason,
            "started_at": _iso(self.load_start),
            "finished_at": _iso(time.time()),
            "load_seconds": round(self.stop_time - self.load_start, 3),
            "measured_seconds": round(max(0.0, self.stop_time - self.warmup_end), 3),
            "warmup_seconds": plan.warmup,
            "users": plan.users,
            "workers": self.expected_workers,
            "requests_including_warmup": rec.run_requests,
            "failures_including_warmup": rec.run_failures,
            "endpoints": endpoints,
            "total": {
                "name": "total",
                "method": "",
                "requests": sum(ep.requests for ep in measured.values()),
                "failures": sum(ep.failures for ep in measured.values()),
                "histogram": total.to_dict(),
            },
            "errors": errors,
            "generator": {
                "processes": len(loaders),
                "saturated": saturated,
                "saturation_cpu": plan.saturation_cpu,
                "cpu_max_percent": max(p["cpu_max_percent"] for p in loaders),
                "cpu_mean_percent": max(p["cpu_mean_percent"] for p in loaders),
                "loop_lag_max_ms": max(p["loop_lag_max_ms"] for p in loaders),
                "note": note,
                "per_process": processes,
            },
            "html_report": html,
        }

    def redacted_endpoints(self) -> dict[str, _Endpoint]:
        """The measured endpoints by redacted name: a request name is whatever the locustfile
        asked for (a URL with a token in it, without ``name=``), so it is redacted like an
        error; names that become equal are merged."""
        merged: dict[str, _Endpoint] = {}
        for raw, ep in self.recorder.measured.items():
            name = self.redact(raw)
            into = merged.get(name)
            if into is None:
                into = merged[name] = _Endpoint()
            into.methods.update(self.redact(m) for m in ep.methods)
            into.requests += ep.requests
            into.failures += ep.failures
            into.hist.merge(ep.hist)
        return merged

    def redacted_errors(self) -> list[dict[str, Any]]:
        if self.runner is None:
            return []
        merged: dict[tuple[str, str, str], int] = {}
        for e in self.runner.stats.errors.values():
            key = (
                self.redact(str(e.name)),
                self.redact(str(e.method)),
                self.redact(locust.stats.StatsError.parse_error(e.error)),
            )
            merged[key] = merged.get(key, 0) + int(e.occurrences)
        return [
            {"name": name, "method": method, "error": error, "occurrences": n}
            for (name, method, error), n in sorted(merged.items(), key=lambda kv: -kv[1])
        ]


def error_doc(plan: LoadPlan | None, reason: str, workers: int) -> dict[str, Any]:
    now = _iso(time.time())
    empty = LogHistogram().to_dict()
    return {
        "schema": RESULT_SCHEMA,
        "status": "error",
        "reason": reason,
        "started_at": now,
        "finished_at": now,
        "load_seconds": 0.0,
        "measured_seconds": 0.0,
        "warmup_seconds": plan.warmup if plan else 0.0,
        "users": plan.users if plan else 0,
        "workers": workers,
        "requests_including_warmup": 0,
        "failures_including_warmup": 0,
        "endpoints": [],
        "total": {"name": "total", "method": "", "requests": 0, "failures": 0, "histogram": empty},
        "errors": [],
        "generator": {
            "processes": 0,
            "saturated": False,
            "saturation_cpu": plan.saturation_cpu if plan else 0.0,
            "cpu_max_percent": 0.0,
            "cpu_mean_percent": 0.0,
            "loop_lag_max_ms": 0.0,
            "note": "No load was generated.",
            "per_process": [],
        },
        "html_report": None,
    }


# --- the worker ----------------------------------------------------------------------------
def run_worker(plan: LoadPlan, args: argparse.Namespace) -> int:
    env = build_environment(plan)
    recorder = Recorder()
    usage = UsageMonitor("worker", plan.saturation_cpu)
    # listeners before the runner exists: the runner starts reporting as soon as it connects
    env.events.request.add_listener(recorder.on_request)

    def on_stopping(environment: Environment, **_: Any) -> None:
        usage.window_end = time.time()

    env.events.test_stopping.add_listener(on_stopping)
    runner_ref: list[WorkerRunner] = []

    def on_report(client_id: str, data: dict[str, Any]) -> None:
        doc = recorder.drain()
        doc["usage"] = usage.snapshot()
        doc["recent_usage"] = usage.recent_snapshot()  # the master's "saturated now?"
        # the report sent after stop() holds every request this worker will ever make
        doc["final"] = bool(runner_ref) and runner_ref[0].state == STATE_STOPPED
        data[REPORT_KEY] = doc

    env.events.report_to_master.add_listener(on_report)
    group = gevent.pool.Group()
    group.spawn(_orphan_watch)
    group.spawn(_deadline_watch)
    runner = env.create_worker_runner(args.master_host, args.master_port)
    runner_ref.append(runner)

    def on_window(environment: Environment, msg: Message) -> None:
        if args.shared_clock:  # the master's machine: its absolute time is exact
            warmup_end = float(msg.data["warmup_end"])
        else:  # another machine's clock may be off: count from the message's arrival
            warmup_end = time.time() + float(msg.data["warmup_remaining"])
        recorder.warmup_end = warmup_end
        usage.window_start = warmup_end
        # sent before the users start; a worker's own locustfile keeps them whatever the master says
        if not msg.data.get("locust_stats", True) and not keeps_locust_stats(plan):
            quiet_locust_stats(runner.stats)

    runner.register_message(MSG_WINDOW, on_window)
    env.events.init.fire(environment=env, runner=runner, web_ui=None)
    usage.start(group)
    _freeze_startup_objects()
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


def _freeze_startup_objects() -> None:
    """Modules, classes and Locust's machinery live as long as the process: keeping them out
    of the garbage collector's scans saves a few percent of CPU per request under load."""
    gc.collect()
    gc.freeze()


def _orphan_watch() -> None:
    """End this process if the pytest process that started it is gone (killed -9, say)."""
    parent = os.getppid()
    while True:
        gevent.sleep(1.0)
        if os.getppid() != parent:
            log.error("The process that started the load is gone; stopping.")
            os._exit(EXIT_ORPHANED)


# --- entry point ---------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m pytest_stagegate.load.child")
    parser.add_argument("--result", type=Path, help="where to write the result JSON")
    parser.add_argument("--mode", choices=("local", "master", "worker"), default="local")
    parser.add_argument("--workers", type=int, default=0, help="workers the master waits for")
    parser.add_argument("--master-host", default="127.0.0.1")
    parser.add_argument("--master-port", type=int, default=defaults.MASTER_PORT)
    parser.add_argument(
        "--shared-clock",
        action="store_true",
        help="worker: this machine is the master's; use its absolute warm-up end",
    )
    args = parser.parse_args(argv)
    if args.mode != "worker" and args.result is None:
        parser.error("--result is required in local and master mode")
    if args.mode == "master" and args.workers < 1:
        parser.error("--workers must be at least 1 in master mode")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    text = sys.stdin.read()
    plan: LoadPlan | None = None
    redact = Redactor([])
    try:
        plan = LoadPlan.from_json(text)
        redact = Redactor(plan.secrets)
    except Exception as e:
        out = setup_io(redact)
        reason = f"The load plan could not be read: {_last_line(e)}"
        log.error(reason)
        return _finish(args, error_doc(None, reason, args.workers), EXIT_OK)
    out = setup_io(redact)
    install_locust_settings()
    if args.mode == "worker":
        try:
            return run_worker(plan, args)
        except LoadFailure as e:  # the master hits the same problem and reports it
            log.error("%s", redact(str(e)))
        except BaseException:
            log.error("The load worker failed:\n%s", traceback.format_exc())
        return EXIT_FAILED
    controller = Controller(plan, args, EventStream(out), redact)
    try:
        doc = controller.run()
        code = EXIT_OK
    except LoadFailure as e:
        doc = error_doc(plan, redact(str(e)), controller.expected_workers)
        code = e.exit_code
    except BaseException as e:  # never leave without a result: the parent judges by it
        log.error("The load run failed:\n%s", traceback.format_exc())
        doc = error_doc(plan, redact(f"The load run failed: {_last_line(e)}"), args.workers)
        code = EXIT_OK
    return _finish(args, doc, code)


def _finish(args: argparse.Namespace, doc: dict[str, Any], code: int) -> int:
    if args.result is not None:
        total = doc.get("total") or {}
        log.info(
            "Load %s after %.1f s: %s measured requests, %s failed. %s",
            doc.get("status"),
            float(doc.get("load_seconds") or 0.0),
            total.get("requests", 0),
            total.get("failures", 0),
            doc.get("reason") or "",
        )
    if args.result is None:
        return code if code else EXIT_FAILED
    try:
        atomic_write_text(args.result, json.dumps(doc))
    except OSError as e:
        log.error("Could not write the result to %s: %s", args.result, e)
        return EXIT_FAILED
    return code
