"""``gate`` -> one ``GateSettings`` per target: the load plan, abort rules, budgets and policy
written under ``gate``, merged with the overrides under ``gate.targets.NAME``.

All of it is read and checked when the file is loaded; no ``${VAR}`` is substituted here (that
happens only under ``targets``).

Rules the contract leaves open, decided here:

- A per-target override that sets ``requests`` or ``locustfile`` replaces the base scenario as a
  whole instead of being merged with it (``requests`` plus ``locustfile`` is an error).
- A budget for a request name that no declared scenario has is an error (a typo would otherwise
  only show up as an inconclusive check), unless some scenario uses a locustfile.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .. import budgets as _budgets
from .. import defaults
from ..budgets import TOTAL, Budget, Waiver
from ..errors import did_you_mean
from ..units import format_duration
from ._yaml import HEADER_NAME, Doc, Index, KeyPath, check_json, got, present, unknown
from .model import AbortSettings, GateSettings, LoadSettings, RequestSpec

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


def _parse_load(doc: Doc, value: object, keypath: KeyPath) -> tuple[_Fields, _Fields]:
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
    }
    out: _Fields = {}
    for key, read in readers.items():
        if present(values, key):
            kp = (*keypath, key)
            out[key] = (read(values[key], kp), kp)
    abort = _parse_abort(doc, values.get("abort"), (*keypath, "abort"))
    return out, abort


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
    load, abort = _parse_load(doc, values.get("load"), (*keypath, "load"))
    budgets, endpoint_keys = _parse_budgets(doc, values.get("budgets"), (*keypath, "budgets"))
    return _GatePart(
        policy=_parse_policy(doc, values, keypath),
        load=load,
        abort=abort,
        budgets=budgets,
        endpoint_keys=endpoint_keys,
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
        load.update(over.load)
        abort.update(over.abort)
        policy.update(over.policy)
        for endpoint, limits in over.budgets.items():
            budgets.setdefault(endpoint, {}).update(limits)

    duration, duration_kp = load.get("duration", (defaults.DURATION, None))
    warmup, warmup_kp = load.get("warmup", (0.0, None))
    if warmup >= duration:
        where = _latest(warmup_kp, duration_kp)
        for_target = f" for target {name!r}" if where[:2] == ("gate", "targets") else ""
        default = "" if duration_kp is not None else ", the default"
        raise doc.error(
            where,
            f"warmup ({format_duration(warmup)}) must be shorter than duration "
            f"({format_duration(duration)}{default}){for_target}: the warm-up is excluded "
            "from the evaluation, so nothing would be left to measure",
        )

    load_settings = LoadSettings(
        **{key: value for key, (value, _) in load.items()},
        abort=AbortSettings(**{key: value for key, (value, _) in abort.items()}),
    )
    written = [b for limits in budgets.values() for b, _ in limits.values()]
    return GateSettings(
        load=load_settings,
        budgets=tuple(b for b in written if isinstance(b, Budget)),
        waivers=tuple(b for b in written if isinstance(b, Waiver)),
        **{key: value for key, (value, _) in policy.items()},
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
        for endpoint, keypath in part.endpoint_keys.items():
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
