"""The templates of the declarative scenario: ``{name}``, ``{vars.NAME}``, ``{row.COLUMN}``.

A request's path, header values, query values and every string value in its JSON body are
templates (``config.RequestSpec``). Three kinds of placeholder:

- ``{name}``: a value captured by an earlier request of the same user (``capture:``); ``name``
  is an identifier (letters, digits, ``_``, not starting with a digit);
- ``{vars.NAME}``: the target's ``vars.NAME``;
- ``{row.COLUMN}``: the column ``COLUMN`` of the data file's row of this iteration.

``NAME`` and ``COLUMN`` are any text without braces. ``{{`` and ``}}`` are a literal ``{`` and
``}``; any other brace is an error (``TemplateError``, whose message says what to write instead),
so a template is either read as its author meant or refused when the file is loaded.

A value is substituted as its text: a string as it is, anything else (a number, true, a list in
``vars``) as compact JSON (``3``, ``true``, ``[1,2]``), which is also how a capture keeps a
non-string JSON value. In a JSON body, a string that is exactly one placeholder becomes the
value's text the same way (the body's keys are never templates).

Rendering is the load child's work on every request, so a template is parsed once
(``compile_template``, cached) into a ``Template`` whose ``render`` joins precomputed parts; a
template without placeholders renders to its constant text. Pure; imports nothing of the project.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "JsonTemplate",
    "MissingValue",
    "Placeholder",
    "Template",
    "TemplateError",
    "compile_json",
    "compile_template",
    "escape",
    "json_names",
    "names",
    "parse",
    "render",
    "value_text",
]

Kind = Literal["capture", "vars", "row"]
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SYNTAX = "{name} (a capture), {vars.NAME} or {row.COLUMN}, and {{ or }} for a literal brace"
_PREFIXES: dict[str, Kind] = {"vars.": "vars", "row.": "row"}


class TemplateError(ValueError):
    """A malformed template; the message says where and what to write instead."""


class MissingValue(LookupError):
    """Rendering found no value for a placeholder (a capture not made yet, a var or column
    that is not there). ``placeholder`` is the one that has none."""

    def __init__(self, placeholder: Placeholder) -> None:
        self.placeholder = placeholder
        what = {"capture": "no value was captured as", "vars": "no var", "row": "no column"}
        super().__init__(f"{placeholder.text}: {what[placeholder.kind]} {placeholder.name!r}")


@dataclass(frozen=True)
class Placeholder:
    """One ``{...}`` of a template: ``kind`` and the ``name`` it looks up."""

    kind: Kind
    name: str

    @property
    def text(self) -> str:
        """As written: ``{token}``, ``{vars.NAME}``, ``{row.COLUMN}``."""
        return "{" + self.name + "}" if self.kind == "capture" else f"{{{self.kind}.{self.name}}}"


Part = str | Placeholder


def parse(template: str) -> tuple[Part, ...]:
    """``template`` as literal text and placeholders, in order; no empty literal, no two
    literals in a row. Raises ``TemplateError`` for a brace that is not part of a placeholder,
    ``{{`` or ``}}``."""
    parts: list[Part] = []
    literal: list[str] = []
    i = 0
    n = len(template)
    while i < n:
        j = _next_brace(template, i)
        if j < 0:
            literal.append(template[i:])
            break
        literal.append(template[i:j])
        char = template[j]
        if template.startswith(char * 2, j):
            literal.append(char)
            i = j + 2
            continue
        if char == "}":
            raise TemplateError(
                f"'}}' at position {j} closes nothing; write }}}} for a literal }}. "
                f"Templates are {_SYNTAX}"
            )
        end = _next_brace(template, j + 1)
        if end < 0 or template[end] == "{":
            raise TemplateError(
                f"'{{' at position {j} is not closed; write {{{{ for a literal {{. "
                f"Templates are {_SYNTAX}"
            )
        placeholder = _placeholder(template[j + 1 : end])
        if literal:
            parts.append("".join(literal))
            literal = []
        parts.append(placeholder)
        i = end + 1
    if literal:
        parts.append("".join(literal))
    return tuple(p for p in parts if p != "")


_BRACE = re.compile(r"[{}]")


def _next_brace(text: str, start: int) -> int:
    found = _BRACE.search(text, start)
    return found.start() if found else -1


def _placeholder(body: str) -> Placeholder:
    for prefix, kind in _PREFIXES.items():
        if body.startswith(prefix):
            name = body[len(prefix) :]
            if not name:
                raise TemplateError(
                    f"'{{{body}}}' names no {'var' if kind == 'vars' else 'column'}; "
                    f"write {{{prefix}NAME}}"
                )
            return Placeholder(kind, name)
    if body in ("vars", "row"):
        raise TemplateError(f"'{{{body}}}' needs a name: write {{{body}.NAME}}")
    if not IDENTIFIER.fullmatch(body):
        raise TemplateError(
            f"'{{{body}}}' is not a placeholder: a capture's name is letters, digits and _ "
            f"(not starting with a digit). Templates are {_SYNTAX}"
        )
    return Placeholder("capture", body)


def escape(text: str) -> str:
    """``text`` as a template that renders to itself (braces doubled)."""
    return text.replace("{", "{{").replace("}", "}}")


def names(template: str) -> tuple[Placeholder, ...]:
    """The placeholders ``template`` uses, each once, in the order they first appear."""
    return compile_template(template).names


def json_names(value: Any) -> tuple[Placeholder, ...]:
    """The placeholders the strings of a JSON body use, each once, in document order."""
    return compile_json(value).names


def value_text(value: Any) -> str:
    """How a value is substituted: a string as it is, anything else as compact JSON."""
    if isinstance(value, str):
        return value
    if type(value) is int:  # the common var (an id): str() is JSON's text, and faster
        return str(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


Values = Mapping[str, Any]
_EMPTY: Values = {}


class Template:
    """A parsed template; ``render`` is what runs per request."""

    __slots__ = ("_constant", "parts", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        self.parts = parse(source)
        self._constant: str | None = (
            "".join(p for p in self.parts if isinstance(p, str))
            if all(isinstance(p, str) for p in self.parts)
            else None
        )

    @property
    def constant(self) -> str | None:
        """The rendered text when the template has no placeholder, else None."""
        return self._constant

    @property
    def names(self) -> tuple[Placeholder, ...]:
        return tuple(dict.fromkeys(p for p in self.parts if not isinstance(p, str)))

    def render(self, captures: Values = _EMPTY, vars: Values = _EMPTY, row: Values = _EMPTY) -> str:
        """The text with every placeholder replaced; ``MissingValue`` when one has none."""
        if self._constant is not None:
            return self._constant
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            kind = part.kind
            source = captures if kind == "capture" else vars if kind == "vars" else row
            try:
                value = source[part.name]
            except KeyError:
                raise MissingValue(part) from None
            out.append(value if isinstance(value, str) else value_text(value))
        return "".join(out)

    def __repr__(self) -> str:
        return f"Template({self.source!r})"


@functools.lru_cache(maxsize=4096)
def compile_template(template: str) -> Template:
    """``Template(template)``, cached: the same text is parsed once."""
    return Template(template)


def render(
    template: str, captures: Values = _EMPTY, vars: Values = _EMPTY, row: Values = _EMPTY
) -> str:
    """``template`` rendered (parsed once per distinct text)."""
    return compile_template(template).render(captures, vars, row)


class JsonTemplate:
    """A JSON body whose string values are templates. ``render`` returns a new body (the
    original is never changed); without any placeholder it returns the body itself."""

    __slots__ = ("_render", "names", "source")

    def __init__(self, source: Any) -> None:
        self.source = source
        found: dict[Placeholder, None] = {}
        self._render: _Builder | None = _json_builder(source, found, path="")
        self.names = tuple(found)

    @property
    def constant(self) -> bool:
        """No placeholder anywhere: ``render`` returns ``source`` (literal braces undoubled)."""
        return self._render is None

    def render(self, captures: Values = _EMPTY, vars: Values = _EMPTY, row: Values = _EMPTY) -> Any:
        if self._render is None:
            return self.source
        return self._render(captures, vars, row)


_Builder = Callable[[Values, Values, Values], Any]


def _json_builder(value: Any, found: dict[Placeholder, None], path: str) -> _Builder | None:
    """A function ``(captures, vars, row) -> rendered value`` for ``value``, or None if
    ``value`` renders to itself. Errors name where in the body (``TemplateError``)."""
    if isinstance(value, str):
        try:
            template = compile_template(value)
        except TemplateError as error:
            raise TemplateError(f"{path}: {error}" if path else str(error)) from None
        found.update(dict.fromkeys(template.names))
        if template.constant is None:
            return template.render
        if template.constant == value:
            return None
        constant = template.constant
        return lambda c, v, r: constant
    if isinstance(value, list):
        builders = [_json_builder(item, found, f"{path}[{i}]") for i, item in enumerate(value)]
        if all(b is None for b in builders):
            return None
        pairs = list(zip(value, builders, strict=True))
        return lambda c, v, r: [item if b is None else b(c, v, r) for item, b in pairs]
    if isinstance(value, dict):
        entries = [
            (key, item, _json_builder(item, found, f"{path}.{key}" if path else str(key)))
            for key, item in value.items()
        ]
        if all(b is None for _, _, b in entries):
            return None
        return lambda c, v, r: {key: item if b is None else b(c, v, r) for key, item, b in entries}
    return None


def compile_json(value: Any) -> JsonTemplate:
    """``JsonTemplate(value)``: parsed once, rendered per request."""
    return JsonTemplate(value)
