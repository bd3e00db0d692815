"""What stagegate.yaml describes, as frozen dataclasses: a resolved ``Target`` and its checks,
and the ``GateSettings`` (load plan, abort rules, budgets, policy) for one target.

Pure model: nothing here reads a file or the environment; ``config`` builds these and
re-exports them, so ``from pytest_stagegate.config import Target`` is the usual import.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from .. import defaults
from .._redact import Redactor
from ..budgets import Budget, Waiver

__all__ = [
    "AbortSettings",
    "GateSettings",
    "LoadSettings",
    "ReadyCheck",
    "RequestSpec",
    "StageSpec",
    "Target",
    "VersionCheck",
]


@dataclass(frozen=True)
class ReadyCheck:
    """Poll ``path`` until it answers 2xx, for at most ``timeout`` seconds."""

    path: str
    timeout: float = defaults.READY_TIMEOUT
    interval: float = defaults.READY_INTERVAL  # first poll interval; doubles up to the max


@dataclass(frozen=True)
class VersionCheck:
    """Fetch ``path`` and compare its text (or JSON ``field``, dotted) with ``expect``."""

    path: str
    expect: str
    field: str | None = None


@dataclass(frozen=True, repr=False)
class Target:
    """One environment, resolved: every ``${VAR}`` substituted."""

    name: str
    base_url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout: float = defaults.REQUEST_TIMEOUT
    ready: ReadyCheck | None = None
    version: VersionCheck | None = None
    vars: Mapping[str, Any] = field(default_factory=dict)
    protected: bool = False
    allow_load: bool = True
    verify_tls: bool = True
    secrets: frozenset[str] = frozenset()
    max_body: int = defaults.MAX_BODY  # the largest response body accepted, in bytes

    @cached_property
    def redactor(self) -> Redactor:
        """Masks this target's secrets; built once (it runs on every line of output)."""
        return Redactor(self.secrets)

    def redact(self, text: str) -> str:
        """``text`` with every secret value replaced by ``***``."""
        return self.redactor(text)

    def public_headers(self) -> dict[str, str]:
        """Headers safe to show: a value holding a secret is ``***``-redacted."""
        return {k: self.redact(v) for k, v in self.headers.items()}

    def __repr__(self) -> str:
        return self.redact(
            f"Target(name={self.name!r}, base_url={self.base_url!r}, "
            f"headers={self.public_headers()!r}, timeout={self.timeout!r}, "
            f"protected={self.protected!r}, allow_load={self.allow_load!r}, "
            f"vars={dict(self.vars)!r})"
        )

    __str__ = __repr__


@dataclass(frozen=True)
class JsonExpect:
    """One entry of ``expect.json``: the JMESPath ``expr`` over the JSON body equals ``value``,
    or, with ``present`` set, only finds something (True) or nothing (False)."""

    expr: str
    value: Any = None
    present: bool | None = None


@dataclass(frozen=True)
class Capture:
    """``capture: {var: "jmespath"}`` (over the JSON body) or ``{var: {header: NAME}}``: a
    value kept per user and used in later requests' templates as ``{var}``."""

    var: str
    json: str | None = None  # a JMESPath expression
    header: str | None = None


@dataclass(frozen=True)
class RequestSpec:
    """One request of the declarative scenario (``gate.load.requests``, or a flow's step).
    ``path``, header values, ``query`` values and strings in ``json`` are templates:
    ``{var}`` (a capture), ``{vars.NAME}`` (the target's vars), ``{row.COLUMN}`` (the data
    file's row); ``{{`` and ``}}`` are literal braces."""

    method: str
    path: str
    name: str  # the request name budgets refer to; default "METHOD path" (the template as written)
    weight: int = 1
    headers: Mapping[str, str] = field(default_factory=dict)
    json: Any = None
    # expect.status, or expect_status as written in 0.1; empty: any status < 400 is a success
    expect_status: tuple[int, ...] = ()
    query: Mapping[str, str] = field(default_factory=dict)
    expect_json: tuple[JsonExpect, ...] = ()
    expect_contains: str | None = None  # the body (decoded as UTF-8) contains this text
    # header name -> text the response's header value contains (case-insensitive)
    expect_headers: Mapping[str, str] = field(default_factory=dict)
    capture: tuple[Capture, ...] = ()


@dataclass(frozen=True)
class FlowSpec:
    """``gate.load.flows[]``: a user journey, its steps run in order by one user; ``on_start``
    runs once per user (a login). The flow's name is also a budget key: its whole duration,
    from the iteration's start to its last step's end, as one sample."""

    name: str
    weight: int = 1
    steps: tuple[RequestSpec, ...] = ()
    on_start: tuple[RequestSpec, ...] = ()
    wait: tuple[float, float] = (0.0, 0.0)  # between steps, like gate.load.wait


@dataclass(frozen=True)
class DataSpec:
    """``gate.load.data``: a CSV file next to stagegate.yaml, one row per iteration
    (``{row.COLUMN}``). ``unique`` rows are never handed out twice, across users and workers."""

    file: Path
    mode: Literal["cycle", "random", "unique"] = "cycle"
    columns: tuple[str, ...] = ()
    # columns whose values are secrets beside those whose names look secret (``data.secret``)
    secret: tuple[str, ...] = ()


@dataclass(frozen=True)
class StageSpec:
    """One stage of ``gate.load.stages``: the level (``rate`` in the open model, ``users`` in the
    closed one) moves linearly from the previous stage's level (0 before the first) to this
    stage's over ``duration`` seconds (k6's convention)."""

    name: str  # default "stage N", 1-based
    duration: float
    rate: float | None = None  # iterations per second
    users: int | None = None
    judge: bool = True  # False: its requests are not judged (a ramp)
    budgets: tuple[Budget, ...] = ()  # judged on this stage's requests only


@dataclass(frozen=True)
class AbortSettings:
    """When to stop the load early because the deployment is clearly broken."""

    enabled: bool = True
    error_rate: float = defaults.ABORT_ERROR_RATE  # fail fast when this share of requests fail
    min_requests: int = defaults.ABORT_MIN_REQUESTS  # ... over at least this many requests
    latency_factor: float = defaults.ABORT_LATENCY_FACTOR  # or a latency budget is exceeded
    latency_for: float = defaults.ABORT_LATENCY_FOR  # ... that many times over for this long
    grace: float = defaults.STOP_GRACE  # extra seconds the load may take to stop before a kill


@dataclass(frozen=True)
class LoadSettings:
    """``gate.load`` after per-target overrides."""

    # In the open model, users is the most concurrent iterations (the loader's default:
    # config._gate.open_model_users); with closed-model stages, their peak.
    users: int = defaults.USERS
    spawn_rate: float = defaults.SPAWN_RATE
    duration: float = defaults.DURATION  # with stages, their sum (the loader sets it)
    warmup: float = 0.0
    requests: tuple[RequestSpec, ...] = ()
    locustfile: Path | None = None
    user_class: Literal["fast", "http"] = "fast"
    wait: tuple[float, float] = (0.0, 0.0)  # between(min, max) seconds, Locust's default is 0
    abort: AbortSettings = AbortSettings()
    rate: float | None = None  # open model: iterations started per second, over all workers
    stages: tuple[StageSpec, ...] = ()
    flows: tuple[FlowSpec, ...] = ()  # user journeys; ``requests`` are one-step flows
    data: DataSpec | None = None
    # live metrics through Locust's OpenTelemetry support: True on, False off, None (unset) on
    # when OTEL_EXPORTER_OTLP_ENDPOINT (or ..._METRICS_ENDPOINT) is set
    otel: bool | None = None

    @property
    def once_per_user(self) -> frozenset[str]:
        """The request names that run only in a flow's ``on_start`` (once per user)."""
        on_start = {r.name for f in self.flows for r in f.on_start}
        steps = {r.name for f in self.flows for r in f.steps}
        steps.update(r.name for r in self.requests)
        return frozenset(on_start - steps)

    @property
    def open_model(self) -> bool:
        """Iterations start on a schedule (``rate``, or stages with a rate), whatever the
        answers take; ``users`` is then the most concurrent iterations."""
        return self.rate is not None or any(s.rate is not None for s in self.stages)

    @property
    def has_scenario(self) -> bool:
        """Requests, flows or a locustfile: something for Locust to run."""
        return bool(self.requests) or bool(self.flows) or self.locustfile is not None


@dataclass(frozen=True)
class GateSettings:
    """``gate`` for one target: load plan, budgets and policy, overrides applied."""

    load: LoadSettings = LoadSettings()
    budgets: tuple[Budget, ...] = ()
    min_samples: int = defaults.MIN_SAMPLES
    saturation_cpu: float = defaults.SATURATION_CPU  # percent of one core, per load process
    run_after_critical_failure: bool = False
    flaky_blocks: bool = False  # a flaky (passed on rerun) non-critical test blocks promotion
    # the error budget of every request name and total without one (gate.default_error_rate)
    default_error_rate: float = defaults.ERROR_RATE
    waivers: tuple[Waiver, ...] = ()  # error_rate: off, by name
    # gate.baseline.median_of: *_regression budgets compare with the median of the last K
    # passing verdicts of --gate-baseline auto (1: the latest)
    baseline_median_of: int = 1
