"""The load plan: everything the Locust child process needs, as one JSON document.

The plan is sent to the child on its standard input (never written to disk), because it carries
the target's headers, which may hold secrets.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .. import defaults
from ..budgets import TOTAL, Budget, is_glob
from ..metrics import parse_metric

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from ..config import GateSettings, LoadSettings, RequestSpec, Target

PLAN_SCHEMA = 3  # 2: the open model and stages; 3: flows, expectations, captures, data

# Shared by the pytest side (``load.process``) and the load child (``load.child``).
WORKER_CONNECT_TIMEOUT = 30.0  # how long a master waits for all its workers to connect
EXIT_PORT_BUSY = 3  # the child's exit code for "the master's port was taken"
FINAL_REPORT_TIMEOUT = 10.0  # how long a master waits for its workers' final reports
REPORT_ALLOWANCE = 5.0  # writing the HTML report and the result after the stop
# After the load's duration, the time a child needs to stop: the master's wait for the final
# reports, then the reports. Local runs need far less; the bound is the same for both.
STOP_ALLOWANCE = FINAL_REPORT_TIMEOUT + REPORT_ALLOWANCE


@dataclass(frozen=True)
class PlannedRequest:
    method: str
    path: str
    name: str
    weight: int = 1
    headers: dict[str, str] = field(default_factory=dict)
    json: Any = None
    expect_status: list[int] = field(default_factory=list)
    query: dict[str, str] = field(default_factory=dict)
    # [{"expr", "value", "present"}]: config.JsonExpect as JSON
    expect_json: list[dict[str, Any]] = field(default_factory=list)
    expect_contains: str | None = None
    expect_headers: dict[str, str] = field(default_factory=dict)
    capture: list[dict[str, Any]] = field(default_factory=list)  # [{"var", "json", "header"}]


@dataclass(frozen=True)
class PlannedFlow:
    """``config.FlowSpec`` for the child."""

    name: str
    weight: int = 1
    steps: list[PlannedRequest] = field(default_factory=list)
    on_start: list[PlannedRequest] = field(default_factory=list)
    wait: tuple[float, float] = (0.0, 0.0)


@dataclass(frozen=True)
class PlannedStage:
    """``config.StageSpec`` for the child: the level (``rate`` or ``users``) ramps linearly from
    the previous stage's (0 before the first) to this one's over ``duration`` seconds."""

    name: str
    duration: float
    rate: float | None = None
    users: int | None = None
    judge: bool = True
    measure: bool = False  # the stage has budgets of its own: keep its requests apart


@dataclass(frozen=True)
class LatencyLimit:
    """A latency budget the child watches for early abort: ``metric`` of ``endpoint`` <= ms."""

    endpoint: str  # request name or "total", or a glob over request names (``glob``)
    metric: str  # "p95", "avg", "max", ...
    limit_ms: float
    # ``endpoint`` is an fnmatch glob (``GET /api/*``): the requests of every name it matches,
    # merged, as the verdict judges the group
    glob: bool = False


@dataclass(frozen=True)
class LoadPlan:
    host: str
    users: int
    spawn_rate: float
    duration: float  # seconds of load, warm-up included
    warmup: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    timeout: float = defaults.REQUEST_TIMEOUT  # per request
    verify_tls: bool = True
    max_body: int = defaults.MAX_BODY  # bytes; a larger response body is a failed request
    requests: list[PlannedRequest] = field(default_factory=list)
    locustfile: str | None = None
    user_class: Literal["fast", "http"] = "fast"
    wait: tuple[float, float] = (0.0, 0.0)
    vars: dict[str, Any] = field(default_factory=dict)
    target_name: str = ""
    secrets: list[str] = field(default_factory=list)  # redacted from logs and reports
    # early abort
    abort_enabled: bool = True
    abort_error_rate: float = defaults.ABORT_ERROR_RATE
    abort_min_requests: int = defaults.ABORT_MIN_REQUESTS
    abort_latency: list[LatencyLimit] = field(default_factory=list)
    abort_latency_factor: float = defaults.ABORT_LATENCY_FACTOR
    abort_latency_for: float = defaults.ABORT_LATENCY_FOR
    # saturation
    saturation_cpu: float = defaults.SATURATION_CPU
    # outputs
    html_report: str | None = None
    progress_interval: float = 1.0
    # the open model: iterations started per second over all workers (None: closed model,
    # unless the stages have rates); stages ramp the level (duration is then their sum)
    rate: float | None = None
    stages: list[PlannedStage] = field(default_factory=list)
    arrival_lag: float = defaults.ARRIVAL_LAG
    # scenarios: journeys (``requests`` stay one-step iterations), the data file's rows
    flows: list[PlannedFlow] = field(default_factory=list)
    data_file: str | None = None  # its name, for messages
    data_mode: Literal["cycle", "random", "unique"] = "cycle"
    data_rows: list[dict[str, str]] = field(default_factory=list)
    # live metrics: the child exports through Locust's OpenTelemetry support (otel_wanted)
    otel: bool = False
    schema: int = PLAN_SCHEMA

    @property
    def open_model(self) -> bool:
        return self.rate is not None or any(s.rate is not None for s in self.stages)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> LoadPlan:
        data = json.loads(text)
        if data.get("schema") != PLAN_SCHEMA:
            raise ValueError(
                f"the load plan is schema {data.get('schema')!r}; this version of "
                f"pytest-stagegate reads schema {PLAN_SCHEMA}"
            )
        data["requests"] = [PlannedRequest(**r) for r in data.get("requests", [])]
        data["abort_latency"] = [LatencyLimit(**a) for a in data.get("abort_latency", [])]
        data["stages"] = [PlannedStage(**st) for st in data.get("stages", [])]
        data["flows"] = [
            PlannedFlow(
                name=f["name"],
                weight=f.get("weight", 1),
                steps=[PlannedRequest(**r) for r in f.get("steps", [])],
                on_start=[PlannedRequest(**r) for r in f.get("on_start", [])],
                wait=tuple(f.get("wait", (0.0, 0.0))),
            )
            for f in data.get("flows", [])
        ]
        data["wait"] = tuple(data.get("wait", (0.0, 0.0)))
        return cls(**data)


def plan_for(
    target: Target,
    settings: GateSettings,
    *,
    html_report: str | None = None,
    secrets: Iterable[str] = (),
    environ: Mapping[str, str] | None = None,
) -> LoadPlan:
    """The plan for ``target`` under ``settings``: what the gate runs, and what a remote worker
    (``stagegate worker``) builds from its own stagegate.yaml and environment. The child masks
    the target's secrets and ``secrets`` (the rest of the run's: a configured target a hook
    replaced, the signing key) in its log and report, and the data file's secret columns' values
    (its rows are read here, into the plan: the child never reads the file). ``environ``
    (default ``os.environ``) decides whether live metrics go out (``otel_wanted``)."""
    load = settings.load
    abort = load.abort
    rows = data_rows(load)
    stages = [
        PlannedStage(
            name=st.name,
            duration=st.duration,
            rate=st.rate,
            users=st.users,
            judge=st.judge,
            measure=bool(st.budgets),
        )
        for st in load.stages
    ]
    return LoadPlan(
        host=target.base_url,
        users=load.users,
        # The open model's users (the most concurrent iterations) are all ready at once.
        spawn_rate=float(load.users) if load.open_model else load.spawn_rate,
        duration=math.fsum(st.duration for st in stages) if stages else load.duration,
        warmup=load.warmup,
        headers=dict(target.headers),
        timeout=target.timeout,
        verify_tls=target.verify_tls,
        max_body=target.max_body,
        requests=[_planned(r) for r in load.requests],
        locustfile=str(load.locustfile) if load.locustfile else None,
        user_class=load.user_class,
        wait=load.wait,
        vars=dict(target.vars),
        target_name=target.name,
        secrets=sorted(target.secrets.union(secrets, _data_secrets(load, rows))),
        abort_enabled=abort.enabled,
        abort_error_rate=abort.error_rate,
        abort_min_requests=abort.min_requests,
        abort_latency=_abort_latency(settings.budgets, load),
        abort_latency_factor=abort.latency_factor,
        abort_latency_for=abort.latency_for,
        saturation_cpu=settings.saturation_cpu,
        html_report=str(Path(html_report).resolve()) if html_report else None,
        rate=load.rate,
        stages=stages,
        arrival_lag=defaults.ARRIVAL_LAG,
        flows=[
            PlannedFlow(
                name=f.name,
                weight=f.weight,
                steps=[_planned(r) for r in f.steps],
                on_start=[_planned(r) for r in f.on_start],
                wait=f.wait,
            )
            for f in load.flows
        ],
        data_file=load.data.file.name if load.data is not None else None,
        data_mode=load.data.mode if load.data is not None else "cycle",
        data_rows=rows,
        otel=otel_wanted(load.otel, os.environ if environ is None else environ),
    )


# The request path of the declarative scenario (docs/load-engine.md, Lean request path):
# "lean" (the default) or "locust" (Locust's FastHttpUser for every request, a debugging switch).
LOAD_PATH_ENV = "STAGEGATE_LOAD_PATH"
LOAD_PATHS = ("lean", "locust")
Engine = Literal["lean", "locust", "locustfile"]


def load_path_problem(environ: Mapping[str, str], who: str = "pytest-stagegate") -> str | None:
    """The usage paragraph for a ``$STAGEGATE_LOAD_PATH`` that names no request path, or None
    (unset or empty: the default)."""
    value = environ.get(LOAD_PATH_ENV, "").strip()
    if not value or value.lower() in LOAD_PATHS:
        return None
    return (
        f"{who}: ${LOAD_PATH_ENV} is {value[:40]!r}, which names no request path of the "
        f"load: set it to lean (the default: the gate's own request path) or locust "
        f"(Locust's FastHttpUser for every request), or unset it."
    )


def engine_of(plan: LoadPlan, environ: Mapping[str, str]) -> Engine:
    """The path the load's requests take: ``locustfile`` (the project's own users),
    ``locust`` (Locust's HttpUser or FastHttpUser: ``user_class: http`` or
    ``$STAGEGATE_LOAD_PATH=locust``) or ``lean`` (the declarative scenario's default)."""
    if plan.locustfile:
        return "locustfile"
    if plan.user_class != "fast":
        return "locust"
    return "locust" if environ.get(LOAD_PATH_ENV, "").strip().lower() == "locust" else "lean"


# the OpenTelemetry packages live metrics need (the extra pytest-stagegate[otel])
OTEL_MODULES = ("opentelemetry.sdk.metrics", "opentelemetry.exporter.otlp.proto.http")
OTEL_ENDPOINT_ENVS = (defaults.OTEL_ENDPOINT_ENV, "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")


def otel_wanted(setting: bool | None, environ: Mapping[str, str]) -> bool:
    """Whether the load's metrics go out live: ``gate.load.otel`` when set (``false`` turns
    them off whatever the environment says), else whether the environment names an OTLP
    endpoint, as OpenTelemetry's own variables do."""
    if setting is not None:
        return setting
    return any(environ.get(name, "").strip() for name in OTEL_ENDPOINT_ENVS)


def otel_missing() -> str | None:
    """The first OpenTelemetry module live metrics need that is not installed, or None. Looks
    for them without importing their code (``importlib.util.find_spec`` imports the parent
    packages only)."""
    import importlib.util

    for name in OTEL_MODULES:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            return name
    return None


def _planned(r: RequestSpec) -> PlannedRequest:
    return PlannedRequest(
        method=r.method,
        path=r.path,
        name=r.name,
        weight=r.weight,
        headers=dict(r.headers),
        json=r.json,
        expect_status=list(r.expect_status),
        query=dict(r.query),
        expect_json=[
            {"expr": e.expr, "value": e.value, "present": e.present} for e in r.expect_json
        ],
        expect_contains=r.expect_contains,
        expect_headers=dict(r.expect_headers),
        capture=[{"var": c.var, "json": c.json, "header": c.header} for c in r.capture],
    )


def data_rows(load: LoadSettings) -> list[dict[str, str]]:
    """The rows of ``load``'s data file (none without one), read now: the plan carries them.
    Raises ``ConfigError`` naming the file when it changed since stagegate.yaml was loaded
    into something unusable."""
    if load.data is None:
        return []
    from ..config._data import DataError, read_data
    from ..errors import ConfigError

    try:
        return read_data(load.data.file).rows
    except DataError as error:
        raise ConfigError(f"gate.load.data: {error}", path=load.data.file) from None


def data_secrets(load: LoadSettings) -> frozenset[str]:
    """The values of ``load``'s data file that are secrets (the maskable values of its secret
    columns, ``config._data.data_secrets``): the pytest side masks them as the load child does
    (``RunSecrets``)."""
    return _data_secrets(load, data_rows(load))


def _data_secrets(load: LoadSettings, rows: list[dict[str, str]]) -> frozenset[str]:
    from ..config._data import data_secrets as secrets_of

    return secrets_of(rows, load.data.secret if load.data is not None else ())


def _abort_latency(budgets: Iterable[Budget], load: LoadSettings) -> list[LatencyLimit]:
    """The latency limits the early abort watches. A budget key is read as the verdict reads it
    (``budgets``: a request name or ``total``, then a flow, then a glob): a glob's limit is
    watched over the names it covers, merged (``LatencyLimit.glob``); a flow's is left to the
    end (its iterations are tallied apart from the requests the abort's window holds). A
    locustfile's names are unknown here: a key with glob characters is a glob."""
    names = {r.name for r in load.requests}
    for flow in load.flows:
        names.update(r.name for r in (*flow.on_start, *flow.steps))
    flows = {f.name for f in load.flows}
    limits: list[LatencyLimit] = []
    for b in budgets:
        if not _is_latency_limit(b):
            continue
        exact = b.endpoint == TOTAL or b.endpoint in names
        if not exact and b.endpoint in flows:
            continue
        glob = not exact and is_glob(b.endpoint)
        limits.append(LatencyLimit(b.endpoint, b.metric, b.limit, glob=glob))
    return limits


def _is_latency_limit(budget: Budget) -> bool:
    """An absolute latency limit in ms that the early abort can watch: not a regression (a
    ratio, not a limit) nor a service time (the abort watches the latency histogram; a service
    time is judged at the end only)."""
    metric = parse_metric(budget.metric)
    return metric.is_latency and not metric.regression and not metric.service_time
