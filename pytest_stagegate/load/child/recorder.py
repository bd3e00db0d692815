"""Measurement: every request's raw time into a ``LogHistogram`` per request name. Pure: no
locust or gevent import, so it is unit-tested in the pytest process.

Each request is classified (``classify``): a success, a timeout or another failure. Successes
and timeouts (at their full wait: the slowest answers must not vanish from p99) go into the
judged latency histogram, other failures into a histogram of their own, so a dead target that
refuses every request at once can never look fast. Each request is recorded in one histogram
only (this runs once per request, inside the load generator); the periodic checks take the
fresh part, keep it for the recent past (early abort, progress) and fold it into the measured
window. In a local or worker process the recorder is fed by Locust's ``events.request``; on the
master, by the workers' reports (``absorb``).

Windows (``arrivals.Windows``): a request is judged unless it belongs to the warm-up or to a
stage with ``judge: false``; a stage with budgets of its own also keeps its judged requests
apart (``stage_measured``). In the closed model the request's start decides its window, in the
open model its slot's due time, which the scenario passes in the request's ``context`` with the
window itself (``WINDOW_KEY``) and the service time (``SERVICE_KEY``, ms from the actual send:
``response_time`` is then the latency from the due time).

Each judged response is also counted by its status class (``EndpointTally.classes``, 1xx to
5xx, from the ``response`` Locust passes to the listener; a request without a response, a
timeout or a refused connection, is in none). The declarative scenario's flows (``on_flow``)
are tallied apart, by flow name: an iteration is a request of its flow, its whole duration the
time, a failed iteration a failure (its duration in ``failed_hist``).

When the load stops, the requests still waiting for their answers (``on_unanswered``) are
measured at their waits so far, in the judged latency only: a lower bound, so that a server
that turns slow near the end cannot pass on the few answers that came back in time."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ...histogram import LogHistogram
from ..plan import LoadPlan
from ..result import TimelinePoint
from .arrivals import Slots, Window, Windows

__all__ = [
    "FAILED",
    "FLOW_METHOD",
    "MAX_TIMELINE_POINTS",
    "SERVICE_KEY",
    "SUCCESS",
    "TIMEOUT",
    "WINDOW_KEY",
    "EndpointTally",
    "Recorder",
    "Timeline",
    "classify",
    "keeps_locust_stats",
    "merge_histograms",
]

SUCCESS, TIMEOUT, FAILED = "success", "timeout", "failed"
FLOW_METHOD = "FLOW"  # a flow's "method" in the result (``LoadResult.flows``)
# the open model's request context: the slot's window, and the time from the actual send (ms)
WINDOW_KEY = "stagegate_window"
SERVICE_KEY = "stagegate_service_ms"
MAX_TIMELINE_POINTS = 300
# The timeouts of every client the load can use, by class name (this module imports neither
# gevent nor requests): the whole-request watchdog's RequestTimedOut (``deadline``), gevent's
# Timeout (geventhttpclient's connection and network timeouts), requests' Timeout /
# ConnectTimeout / ReadTimeout, urllib3's timeouts; and the builtin TimeoutError
# (socket.timeout) through isinstance.
_TIMEOUT_CLASSES = frozenset(
    {
        "RequestTimedOut",
        "Timeout",
        "ConnectTimeout",
        "ReadTimeout",
        "ConnectTimeoutError",
        "ReadTimeoutError",
        "ConnectionTimeout",
        "TimeoutError",
    }
)


def classify(exception: BaseException | None) -> str:
    """``SUCCESS`` (no exception), ``TIMEOUT`` (the request waited its whole timeout: the
    watchdog's or a client's connect/read timeout, also when a client wraps it, as requests'
    ConnectionError wraps urllib3's ReadTimeoutError and geventhttpclient's RetriesExceeded a
    socket timeout) or ``FAILED`` (anything else: a status
    the scenario did not expect, a refused or reset connection)."""
    if exception is None:
        return SUCCESS
    pending: list[BaseException] = [exception]
    seen: set[int] = set()
    while pending and len(seen) < 10:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, TimeoutError) or any(
            cls.__name__ in _TIMEOUT_CLASSES for cls in type(current).__mro__
        ):
            return TIMEOUT
        # geventhttpclient's RetriesExceeded keeps the last error as ``original``, urllib3's
        # MaxRetryError as ``reason``
        linked = (
            *current.args,
            getattr(current, "original", None),
            getattr(current, "reason", None),
            current.__cause__,
            current.__context__,
        )
        pending.extend(e for e in linked if isinstance(e, BaseException))
    return FAILED


def keeps_locust_stats(plan: LoadPlan) -> bool:
    """Whether Locust's own per-request statistics are read, and so must be kept: by the HTML
    report, and by a locustfile's own code (``environment.stats``). Otherwise the recorder's
    histograms are all the gate reads (docs/load-engine.md, Measurement)."""
    return bool(plan.html_report or plan.locustfile)


def merge_histograms(hists: Iterable[LogHistogram]) -> LogHistogram:
    total = LogHistogram()
    for h in hists:
        total.merge(h)
    return total


class EndpointTally:
    """One request name: its methods, requests, failures (``timeouts`` of them timed out), the
    judged response times (successes and timeouts, ``hist``), the other failures' times
    (``failed_hist``) and, in the open model, the successes' and timeouts' service times
    (``service_hist``; ``hist`` is then the latency from the due time)."""

    __slots__ = (
        "classes",
        "failed_hist",
        "failures",
        "hist",
        "methods",
        "requests",
        "service_hist",
        "timeouts",
    )

    def __init__(self) -> None:
        self.methods: set[str] = set()
        self.requests = 0
        self.failures = 0
        self.timeouts = 0
        self.hist = LogHistogram()
        self.failed_hist = LogHistogram()
        self.service_hist = LogHistogram()
        self.classes = [0, 0, 0, 0, 0, 0]  # responses by status class: [1] 1xx ... [5] 5xx

    @property
    def status_classes(self) -> dict[str, int]:
        """{"2xx": n, "3xx": n, "4xx": n, "5xx": n} ("1xx" too when there were any)."""
        out = {f"{k}xx": self.classes[k] for k in range(2, 6)}
        if self.classes[1]:
            out = {"1xx": self.classes[1], **out}
        return out

    def add(self, other: EndpointTally) -> None:
        self.methods.update(other.methods)
        self.requests += other.requests
        self.failures += other.failures
        self.timeouts += other.timeouts
        self.hist.merge(other.hist)
        self.failed_hist.merge(other.failed_hist)
        self.service_hist.merge(other.service_hist)
        mine, theirs = self.classes, other.classes
        for k in range(1, 6):
            mine[k] += theirs[k]

    def record(
        self, kind: str, response_time: float | None, service: float | None, status: int = 0
    ) -> None:
        """One request of ``kind``; ``status`` its response's class (1 to 5), 0 if none."""
        self.requests += 1
        if status:
            self.classes[status] += 1
        if kind != SUCCESS:
            self.failures += 1
            if kind == TIMEOUT:
                self.timeouts += 1
        if response_time is not None:
            if kind == FAILED:
                self.failed_hist.record(response_time)
            else:
                self.hist.record(response_time)
                if service is not None:
                    self.service_hist.record(service)

    def to_list(self) -> list[Any]:
        """msgpack-safe (a worker's report)."""
        return [
            sorted(self.methods),
            self.requests,
            self.failures,
            self.hist.to_dict(),
            self.timeouts,
            self.failed_hist.to_dict(),
            self.service_hist.to_dict(),
            self.classes[1:],
        ]

    def add_list(self, entry: Sequence[Any]) -> None:
        """``to_list()`` of a worker, added; a worker of 0.1 sends the first 4 items only."""
        methods, requests, failures, hist = entry[:4]
        self.methods.update(methods)
        self.requests += int(requests)
        self.failures += int(failures)
        self.hist.merge(LogHistogram.from_dict(hist))
        if len(entry) >= 6:
            self.timeouts += int(entry[4])
            self.failed_hist.merge(LogHistogram.from_dict(entry[5]))
        if len(entry) >= 7:
            self.service_hist.merge(LogHistogram.from_dict(entry[6]))
        if len(entry) >= 8:
            for k, n in enumerate(entry[7][:5], start=1):
                self.classes[k] += int(n)


def _tally(into: dict[str, EndpointTally], name: str) -> EndpointTally:
    ep = into.get(name)
    if ep is None:
        ep = into[name] = EndpointTally()
    return ep


def status_class(response: Any) -> int:
    """The status class of a response (1 for 1xx ... 5 for 5xx), 0 without one: no response
    (a timeout, a refused connection: Locust's stand-in has status 0) or a custom client's
    object without an integer ``status_code``."""
    if response is None:
        return 0
    try:
        code = response.status_code
    except Exception:  # a custom client's response: anything may happen
        return 0
    if type(code) is int and 100 <= code < 600:
        return code // 100
    return 0


def _service(context: Mapping[str, Any]) -> float | None:
    service = context.get(SERVICE_KEY)
    if service is None or not (service >= 0 and service < math.inf):
        return None
    return float(service)


class Recorder:
    """Every request of the run: per request name, the judged requests since the last
    ``take_fresh`` (and the unjudged ones' times, for the progress line), the judged requests
    so far (``measured``; per measured stage, ``stage_measured``), and counters for the whole
    run.

    Until ``begin`` (or ``warmup_end`` set by hand), everything is warm-up. Without stages, a
    request is judged if it started (its slot was due, in the open model) at or after
    ``warmup_end`` (epoch seconds); with stages, ``windows`` decides.
    """

    def __init__(self) -> None:
        self.warmup_end = math.inf
        self.load_start = math.inf
        self.windows: Windows | None = None  # with stages only; else warmup_end decides
        self.slots: Slots | None = None  # this process's open-model slots (local, worker)
        self.measured: dict[str, EndpointTally] = {}  # folded in by take_fresh()
        # the names with a judged latency sample (a success or a timeout) in this process
        self.answered: set[str] = set()
        self.fresh: dict[str, EndpointTally] = {}
        self.fresh_warmup: dict[str, LogHistogram] = {}
        self.stage_measured: dict[int, dict[str, EndpointTally]] = {}
        self.stage_fresh: dict[int, dict[str, EndpointTally]] = {}
        # every stage's requests by stage index: [judged requests, judged failures, unjudged
        # requests, unjudged failures] (a worker's since its last drain); ``stage_totals``
        self.stage_counts: dict[int, list[int]] = {}
        self.run_requests = 0
        self.run_failures = 0
        # requests still waiting for an answer when the load stopped (``unanswered``), and
        # those of them judged at their wait so far (``on_unanswered``)
        self.unfinished = 0
        self.unanswered_measured = 0
        # set by ``on_unanswered``: the load stopped, a later answer is not counted again
        self.stopped = False
        # open model, judged windows: slots due (started or dropped) and dropped, absorbed from
        # workers (a local process's own are in ``slots``)
        self.iterations_due = 0
        self.dropped = 0
        # the same by stage index: [due, dropped], absorbed from workers (``stage_slot_counts``)
        self.stage_slots: dict[int, list[int]] = {}
        self.last_judged = False  # the last request's window: judged or not
        # the declarative scenario's flows, by name (``on_flow``)
        self.flows_fresh: dict[str, EndpointTally] = {}
        self.flows_measured: dict[str, EndpointTally] = {}
        # the data file (``child.data.Feeder``) of this process; the workers' rows taken and
        # whether a worker's unique rows ran out (absorbed)
        self.feeder: Any = None
        self.rows_taken = 0
        self.rows_ran_out = False

    def begin(self, load_start: float, plan: LoadPlan) -> None:
        """The load started at ``load_start`` (epoch seconds): the windows of ``plan``."""
        self.load_start = load_start
        self.warmup_end = load_start + plan.warmup
        self.windows = Windows.of(plan) if plan.stages else None

    def on_request(
        self,
        request_type: str,
        name: str,
        response_time: float | None,
        exception: BaseException | None = None,
        start_time: float | None = None,
        context: Mapping[str, Any] | None = None,
        response: Any = None,
        **_: Any,
    ) -> None:
        """An ``events.request`` listener (Locust passes the raw float time in ms)."""
        window: Window | None = None
        service: float | None = None
        if context:  # the open model: the slot's window
            window = context.get(WINDOW_KEY)
            service = _service(context)
        self.add_request(
            request_type,
            name,
            response_time,
            exception,
            start_time,
            window,
            service,
            status_class(response),
        )

    def add_request(
        self,
        request_type: str,
        name: str,
        response_time: float | None,
        exception: BaseException | None,
        start_time: float | None,
        window: Window | None,
        service: float | None,
        status: int,
    ) -> None:
        """One request, as ``on_request`` reads it from Locust's event: ``window`` and
        ``service`` the open model's (its slot's window, ms from the actual send), ``status``
        its response's class (1 for 1xx ... 5 for 5xx, 0 without a response). The lean path
        (``lean.Sink``) records here directly."""
        if self.stopped:  # answered after the stop: already measured by ``on_unanswered``
            self.last_judged = False
            return
        self.run_requests += 1
        kind = classify(exception)
        if kind != SUCCESS:
            self.run_failures += 1
        if response_time is not None and not (response_time >= 0 and response_time < math.inf):
            response_time = None  # a custom client's garbage must not poison the histograms
        if service is not None and not (service >= 0 and service < math.inf):
            service = None
        if window is None:
            if start_time is None:
                start_time = time.time() - (response_time or 0.0) / 1000.0
            if self.windows is None:
                judged = self.last_judged = start_time >= self.warmup_end
                stage = -1
            else:
                window = self.windows.at(start_time - self.load_start)
        if window is not None:
            judged = self.last_judged = window.judged
            stage = window.stage if window.measure else -1
            if window.stage >= 0:  # every stage's counts, by the same window as the verdict's
                counts = self.stage_counts.get(window.stage)
                if counts is None:
                    counts = self.stage_counts[window.stage] = [0, 0, 0, 0]
                at = 0 if judged else 2
                counts[at] += 1
                if kind != SUCCESS:
                    counts[at + 1] += 1
        if judged:
            ep = self.fresh.get(name)
            if ep is None:
                ep = self.fresh[name] = EndpointTally()
            ep.methods.add(request_type)
            if not 0 < status < 6:
                status = 0
            ep.record(kind, response_time, service, status)
            if kind != FAILED and response_time is not None:
                self.answered.add(name)
            if stage >= 0:
                into = self.stage_fresh.get(stage)
                if into is None:
                    into = self.stage_fresh[stage] = {}
                st = _tally(into, name)
                st.methods.add(request_type)
                st.record(kind, response_time, service, status)
        elif response_time is not None and kind != FAILED:
            warm = self.fresh_warmup.get(name)
            if warm is None:
                warm = self.fresh_warmup[name] = LogHistogram()
            warm.record(response_time)

    def on_unanswered(self, waiting: Iterable[Any], *, stop: bool = True) -> int:
        """The load stopped: each request still waiting for its answer (``deadline.Unanswered``:
        method, name, latency_ms, service_ms, start, window) measured at its wait so far, a
        lower bound of its latency, in its name's judged latency (and service time) when its
        window is judged (its slot's; else by its ``start``, as ``on_request`` decides). It is
        neither a success nor a failure: not in ``requests``, ``failures``, the rate or the
        status classes. ``stop``: later answers are ignored (they were measured here).
        Returns how many were judged (added to ``unanswered_measured``)."""
        judged_count = 0
        for item in waiting:
            window: Window | None = item.window
            if window is None:
                if self.windows is None:
                    if item.start < self.warmup_end:
                        continue
                    stage = -1
                else:
                    window = self.windows.at(item.start - self.load_start)
            if window is not None:
                if not window.judged:
                    continue
                stage = window.stage if window.measure else -1
            latency = float(item.latency_ms)
            if not (latency >= 0 and latency < math.inf):
                continue
            if item.name not in self.answered:
                # beside no answer of its name its wait proves nothing: a dead target whose
                # every request fails must not gain fast latencies from its last attempts
                # (all failed, or nothing answered at all: the hang rule, decide that)
                continue
            service = item.service_ms
            tallies = [_tally(self.fresh, item.name)]
            if stage >= 0:
                tallies.append(_tally(self.stage_fresh.setdefault(stage, {}), item.name))
            for ep in tallies:
                ep.methods.add(item.method)
                ep.hist.record(latency)
                if service is not None:
                    ep.service_hist.record(float(service))
            judged_count += 1
        self.unanswered_measured += judged_count
        self.stopped = self.stopped or stop
        return judged_count

    def on_flow(
        self, name: str, duration_ms: float, ok: bool, start_time: float, window: Window | None
    ) -> None:
        """One iteration of flow ``name``: its whole duration (ms), whether every step
        succeeded, its start (epoch seconds) and, in the open model, its slot's window (which
        then decides whether it is judged, as for its requests)."""
        if window is None:
            if self.windows is None:
                judged = start_time >= self.warmup_end
            else:
                judged = self.windows.at(start_time - self.load_start).judged
        else:
            judged = window.judged
        if not judged:
            return
        ep = _tally(self.flows_fresh, name)
        ep.methods.add(FLOW_METHOD)
        if not (duration_ms >= 0 and duration_ms < math.inf):
            duration_ms = 0.0
        ep.record(SUCCESS if ok else FAILED, duration_ms, None)

    def take_fresh(self) -> tuple[dict[str, EndpointTally], dict[str, LogHistogram]]:
        """The judged and unjudged requests since the last call, by name; the judged ones
        are folded into ``measured`` (and ``stage_measured``)."""
        fresh, warm = self.fresh, self.fresh_warmup
        self.fresh, self.fresh_warmup = {}, {}
        for name, ep in fresh.items():
            _tally(self.measured, name).add(ep)
        if self.flows_fresh:
            flows, self.flows_fresh = self.flows_fresh, {}
            for name, ep in flows.items():
                _tally(self.flows_measured, name).add(ep)
        if self.stage_fresh:
            stages, self.stage_fresh = self.stage_fresh, {}
            for k, eps in stages.items():
                into = self.stage_measured.setdefault(k, {})
                for name, ep in eps.items():
                    _tally(into, name).add(ep)
        return fresh, warm

    def stage_totals(self, judged: Sequence[bool]) -> dict[int, tuple[int, int]]:
        """(requests, failures) of each stage that recorded any, by index, counted as the
        verdict counts: a judged stage's judged requests (its part in the warm-up left out),
        every request of a stage with ``judge: false`` (``judged``: each stage's ``judge``).
        By start (closed model) or due time (open model), like the judged windows; this
        process's and the workers' reports."""
        out = {}
        for k, (jr, jf, ur, uf) in self.stage_counts.items():
            mine = k < len(judged) and judged[k]
            out[k] = (jr, jf) if mine else (jr + ur, jf + uf)
        return out

    def slot_counts(self) -> tuple[int, int]:
        """(iterations due, dropped) of the judged windows: the workers' and this process's."""
        due, dropped = self.iterations_due, self.dropped
        if self.slots is not None:
            due += self.slots.due
            dropped += self.slots.dropped
        return due, dropped

    def stage_slot_counts(self) -> dict[int, tuple[int, int]]:
        """(iterations due, dropped) of each stage's judged windows, by stage index, the stages
        with any: the workers' and this process's."""
        out = {k: (c[0], c[1]) for k, c in self.stage_slots.items()}
        if self.slots is not None:
            for k, (due, dropped) in self.slots.stage_counts.items():
                was = out.get(k, (0, 0))
                out[k] = (was[0] + due, was[1] + dropped)
        return out

    def drain(self) -> dict[str, Any]:
        """Everything since the last drain, msgpack-safe, then forget it (a worker's report;
        the master ``absorb``s it)."""
        doc: dict[str, Any] = {
            "m": {name: ep.to_list() for name, ep in self.fresh.items()},
            "w": {name: h.to_dict() for name, h in self.fresh_warmup.items()},
            "rn": self.run_requests,
            "rf": self.run_failures,
            "uf": self.unfinished,
            "um": self.unanswered_measured,
        }
        if self.stage_counts:
            doc["sc"] = {str(k): c for k, c in self.stage_counts.items()}
            self.stage_counts = {}
        if self.stage_fresh:
            doc["st"] = {
                str(k): {name: ep.to_list() for name, ep in eps.items()}
                for k, eps in self.stage_fresh.items()
            }
        if self.slots is not None:
            doc["due"], doc["dr"] = self.slots.take_counts()
            stage_slots = self.slots.take_stage_counts()
            if stage_slots:
                doc["sd"] = {str(k): list(c) for k, c in stage_slots.items()}
        if self.flows_fresh:
            doc["fl"] = {name: ep.to_list() for name, ep in self.flows_fresh.items()}
            self.flows_fresh = {}
        if self.feeder is not None:
            doc["dt"] = self.feeder.take_count()
            doc["dx"] = bool(self.feeder.ran_out)
        self.fresh, self.fresh_warmup, self.stage_fresh = {}, {}, {}
        self.run_requests = self.run_failures = self.unfinished = self.unanswered_measured = 0
        return doc

    def absorb(self, doc: Mapping[str, Any]) -> None:
        """A worker's ``drain()``, added to the fresh requests as if recorded here."""
        for name, entry in doc.get("m", {}).items():
            _tally(self.fresh, name).add_list(entry)
        for name, hist in doc.get("w", {}).items():
            warm = self.fresh_warmup.get(name)
            if warm is None:
                warm = self.fresh_warmup[name] = LogHistogram()
            warm.merge(LogHistogram.from_dict(hist))
        for k, eps in doc.get("st", {}).items():
            into = self.stage_fresh.setdefault(int(k), {})
            for name, entry in eps.items():
                _tally(into, name).add_list(entry)
        for k, counts in doc.get("sc", {}).items():
            mine = self.stage_counts.get(int(k))
            if mine is None:
                mine = self.stage_counts[int(k)] = [0, 0, 0, 0]
            for i, n in enumerate(counts[:4]):
                mine[i] += int(n)
        self.run_requests += int(doc.get("rn", 0))
        self.run_failures += int(doc.get("rf", 0))
        self.unfinished += int(doc.get("uf", 0))
        self.unanswered_measured += int(doc.get("um", 0))
        self.iterations_due += int(doc.get("due", 0))
        self.dropped += int(doc.get("dr", 0))
        for k, counts in doc.get("sd", {}).items():
            mine = self.stage_slots.get(int(k))
            if mine is None:
                mine = self.stage_slots[int(k)] = [0, 0]
            for i, n in enumerate(counts[:2]):
                mine[i] += int(n)
        for name, entry in doc.get("fl", {}).items():
            _tally(self.flows_fresh, name).add_list(entry)
        self.rows_taken += int(doc.get("dt", 0))
        self.rows_ran_out = self.rows_ran_out or bool(doc.get("dx", False))

    def data_ran_out(self) -> int | None:
        """The rows taken (by this process and the workers, as reported) once the unique rows
        of the data file ran out in this process or a worker, else None."""
        feeder = self.feeder
        if feeder is not None and feeder.ran_out:
            return self.rows_taken + int(feeder.taken)
        if self.rows_ran_out:
            return self.rows_taken
        return None


class Timeline:
    """Latency over time: one point per check (``add``), each with the requests and failures
    that ended in it and the p95 of its successes and timeouts, judged or not, and its stage;
    folded (neighbours of the same stage and judgment merged, exactly: the histograms merge)
    so that there are at most about ``max_points``. ``windows`` names each point's stage.

    Each point keeps its requests' latencies as a ``FrozenHistogram`` (the buckets holding
    samples, 2 to 3 bytes each, at the verdict's 0.1%): about a KiB a point where a
    ``LogHistogram`` of dict entries took about 22 KiB, so the capped timeline stays small."""

    def __init__(
        self, windows: Windows, *, ticks_per_point: int = 1, max_points: int = MAX_TIMELINE_POINTS
    ) -> None:
        self.windows = windows
        self.max_points = max_points
        self.width = max(1, ticks_per_point)  # checks per point
        # [end (s from the load start), requests, failures, FrozenHistogram, window, checks]
        self._points: list[list[Any]] = []

    def add(
        self, start: float, end: float, requests: int, failures: int, hists: Iterable[LogHistogram]
    ) -> None:
        """One check's interval [``start``, ``end``] (seconds from the load start); an empty
        one (the workers' final reports, after the stop) adds to the last point."""
        window = self.windows.at((start + end) / 2)
        hist = merge_histograms(hists).frozen()
        last = self._points[-1] if self._points else None
        if last is not None and (
            end <= last[0] or (last[5] < self.width and _same(last[4], window))
        ):
            last[0] = max(last[0], end)
            last[1] += requests
            last[2] += failures
            last[3] = last[3].merged(hist)
            last[5] += 1
        else:
            self._points.append([end, requests, failures, hist, window, 1])
        while len(self._points) > self.max_points and self._fold():
            pass

    def _fold(self) -> bool:
        """Neighbours merged in pairs (never across a stage's or the warm-up's edge); each
        point then spans twice as many checks. False if nothing could be merged."""
        self.width *= 2
        out: list[list[Any]] = []
        for p in self._points:
            last = out[-1] if out else None
            if last is not None and last[5] + p[5] <= self.width and _same(last[4], p[4]):
                last[0] = p[0]
                last[1] += p[1]
                last[2] += p[2]
                last[3] = last[3].merged(p[3])
                last[5] += p[5]
            else:
                out.append(p)
        merged = len(out) < len(self._points)
        self._points = out
        return merged

    def points(self) -> tuple[TimelinePoint, ...]:
        return tuple(
            TimelinePoint(
                t=round(end, 3),
                requests=requests,
                failures=failures,
                p95_ms=round(hist.percentile(95), 3) if hist.count else None,
                stage=window.name,
                judged=window.judged,
            )
            for end, requests, failures, hist, window, _ in self._points
        )


def _same(a: Window, b: Window) -> bool:
    return a.stage == b.stage and a.judged == b.judged
