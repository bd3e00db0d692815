"""What a load run measured: the load child's result JSON as frozen dataclasses. Pure.

The child (``pytest_stagegate.load.child``) builds a ``LoadResult`` (``child.assemble``) and
writes its ``to_dict()``; ``LoadResult.from_dict`` reads it back and refuses anything malformed
with a ValueError. Shape (schema 1)::

    {"schema": 1,
     "status": "completed" | "aborted" | "error",
     "reason": "",                      # why it was aborted or failed; "" when completed
     "started_at": ISO-8601, "finished_at": ISO-8601,
     "load_seconds": 10.0,               # load start to stop, warm-up included
     "measured_seconds": 8.0,            # warm-up end to stop; the rates are over it less
                                         # the stages not judged (``judged_seconds``)
     "warmup_seconds": 2.0,
     "users": 20, "workers": 0,          # workers: 0 = one local process
     "requests_including_warmup": 1234, "failures_including_warmup": 0,
     "endpoints": [{"name": "GET /a", "method": "GET", "requests": 900, "failures": 0,
                    "timeouts": 0,               # of the failures: the request timed out
                    "histogram": {LogHistogram.to_dict()},          # successes and timeouts
                    "failed_histogram": {LogHistogram.to_dict()}}], # the other failures
     "total": {"name": "total", "method": "", ...same...},
     "errors": [{"name", "method", "error", "occurrences"}],   # the whole run, warm-up too
     "generator": {"processes": 1, "saturated": false, "saturation_cpu": 90.0,
                   "cpu_max_percent": 41.0, "cpu_mean_percent": 30.2, "loop_lag_max_ms": 3.1,
                   "note": "...",
                   "per_process": [{"role": "local", "cpu_max_percent", "cpu_mean_percent",
                                    "cpu_samples", "hot_samples", "loop_lag_max_ms",
                                    "loop_lag_samples", "loop_lag_over",
                                    # 0.2, where measured (Linux): % of the time runnable but
                                    # waiting for a CPU, and the highest CPU + wait sample
                                    "wait_mean_percent", "wait_max_percent",
                                    "busy_max_percent"}]},
     "html_report": "report.html" | null,
     "unanswered": 0,                    # requests still waiting when the load stopped
     "unanswered_measured": 0}           # of them, judged at their waits so far

Requests, failures and histograms of ``endpoints`` and ``total`` count only the requests that
started after the warm-up (the measured window). ``errors`` covers the whole run, because a
deployment that fails during the warm-up is worth naming too.

The judged latency (``histogram``: percentiles, avg, max) holds the successful responses and the
requests that timed out, at their full wait; the other failed requests (an unexpected status, a
refused connection) have ``failed_histogram``, so that failing fast never looks fast. Rates
(``EndpointStats.rps``, so ``min_rps``) count successful responses only. A request still
waiting for its answer when the load stopped is in ``histogram`` at its wait so far (a lower
bound; ``unanswered_measured`` of them), and in no count. ``timeouts``,
``failed_histogram`` and ``unanswered`` are additions of 0.2: a result without them reads as 0
and an empty histogram.

Group budgets (``budgets`` module docstring): ``LoadResult.group_stats`` gives what a budget
key that is no request name judges: every declared flow (``flows``) and each glob's covered
names merged (``merge_endpoints``: counts and status classes add, histograms merge exactly).
"""

from __future__ import annotations

import ast
import dataclasses
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from ..budgets import (
    TOTAL,
    EndpointStats,
    FailedStats,
    ServiceStats,
    StatsKind,
    covered_names,
    is_glob,
)
from ..histogram import LogHistogram
from ..metrics import STANDARD_PERCENTILES, parse_percentile

__all__ = [
    "RESULT_SCHEMA",
    "EndpointResult",
    "ErrorRecord",
    "GeneratorHealth",
    "LoadResult",
    "ProcessUsage",
    "StageResult",
    "TimelinePoint",
    "error_phrase",
    "merge_endpoints",
    "request_label",
    "unwrapped_error",
]

RESULT_SCHEMA = 1
Status = Literal["completed", "aborted", "error"]
_STATUSES = ("completed", "aborted", "error")


def _percentile(key: str) -> float:
    """``"p95"`` -> 95.0 (``metrics.parse_percentile``; ValueError outside the grammar)."""
    return float(parse_percentile(key).percentile or 0)


@dataclass(frozen=True)
class EndpointResult:
    """One request name (or the total) over the measured window."""

    name: str
    method: str
    requests: int
    failures: int
    histogram: LogHistogram = field(compare=False)  # successes and timeouts: judged latency
    timeouts: int = 0  # of ``failures``
    failed_histogram: LogHistogram = field(default_factory=LogHistogram, compare=False)
    # the open model: the same requests' times from the actual send (``histogram`` is from the
    # scheduled start); None in the closed model, where the two are the same
    service_histogram: LogHistogram | None = field(default=None, compare=False)
    # responses by status class: {"2xx": n, "3xx": n, "4xx": n, "5xx": n}; requests without
    # a response are in none of them (0.2: scenarios; absent in older results)
    status_classes: dict[str, int] = field(default_factory=dict, compare=False)

    @property
    def succeeded(self) -> int:
        return max(0, self.requests - self.failures)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "method": self.method,
            "requests": self.requests,
            "failures": self.failures,
            "timeouts": self.timeouts,
            "histogram": self.histogram.to_dict(),
            "failed_histogram": self.failed_histogram.to_dict(),
            "service_histogram": (
                None if self.service_histogram is None else self.service_histogram.to_dict()
            ),
            "status_classes": dict(self.status_classes),
        }

    @classmethod
    def from_dict(cls, data: object, where: str) -> EndpointResult:
        d = _mapping(data, where)
        histogram = _histogram(d.get("histogram"), f"{where}.histogram")
        failed = d.get("failed_histogram")
        failed_histogram = (
            LogHistogram() if failed is None else _histogram(failed, f"{where}.failed_histogram")
        )
        requests = _int(d, "requests", where)
        failures = _int(d, "failures", where)
        timeouts = _int(d, "timeouts", where, default=0)
        service = d.get("service_histogram")
        service_histogram = (
            None if service is None else _histogram(service, f"{where}.service_histogram")
        )
        classes = _mapping(d.get("status_classes", {}), f"{where}.status_classes")
        status_classes = {str(k): _int(classes, str(k), f"{where}.status_classes") for k in classes}
        if failures > requests:
            raise ValueError(f"{where}.failures ({failures}) is more than requests ({requests})")
        if timeouts > failures:
            raise ValueError(f"{where}.timeouts ({timeouts}) is more than failures ({failures})")
        return cls(
            name=_str(d, "name", where),
            method=_str(d, "method", where),
            requests=requests,
            failures=failures,
            histogram=histogram,
            timeouts=timeouts,
            failed_histogram=failed_histogram,
            service_histogram=service_histogram,
            status_classes=status_classes,
        )

    def stats(
        self,
        percentiles: Iterable[str],
        measured_seconds: float,
        top_error: str = "",
        *,
        kind: StatsKind = "name",
        covers: tuple[str, ...] = (),
    ) -> EndpointStats:
        """Latency over the judged histogram (successes and timeouts); ``rps`` is successful
        responses per second; the other failures' times in ``failed``. ``kind`` and ``covers``
        say what it is (``EndpointStats``): a request name, a group, a flow."""
        keys = list(percentiles)
        h, f, s = self.histogram, self.failed_histogram, self.service_histogram
        return EndpointStats(
            name=self.name,
            requests=self.requests,
            failures=self.failures,
            rps=self.succeeded / measured_seconds if measured_seconds > 0 else 0.0,
            avg_ms=h.mean_ms,
            min_ms=h.min_ms,
            max_ms=h.max_ms,
            percentiles={key: h.percentile(_percentile(key)) for key in keys},
            timeouts=self.timeouts,
            latency_samples=h.count,
            failed=FailedStats(
                requests=self.failures - self.timeouts,
                avg_ms=f.mean_ms,
                min_ms=f.min_ms,
                max_ms=f.max_ms,
                percentiles={key: f.percentile(_percentile(key)) for key in STANDARD_PERCENTILES},
            )
            if self.failures > self.timeouts
            else None,
            top_error=top_error,
            service=None
            if s is None
            else ServiceStats(
                samples=s.count,
                avg_ms=s.mean_ms,
                min_ms=s.min_ms,
                max_ms=s.max_ms,
                percentiles={key: s.percentile(_percentile(key)) for key in keys},
            ),
            status_classes=dict(self.status_classes),
            kind=kind,
            covers=covers,
        )


def merge_endpoints(name: str, results: Iterable[EndpointResult]) -> EndpointResult:
    """``results`` as one (a group of request names): requests, failures, timeouts and status
    classes add; the histograms merge exactly; the service time only when every one has it."""
    parts = list(results)
    histogram, failed = LogHistogram(), LogHistogram()
    service: LogHistogram | None = LogHistogram() if parts else None
    classes: dict[str, int] = {}
    for part in parts:
        histogram.merge(part.histogram)
        failed.merge(part.failed_histogram)
        if service is not None and part.service_histogram is not None:
            service.merge(part.service_histogram)
        else:
            service = None
        for key, n in part.status_classes.items():
            classes[key] = classes.get(key, 0) + n
    return EndpointResult(
        name=name,
        method="",
        requests=sum(p.requests for p in parts),
        failures=sum(p.failures for p in parts),
        histogram=histogram,
        timeouts=sum(p.timeouts for p in parts),
        failed_histogram=failed,
        service_histogram=service,
        status_classes=dict(sorted(classes.items())),
    )


def _groups(
    keys: Iterable[str],
    endpoints: Iterable[EndpointResult],
    flows: Iterable[EndpointResult],
    percentiles: list[str],
    seconds: float,
    top_error: Callable[[Iterable[str]], str],
) -> dict[str, EndpointStats]:
    """Every flow, then each glob of ``keys`` that is neither a request name nor a flow and
    covered a request name (precedence: name, flow, glob)."""
    by_name = {e.name: e for e in endpoints}
    stats = {
        f.name: f.stats(percentiles, seconds, kind="flow") for f in flows if f.name not in by_name
    }
    for key in dict.fromkeys(keys):
        if key in by_name or key in stats or key == TOTAL or not is_glob(key):
            continue
        covers = tuple(covered_names(key, by_name))
        if covers:
            merged = merge_endpoints(key, (by_name[n] for n in covers))
            stats[key] = merged.stats(
                percentiles, seconds, top_error(covers), kind="group", covers=covers
            )
    return stats


def _histogram(value: object, where: str) -> LogHistogram:
    try:
        return LogHistogram.from_dict(_mapping(value, where))
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from None


_HTTP_STATUS = (
    re.compile(r"\bHTTP (\d{3})\b"),  # the declarative scenario's "HTTP 500, expected 200"
    re.compile(r"\bcode=(\d{3})\b"),  # FastHttpUser's BadStatusCode
    re.compile(r"\b(\d{3}) (?:Client|Server) Error\b"),  # HttpUser's HTTPError
)
_RETRIES = re.compile(r"^RetriesExceeded\(.*\boriginal=(.*)\)$", re.DOTALL)
_CALL = re.compile(r"""(\w+)\((['"])(.*)\2,?\)""", re.DOTALL)


# Exceptions whose text is their message alone: Locust's ``catch_response`` failure (every
# failed expectation, status and capture of the declarative scenario) and the watchdog's.
_PLAIN_EXCEPTIONS = ("CatchResponseError", "RequestTimedOut")


def unwrapped_error(error: str) -> str:
    """An error text as the load child records it: Locust's ``repr`` of a plain exception
    (``CatchResponseError('expect.json "total": got 0, expected 3')``) unwrapped once to its
    message; a real exception keeps its class name (``ConnectionRefusedError(111, ...)``),
    which says what happened. Anything else is returned as it is."""
    call = _CALL.fullmatch(error.strip())
    if call is None or call.group(1) not in _PLAIN_EXCEPTIONS:
        return error
    try:
        value = ast.literal_eval(error.strip()[len(call.group(1)) :])
    except (ValueError, SyntaxError):
        return call.group(3)
    if isinstance(value, tuple) and len(value) == 1:
        value = value[0]
    return value if isinstance(value, str) else error


def request_label(name: str, method: str) -> str:
    """A request name as the user knows it: a declarative one or a locustfile's own ``name=``
    as it is (``checkout``, ``GET /api/products``); Locust's default name, the path or URL
    alone, with its method (``GET /api/products``)."""
    if method and (name.startswith("/") or "://" in name) and not name.startswith(f"{method} "):
        return f"{method} {name}"
    return name


def error_phrase(error: str) -> str:
    """Locust's error text as a short phrase: ``"HTTP 500"`` for a status, the watchdog's
    ``"no complete response within 2 s"``, ``"ConnectionRefusedError: ..."``; at most 120
    characters."""
    text = " ".join(error.split())
    for pattern in _HTTP_STATUS:
        match = pattern.search(text)
        if match:
            return f"HTTP {match.group(1)}"
    retries = _RETRIES.search(text)
    if retries:  # geventhttpclient: the last error of its attempts is what happened
        return retries.group(1).strip() or text
    call = _CALL.fullmatch(text)
    if call:
        kind, message = call.group(1), call.group(3)
        plain = kind in ("RequestTimedOut", "CatchResponseError")
        text = message if plain else f"{kind}: {message}"
    return text if len(text) <= 120 else text[:117].rstrip() + "..."


@dataclass(frozen=True)
class ErrorRecord:
    """One distinct error, as Locust groups them (method, name and error text)."""

    name: str
    method: str
    error: str
    occurrences: int

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: object, where: str) -> ErrorRecord:
        d = _mapping(data, where)
        return cls(
            name=_str(d, "name", where),
            method=_str(d, "method", where),
            error=_str(d, "error", where),
            occurrences=_int(d, "occurrences", where),
        )


@dataclass(frozen=True)
class ProcessUsage:
    """How busy one Locust process was during the measured window."""

    role: str  # "local", "master" or "worker N"
    cpu_max_percent: float  # percent of one core
    cpu_mean_percent: float
    cpu_samples: int
    hot_samples: int  # samples at or above the saturation threshold
    loop_lag_max_ms: float  # how late gevent's loop woke a 100 ms sleep
    loop_lag_samples: int
    loop_lag_over: int  # lag samples over the lag threshold
    # added in 0.2, absent where not measured (not Linux): percent of the wall time runnable
    # but waiting for a CPU (/proc/self/schedstat's run_delay), mean and max over the samples,
    # and the highest sample of CPU + wait (the "busy" share the saturation rule judges)
    wait_mean_percent: float | None = None
    wait_max_percent: float | None = None
    busy_max_percent: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, data: object, where: str) -> ProcessUsage:
        d = _mapping(data, where)
        return cls(
            role=_str(d, "role", where),
            cpu_max_percent=_float(d, "cpu_max_percent", where),
            cpu_mean_percent=_float(d, "cpu_mean_percent", where),
            cpu_samples=_int(d, "cpu_samples", where),
            hot_samples=_int(d, "hot_samples", where),
            loop_lag_max_ms=_float(d, "loop_lag_max_ms", where),
            loop_lag_samples=_int(d, "loop_lag_samples", where),
            loop_lag_over=_int(d, "loop_lag_over", where),
            wait_mean_percent=_opt_float(d, "wait_mean_percent", where),
            wait_max_percent=_opt_float(d, "wait_max_percent", where),
            busy_max_percent=_opt_float(d, "busy_max_percent", where),
        )


@dataclass(frozen=True)
class GeneratorHealth:
    """Was the load generator itself the bottleneck? If so, latencies include its queueing.
    ``to_dict()`` is its JSON form."""

    processes: int
    saturated: bool
    saturation_cpu: float
    cpu_max_percent: float
    cpu_mean_percent: float
    loop_lag_max_ms: float
    note: str
    per_process: tuple[ProcessUsage, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "processes": self.processes,
            "saturated": self.saturated,
            "saturation_cpu": self.saturation_cpu,
            "cpu_max_percent": self.cpu_max_percent,
            "cpu_mean_percent": self.cpu_mean_percent,
            "loop_lag_max_ms": self.loop_lag_max_ms,
            "note": self.note,
            "per_process": [p.to_dict() for p in self.per_process],
        }

    @classmethod
    def from_dict(cls, data: object, where: str) -> GeneratorHealth:
        d = _mapping(data, where)
        return cls(
            processes=_int(d, "processes", where),
            saturated=_bool(d, "saturated", where),
            saturation_cpu=_float(d, "saturation_cpu", where),
            cpu_max_percent=_float(d, "cpu_max_percent", where),
            cpu_mean_percent=_float(d, "cpu_mean_percent", where),
            loop_lag_max_ms=_float(d, "loop_lag_max_ms", where),
            note=_str(d, "note", where),
            per_process=tuple(
                ProcessUsage.from_dict(p, f"{where}.per_process[{i}]")
                for i, p in enumerate(_list(d, "per_process", where))
            ),
        )

    @classmethod
    def unknown(
        cls, note: str = "The load generator was not measured.", saturation_cpu: float = 0.0
    ) -> GeneratorHealth:
        return cls(
            processes=0,
            saturated=False,
            saturation_cpu=float(saturation_cpu),
            cpu_max_percent=0.0,
            cpu_mean_percent=0.0,
            loop_lag_max_ms=0.0,
            note=note,
        )


Model = Literal["closed", "open"]
_MODELS = ("closed", "open")


@dataclass(frozen=True)
class StageResult:
    """One stage of ``gate.load.stages`` as it ran: seconds from the load start, the level it
    ramped over (users, or iterations per second in the open model), its ``requests`` and
    ``failures`` (every stage: those of a judged stage that were judged, its warm-up part left
    out, or all of an unjudged one's; by start time, or due time in the open model, as the
    verdict's windows; None from a child that did not count them) and, for a stage with budgets
    of its own, its requests apart (``endpoints``, ``total``)."""

    name: str
    start_s: float
    end_s: float
    judged: bool
    level_from: float
    level_to: float
    unit: Literal["users", "iterations/s"]
    endpoints: tuple[EndpointResult, ...] = ()
    total: EndpointResult | None = None
    requests: int | None = None
    failures: int | None = None
    # the open model, a judged stage: the slots of its judged window that were due (started or
    # dropped) and dropped, its own share for its budgets' dropped rule; None otherwise
    iterations_due: int | None = None
    dropped: int | None = None

    def measured_seconds(self, warmup_seconds: float) -> float:
        """The stage's judged seconds: its span after the warm-up (what its rates are over)."""
        return max(0.0, self.end_s - max(self.start_s, warmup_seconds))

    def endpoint_stats(
        self, percentiles: Iterable[str], warmup_seconds: float
    ) -> dict[str, EndpointStats] | None:
        """Like ``LoadResult.endpoint_stats``, over this stage's requests; None when the stage
        kept no requests apart (no budgets, or it never ran)."""
        if self.total is None:
            return None
        keys = list(dict.fromkeys([*STANDARD_PERCENTILES, *percentiles]))
        seconds = self.measured_seconds(warmup_seconds)
        stats = {e.name: e.stats(keys, seconds) for e in self.endpoints}
        stats[TOTAL] = self.total.stats(keys, seconds)
        return stats

    def group_stats(
        self, keys: Iterable[str], percentiles: Iterable[str], warmup_seconds: float
    ) -> dict[str, EndpointStats]:
        """Like ``LoadResult.group_stats``, over this stage's requests: its globs (a stage
        keeps no flows apart). Empty when it kept no requests apart."""
        if self.total is None:
            return {}
        wanted = list(dict.fromkeys([*STANDARD_PERCENTILES, *percentiles]))
        seconds = self.measured_seconds(warmup_seconds)
        return _groups(keys, self.endpoints, (), wanted, seconds, lambda names: "")

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "start_s": self.start_s,
            "end_s": self.end_s,
            "judged": self.judged,
            "level_from": self.level_from,
            "level_to": self.level_to,
            "unit": self.unit,
            "endpoints": [e.to_dict() for e in self.endpoints],
            "total": None if self.total is None else self.total.to_dict(),
            "requests": self.requests,
            "failures": self.failures,
            "iterations_due": self.iterations_due,
            "dropped": self.dropped,
        }

    @classmethod
    def from_dict(cls, data: object, where: str) -> StageResult:
        d = _mapping(data, where)
        counts = {
            key: None if d.get(key) is None else _int(d, key, where)
            for key in ("requests", "failures", "iterations_due", "dropped")
        }
        unit = _str(d, "unit", where)
        if unit not in ("users", "iterations/s"):
            raise ValueError(f"{where}.unit must be 'users' or 'iterations/s', got {unit!r}")
        total = d.get("total")
        return cls(
            name=_str(d, "name", where),
            start_s=_float(d, "start_s", where),
            end_s=_float(d, "end_s", where),
            judged=_bool(d, "judged", where),
            level_from=_float(d, "level_from", where),
            level_to=_float(d, "level_to", where),
            unit=cast(Literal["users", "iterations/s"], unit),
            endpoints=tuple(
                EndpointResult.from_dict(e, f"{where}.endpoints[{i}]")
                for i, e in enumerate(_list(d, "endpoints", where))
            ),
            total=None if total is None else EndpointResult.from_dict(total, f"{where}.total"),
            requests=counts["requests"],
            failures=counts["failures"],
            iterations_due=counts["iterations_due"],
            dropped=counts["dropped"],
        )


@dataclass(frozen=True)
class TimelinePoint:
    """One interval of the run (a controller tick): ``t`` is its end in seconds from the load
    start; ``p95_ms`` the latency of its successes and timeouts (None: none ended in it)."""

    t: float
    requests: int
    failures: int
    p95_ms: float | None
    stage: str = ""
    judged: bool = True

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: object, where: str) -> TimelinePoint:
        d = _mapping(data, where)
        p95 = d.get("p95_ms")
        return cls(
            t=_float(d, "t", where),
            requests=_int(d, "requests", where),
            failures=_int(d, "failures", where),
            p95_ms=None if p95 is None else _float(d, "p95_ms", where),
            stage=_str(d, "stage", where) if "stage" in d else "",
            judged=_bool(d, "judged", where) if "judged" in d else True,
        )


@dataclass(frozen=True)
class LoadResult:
    """The outcome of one load run. ``status`` is "completed", "aborted" or "error"."""

    status: Status
    reason: str
    started_at: str
    finished_at: str
    load_seconds: float
    measured_seconds: float
    users: int
    workers: int
    endpoints: tuple[EndpointResult, ...]
    total: EndpointResult
    errors: tuple[ErrorRecord, ...]
    generator: GeneratorHealth
    warmup_seconds: float = 0.0
    requests_including_warmup: int = 0
    failures_including_warmup: int = 0
    html_report: str | None = None
    schema: int = RESULT_SCHEMA
    # requests still waiting for an answer when the load stopped, warm-up ones included
    # (declarative scenarios: a locustfile's own requests are not tracked)
    unanswered: int = 0
    # of them, the judged ones: each is in its name's ``histogram`` (and ``service_histogram``)
    # at its wait so far, a lower bound of its latency; never in requests, failures or rates
    unanswered_measured: int = 0
    # 0.2: load models. The open model starts iterations on a schedule (``rate``, or stages
    # with a rate); ``iterations_due`` counts the scheduled starts in the judged windows and
    # ``dropped`` those of them that could not start within the plan's arrival lag.
    model: Model = "closed"
    rate: float | None = None
    iterations_due: int = 0
    dropped: int = 0
    stages: tuple[StageResult, ...] = ()
    timeline: tuple[TimelinePoint, ...] = ()
    # scenarios: each declared flow (gate.load.flows) as one entry, method "FLOW": requests =
    # iterations that ran, failures = those with a failed step, histogram = the succeeded
    # iterations' whole durations (from the iteration's start: its due time in the open model)
    flows: tuple[EndpointResult, ...] = ()

    def top_error(self, name: str) -> str:
        """The most frequent error of request name ``name`` (or of all, for TOTAL), as a short
        phrase (``error_phrase``); "" when it had none."""
        return self.top_error_of([name])

    def top_error_of(self, names: Iterable[str]) -> str:
        """The most frequent error of the request names ``names`` together (TOTAL among them:
        of all); "" when they had none."""
        wanted = set(names)
        counts: dict[str, int] = {}
        for e in self.errors:
            if TOTAL in wanted or e.name in wanted:
                phrase = error_phrase(e.error)
                counts[phrase] = counts.get(phrase, 0) + e.occurrences
        if not counts:
            return ""
        return max(counts.items(), key=lambda kv: (kv[1], kv[0]))[0]

    @property
    def judged_seconds(self) -> float:
        """What the rates are over: ``measured_seconds`` (warm-up end to stop) less the stages
        with ``judge: false`` in it, whose requests are not counted either."""
        unjudged = 0.0
        stop = self.warmup_seconds + self.measured_seconds
        for stage in self.stages:
            if not stage.judged:
                unjudged += max(
                    0.0, min(stage.end_s, stop) - max(stage.start_s, self.warmup_seconds)
                )
        return max(0.0, self.measured_seconds - unjudged)

    def endpoint_stats(
        self, percentiles: Iterable[str] = STANDARD_PERCENTILES
    ) -> dict[str, EndpointStats]:
        """Per request name (and ``budgets.TOTAL``): counts, rps over the judged seconds, and
        every percentile asked for (``"p95"``, ``"p99.9"``) plus ``STANDARD_PERCENTILES``."""
        keys = list(dict.fromkeys([*STANDARD_PERCENTILES, *percentiles]))
        for key in keys:
            _percentile(key)  # fail before computing anything
        stats = {
            e.name: e.stats(keys, self.judged_seconds, self.top_error(e.name))
            for e in self.endpoints
        }
        stats[TOTAL] = self.total.stats(keys, self.judged_seconds, self.top_error(TOTAL))
        return stats

    def group_stats(
        self, keys: Iterable[str], percentiles: Iterable[str] = STANDARD_PERCENTILES
    ) -> dict[str, EndpointStats]:
        """What budget keys that are no request name judge (``budgets.evaluate(groups=)``):
        every flow (``kind`` "flow": iterations, their whole durations as the latency), and
        each glob of ``keys`` that covered a request name (``kind`` "group", ``covers``: the
        names, their requests merged exactly). A request name wins over a flow of the same
        name, a flow over a glob; a glob that covered nothing is left out (``evaluate`` says
        so)."""
        wanted = list(dict.fromkeys([*STANDARD_PERCENTILES, *percentiles]))
        for key in wanted:
            _percentile(key)
        return _groups(
            keys, self.endpoints, self.flows, wanted, self.judged_seconds, self.top_error_of
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": self.schema,
            "status": self.status,
            "reason": self.reason,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "load_seconds": self.load_seconds,
            "measured_seconds": self.measured_seconds,
            "warmup_seconds": self.warmup_seconds,
            "users": self.users,
            "workers": self.workers,
            "requests_including_warmup": self.requests_including_warmup,
            "failures_including_warmup": self.failures_including_warmup,
            "endpoints": [e.to_dict() for e in self.endpoints],
            "total": self.total.to_dict(),
            "errors": [e.to_dict() for e in self.errors],
            "generator": self.generator.to_dict(),
            "html_report": self.html_report,
            "unanswered": self.unanswered,
            "unanswered_measured": self.unanswered_measured,
            "model": self.model,
            "rate": self.rate,
            "iterations_due": self.iterations_due,
            "dropped": self.dropped,
            "stages": [st.to_dict() for st in self.stages],
            "timeline": [p.to_dict() for p in self.timeline],
            "flows": [f.to_dict() for f in self.flows],
        }

    @classmethod
    def from_dict(cls, data: object) -> LoadResult:
        """Parse the child's JSON document. Raises ValueError naming the bad field."""
        d = _mapping(data, "result")
        schema = d.get("schema")
        if schema != RESULT_SCHEMA:
            raise ValueError(f"result: unknown schema {schema!r}, expected {RESULT_SCHEMA}")
        status = _str(d, "status", "result")
        if status not in _STATUSES:
            raise ValueError(f"result.status must be one of {_STATUSES}, got {status!r}")
        html = d.get("html_report")
        if html is not None and not isinstance(html, str):
            raise ValueError(f"result.html_report must be a string or null, got {html!r}")
        model = d.get("model", "closed")
        if model not in _MODELS:
            raise ValueError(f"result.model must be one of {_MODELS}, got {model!r}")
        rate = d.get("rate")
        return cls(
            status=cast(Status, status),
            reason=_str(d, "reason", "result"),
            started_at=_str(d, "started_at", "result"),
            finished_at=_str(d, "finished_at", "result"),
            load_seconds=_float(d, "load_seconds", "result"),
            measured_seconds=_float(d, "measured_seconds", "result"),
            warmup_seconds=_float(d, "warmup_seconds", "result", default=0.0),
            users=_int(d, "users", "result"),
            workers=_int(d, "workers", "result"),
            requests_including_warmup=_int(d, "requests_including_warmup", "result", default=0),
            failures_including_warmup=_int(d, "failures_including_warmup", "result", default=0),
            endpoints=tuple(
                EndpointResult.from_dict(e, f"result.endpoints[{i}]")
                for i, e in enumerate(_list(d, "endpoints", "result"))
            ),
            total=EndpointResult.from_dict(d.get("total"), "result.total"),
            errors=tuple(
                ErrorRecord.from_dict(e, f"result.errors[{i}]")
                for i, e in enumerate(_list(d, "errors", "result"))
            ),
            generator=GeneratorHealth.from_dict(d.get("generator"), "result.generator"),
            html_report=html,
            unanswered=_int(d, "unanswered", "result", default=0),
            unanswered_measured=_int(d, "unanswered_measured", "result", default=0),
            model=cast(Model, model),
            rate=None if rate is None else _float(d, "rate", "result"),
            iterations_due=_int(d, "iterations_due", "result", default=0),
            dropped=_int(d, "dropped", "result", default=0),
            stages=tuple(
                StageResult.from_dict(st, f"result.stages[{i}]")
                for i, st in enumerate(_list(d, "stages", "result") if "stages" in d else [])
            ),
            timeline=tuple(
                TimelinePoint.from_dict(p, f"result.timeline[{i}]")
                for i, p in enumerate(_list(d, "timeline", "result") if "timeline" in d else [])
            ),
            flows=tuple(
                EndpointResult.from_dict(f, f"result.flows[{i}]")
                for i, f in enumerate(_list(d, "flows", "result") if "flows" in d else [])
            ),
        )

    @classmethod
    def failed(
        cls,
        reason: str,
        *,
        users: int = 0,
        workers: int = 0,
        started_at: str = "",
        finished_at: str = "",
        warmup_seconds: float = 0.0,
        generator: GeneratorHealth | None = None,
    ) -> LoadResult:
        """A result with status "error" and nothing measured: a failure in the child before
        or instead of the load, or outside it."""
        return cls(
            status="error",
            reason=reason,
            started_at=started_at,
            finished_at=finished_at,
            load_seconds=0.0,
            measured_seconds=0.0,
            users=users,
            workers=workers,
            endpoints=(),
            total=EndpointResult(TOTAL, "", 0, 0, LogHistogram()),
            errors=(),
            generator=generator or GeneratorHealth.unknown(),
            warmup_seconds=warmup_seconds,
        )


# --- strict field readers: every message names the field --------------------------------------
_MISSING = object()


def _mapping(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{where} must be an object, got {type(value).__name__}")
    return value


def _get(d: Mapping[str, Any], key: str, where: str, default: object) -> object:
    value = d.get(key, default)
    if value is _MISSING:
        raise ValueError(f"{where}.{key} is missing")
    return value


def _str(d: Mapping[str, Any], key: str, where: str) -> str:
    value = _get(d, key, where, _MISSING)
    if not isinstance(value, str):
        raise ValueError(f"{where}.{key} must be a string, got {value!r}")
    return value


def _int(d: Mapping[str, Any], key: str, where: str, default: object = _MISSING) -> int:
    value = _get(d, key, where, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{where}.{key} must be an integer >= 0, got {value!r}")
    return value


def _opt_float(d: Mapping[str, Any], key: str, where: str) -> float | None:
    return None if d.get(key) is None else _float(d, key, where)


def _float(d: Mapping[str, Any], key: str, where: str, default: object = _MISSING) -> float:
    value = _get(d, key, where, default)
    if (
        not isinstance(value, (int, float))
        or isinstance(value, bool)
        or not _finite(value)
        or value < 0
    ):
        raise ValueError(f"{where}.{key} must be a finite number >= 0, got {_short(value)}")
    return float(value)


def _finite(value: float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an int no float can hold (10**400)
        return False


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:40] + "..."


def _bool(d: Mapping[str, Any], key: str, where: str) -> bool:
    value = _get(d, key, where, _MISSING)
    if not isinstance(value, bool):
        raise ValueError(f"{where}.{key} must be true or false, got {value!r}")
    return value


def _list(d: Mapping[str, Any], key: str, where: str) -> list[Any]:
    value = _get(d, key, where, _MISSING)
    if not isinstance(value, list):
        raise ValueError(f"{where}.{key} must be a list, got {type(value).__name__}")
    return value
