"""A declarative request's expectations and captures, evaluated on its response. Pure: no
locust or gevent import; the load child calls it on every checked request, the unit tests in
process (docs/load-engine.md, Scenarios in the child).

``compile_checks(request)`` compiles a ``PlannedRequest``'s JMESPath expressions once;
``Checks.evaluate(status, headers, body)`` gives ``(error, captured, secrets)``: the error text
of the first expectation that failed ("" when all held), the values captured, and those of them
that may be secrets (JSON strings and header values, for the child's redactor). The order is:
status, ``expect.json``, ``expect.contains``, ``expect.headers``, then the captures in the order
written. The captures are taken whatever failed (a capture that finds nothing is the error only
when nothing failed before it): a login whose expectation failed still gives its token to the
redactor, and the scenario uses the values only when nothing failed.

Semantics (issue 12):

- status: one of ``expect_status``; without it, any status below 400.
- json: the JMESPath result over the JSON body equals the value (Python ``==``, so 42 equals
  42.0; but a boolean only equals a boolean: ``true`` never equals ``1``); ``{present: true}``:
  the result is not null; ``{present: false}``: it is null.
- contains: the body, decoded as UTF-8 (undecodable bytes replaced), contains the text.
- headers: the header exists and its value contains the text, both case-insensitively.
- capture: a JMESPath result over the JSON body (a string as it is, any other JSON value as
  compact JSON text) or a header's value; null or a missing header fails the request.

Error texts name the expectation. They quote a response's JSON scalars only (shortened to
``SHOWN`` characters; an object or a list is named, never shown: "got an object", "got a list
of 3"), and never a header's value (a cookie, a session); the child redacts every error text
before it is written::

    HTTP 503, expected 200/204
    expect.json "length(items) > `0`": got false, expected true
    expect.json "@": got an object, expected "ok"
    expect.json: the body is not JSON
    expect.contains "Welcome": not in the body
    expect.headers "content-type": does not contain "application/json"
    expect.headers "x-request-id": is missing
    capture token: access_token found nothing
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import jmespath
from jmespath.exceptions import JMESPathError
from jmespath.functions import Functions
from jmespath.visitor import TreeInterpreter

from .plan import PlannedRequest

if TYPE_CHECKING:  # a compiled expression's AST (``ParsedResult.parsed``)
    from jmespath.visitor import _TreeNode as Parsed

__all__ = ["SHOWN", "Checks", "compile_checks", "needs_checks", "shorten"]

SHOWN = 60  # characters of a value shown in an error text
_MISSING = object()
# One interpreter for every search: ``ParsedResult.search`` builds a new one (its options,
# functions and method cache) per call, several times the cost of a simple search. It keeps no
# state between searches, and the child's greenlets run one at a time.
_visit = TreeInterpreter().visit
_decode_json = json.JSONDecoder().decode  # json.loads without its per-call checks


def _parse_json(body: bytes | None) -> Any:
    """The JSON document of ``body``, or ``_MISSING``: UTF-8 decoded first (the usual case,
    the fastest), else as ``json.loads`` reads bytes (UTF-16 and -32 too)."""
    if not body:
        return _MISSING
    try:
        return _decode_json(body.decode("utf-8"))
    except ValueError:  # UnicodeDecodeError too
        try:
            return json.loads(body)
        except ValueError:
            return _MISSING


_ORDERING: dict[str, Callable[[Any, Any], Any]] = {
    "lt": operator.lt,
    "lte": operator.le,
    "gt": operator.gt,
    "gte": operator.ge,
}
_EQUALITY = TreeInterpreter.COMPARATOR_FUNC  # "eq", "ne": JMESPath's own equality
_call_function = Functions().call_function


def _comparable(x: Any) -> bool:
    """JMESPath orders numbers (not booleans) and strings only."""
    return (isinstance(x, (int, float)) and not isinstance(x, bool)) or isinstance(x, str)


def _searcher(parsed: Parsed) -> Callable[[Any], Any]:
    """A function of the document giving the expression's result, as JMESPath's interpreter
    does: the usual nodes (fields, chains of fields, literals, comparisons, ``length()``) as
    closures, every other subtree through the interpreter (tests/unit/load/test_expect.py
    checks them against ``jmespath.search``)."""
    node: Any = parsed
    kind = node["type"]
    children = node.get("children") or []
    if kind == "field":
        name = node["value"]
        return lambda doc: doc.get(name) if isinstance(doc, dict) else None
    if kind == "subexpression":
        parts = [_searcher(child) for child in children]

        def chain(doc: Any) -> Any:
            for part in parts:
                doc = part(doc)
            return doc

        return chain
    if kind == "literal":
        value = node["value"]
        return lambda doc: value
    if kind == "comparator" and len(children) == 2:
        left, right = (_searcher(child) for child in children)
        op = node["value"]
        if op in _EQUALITY and op not in _ORDERING:
            equal = _EQUALITY[op]
            return lambda doc: equal(left(doc), right(doc))
        order = _ORDERING[op]

        def compare(doc: Any) -> Any:
            a, b = left(doc), right(doc)
            if not (_comparable(a) and _comparable(b)):
                return None
            return order(a, b)  # a string and a number: Python's TypeError, as JMESPath's

        return compare
    if kind == "function_expression" and node["value"] == "length" and len(children) == 1:
        arg = _searcher(children[0])

        def length(doc: Any) -> Any:
            value = arg(doc)
            if isinstance(value, (str, list, dict)):
                return len(value)
            return _call_function("length", [value])  # its type error, as JMESPath's

        return length
    return lambda doc: _visit(parsed, doc)


def shorten(text: str, limit: int = SHOWN) -> str:
    """``text`` cut to ``limit`` characters, an ellipsis marking the cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _got(value: Any) -> str:
    """A response's JSON value as an error text names it: a scalar as compact JSON, shortened;
    an object or a list by its kind only (a login's whole answer holds its token)."""
    if isinstance(value, dict):
        return "an empty object" if not value else "an object"
    if isinstance(value, list):
        return "an empty list" if not value else f"a list of {len(value)}"
    return _shown(value)


def _shown(value: Any) -> str:
    """A JSON value as an error text shows it: compact JSON, shortened."""
    try:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return shorten(text)


def _equal(got: Any, want: Any) -> bool:
    if isinstance(got, bool) or isinstance(want, bool):
        return isinstance(got, bool) and isinstance(want, bool) and got == want
    return bool(got == want)


def _capture_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _header(headers: Mapping[str, Any] | None, name: str) -> str | None:
    """The value of header ``name`` (case-insensitive), or None; a header sent more than once
    (geventhttpclient gives a list) as its values joined by ", "."""
    if headers is None:  # (not "if not": geventhttpclient's Headers count values for bool())
        return None
    value = headers.get(name)
    if value is None:
        lower = name.lower()
        value = next((v for k, v in headers.items() if str(k).lower() == lower), None)
        if value is None:
            return None
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return str(value)


@dataclass(frozen=True)
class _JsonExpect:
    expr: str
    search: Callable[[Any], Any]
    value: Any
    present: bool | None

    def error(self, doc: Any) -> str:
        try:
            got = self.search(doc)
        # length() of null (JMESPathTypeError); "a > `1`" with a string a (Python's TypeError)
        except (JMESPathError, TypeError, ValueError) as exc:
            why = shorten(" ".join(str(exc).split()), 120)
            return f'expect.json "{self.expr}": {why}'
        if self.present is True:
            return "" if got is not None else f'expect.json "{self.expr}": found nothing'
        if self.present is False:
            if got is None:
                return ""
            return f'expect.json "{self.expr}": got {_got(got)}, expected nothing'
        want = self.value
        if (type(got) is type(want) and got == want) or _equal(got, want):  # the first: usual
            return ""
        return f'expect.json "{self.expr}": got {_got(got)}, expected {_shown(self.value)}'


@dataclass(frozen=True)
class _Capture:
    var: str
    search: Callable[[Any], Any] | None  # over the JSON body
    header: str | None
    source: str  # as written, for the error text

    def take(self, headers: Mapping[str, Any] | None, doc: Any) -> tuple[str | None, bool]:
        """The captured text (None: nothing found), and whether it may be a secret: a header's
        value or a JSON string (a token), not a number, a boolean, a list or an object."""
        if self.search is None:
            return _header(headers, self.header or ""), True
        try:
            found = self.search(doc)
        except (JMESPathError, TypeError, ValueError):  # length() of null...: nothing found
            return None, False
        if found is None:
            return None, False
        return _capture_text(found), isinstance(found, str)


class Checks:
    """A request's compiled expectations and captures (``compile_checks``)."""

    __slots__ = (
        "captures",
        "contains",
        "headers",
        "json",
        "needs_body",
        "needs_json",
        "status",
        "wanted",
    )

    def __init__(
        self,
        status: frozenset[int],
        json_expects: tuple[_JsonExpect, ...],
        contains: str | None,
        headers: tuple[tuple[str, str], ...],
        captures: tuple[_Capture, ...],
    ) -> None:
        self.status = status
        self.wanted = "/".join(str(s) for s in sorted(status))
        self.json = json_expects
        self.contains = contains
        self.headers = headers
        self.captures = captures
        self.needs_json = bool(json_expects) or any(c.search is not None for c in captures)
        # the body is read into memory only for these; other requests keep draining it
        self.needs_body = self.needs_json or contains is not None

    def status_error(self, status: int) -> str:
        """The error of a response's status, "" when it is expected."""
        if self.status:
            return "" if status in self.status else f"HTTP {status}, expected {self.wanted}"
        return f"HTTP {status}" if status >= 400 else ""

    def evaluate(
        self, status: int, headers: Mapping[str, Any] | None, body: bytes | None
    ) -> tuple[str, dict[str, str], list[str]]:
        """``(error, captured, secrets)``: the first failed expectation's text ("" if none
        failed), the values captured by name (taken even when an expectation failed: the
        caller uses them only when ``error`` is ""), and the captured values that may be
        secrets (JSON strings, header values). ``body`` is the whole (decoded) body when
        ``needs_body``, else ignored (None is an empty body)."""
        failed = (status not in self.status) if self.status else status >= 400
        if failed and not self.captures:
            return self.status_error(status), {}, []
        doc: Any = _MISSING
        if self.needs_json:
            doc = _parse_json(body)
        error = self.status_error(status) if failed else self._expectations(headers, body, doc)
        if not self.captures:
            return error, {}, []
        captured: dict[str, str] = {}
        secrets: list[str] = []
        for capture in self.captures:
            if capture.search is not None and doc is _MISSING:
                error = error or f"capture {capture.var}: the body is not JSON"
                continue
            value, secret = capture.take(headers, doc)
            if value is None:
                error = error or f"capture {capture.var}: {capture.source} found nothing"
                continue
            captured[capture.var] = value
            if secret:
                secrets.append(value)
        return error, captured, secrets

    def _expectations(self, headers: Mapping[str, Any] | None, body: bytes | None, doc: Any) -> str:
        """The first failed expectation on the body and headers, "" when all held."""
        if self.json:
            if doc is _MISSING:
                return "expect.json: the body is not JSON"
            for expect in self.json:
                error = expect.error(doc)
                if error:
                    return error
        if self.contains is not None:
            text = (body or b"").decode("utf-8", errors="replace")
            if self.contains not in text:
                return f'expect.contains "{shorten(self.contains)}": not in the body'
        for name, want in self.headers:
            value = _header(headers, name)
            if value is None:
                return f'expect.headers "{name}": is missing'
            if want.lower() not in value.lower():
                # never the value: a cookie or a session id is a secret
                return f'expect.headers "{name}": does not contain "{shorten(want)}"'
        return ""


def needs_checks(req: PlannedRequest) -> bool:
    """Whether ``req`` has anything for ``Checks`` beyond a status (expectations on the body or
    headers, captures)."""
    return bool(
        req.expect_json or req.expect_contains is not None or req.expect_headers or req.capture
    )


def compile_checks(req: PlannedRequest) -> Checks:
    """``req``'s expectations and captures, their JMESPath compiled once. A bad expression
    raises ``jmespath.exceptions.ParseError`` (the configuration refuses it at load time)."""
    json_expects = tuple(
        _JsonExpect(
            expr=str(e["expr"]),
            search=_searcher(jmespath.compile(str(e["expr"])).parsed),
            value=e.get("value"),
            present=e.get("present"),
        )
        for e in req.expect_json
    )
    captures = tuple(
        _Capture(
            var=str(c["var"]),
            search=(
                _searcher(jmespath.compile(str(c["json"])).parsed)
                if c.get("json") is not None
                else None
            ),
            header=c.get("header"),
            source=str(c["json"]) if c.get("json") is not None else f"header {c.get('header')}",
        )
        for c in req.capture
    )
    return Checks(
        frozenset(req.expect_status),
        json_expects,
        req.expect_contains,
        tuple((str(k), str(v)) for k, v in req.expect_headers.items()),
        captures,
    )
