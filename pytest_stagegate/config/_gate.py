"""``gate`` -> one ``GateSettings`` per target: the load plan, abort rules, budgets and policy
written under ``gate``, merged with the overrides under ``gate.targets.NAME``.

All of it is read and checked when the file is loaded; no ``${VAR}`` is substituted here (that
happens only under ``targets``).

Rules the contract leaves open, decided here:

- A per-target override that sets ``requests`` or ``locustfile`` replaces the base scenario as a
  whole instead of being merged with it (``requests`` plus ``locustfile`` is an error).
- A budget for a request name that no declared scenario has is an error (a typo would otherwise
  only show up as an inconclusive check), unless some scenario uses a locustfile. Stage budgets
  are checked the same way.

The load model (``rate``, ``stages``):

- A load model is one thing, like the scenario: an override that sets ``rate`` or ``stages``
  replaces the base's ``rate`` and ``stages`` both (a target can switch from a constant rate to
  a ramp, or from the open model to closed-model stages, without unsetting anything).
- ``rate`` and ``stages`` together, stages of both kinds (some ``rate``, some ``users``), and a
  locustfile with the open model are errors (the open model drives the declarative requests; a
  locustfile runs its own users, so only stages with ``users`` suit it).
- With stages the duration is their sum; with closed-model stages ``users`` is their peak;
  the open model starts all its users at once (``spawn_rate`` = ``users``) and has no ``wait``.
  Writing one of these keys where the load model is written (or in a target's override of a
  base load model) is an error naming it, as it would otherwise be silently ignored. The same
  key written in the base under a load model a target's override sets is ignored for that target
  (it still applies to the others).
- ``users`` in the open model is the most concurrent iterations; when no level writes it, it is
  ``max(OPEN_MIN_USERS, ceil(peak rate x OPEN_USERS_PER_RATE))`` (``defaults``).
- ``warmup`` must end before the last judged stage does, and at least one stage must be judged.
- A stage's budgets cannot waive (``error_rate: off`` belongs to ``gate.budgets``) nor compare
  with a baseline (``*_regression``: a baseline is compared run to run, not stage to stage).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .. import budgets as _budgets
from .. import defaults
from ..budgets import TOTAL, Budget, Waiver
from ..errors import did_you_mean
from ..metrics import parse_metric
from ..units import format_duration, parse_arrival_rate
from ._yaml import HEADER_NAME, Doc, Index, KeyPath, check_json, got, present, unknown
from .model import AbortSettings, GateSettings, LoadSettings, RequestSpec, StageSpec

_POLICY_KEYS = (
    "min_samples",
    "saturation_cpu",
    "run_after_critical_failure",
    "flaky_blocks",
    "default_error_rate",
)
_GATE_KEYS = ("load", "budgets", "targets", *_POLICY_KEYS)
_TARGET_GATE_KEYS = ("load", "budgets", *_POLICY_KEYS)
_LOAD_KEYS = (
    "users",
    "spawn_rate",
    "duration",
    "warmup",
    "wait",
    "user_class",
    "requests",
    "locustfile",
    "abort",
    "rate",
    "stages",
)
_STAGE_KEYS = ("name", "duration", "rate", "users", "judge", "budgets")
_STAGES_EXAMPLE = "[{duration: 30s, rate: 10/s, judge: false}, {duration: 2m, rate: 50/s}]"
# What a load model decides itself: written next to one, these have no effect.
_MODEL_KEYS = ("duration", "users", "spawn_rate", "wait")
_OPEN_MODEL_LOCUSTFILE = (
    "the open model (rate) drives the declarative requests; a locustfile runs its own users: "
    "use stages with users, or requests"
)
_ABORT_KEYS = ("enabled", "error_rate", "min_requests", "latency_factor", "latency_for", "grace")
_REQUEST_KEYS = ("method", "path", "name", "weight", "headers", "json", "expect_status")
_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
_USER_CLASSES = ("fast", "http")

# A parsed setting and where it was written; the location decides where a conflict is reported.
_Fields = dict[str, tuple[Any, KeyPath]]
_BudgetMap = dict[str, dict[str, tuple[Budget | Waiver, KeyPath]]]


@dataclass
class _GatePart:
    """What one level (``gate`` or ``gate.targets.NAME``) writes, parsed but not merged."""

    policy: _Fields
    load: _Fields
    abort: _Fields
    budgets: _BudgetMap
    endpoint_keys: dict[str, KeyPath]
    # request names the stages' budgets refer to, and where (a name may recur across stages)
    stage_endpoint_keys: list[tuple[str, KeyPath]] = field(default_factory=list)


def _parse_policy(doc: Doc, values: Mapping[Any, Any], keypath: KeyPath) -> _Fields:
    out: _Fields = {}
    readers: dict[str, Callable[[object, KeyPath], object]] = {
        "min_samples": lambda v, kp: doc.integer(v, kp, minimum=1),
        "saturation_cpu": doc.percent,
        "run_after_critical_failure": doc.boolean,
        "flaky_blocks": doc.boolean,
        "default_error_rate": doc.rate,
    }
    for key, read in readers.items():
        if present(values, key):
            kp = (*keypath, key)
            out[key] = (read(values[key], kp), kp)
    return out


def _parse_wait(doc: Doc, value: object, keypath: KeyPath) -> tuple[float, float]:
    if isinstance(value, list):
        if len(value) != 2:
            raise doc.error(
                keypath, f"expected [min, max] such as [1s, 3s], got a list of {len(value)}"
            )
        low = doc.duration(value[0], (*keypath, Index(0)))
        high = doc.duration(value[1], (*keypath, Index(1)))
        if low > high:
            raise doc.error(
                keypath, f"min ({format_duration(low)}) is more than max ({format_duration(high)})"
            )
        return (low, high)
    seconds = doc.duration(value, keypath)
    return (seconds, seconds)


def _parse_status(doc: Doc, value: object, keypath: KeyPath) -> tuple[int, ...]:
    items = value if isinstance(value, list) else [value]
    statuses: list[int] = []
    for i, item in enumerate(items):
        kp = (*keypath, Index(i)) if isinstance(value, list) else keypath
        if isinstance(item, bool) or not isinstance(item, int) or not 100 <= item <= 599:
            raise doc.error(
                kp,
                f"expected an HTTP status such as 200 or a list such as [200, 404], "
                f"got {got(item)}",
            )
        statuses.append(item)
    if not statuses:
        raise doc.error(keypath, "expected at least one HTTP status, got an empty list")
    return tuple(statuses)


def _parse_request_headers(doc: Doc, value: object, keypath: KeyPath) -> dict[str, str]:
    values = doc.mapping(value, keypath, "a mapping of header name: value")
    headers: dict[str, str] = {}
    for name, raw in values.items():
        kp = (*keypath, name)
        if not isinstance(name, str) or not HEADER_NAME.fullmatch(name):
            raise doc.error(kp, f"{got(name)} is not a valid HTTP header name, such as X-Api-Key")
        if isinstance(raw, int) and not isinstance(raw, bool):
            raw = str(raw)
        text = doc.string(raw, kp, "a string (header value)")
        if "${" in text:
            raise doc.error(
                kp,
                "${...} is substituted only under targets; put this header in "
                "targets.NAME.headers (it is sent with every load request too)",
            )
        if "\r" in text or "\n" in text:
            raise doc.error(kp, "a header value cannot contain a line break")
        headers[name] = text
    return headers


def _parse_request(doc: Doc, value: object, keypath: KeyPath) -> RequestSpec:
    example = "'GET /api/products' or {method: GET, path: /api/products}"
    if isinstance(value, str):
        words = value.split()
        if len(words) != 2:
            raise doc.error(keypath, f"expected 'METHOD /path' such as {example}, got {got(value)}")
        values: dict[Any, Any] = {"method": words[0], "path": words[1]}
    else:
        values = doc.mapping(value, keypath, f"a request such as {example}")
        doc.known_keys(values, keypath, _REQUEST_KEYS)
    method = "GET"
    if present(values, "method"):
        kp = (*keypath, "method")
        method = doc.string(values["method"], kp, "an HTTP method").upper()
        if method not in _METHODS:
            raise doc.error(
                kp,
                unknown("HTTP method", values["method"], _METHODS, "Valid methods"),
            )
    path = doc.path_string(
        doc.required(values, "path", keypath, f"a request needs a path, such as {example}"),
        (*keypath, "path"),
    )
    if "${" in path:
        raise doc.error((*keypath, "path"), "${...} is substituted only under targets")
    name = f"{method} {path}"
    if present(values, "name"):
        name = doc.string(values["name"], (*keypath, "name"), "a request name")
        if not name.strip():
            raise doc.error((*keypath, "name"), "a request name cannot be empty")
    weight = 1
    if present(values, "weight"):
        weight = doc.integer(values["weight"], (*keypath, "weight"), minimum=1)
    headers: dict[str, str] = {}
    if present(values, "headers"):
        headers = _parse_request_headers(doc, values["headers"], (*keypath, "headers"))
    status: tuple[int, ...] = ()
    if present(values, "expect_status"):
        status = _parse_status(doc, values["expect_status"], (*keypath, "expect_status"))
    return RequestSpec(
        method=method,
        path=path,
        name=name,
        weight=weight,
        headers=headers,
        json=check_json(doc, values.get("json"), (*keypath, "json")),
        expect_status=status,
    )


def _parse_locustfile(doc: Doc, value: object, keypath: KeyPath) -> Path:
    text = doc.string(value, keypath, "a path to a Locust file")
    base = doc.path.parent if doc.path is not None else Path.cwd()
    resolved = (base / Path(text).expanduser()).resolve()
    if not resolved.exists():
        raise doc.error(
            keypath,
            f"locustfile {text!r} not found (looked for {resolved}; a relative path is relative "
            f"to the directory of {doc.source_name})",
        )
    if not resolved.is_file():
        raise doc.error(keypath, f"locustfile {text!r} is not a file ({resolved})")
    return resolved


def _parse_abort(doc: Doc, value: object, keypath: KeyPath) -> _Fields:
    values = doc.mapping(value, keypath)
    doc.known_keys(values, keypath, _ABORT_KEYS)
    readers: dict[str, Callable[[object, KeyPath], object]] = {
        "enabled": doc.boolean,
        "error_rate": doc.rate,
        "min_requests": lambda v, kp: doc.integer(v, kp, minimum=1),
        "latency_factor": lambda v, kp: doc.number(v, kp, above=1.0),
        "latency_for": lambda v, kp: doc.duration(v, kp, positive=True),
        "grace": doc.duration,
    }
    out: _Fields = {}
    for key, read in readers.items():
        if present(values, key):
            kp = (*keypath, key)
            out[key] = (read(values[key], kp), kp)
    return out


def _parse_load(
    doc: Doc, value: object, keypath: KeyPath
) -> tuple[_Fields, _Fields, list[tuple[str, KeyPath]]]:
    values = doc.mapping(value, keypath)
    doc.known_keys(values, keypath, _LOAD_KEYS)
    if present(values, "requests") and present(values, "locustfile"):
        raise doc.error(
            (*keypath, "locustfile"),
            "requests and locustfile cannot be used together; use the declarative requests or "
            "your own Locust file, not both",
        )
    readers: dict[str, Callable[[object, KeyPath], object]] = {
        "users": lambda v, kp: doc.integer(v, kp, minimum=1),
        "spawn_rate": lambda v, kp: doc.number(v, kp, above=0.0),
        "duration": lambda v, kp: doc.duration(v, kp, positive=True),
        "warmup": doc.duration,
        "wait": lambda v, kp: _parse_wait(doc, v, kp),
        "user_class": lambda v, kp: _parse_user_class(doc, v, kp),
        "requests": lambda v, kp: _parse_requests(doc, v, kp),
        "locustfile": lambda v, kp: _parse_locustfile(doc, v, kp),
        "rate": lambda v, kp: _parse_arrival_rate(doc, v, kp),
    }
    out: _Fields = {}
    for key, read in readers.items():
        if present(values, key):
            kp = (*keypath, key)
            out[key] = (read(values[key], kp), kp)
    stage_endpoint_keys: list[tuple[str, KeyPath]] = []
    if present(values, "stages"):
        kp = (*keypath, "stages")
        stages, stage_endpoint_keys = _parse_stages(doc, values["stages"], kp)
        out["stages"] = (stages, kp)
    _check_load_model(doc, out)
    abort = _parse_abort(doc, values.get("abort"), (*keypath, "abort"))
    return out, abort, stage_endpoint_keys


def _parse_arrival_rate(doc: Doc, value: object, keypath: KeyPath, *, zero: bool = False) -> float:
    try:
        return parse_arrival_rate(value, zero=zero)
    except ValueError as error:
        raise doc.error(keypath, str(error)) from None


def _parse_stages(
    doc: Doc, value: object, keypath: KeyPath
) -> tuple[tuple[StageSpec, ...], list[tuple[str, KeyPath]]]:
    if not isinstance(value, list) or not value:
        what = "an empty list" if isinstance(value, list) else got(value)
        raise doc.error(keypath, f"expected a list of stages such as {_STAGES_EXAMPLE}, got {what}")
    stages: list[StageSpec] = []
    endpoint_keys: list[tuple[str, KeyPath]] = []
    named: dict[str, int] = {}  # name -> 1-based number of the stage that has it
    for i, item in enumerate(value):
        kp = (*keypath, Index(i))
        stage, keys = _parse_stage(doc, item, kp, number=i + 1)
        if stages and (stage.rate is None) != (stages[0].rate is None):
            key = "users" if stage.rate is None else "rate"
            first = "rate (open model)" if stages[0].rate is not None else "users (closed model)"
            raise doc.error(
                (*kp, key),
                f"all stages use rate or all use users: stage 1 sets {first}, this one {key}; "
                "one load model at a time",
            )
        if stage.name in named:
            other = named[stage.name]
            if present(item, "name"):
                raise doc.error(
                    (*kp, "name"),
                    f"stage {i + 1} is named {stage.name!r} like stage {other}: stage names "
                    "must be unique (the verdict reports each stage by its name)",
                )
            raise doc.error(
                kp,
                f"stage {i + 1} has no name and its default one, {stage.name!r}, is stage "
                f"{other}'s: name this stage, or rename stage {other} (stage names must be "
                "unique)",
            )
        named[stage.name] = i + 1
        stages.append(stage)
        endpoint_keys.extend(keys)
    if not any(st.judge for st in stages):
        raise doc.error(
            keypath,
            "every stage has judge: false, so nothing would be judged; judge at least one "
            "stage (judge: true is the default)",
        )
    if max((st.rate if st.rate is not None else st.users or 0) for st in stages) <= 0:
        unit = "rate" if stages[0].rate is not None else "users"
        raise doc.error(keypath, f"every stage's {unit} is 0, so no load would run")
    return tuple(stages), endpoint_keys


def _parse_stage(
    doc: Doc, value: object, keypath: KeyPath, *, number: int
) -> tuple[StageSpec, list[tuple[str, KeyPath]]]:
    values = doc.mapping(value, keypath, "a stage such as {duration: 2m, rate: 50/s}")
    if not values:
        raise doc.error(
            keypath, f"expected a stage such as {{duration: 2m, rate: 50/s}}, got {got(value)}"
        )
    doc.known_keys(values, keypath, _STAGE_KEYS)
    duration = doc.duration(
        doc.required(values, "duration", keypath, "a stage needs a duration, such as 30s or 2m"),
        (*keypath, "duration"),
        positive=True,
    )
    if present(values, "rate") and present(values, "users"):
        raise doc.error(
            (*keypath, "users"),
            "a stage sets rate (open model: iterations started per second) or users (closed "
            "model), not both; in the open model users is the most concurrent iterations, "
            "written once in gate.load",
        )
    rate: float | None = None
    users: int | None = None
    if present(values, "rate"):
        rate = _parse_arrival_rate(doc, values["rate"], (*keypath, "rate"), zero=True)
    elif present(values, "users"):
        users = doc.integer(values["users"], (*keypath, "users"), minimum=0)
    else:
        raise doc.error(
            keypath,
            "a stage needs the level it ramps to: rate (open model, such as rate: 50/s) or "
            "users (closed model, such as users: 20)",
        )
    name = f"stage {number}"
    if present(values, "name"):
        name = doc.string(values["name"], (*keypath, "name"), "a stage name")
        if not name.strip():
            raise doc.error((*keypath, "name"), "a stage name cannot be empty")
    judge = True
    if present(values, "judge"):
        judge = doc.boolean(values["judge"], (*keypath, "judge"))
    budgets: list[Budget] = []
    endpoint_keys: list[tuple[str, KeyPath]] = []
    if present(values, "budgets"):
        bkp = (*keypath, "budgets")
        if not judge:
            raise doc.error(
                (*keypath, "judge"),
                "a stage with budgets cannot be judge: false (its budgets would never be "
                "checked); remove judge: false, or the budgets",
            )
        parsed, keys = _parse_budgets(doc, values["budgets"], bkp)
        endpoint_keys = list(keys.items())
        for limits in parsed.values():
            for budget, mkp in limits.values():
                if isinstance(budget, Waiver):
                    raise doc.error(
                        mkp,
                        "error_rate: off waives an error budget of gate.budgets; a stage's "
                        "budgets are only the limits written under it: remove this line",
                    )
                if parse_metric(budget.metric).regression:
                    raise doc.error(
                        mkp,
                        f"{budget.metric} compares the whole run with a baseline, not one "
                        "stage: put it in gate.budgets",
                    )
                budgets.append(budget)
    return (
        StageSpec(
            name=name,
            duration=duration,
            rate=rate,
            users=users,
            judge=judge,
            budgets=tuple(budgets),
        ),
        endpoint_keys,
    )


def _stages_duration(stages: Sequence[StageSpec]) -> float:
    return math.fsum(st.duration for st in stages)


def _check_load_model(doc: Doc, load: _Fields) -> None:
    """The conflicts within one level (``gate.load`` or one target's ``load``)."""
    if "rate" in load and "stages" in load:
        raise doc.error(
            load["rate"][1],
            "rate and stages cannot be used together: put the rate in the stages, such as "
            "stages: [{duration: 2m, rate: 50/s}]",
        )
    for key, message in _model_conflicts(load):
        raise doc.error(load[key][1], message)


def _model_conflicts(
    load: _Fields, keys: Sequence[str] = (*_MODEL_KEYS, "locustfile")
) -> list[tuple[str, str]]:
    """``(key, message)`` for each of ``keys`` in ``load`` that the load model in ``load``
    (``rate`` or ``stages``) leaves without effect."""
    stages: tuple[StageSpec, ...] = load.get("stages", ((), None))[0]
    is_open = "rate" in load or any(st.rate is not None for st in stages)
    if not is_open and not stages:
        return []  # the closed model without stages: every key has its use
    messages: dict[str, str] = {}
    if stages:
        total = format_duration(_stages_duration(stages))
        messages["duration"] = (
            f"duration comes from the stages (their sum is {total}): remove duration"
        )
    if is_open:
        messages["spawn_rate"] = (
            "spawn_rate does not apply to the open model: its users (the most concurrent "
            "iterations) are all started at once; remove spawn_rate"
        )
        messages["wait"] = (
            "wait does not apply to the open model: the schedule (rate) decides when each "
            "iteration starts, not a wait after the last one; remove wait"
        )
        messages["locustfile"] = _OPEN_MODEL_LOCUSTFILE
    else:
        peak = max(st.users or 0 for st in stages)
        messages["users"] = f"users comes from the stages (they ramp up to {peak}): remove users"
        messages["spawn_rate"] = (
            "spawn_rate does not apply with stages: they ramp the users linearly over each "
            "stage; remove spawn_rate"
        )
    return [(key, messages[key]) for key in keys if key in load and key in messages]


def _parse_user_class(doc: Doc, value: object, keypath: KeyPath) -> str:
    if value not in _USER_CLASSES:
        raise doc.error(
            keypath,
            f"expected {' or '.join(repr(c) for c in _USER_CLASSES)} (fast: Locust's "
            f"FastHttpUser, http: HttpUser), got {got(value)}",
        )
    return value


def _parse_requests(doc: Doc, value: object, keypath: KeyPath) -> tuple[RequestSpec, ...]:
    if not isinstance(value, list):
        raise doc.error(
            keypath,
            f"expected a list of requests such as ['GET /api/products'], got {got(value)}",
        )
    if not value:
        raise doc.error(keypath, "expected at least one request, got an empty list")
    return tuple(_parse_request(doc, item, (*keypath, Index(i))) for i, item in enumerate(value))


def _parse_budgets(
    doc: Doc, value: object, keypath: KeyPath
) -> tuple[_BudgetMap, dict[str, KeyPath]]:
    values = doc.mapping(
        value,
        keypath,
        "a mapping of request name (or total) to limits, such as {total: {p95: 300ms}}",
    )
    out: _BudgetMap = {}
    endpoint_keys: dict[str, KeyPath] = {}
    for endpoint, limits in values.items():
        ekp = (*keypath, endpoint)
        if not isinstance(endpoint, str) or not endpoint.strip():
            raise doc.error(
                ekp, f"expected a request name or {TOTAL!r} as the key, got {got(endpoint)}"
            )
        endpoint_keys[endpoint] = ekp
        metrics = doc.mapping(limits, ekp, "a mapping of metric: limit, such as {p95: 300ms}")
        out[endpoint] = {}
        for metric, limit in metrics.items():
            mkp = (*ekp, metric)
            if not isinstance(metric, str):
                raise doc.error(
                    mkp,
                    f"expected a metric such as p95, avg, max, error_rate or min_rps, "
                    f"got {got(metric)}",
                )
            source = f"{doc.source_name}:{doc.line(mkp)}"
            if _budgets.is_waiver(metric, limit):
                # Waived, explicitly; the verdict says so. Keyed like the budget it replaces.
                out[endpoint][metric] = (Waiver(endpoint, source=source), mkp)
                continue
            try:
                budget = _budgets.parse_budget(endpoint, metric, limit)
            except ValueError as error:
                message = str(error)
                if metric == "error_rate":
                    message += "; or off to waive this error budget (the verdict warns)"
                raise doc.error(mkp, message) from None
            budget = replace(budget, source=source)
            # Keyed by the canonical metric, so an override's p95.0 replaces the base's p95.
            out[endpoint][budget.metric] = (budget, mkp)
    return out, endpoint_keys


def _parse_gate_part(doc: Doc, values: Mapping[Any, Any], keypath: KeyPath) -> _GatePart:
    load, abort, stage_endpoint_keys = _parse_load(doc, values.get("load"), (*keypath, "load"))
    budgets, endpoint_keys = _parse_budgets(doc, values.get("budgets"), (*keypath, "budgets"))
    return _GatePart(
        policy=_parse_policy(doc, values, keypath),
        load=load,
        abort=abort,
        budgets=budgets,
        endpoint_keys=endpoint_keys,
        stage_endpoint_keys=stage_endpoint_keys,
    )


def _latest(*keypaths: KeyPath | None) -> KeyPath:
    # An override is more specific than the base, so a conflict is reported where it is.
    found = [kp for kp in keypaths if kp is not None]
    overrides = [kp for kp in found if kp[:2] == ("gate", "targets")]
    return (overrides or found or [("gate", "load")])[0]


def _merge_gate(doc: Doc, name: str, base: _GatePart, over: _GatePart | None) -> GateSettings:
    load = dict(base.load)
    abort = dict(base.abort)
    policy = dict(base.policy)
    budgets = {endpoint: dict(limits) for endpoint, limits in base.budgets.items()}
    if over is not None:
        if "requests" in over.load or "locustfile" in over.load:
            # A scenario is one thing: half of the base's and half of the override's is nonsense.
            load.pop("requests", None)
            load.pop("locustfile", None)
        if "rate" in over.load or "stages" in over.load:
            # So is a load model: the override's replaces the base's, and the base's keys that
            # only the base's model would use are not this target's.
            load.pop("rate", None)
            load.pop("stages", None)
            model: _Fields = {k: over.load[k] for k in ("rate", "stages") if k in over.load}
            for key, _ in _model_conflicts({**load, **model}, _MODEL_KEYS):
                load.pop(key)
        load.update(over.load)
        abort.update(over.abort)
        policy.update(over.policy)
        for endpoint, limits in over.budgets.items():
            budgets.setdefault(endpoint, {}).update(limits)
        # An override's key that the base's load model leaves without effect (the base's
        # stages and this target's duration, say) is an error, as it is within one level.
        for key, message in _model_conflicts(load):
            where = _latest(load[key][1], load.get("rate", load.get("stages", (None, None)))[1])
            raise doc.error(where, f"{message} (for target {name!r})")

    stages: tuple[StageSpec, ...] = load.get("stages", ((), None))[0]
    if stages:
        load["duration"] = (_stages_duration(stages), load["stages"][1])
    _check_warmup(doc, name, load)

    settings: dict[str, Any] = {key: value for key, (value, _) in load.items()}
    if stages and stages[0].users is not None:
        settings["users"] = max(st.users or 0 for st in stages)
    elif "rate" in load or stages:
        peak = max([load["rate"][0]] if "rate" in load else [st.rate or 0.0 for st in stages])
        settings.setdefault("users", open_model_users(peak))
    load_settings = LoadSettings(
        **settings,
        abort=AbortSettings(**{key: value for key, (value, _) in abort.items()}),
    )
    written = [b for limits in budgets.values() for b, _ in limits.values()]
    return GateSettings(
        load=load_settings,
        budgets=tuple(b for b in written if isinstance(b, Budget)),
        waivers=tuple(b for b in written if isinstance(b, Waiver)),
        **{key: value for key, (value, _) in policy.items()},
    )


def open_model_users(peak_rate: float) -> int:
    """The open model's users (the most concurrent iterations) when no level writes them: enough
    for iterations of ``OPEN_USERS_PER_RATE`` seconds at the peak rate, and at least
    ``OPEN_MIN_USERS``."""
    # Rounded first, so that 3000/m (50.000000000000004/s in floating point) asks 50 users.
    wanted = math.ceil(round(peak_rate * defaults.OPEN_USERS_PER_RATE, 9))
    return max(defaults.OPEN_MIN_USERS, wanted)


def _check_warmup(doc: Doc, name: str, load: _Fields) -> None:
    duration, duration_kp = load.get("duration", (defaults.DURATION, None))
    warmup, warmup_kp = load.get("warmup", (0.0, None))
    stages: tuple[StageSpec, ...] = load.get("stages", ((), None))[0]
    where = _latest(warmup_kp, duration_kp)
    for_target = f" for target {name!r}" if where[:2] == ("gate", "targets") else ""
    if warmup >= duration:
        if stages:
            what = f"the stages (their sum is {format_duration(duration)})"
        else:
            default = "" if duration_kp is not None else ", the default"
            what = f"duration ({format_duration(duration)}{default})"
        raise doc.error(
            where,
            f"warmup ({format_duration(warmup)}) must be shorter than {what}{for_target}: "
            "the warm-up is excluded from the evaluation, so nothing would be left to measure",
        )
    if stages:
        end, judged_end = 0.0, 0.0
        for st in stages:
            end += st.duration
            if st.judge:
                judged_end = end
        if warmup >= judged_end:
            raise doc.error(
                where,
                f"warmup ({format_duration(warmup)}) covers every judged stage (the last one "
                f"ends at {format_duration(judged_end)}){for_target}, so nothing would be "
                "judged; shorten the warm-up, or judge a later stage",
            )


def _check_budget_names(doc: Doc, parts: Sequence[_GatePart]) -> None:
    if any("locustfile" in part.load for part in parts):
        return  # the user's Locust file names its own requests; nothing to check against
    names: list[str] = []
    for part in parts:
        if "requests" in part.load:
            names.extend(r.name for r in part.load["requests"][0] if r.name not in names)
    if not names:
        return
    for part in parts:
        for endpoint, keypath in [*part.endpoint_keys.items(), *part.stage_endpoint_keys]:
            if endpoint != TOTAL and endpoint not in names:
                raise doc.error(
                    keypath,
                    f"no request is named {endpoint!r}"
                    f"{did_you_mean(endpoint, [TOTAL, *names]) or '.'} "
                    f"Budgets apply to {TOTAL!r} or to a request name: "
                    f"{', '.join(repr(n) for n in names)}.",
                )


def parse_gate(doc: Doc, value: object, targets: Mapping[Any, Any]) -> dict[str, GateSettings]:
    """The ``GateSettings`` of every target in ``targets``: ``gate`` merged with
    ``gate.targets.<name>``. ``value`` is ``gate`` as written."""
    names = tuple(targets)
    gate = doc.mapping(value, ("gate",))
    doc.known_keys(gate, ("gate",), _GATE_KEYS)
    base = _parse_gate_part(doc, gate, ("gate",))
    overrides: dict[str, _GatePart] = {}
    over_values = doc.mapping(
        gate.get("targets"), ("gate", "targets"), "a mapping of target name: overrides"
    )
    for name, values in over_values.items():
        keypath: KeyPath = ("gate", "targets", name)
        if name not in targets:
            raise doc.error(
                keypath,
                f"there is no target {str(name)!r}{did_you_mean(name, names) or '.'} "
                f"Defined targets: {', '.join(names)}.",
            )
        values = doc.mapping(values, keypath)
        doc.known_keys(values, keypath, _TARGET_GATE_KEYS)
        overrides[name] = _parse_gate_part(doc, values, keypath)
    _check_budget_names(doc, [base, *overrides.values()])
    return {name: _merge_gate(doc, name, base, overrides.get(name)) for name in names}
