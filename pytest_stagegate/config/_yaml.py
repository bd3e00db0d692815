"""Reading stagegate.yaml: YAML with the line of every key, the messages, the value readers
that raise a ``ConfigError`` naming file, line and dotted key, and the ``${VAR}`` syntax.

Shared by ``_targets`` and ``_gate``; knows nothing of what the keys mean.

Rules the contract leaves open, decided here:

- A key written with no value (``timeout:``) means "use the default"; a required key written
  with no value is reported as missing.
- Strings that YAML would silently turn into something else (``1.10`` -> 1.1, ``yes`` -> True)
  are refused where a string is expected, with a hint to quote them; integers are accepted as
  header values.
- ``$NAME`` without braces is an error rather than a silent literal (``$$`` is a literal ``$``).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, cast

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from ..errors import ConfigError, did_you_mean
from ..units import parse_duration, parse_rate

# A position in the document: mapping keys as written, list positions as Index.
KeyPath = tuple[Any, ...]


class Index(int):
    """A list position in a key path, so ``[2]`` is told apart from a mapping key ``2``."""

    __slots__ = ()


# --- messages ----------------------------------------------------------------------------------


def unknown(what: str, word: object, valid: Sequence[str], label: str) -> str:
    """``unknown key 'x'; did you mean 'y'? Valid keys here: ...``"""
    hint = did_you_mean(word, valid)
    return f"unknown {what} {str(word)!r}{hint or '.'} {label}: {', '.join(valid)}."


def got(value: object) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, (str, int, float)):
        text = repr(value)
        return text if len(text) <= 80 else text[:77] + "..."
    return f"a value of type {type(value).__name__}"


_BOOLEAN_WORDS = {"true": "true", "false": "false", "yes": "true", "no": "false"}
_BOOLEAN_WORDS |= {"on": "true", "off": "false"}


def _unquote(value: object) -> str:
    """For a quoted word that reads as a boolean (``"true"``, ``'no'``): how to write it."""
    if isinstance(value, str) and value.strip().lower() in _BOOLEAN_WORDS:
        word = _BOOLEAN_WORDS[value.strip().lower()]
        return f", a quoted string: write {word} without quotes"
    return ""


_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _format_key(keypath: KeyPath) -> str:
    out = ""
    for part in keypath:
        if isinstance(part, Index):
            out += f"[{int(part)}]"
        elif isinstance(part, str) and _PLAIN_KEY.fullmatch(part):
            out += f".{part}" if out else part
        else:
            out += f"[{json.dumps(str(part))}]"
    return out


# --- YAML with line numbers --------------------------------------------------------------------

_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_MAX_VALUES = 100_000  # more than this and the file is an alias bomb, not a configuration


def parse_yaml(text: str, path: Path) -> tuple[Any, dict[KeyPath, int]]:
    """The document as plain Python data, and the line (1-based) of every key path in it."""
    try:
        # The constructor already reads (and rejects control characters in) a str stream.
        loader = yaml.SafeLoader(text)
    except yaml.YAMLError as error:
        raise _yaml_error(error, text, path) from None
    try:
        root = loader.get_single_node()
        if root is None:
            return None, {}
        _check_duplicate_keys(root, path)
        converter = _Converter(loader, path)
        return converter.convert(root, ()), converter.lines
    except yaml.YAMLError as error:
        raise _yaml_error(error, text, path) from None
    finally:
        loader.dispose()


def _yaml_error(error: yaml.YAMLError, text: str, path: Path) -> ConfigError:
    line: int | None = None
    if isinstance(error, yaml.MarkedYAMLError):
        problem = error.problem or "not valid YAML"
        mark = error.problem_mark or error.context_mark
        if error.context and error.context_mark is not None:
            problem = f"{error.context} (line {error.context_mark.line + 1}): {problem}"
            if "end of stream" in problem or "<stream end>" in problem:
                # The end of the file is not where the mistake is; where the unclosed thing
                # was opened is.
                mark = error.context_mark
        line = mark.line + 1 if mark is not None else None
        if line is not None and "<block" in problem and error.context_mark is not None:
            # PyYAML's words for a key indented differently from its siblings.
            problem += (
                f"; check that line {line} is indented like the keys it belongs with "
                f"(line {error.context_mark.line + 1} starts the block), with spaces"
            )
    elif isinstance(error, yaml.reader.ReaderError):
        line = text.count("\n", 0, error.position) + 1
        problem = f"character {error.character:#x} is not allowed in YAML"
    else:
        problem = str(error)
    if line is not None:
        source = text.splitlines()[line - 1 : line]
        indent = source[0][: len(source[0]) - len(source[0].lstrip())] if source else ""
        if "\t" in indent or "'\\t'" in problem:
            return ConfigError(
                "a tab is used for indentation; YAML allows only spaces, so indent with spaces",
                path=path,
                line=line,
            )
    return ConfigError(f"not valid YAML: {problem}", path=path, line=line)


def _check_duplicate_keys(root: Node, path: Path) -> None:
    # PyYAML keeps the last of two equal keys without a word; a repeated `timeout:` is a mistake.
    # Done on the raw node graph, before merge keys (`<<`) are flattened into it.
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, MappingNode):
            first: dict[tuple[str, str], int] = {}
            for key, value in node.value:
                stack.extend((key, value))
                if not isinstance(key, ScalarNode) or key.tag == _MERGE_TAG:
                    continue
                line = key.start_mark.line + 1
                if (key.tag, key.value) in first:
                    raise ConfigError(
                        f"duplicate key {key.value!r} (first written on line "
                        f"{first[key.tag, key.value]}); YAML would keep only the last one, "
                        "so remove one of them",
                        path=path,
                        line=line,
                    )
                first[key.tag, key.value] = line
        elif isinstance(node, SequenceNode):
            stack.extend(node.value)


class _Converter:
    def __init__(self, loader: yaml.SafeLoader, path: Path) -> None:
        self.loader = loader
        self.path = path
        self.lines: dict[KeyPath, int] = {}
        self.active: set[int] = set()
        self.budget = _MAX_VALUES

    def convert(self, node: Node, keypath: KeyPath) -> Any:
        self.budget -= 1
        if self.budget < 0:
            raise ConfigError(
                f"the document expands to more than {_MAX_VALUES} values (through YAML aliases?)",
                path=self.path,
                line=node.start_mark.line + 1,
            )
        self.lines.setdefault(keypath, node.start_mark.line + 1)
        if isinstance(node, ScalarNode) or node.tag not in (_MAP_TAG, _SEQ_TAG):
            # Scalars, and the rare tagged collections (!!set, !!omap), are left to PyYAML.
            try:
                return self.loader.construct_object(node, deep=True)
            except (ValueError, OverflowError) as error:
                # PyYAML lets these through from int() and datetime(): a 5000-digit number,
                # a 30th of February.
                raise ConfigError(
                    f"cannot read this value: {error}",
                    path=self.path,
                    line=node.start_mark.line + 1,
                    key=_format_key(keypath) or None,
                ) from None
        if id(node) in self.active:
            raise ConfigError(
                "a YAML alias refers to the structure that contains it; stagegate cannot use "
                "recursive data",
                path=self.path,
                line=node.start_mark.line + 1,
                key=_format_key(keypath) or None,
            )
        self.active.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                return [
                    self.convert(item, (*keypath, Index(i))) for i, item in enumerate(node.value)
                ]
            assert isinstance(node, MappingNode)
            self.loader.flatten_mapping(node)
            result: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = self.convert(key_node, keypath)
                try:
                    hash(key)
                except TypeError:
                    raise ConfigError(
                        f"a mapping key must be a plain value such as a name, not {got(key)}",
                        path=self.path,
                        line=key_node.start_mark.line + 1,
                        key=_format_key(keypath) or None,
                    ) from None
                # The line of the key, not of its value: a nested value starts a line lower.
                self.lines.setdefault((*keypath, key), key_node.start_mark.line + 1)
                result[key] = self.convert(value_node, (*keypath, key))
            return result
        finally:
            self.active.discard(id(node))


# --- reading values ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Doc:
    """Where errors point: the file, and the line of every key path in it."""

    path: Path | None
    lines: Mapping[KeyPath, int]

    @property
    def source_name(self) -> str:
        return self.path.name if self.path is not None else "<defaults>"

    def line(self, keypath: KeyPath) -> int | None:
        # A key that is missing has no line of its own; its parent's is the place to add it.
        while True:
            try:
                if keypath in self.lines:
                    return self.lines[keypath]
            except TypeError:
                pass
            if not keypath:
                return None
            keypath = keypath[:-1]

    def error(self, keypath: KeyPath, message: str) -> ConfigError:
        return ConfigError(
            message, path=self.path, line=self.line(keypath), key=_format_key(keypath) or None
        )

    def mapping(self, value: object, keypath: KeyPath, what: str = "a mapping") -> dict[Any, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.error(keypath, f"expected {what}, got {got(value)}")
        return value

    def known_keys(self, value: Mapping[Any, Any], keypath: KeyPath, valid: Sequence[str]) -> None:
        for key in value:
            if key not in valid:
                raise self.error((*keypath, key), unknown("key", key, valid, "Valid keys here"))

    def required(self, value: Mapping[Any, Any], key: str, keypath: KeyPath, hint: str) -> Any:
        if value.get(key) is None:
            raise self.error((*keypath, key), f"missing; {hint}")
        return value[key]

    def string(self, value: object, keypath: KeyPath, what: str = "a string") -> str:
        if not isinstance(value, str):
            hint = " (put it in quotes)" if isinstance(value, (bool, int, float)) else ""
            raise self.error(keypath, f"expected {what}, got {got(value)}{hint}")
        return value

    def boolean(self, value: object, keypath: KeyPath) -> bool:
        if not isinstance(value, bool):
            raise self.error(keypath, f"expected true or false, got {got(value)}{_unquote(value)}")
        return value

    def integer(self, value: object, keypath: KeyPath, minimum: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(keypath, f"expected a whole number >= {minimum}, got {got(value)}")
        if value < minimum:
            raise self.error(keypath, f"must be at least {minimum}, got {value}")
        return value

    def number(self, value: object, keypath: KeyPath, *, above: float) -> float:
        """A finite number strictly greater than ``above``."""
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.error(keypath, f"expected a number > {above:g}, got {got(value)}")
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number) or number <= above:
            raise self.error(keypath, f"must be a number > {above:g}, got {got(value)}")
        return number

    def duration(self, value: object, keypath: KeyPath, *, positive: bool = False) -> float:
        try:
            seconds = parse_duration(value)
        except ValueError as error:
            raise self.error(keypath, str(error)) from None
        if positive and seconds <= 0:
            raise self.error(keypath, f"must be longer than 0, got {got(value)}")
        return seconds

    def rate(self, value: object, keypath: KeyPath) -> float:
        try:
            return parse_rate(value)
        except ValueError as error:
            raise self.error(keypath, str(error)) from None

    def percent(self, value: object, keypath: KeyPath) -> float:
        """1..100, written ``90`` or ``"90%"``."""
        number: object = value
        if isinstance(value, str) and value.strip().endswith("%"):
            try:
                number = float(value.strip()[:-1])
            except ValueError:
                number = value
        valid = (
            not isinstance(number, bool)
            and isinstance(number, (int, float))
            and 1 <= number <= 100  # NaN fails this too
        )
        if not valid:
            raise self.error(
                keypath,
                f"expected a percentage from 1 to 100 such as 90 or '90%', got {got(value)}",
            )
        return float(cast(float, number))

    def path_string(self, value: object, keypath: KeyPath) -> str:
        text = self.string(value, keypath, "a path starting with /")
        if not text.startswith("/"):
            raise self.error(
                keypath, f"expected a path starting with /, such as /healthz, got {got(text)}"
            )
        return text


def check_json(doc: Doc, value: Any, keypath: KeyPath) -> Any:
    """``value`` if it is plain JSON data. Vars and request bodies travel to the load process
    as JSON, and an unquoted YAML date or a .nan would only fail there, with a traceback."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise doc.error(keypath, f"{got(value)} is not a JSON number; put it in quotes")
        return value
    if isinstance(value, list):
        for i, item in enumerate(value):
            check_json(doc, item, (*keypath, Index(i)))
        return value
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise doc.error(
                    (*keypath, key),
                    f"a key here must be a string, got {got(key)}; put it in quotes",
                )
            check_json(doc, item, (*keypath, key))
        return value
    raise doc.error(
        keypath,
        f"expected plain data (text, numbers, true/false, lists, mappings), got "
        f"{got(value)}; put it in quotes to keep it as text",
    )


def present(values: Mapping[Any, Any], key: str) -> bool:
    return values.get(key) is not None


# A valid HTTP header name (an RFC 9110 token).
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


# --- ${VAR} templates --------------------------------------------------------------------------

_VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class Ref(NamedTuple):
    name: str
    default: str | None


def parse_template(text: str) -> list[str | Ref]:
    """Split ``text`` into literal parts and ``${NAME}``/``${NAME:-default}`` references.

    ``$$`` is a literal ``$``; a lone ``$`` not followed by a name or brace stays as it is.
    Raises ValueError with a message saying what to write instead.
    """
    parts: list[str | Ref] = []
    literal: list[str] = []
    i = 0
    while True:
        j = text.find("$", i)
        if j < 0:
            literal.append(text[i:])
            break
        literal.append(text[i:j])
        following = text[j + 1 : j + 2]
        if following == "$":
            literal.append("$")
            i = j + 2
        elif following == "{":
            end = text.find("}", j + 2)
            if end < 0:
                raise ValueError(
                    f"'${{' at position {j} is not closed; write ${{NAME}}, or $$ for a literal $"
                )
            body = text[j + 2 : end]
            name, colon_dash, default = body.partition(":-")
            if "${" in default:
                raise ValueError(
                    f"'${{{body}}}': a default cannot contain another ${{...}}; "
                    "give a plain default"
                )
            if not _VAR_NAME.fullmatch(name):
                raise ValueError(
                    f"'${{{body}}}' is not a valid reference; write ${{NAME}} or "
                    "${NAME:-default}, NAME made of letters, digits and _"
                )
            parts.append("".join(literal))
            literal = []
            parts.append(Ref(name, default if colon_dash else None))
            i = end + 1
        elif (m := _VAR_NAME.match(text, j + 1)) is not None:
            name = m.group()
            raise ValueError(
                f"'${name}' is not substituted; write ${{{name}}} to use the environment "
                f"variable, or $${name} for a literal $"
            )
        else:
            literal.append("$")
            i = j + 1
    parts.append("".join(literal))
    return [p for p in parts if p != ""]
