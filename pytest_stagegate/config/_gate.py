"""``gate`` -> one ``GateSettings`` per target: the load plan, abort rules, budgets and policy
written under ``gate``, merged with the overrides under ``gate.targets.NAME``.

All of it is read and checked when the file is loaded; no ``${VAR}`` is substituted here (that
happens only under ``targets``).

Rules the contract leaves open, decided here:

- A per-target override that sets ``requests``, ``flows`` or ``locustfile`` replaces the base
  scenario as a whole instead of being merged with it, and the base's ``data`` goes with it (its
  rows fit the base's ``{row.COLUMN}``; the override writes its own ``data`` if it needs one).
  An override that sets only ``data`` keeps the base's scenario with another file (its columns
  are checked against the base's templates). ``requests`` or ``flows`` or ``data`` with a
  ``locustfile`` is an error; ``requests`` and ``flows`` together are fine (each request is a
  one-step flow).
- A budget key is ``total``, a request's name, a flow's name, or a glob (``*``, ``?``, ``[``,
  ``fnmatch``) over request names that matches at least one, in that order of precedence; any
  other key is an error (a typo would otherwise only show up as an inconclusive check), unless
  some scenario uses a locustfile. Stage budgets are checked the same way. A flow cannot be
  named like a request nor ``total``; flow names are unique.

Scenarios (requests, flows' steps and on_start), checked when the file is loaded:

- ``expect`` (``status``, ``json`` as JMESPath -> value or ``{present: bool}``, ``contains``,
  ``headers``) and ``expect_status`` together are an error: the status is written once.
  Expectations are no templates.
- Templates (``templates``) are the path, the header and ``query`` values and every string value
  of ``json``; a malformed one is an error at its key. ``{name}`` must be captured by an earlier
  request of the same flow (on_start's, in order, for every step; the steps', in order, for
  the later ones); in ``requests`` (one per iteration, in no order) it is an error.
- ``{vars.NAME}`` is checked per target, against the names of that target's ``vars`` as
  written (each target renders its own); a target that never takes load (``allow_load: false``,
  or ``protected: true`` without ``allow_load``) is not checked. ``{row.COLUMN}`` must be a
  column of the data file this target's scenario uses.
- ``data.file`` is relative to stagegate.yaml's directory and read here in full (``_data``):
  header, one value per column, at most ``defaults.MAX_DATA_ROWS`` rows.

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
  ``ceil(peak rate x OPEN_USERS_PER_RATE)`` (0.5 s) within ``OPEN_MIN_USERS`` (10) and
  ``OPEN_MAX_DEFAULT_USERS`` (200) (``defaults``): 50 at 100/s, 200 from 400/s. More users
  than that cost the load process CPU that shows in the latency; fewer than rate x latency
  drop iterations (then raise ``users``, or add workers).
- ``warmup`` must end before the last judged stage does, and at least one stage must be judged.
- A stage's budgets cannot waive (``error_rate: off`` belongs to ``gate.budgets``) nor compare
  with a baseline (``*_regression``: a baseline is compared run to run, not stage to stage).
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import jmespath
from jmespath import exceptions as jmespath_errors

from .. import budgets as _budgets
from .. import defaults
from ..budgets import TOTAL, Budget, Waiver
from ..errors import did_you_mean
from ..metrics import parse_metric
from ..templates import IDENTIFIER, Placeholder, TemplateError, compile_template
from ..units import format_duration, parse_arrival_rate
from ._data import DataError, read_data
from ._yaml import HEADER_NAME, Doc, Index, KeyPath, check_json, got, present, unknown
from .model import (
    AbortSettings,
    Capture,
    DataSpec,
    FlowSpec,
    GateSettings,
    JsonExpect,
    LoadSettings,
    RequestSpec,
    StageSpec,
)

_POLICY_KEYS = (
    "min_samples",
    "saturation_cpu",
    "run_after_critical_failure",
    "flaky_blocks",
    "default_error_rate",
    "baseline",
)
_BASELINE_KEYS = ("median_of",)
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
    "flows",
    "data",
    "otel",
)
# What makes up the scenario: an override that sets one of these replaces the base's scenario.
_SCENARIO_KEYS = ("requests", "flows", "locustfile")
_STAGE_KEYS = ("name", "duration", "rate", "users", "judge", "budgets")
_STAGES_EXAMPLE = "[{duration: 30s, rate: 10/s, judge: false}, {duration: 2m, rate: 50/s}]"
# What a load model decides itself: written next to one, these have no effect.
_MODEL_KEYS = ("duration", "users", "spawn_rate", "wait")
_OPEN_MODEL_LOCUSTFILE = (
    "the open model (rate) drives the declarative requests; a locustfile runs its own users: "
    "use stages with users, or requests"
)
_ABORT_KEYS = ("enabled", "error_rate", "min_requests", "latency_factor", "latency_for", "grace")
_REQUEST_KEYS = (
    "method",
    "path",
    "name",
    "weight",
    "headers",
    "json",
    "query",
    "expect",
    "expect_status",
    "capture",
)
_EXPECT_KEYS = ("status", "json", "contains", "headers")
_FLOW_KEYS = ("name", "weight", "wait", "on_start", "steps")
_DATA_KEYS = ("file", "mode", "secret")
_DATA_MODES = ("cycle", "random", "unique")
_JMESPATH_EXAMPLE = "such as items[0].id or length(items) > `0`"
_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
_USER_CLASSES = ("fast", "http")

# A parsed setting and where it was written; the location decides where a conflict is reported.
_Fields = dict[str, tuple[Any, KeyPath]]
_BudgetMap = dict[str, dict[str, tuple[Budget | Waiver, KeyPath]]]
# A placeholder of a request's template and where it is written.
_Use = tuple[Placeholder, KeyPath]


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
    # the {vars.NAME} and {row.COLUMN} of the scenario written at this level (checked per
    # target, once the target's vars and data file are known)
    uses: list[_Use] = field(default_factory=list)


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
    if present(values, "baseline"):
        # gate.baseline: {median_of: K}: the *_regression budgets compare with the median of
        # the last K passing verdicts of --gate-baseline auto
        kp = (*keypath, "baseline")
        baseline = doc.mapping(values["baseline"], kp, "a mapping such as {median_of: 5}")
        doc.known_keys(baseline, kp, _BASELINE_KEYS)
        if present(baseline, "median_of"):
            mkp = (*kp, "median_of")
            out["baseline_median_of"] = (doc.integer(baseline["median_of"], mkp, minimum=1), mkp)
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


def _parse_request(doc: Doc, value: object, keypath: KeyPath) -> tuple[RequestSpec, list[_Use]]:
    """One request and the placeholders of its templates (each checked here: a malformed one is
    an error at its key)."""
    example = "'GET /api/products' or {method: GET, path: /api/products}"
    if isinstance(value, str):
        words = value.split()
        if len(words) != 2:
            raise doc.error(keypath, f"expected 'METHOD /path' such as {example}, got {got(value)}")
        values: dict[Any, Any] = {"method": words[0], "path": words[1]}
        path_kp = keypath
    else:
        values = doc.mapping(value, keypath, f"a request such as {example}")
        doc.known_keys(values, keypath, _REQUEST_KEYS)
        path_kp = (*keypath, "path")
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
        path_kp,
    )
    if "${" in path:
        raise doc.error(path_kp, "${...} is substituted only under targets")
    uses = _template_uses(doc, path, path_kp)
    # The name is the template as written, never a rendered value: names carry no data.
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
        hkp = (*keypath, "headers")
        headers = _parse_request_headers(doc, values["headers"], hkp)
        for header, text in headers.items():
            uses += _template_uses(doc, text, (*hkp, header))
    query: dict[str, str] = {}
    if present(values, "query"):
        query = _parse_query(doc, values["query"], (*keypath, "query"))
        for key, text in query.items():
            uses += _template_uses(doc, text, (*keypath, "query", key))
    body = check_json(doc, values.get("json"), (*keypath, "json"))
    uses += _json_uses(doc, body, (*keypath, "json"))
    status: tuple[int, ...] = ()
    if present(values, "expect_status"):
        status = _parse_status(doc, values["expect_status"], (*keypath, "expect_status"))
    expect = _Expect()
    if present(values, "expect"):
        if present(values, "expect_status"):
            raise doc.error(
                (*keypath, "expect_status"),
                "expect_status and expect cannot be used together: write the status in expect, "
                "such as expect: {status: 200, ...} (expect_status is the older spelling)",
            )
        expect = _parse_expect(doc, values["expect"], (*keypath, "expect"))
        status = expect.status
    captures: tuple[Capture, ...] = ()
    if present(values, "capture"):
        captures = _parse_capture(doc, values["capture"], (*keypath, "capture"))
    spec = RequestSpec(
        method=method,
        path=path,
        name=name,
        weight=weight,
        headers=headers,
        json=body,
        expect_status=status,
        query=query,
        expect_json=expect.json,
        expect_contains=expect.contains,
        expect_headers=expect.headers,
        capture=captures,
    )
    return spec, uses


def _template_uses(doc: Doc, text: str, keypath: KeyPath) -> list[_Use]:
    try:
        template = compile_template(text)
    except TemplateError as error:
        raise doc.error(keypath, f"{error}") from None
    return [(placeholder, keypath) for placeholder in template.names]


def _json_uses(doc: Doc, value: Any, keypath: KeyPath) -> list[_Use]:
    """The placeholders of every string value in a JSON body (its keys are no templates)."""
    if isinstance(value, str):
        return _template_uses(doc, value, keypath)
    uses: list[_Use] = []
    if isinstance(value, list):
        for i, item in enumerate(value):
            uses += _json_uses(doc, item, (*keypath, Index(i)))
    elif isinstance(value, dict):
        for key, item in value.items():
            uses += _json_uses(doc, item, (*keypath, key))
    return uses


def _parse_query(doc: Doc, value: object, keypath: KeyPath) -> dict[str, str]:
    values = doc.mapping(value, keypath, "a mapping of query parameter: value, such as {q: shoes}")
    query: dict[str, str] = {}
    for key, raw in values.items():
        kp = (*keypath, key)
        if not isinstance(key, str) or not key:
            raise doc.error(kp, f"a query parameter's name must be text, got {got(key)}")
        if isinstance(raw, (int, float)) and not isinstance(raw, bool):
            check_json(doc, raw, kp)  # no .nan or .inf
            raw = str(raw)
        text = doc.string(raw, kp, "text or a number (the query parameter's value)")
        if "${" in text:
            raise doc.error(
                kp, "${...} is substituted only under targets; use {vars.NAME} for a target's vars"
            )
        query[key] = text
    return query


@dataclass(frozen=True)
class _Expect:
    status: tuple[int, ...] = ()
    json: tuple[JsonExpect, ...] = ()
    contains: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


def _parse_expect(doc: Doc, value: object, keypath: KeyPath) -> _Expect:
    values = doc.mapping(
        value,
        keypath,
        'a mapping such as {status: 200, json: {"length(items) > `0`": true}, contains: text}',
    )
    doc.known_keys(values, keypath, _EXPECT_KEYS)
    status: tuple[int, ...] = ()
    if present(values, "status"):
        status = _parse_status(doc, values["status"], (*keypath, "status"))
    expects: list[JsonExpect] = []
    if present(values, "json"):
        jkp = (*keypath, "json")
        entries = doc.mapping(
            values["json"],
            jkp,
            'a mapping of JMESPath expression: expected value, such as {"items[0].id": 42}',
        )
        for expr, expected in entries.items():
            kp = (*jkp, expr)
            _check_jmespath(doc, expr, kp)
            if isinstance(expected, dict) and "present" in expected:
                if set(expected) != {"present"} or not isinstance(expected["present"], bool):
                    raise doc.error(
                        kp,
                        "expected {present: true} (the expression finds something) or "
                        f"{{present: false}} (it finds nothing), got {got(expected)}",
                    )
                expects.append(JsonExpect(expr, present=expected["present"]))
            else:
                expects.append(JsonExpect(expr, value=check_json(doc, expected, kp)))
    contains: str | None = None
    if present(values, "contains"):
        kp = (*keypath, "contains")
        contains = doc.string(values["contains"], kp, "the text the body contains")
        if not contains:
            raise doc.error(kp, "the text to find cannot be empty")
    headers: dict[str, str] = {}
    if present(values, "headers"):
        hkp = (*keypath, "headers")
        raw = doc.mapping(
            values["headers"], hkp, "a mapping of header name: text its value contains"
        )
        for name, text in raw.items():
            kp = (*hkp, name)
            if not isinstance(name, str) or not HEADER_NAME.fullmatch(name):
                raise doc.error(
                    kp, f"{got(name)} is not a valid HTTP header name, such as Content-Type"
                )
            if isinstance(text, int) and not isinstance(text, bool):
                text = str(text)
            headers[name] = doc.string(text, kp, "the text the header's value contains")
    return _Expect(status, tuple(expects), contains, headers)


def _check_jmespath(doc: Doc, expr: object, keypath: KeyPath) -> str:
    text = doc.string(expr, keypath, f"a JMESPath expression {_JMESPATH_EXAMPLE}")
    try:
        jmespath.compile(text)
    except jmespath_errors.EmptyExpressionError:
        raise doc.error(
            keypath, f"a JMESPath expression cannot be empty; write one {_JMESPATH_EXAMPLE}"
        ) from None
    except jmespath_errors.LexerError as error:
        raise doc.error(
            keypath,
            f"{text!r} is not a valid JMESPath expression: {error.message} at column "
            f"{error.lexer_position + 1}; write one {_JMESPATH_EXAMPLE} (a literal value is "
            "written between backticks)",
        ) from None
    except jmespath_errors.IncompleteExpressionError:
        raise doc.error(
            keypath,
            f"{text!r} is not a valid JMESPath expression: it ends too early; write one "
            f"{_JMESPATH_EXAMPLE}",
        ) from None
    except jmespath_errors.ParseError as error:
        token = f" {error.token_value!r}" if error.token_value else ""
        raise doc.error(
            keypath,
            f"{text!r} is not a valid JMESPath expression: unexpected token{token} at column "
            f"{error.lex_position + 1}; write one {_JMESPATH_EXAMPLE}",
        ) from None
    except jmespath_errors.JMESPathError as error:
        raise doc.error(keypath, f"{text!r} is not a valid JMESPath expression: {error}") from None
    return text


def _parse_capture(doc: Doc, value: object, keypath: KeyPath) -> tuple[Capture, ...]:
    values = doc.mapping(
        value,
        keypath,
        "a mapping of name: JMESPath expression or {header: NAME}, such as {token: access_token}",
    )
    captures: list[Capture] = []
    for var, how in values.items():
        kp = (*keypath, var)
        if not isinstance(var, str) or not IDENTIFIER.fullmatch(var):
            raise doc.error(
                kp,
                f"{got(var)} cannot name a captured value: use letters, digits and _, not "
                "starting with a digit, such as token (later requests write {token})",
            )
        if var in ("vars", "row"):
            raise doc.error(
                kp,
                f"{var!r} cannot name a captured value: {{{var}.NAME}} means the "
                f"{'target' if var == 'vars' else 'data row'}'s value; choose another name",
            )
        if isinstance(how, dict):
            if set(how) != {"header"}:
                raise doc.error(
                    kp,
                    "expected a JMESPath expression over the JSON body, such as access_token, "
                    f"or {{header: NAME}}, got {got(how)}",
                )
            hkp = (*kp, "header")
            header = doc.string(how["header"], hkp, "a header name, such as X-Request-Id")
            if not HEADER_NAME.fullmatch(header):
                raise doc.error(
                    hkp, f"{got(header)} is not a valid HTTP header name, such as X-Request-Id"
                )
            captures.append(Capture(var, header=header))
        else:
            captures.append(Capture(var, json=_check_jmespath(doc, how, kp)))
    return tuple(captures)


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
) -> tuple[_Fields, _Fields, list[tuple[str, KeyPath]], list[_Use]]:
    values = doc.mapping(value, keypath)
    doc.known_keys(values, keypath, _LOAD_KEYS)
    for key in ("requests", "flows", "data"):
        if present(values, key) and present(values, "locustfile"):
            what = (
                "data feeds the {row.COLUMN} of the declarative requests and flows; a Locust "
                "file reads its own files"
                if key == "data"
                else "use the declarative requests and flows or your own Locust file, not both"
            )
            raise doc.error(
                (*keypath, "locustfile"),
                f"{key} and locustfile cannot be used together; {what}",
            )
    readers: dict[str, Callable[[object, KeyPath], object]] = {
        "users": lambda v, kp: doc.integer(v, kp, minimum=1),
        "spawn_rate": lambda v, kp: doc.number(v, kp, above=0.0),
        "duration": lambda v, kp: doc.duration(v, kp, positive=True),
        "warmup": doc.duration,
        "wait": lambda v, kp: _parse_wait(doc, v, kp),
        "user_class": lambda v, kp: _parse_user_class(doc, v, kp),
        "locustfile": lambda v, kp: _parse_locustfile(doc, v, kp),
        "rate": lambda v, kp: _parse_arrival_rate(doc, v, kp),
        "data": lambda v, kp: _parse_data(doc, v, kp),
        "otel": doc.boolean,
    }
    out: _Fields = {}
    for key, read in readers.items():
        if present(values, key):
            kp = (*keypath, key)
            out[key] = (read(values[key], kp), kp)
    uses: list[_Use] = []
    if present(values, "requests"):
        kp = (*keypath, "requests")
        requests, request_uses = _parse_requests(doc, values["requests"], kp)
        out["requests"] = (requests, kp)
        uses += request_uses
    if present(values, "flows"):
        kp = (*keypath, "flows")
        flows, flow_uses = _parse_flows(doc, values["flows"], kp)
        out["flows"] = (flows, kp)
        uses += flow_uses
        _check_flow_names(doc, out)
    stage_endpoint_keys: list[tuple[str, KeyPath]] = []
    if present(values, "stages"):
        kp = (*keypath, "stages")
        stages, stage_endpoint_keys = _parse_stages(doc, values["stages"], kp)
        out["stages"] = (stages, kp)
    _check_load_model(doc, out)
    abort = _parse_abort(doc, values.get("abort"), (*keypath, "abort"))
    return out, abort, stage_endpoint_keys, uses


def _request_names(load: _Fields) -> list[str]:
    """The request names of the scenario in ``load``: the requests', then the flows' steps'
    and on_start's, each once."""
    specs: list[RequestSpec] = list(load["requests"][0]) if "requests" in load else []
    for flow in load.get("flows", ((), None))[0]:
        specs += [*flow.on_start, *flow.steps]
    return list(dict.fromkeys(spec.name for spec in specs))


def _check_flow_names(doc: Doc, load: _Fields) -> None:
    """A flow's name is a budget key like a request's: the two cannot be the same."""
    names = set(_request_names(load))
    flows_kp = load["flows"][1]
    for i, flow in enumerate(load["flows"][0]):
        if flow.name in names:
            raise doc.error(
                (*flows_kp, Index(i), "name"),
                f"the flow {flow.name!r} has the name of a request: a budget on "
                f"{flow.name!r} would mean either; name the flow otherwise (or the request, "
                "with its name key)",
            )


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


def _parse_request_list(
    doc: Doc, value: object, keypath: KeyPath, what: str
) -> list[tuple[RequestSpec, list[_Use]]]:
    if not isinstance(value, list):
        raise doc.error(
            keypath,
            f"expected a list of {what} such as ['GET /api/products'], got {got(value)}",
        )
    if not value:
        raise doc.error(keypath, f"expected at least one of the {what}, got an empty list")
    return [_parse_request(doc, item, (*keypath, Index(i))) for i, item in enumerate(value)]


def _parse_requests(
    doc: Doc, value: object, keypath: KeyPath
) -> tuple[tuple[RequestSpec, ...], list[_Use]]:
    """``requests``: each one an iteration of its own (a one-step flow), so none can use a
    value another one captures."""
    parsed = _parse_request_list(doc, value, keypath, "requests")
    uses: list[_Use] = []
    for _, request_uses in parsed:
        for placeholder, kp in request_uses:
            if placeholder.kind == "capture":
                raise doc.error(
                    kp,
                    f"{placeholder.text}: the requests run one per iteration, in no order, so "
                    f"none of them sees what another captures; put this request in a flow's "
                    f"steps after the step (or on_start) that captures {placeholder.name}",
                )
        uses += request_uses
    return tuple(spec for spec, _ in parsed), uses


def _parse_flows(
    doc: Doc, value: object, keypath: KeyPath
) -> tuple[tuple[FlowSpec, ...], list[_Use]]:
    example = "[{name: checkout, steps: ['GET /api/products']}]"
    if not isinstance(value, list) or not value:
        what = "an empty list" if isinstance(value, list) else got(value)
        raise doc.error(keypath, f"expected a list of flows such as {example}, got {what}")
    flows: list[FlowSpec] = []
    uses: list[_Use] = []
    for i, item in enumerate(value):
        kp = (*keypath, Index(i))
        values = doc.mapping(item, kp, f"a flow such as {example[1:-1]}")
        doc.known_keys(values, kp, _FLOW_KEYS)
        name = doc.string(
            doc.required(
                values, "name", kp, "a flow needs a name (its budget key), such as checkout"
            ),
            (*kp, "name"),
            "a flow name",
        )
        if not name.strip():
            raise doc.error((*kp, "name"), "a flow name cannot be empty")
        if name == TOTAL:
            raise doc.error(
                (*kp, "name"),
                f"{TOTAL!r} is the budget key of all requests; name the flow otherwise",
            )
        for j, other in enumerate(flows):
            if other.name == name:
                raise doc.error(
                    (*kp, "name"),
                    f"flow {i + 1} is named {name!r} like flow {j + 1}: flow names must be "
                    "unique (each is a budget key)",
                )
        weight = 1
        if present(values, "weight"):
            weight = doc.integer(values["weight"], (*kp, "weight"), minimum=1)
        wait = (0.0, 0.0)
        if present(values, "wait"):
            wait = _parse_wait(doc, values["wait"], (*kp, "wait"))
        on_start: list[tuple[RequestSpec, list[_Use]]] = []
        if present(values, "on_start"):
            on_start = _parse_request_list(doc, values["on_start"], (*kp, "on_start"), "requests")
        steps = _parse_request_list(
            doc,
            doc.required(values, "steps", kp, f"a flow needs its steps, such as {example[1:-1]}"),
            (*kp, "steps"),
            "steps",
        )
        uses += _check_captures(doc, [*on_start, *steps], first_step=len(on_start))
        flows.append(
            FlowSpec(
                name=name,
                weight=weight,
                steps=tuple(spec for spec, _ in steps),
                on_start=tuple(spec for spec, _ in on_start),
                wait=wait,
            )
        )
    return tuple(flows), uses


def _check_captures(
    doc: Doc, requests: Sequence[tuple[RequestSpec, list[_Use]]], *, first_step: int
) -> list[_Use]:
    """Every ``{name}`` is captured by an earlier request of the flow: on_start's, in order,
    are there for every step; the steps', in order, for the later steps. Returns the other
    placeholders (vars and row)."""
    captured: set[str] = set()
    uses: list[_Use] = []
    for k, (_, request_uses) in enumerate(requests):
        for placeholder, kp in request_uses:
            if placeholder.kind != "capture":
                uses.append((placeholder, kp))
                continue
            if placeholder.name in captured:
                continue
            later = [
                i
                for i, (spec, _) in enumerate(requests)
                if i >= k and any(c.var == placeholder.name for c in spec.capture)
            ]
            if later:
                i = later[0]
                where = f"on_start[{i}]" if i < first_step else f"steps[{i - first_step}]"
                problem = (
                    f"is captured by {'this request' if i == k else where}, after it is used "
                    "here; a value is there for the requests after the one that captures it"
                )
            else:
                problem = "is captured by no request of this flow before this one"
            known = sorted(captured)
            names = f" (captured before: {', '.join(known)})" if known else ""
            raise doc.error(
                kp,
                f"{placeholder.text}: {placeholder.name!r} {problem}{names}. Capture it in an "
                f"earlier step or in on_start, such as capture: {{{placeholder.name}: "
                f"access_token}}{did_you_mean(placeholder.name, known) or '.'}",
            )
        captured.update(c.var for c in requests[k][0].capture)
    return uses


def _parse_data(doc: Doc, value: object, keypath: KeyPath) -> DataSpec:
    example = "{file: users.csv, mode: cycle}"
    values = doc.mapping(value, keypath, f"a mapping such as {example}")
    doc.known_keys(values, keypath, _DATA_KEYS)
    fkp = (*keypath, "file")
    text = doc.string(
        doc.required(values, "file", keypath, f"data needs its CSV file, such as {example}"),
        fkp,
        "the path of a CSV file",
    )
    base = doc.path.parent if doc.path is not None else Path.cwd()
    resolved = (base / Path(text).expanduser()).resolve()
    if not resolved.exists():
        raise doc.error(
            fkp,
            f"data file {text!r} not found (looked for {resolved}; a relative path is relative "
            f"to the directory of {doc.source_name})",
        )
    try:
        data = read_data(resolved)
    except DataError as error:
        raise doc.error(fkp, str(error)) from None
    mode = "cycle"
    if present(values, "mode"):
        mkp = (*keypath, "mode")
        mode = doc.string(values["mode"], mkp, "cycle, random or unique")
        if mode not in _DATA_MODES:
            raise doc.error(
                mkp,
                unknown("mode", mode, _DATA_MODES, "Valid modes")
                + " (cycle: the rows in order, again and again; random: any row each time; "
                "unique: each row at most once, the load ends when they run out)",
            )
    secret: list[str] = []
    if present(values, "secret"):
        skp = (*keypath, "secret")
        listed = values["secret"]
        if isinstance(listed, str):
            listed = [listed]
        if not isinstance(listed, list):
            raise doc.error(skp, "a list of column names, such as [password, api_key]")
        for column in listed:
            if not isinstance(column, str) or column not in data.columns:
                raise doc.error(
                    skp,
                    f"{resolved.name} has no column {column!r}"
                    f"{did_you_mean(str(column), data.columns) or '.'} Its columns: "
                    f"{', '.join(data.columns)}. (secret lists the columns whose values are "
                    "masked in every output, beside those named like password, token or key.)",
                )
            secret.append(column)
    return DataSpec(
        file=resolved,
        mode=mode,  # type: ignore[arg-type]
        columns=data.columns,
        secret=tuple(secret),
    )


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
            budget = replace(
                budget,
                source=source,
                file="" if doc.path is None else str(doc.path),
                line=doc.line(mkp),
            )
            # Keyed by the canonical metric, so an override's p95.0 replaces the base's p95.
            out[endpoint][budget.metric] = (budget, mkp)
    return out, endpoint_keys


def _parse_gate_part(doc: Doc, values: Mapping[Any, Any], keypath: KeyPath) -> _GatePart:
    load, abort, stage_endpoint_keys, uses = _parse_load(
        doc, values.get("load"), (*keypath, "load")
    )
    budgets, endpoint_keys = _parse_budgets(doc, values.get("budgets"), (*keypath, "budgets"))
    return _GatePart(
        policy=_parse_policy(doc, values, keypath),
        load=load,
        abort=abort,
        budgets=budgets,
        endpoint_keys=endpoint_keys,
        stage_endpoint_keys=stage_endpoint_keys,
        uses=uses,
    )


def _latest(*keypaths: KeyPath | None) -> KeyPath:
    # An override is more specific than the base, so a conflict is reported where it is.
    found = [kp for kp in keypaths if kp is not None]
    overrides = [kp for kp in found if kp[:2] == ("gate", "targets")]
    return (overrides or found or [("gate", "load")])[0]


def _merge_gate(
    doc: Doc,
    name: str,
    base: _GatePart,
    over: _GatePart | None,
    target_vars: Collection[str] | None,
) -> GateSettings:
    load = dict(base.load)
    abort = dict(base.abort)
    policy = dict(base.policy)
    budgets = {endpoint: dict(limits) for endpoint, limits in base.budgets.items()}
    uses = base.uses
    if over is not None:
        if any(key in over.load for key in _SCENARIO_KEYS):
            # A scenario is one thing: half of the base's and half of the override's is nonsense.
            # Its data file goes with it (the base's rows fit the base's {row.COLUMN}).
            for key in (*_SCENARIO_KEYS, "data"):
                load.pop(key, None)
            uses = over.uses
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
        if "data" in load and "locustfile" in load:
            raise doc.error(
                _latest(load["data"][1], load["locustfile"][1]),
                f"data and locustfile cannot be used together (for target {name!r}): data "
                "feeds the {row.COLUMN} of the declarative requests and flows; a Locust file "
                "reads its own files",
            )
    _check_uses(doc, name, uses, load, target_vars)

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


def _check_uses(
    doc: Doc,
    name: str,
    uses: Sequence[_Use],
    load: _Fields,
    target_vars: Collection[str] | None,
) -> None:
    """Every ``{row.COLUMN}`` is a column of this target's data file, every ``{vars.NAME}`` one
    of this target's vars (unless the target takes no load: then nothing is rendered)."""
    data: DataSpec | None
    data, data_kp = load.get("data", (None, None))
    for placeholder, kp in uses:
        if placeholder.kind == "row":
            if data is None:
                raise doc.error(
                    kp,
                    f"{placeholder.text} needs a data file, and the scenario has none: add "
                    f"data: {{file: users.csv}} to its load (a CSV file whose header row names "
                    f"the column {placeholder.name!r})",
                )
            if placeholder.name not in data.columns:
                override = (
                    f" (the data file of target {name!r})"
                    if data_kp is not None and data_kp[:2] == ("gate", "targets")
                    else ""
                )
                raise doc.error(
                    kp,
                    f"{placeholder.text}: {data.file.name}{override} has no column "
                    f"{placeholder.name!r}"
                    f"{did_you_mean(placeholder.name, data.columns) or '.'} Its columns: "
                    f"{', '.join(data.columns)}.",
                )
        elif (
            placeholder.kind == "vars"
            and target_vars is not None
            and placeholder.name not in target_vars
        ):
            has = (
                f"Its vars: {', '.join(sorted(target_vars))}." if target_vars else "It has no vars."
            )
            raise doc.error(
                kp,
                f"{placeholder.text}: target {name!r} has no var {placeholder.name!r}"
                f"{did_you_mean(placeholder.name, sorted(target_vars)) or '.'} {has} Add "
                f"it to targets.{name}.vars, or give the target its own scenario under "
                f"gate.targets.{name}.load",
            )


def _target_vars(raw: object) -> Collection[str] | None:
    """The names of a target's vars as written, or None when the target never takes load
    (``allow_load: false``, or ``protected: true`` without ``allow_load``)."""
    if not isinstance(raw, Mapping):
        return frozenset()
    allow_load, protected = raw.get("allow_load"), raw.get("protected")
    if allow_load is False or (allow_load is None and protected is True):
        return None
    written = raw.get("vars")
    return frozenset(str(k) for k in written) if isinstance(written, Mapping) else frozenset()


def open_model_users(peak_rate: float) -> int:
    """The open model's users (the most concurrent iterations) when no level writes them: enough
    for iterations of ``OPEN_USERS_PER_RATE`` seconds at the peak rate, at least
    ``OPEN_MIN_USERS`` and at most ``OPEN_MAX_DEFAULT_USERS``."""
    # Rounded first, so that 3000/m (50.000000000000004/s in floating point) asks 25 users.
    wanted = math.ceil(round(peak_rate * defaults.OPEN_USERS_PER_RATE, 9))
    return min(defaults.OPEN_MAX_DEFAULT_USERS, max(defaults.OPEN_MIN_USERS, wanted))


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
        # A stage's budgets judge its requests after the warm-up: none if it ends inside it.
        stages_kp = load["stages"][1]
        end = 0.0
        for i, st in enumerate(stages):
            end += st.duration
            if st.budgets and end <= warmup:
                budgets_kp = (*stages_kp, Index(i), "budgets")
                at = _latest(budgets_kp, warmup_kp)
                for_target = f" for target {name!r}" if at[:2] == ("gate", "targets") else ""
                raise doc.error(
                    at,
                    f"stage {st.name!r} ends at {format_duration(end)}, inside the warm-up "
                    f"({format_duration(warmup)}){for_target}, so none of its requests would be "
                    "judged and its budgets would never be checked (they would be inconclusive "
                    "on every run); shorten the warm-up, or move these budgets to a later stage",
                )


def is_glob(key: str) -> bool:
    """A budget key with ``*``, ``?`` or ``[`` is an fnmatch pattern over request names (unless
    it is a request's exact name)."""
    return any(c in key for c in "*?[")


def _check_budget_names(doc: Doc, parts: Sequence[_GatePart]) -> None:
    """Each budget key is ``total``, a request's name, a flow's name, or a glob over request
    names that matches at least one (in that order of precedence)."""
    if any("locustfile" in part.load for part in parts):
        return  # the user's Locust file names its own requests; nothing to check against
    names: list[str] = []
    flows: list[str] = []
    for part in parts:
        names.extend(n for n in _request_names(part.load) if n not in names)
        flows.extend(f.name for f in part.load.get("flows", ((), None))[0] if f.name not in flows)
    if not names:
        return
    for part in parts:
        for endpoint, keypath in part.stage_endpoint_keys:
            if endpoint in flows and endpoint not in names and endpoint != TOTAL:
                raise doc.error(
                    keypath,
                    f"{endpoint} is a flow, and flows are judged over the whole run: a stage "
                    "keeps no iterations of a flow apart, so this budget would be inconclusive "
                    "on every run; put this budget in gate.budgets, or budget the flow's "
                    "requests in the stage (by name, or a glob such as 'GET /api/*')",
                )
        for endpoint, keypath in [*part.endpoint_keys.items(), *part.stage_endpoint_keys]:
            if endpoint == TOTAL or endpoint in names or endpoint in flows:
                continue
            if is_glob(endpoint):
                if any(fnmatch.fnmatchcase(n, endpoint) for n in names):
                    continue
                raise doc.error(
                    keypath,
                    f"the pattern {endpoint!r} matches no request name (a budget key with * ? "
                    "or [ is a glob over the request names, such as 'GET /api/*'). The "
                    f"requests are named {', '.join(repr(n) for n in names)}.",
                )
            flow_names = f"; or to a flow: {', '.join(repr(f) for f in flows)}" if flows else ""
            raise doc.error(
                keypath,
                f"no request is named {endpoint!r}"
                f"{did_you_mean(endpoint, [TOTAL, *names, *flows]) or '.'} "
                f"Budgets apply to {TOTAL!r}, to a request name: "
                f"{', '.join(repr(n) for n in names)}{flow_names}; or to a glob over request "
                "names, such as 'GET /api/*'.",
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
    return {
        name: _merge_gate(doc, name, base, overrides.get(name), _target_vars(targets[name]))
        for name in names
    }
