"""stagegate.yaml -> frozen dataclasses, with file:line errors.

``load_config(path)`` parses and validates the whole file once (structure, types, durations,
rates, budgets) but resolves no ``${VAR}``: a missing variable is an error only for the target
that is selected, in ``Config.resolve_target(name, environ)``. A value that came from an
environment variable into a header or ``vars`` (and a password in the base URL) is a secret;
``Target.secrets`` holds them so they can be redacted everywhere.

Every error is a ``ConfigError`` that names the file, the line and the dotted key, says what is
wrong and what would be valid. Nothing here imports pytest or locust.

Rules the contract leaves open, decided here:

- A key written with no value (``timeout:``) means "use the default"; a required key written
  with no value is reported as missing.
- ``${VAR}`` with ``VAR`` set but empty is an error, like unset: CI systems hand forks empty
  secrets, and ``Bearer `` with no token would only fail later and less clearly. ``${VAR:-}``
  opts into an empty value. ``$NAME`` without braces is an error rather than a silent literal.
- Defaults written in the file are not secrets; values taken from the environment into headers
  and ``vars`` are, if at least 4 characters long. Typed values (timeouts, switches), the
  expected build in ``version.expect`` and the URL itself are not: masking every "5", "true" or
  commit id in the output would destroy it and hide nothing. A password in the base URL is.
- Strings that YAML would silently turn into something else (``1.10`` -> 1.1, ``yes`` -> True)
  are refused where a string is expected, with a hint to quote them; integers are accepted as
  header values.
- A per-target override that sets ``requests`` or ``locustfile`` replaces the base scenario as a
  whole instead of being merged with it (``requests`` plus ``locustfile`` is an error).
- A budget for a request name that no declared scenario has is an error (a typo would otherwise
  only show up as an inconclusive check), unless some scenario uses a locustfile.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, NamedTuple, TypeVar, cast
from urllib.parse import unquote, urlsplit

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from . import budgets as _budgets
from ._redact import MIN_SECRET_LENGTH, Redactor
from .budgets import TOTAL, Budget
from .errors import ConfigError, did_you_mean
from .units import format_duration, parse_duration, parse_rate

__all__ = [
    "CONFIG_FILENAME",
    "AbortSettings",
    "Config",
    "ConfigError",
    "GateSettings",
    "LoadSettings",
    "ReadyCheck",
    "RequestSpec",
    "Target",
    "VersionCheck",
    "load_config",
]

CONFIG_FILENAME = "stagegate.yaml"


@dataclass(frozen=True)
class ReadyCheck:
    """Poll ``path`` until it answers 2xx, for at most ``timeout`` seconds."""

    path: str
    timeout: float = 60.0
    interval: float = 0.25  # first poll interval; doubles up to 5 s


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
    timeout: float = 10.0
    ready: ReadyCheck | None = None
    version: VersionCheck | None = None
    vars: Mapping[str, Any] = field(default_factory=dict)
    protected: bool = False
    allow_load: bool = True
    verify_tls: bool = True
    secrets: frozenset[str] = frozenset()

    def redact(self, text: str) -> str:
        """``text`` with every secret value replaced by ``***``."""
        return _redact(text, self.secrets)

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
class RequestSpec:
    """One line of the declarative scenario ``gate.load.requests``."""

    method: str
    path: str
    name: str  # the request name budgets refer to; default "METHOD path"
    weight: int = 1
    headers: Mapping[str, str] = field(default_factory=dict)
    json: Any = None
    expect_status: tuple[int, ...] = ()  # empty: any status < 400 is a success


@dataclass(frozen=True)
class AbortSettings:
    """When to stop the load early because the deployment is clearly broken."""

    enabled: bool = True
    error_rate: float = 0.9  # fail fast when at least this share of requests fail ...
    min_requests: int = 20  # ... over at least this many requests
    latency_factor: float = 3.0  # or a latency budget is exceeded this many times over ...
    latency_for: float = 5.0  # ... for this many seconds in a row
    grace: float = 15.0  # extra seconds the load process may take to stop before it is killed


@dataclass(frozen=True)
class LoadSettings:
    """``gate.load`` after per-target overrides."""

    users: int = 10
    spawn_rate: float = 10.0
    duration: float = 30.0
    warmup: float = 0.0
    requests: tuple[RequestSpec, ...] = ()
    locustfile: Path | None = None
    user_class: Literal["fast", "http"] = "fast"
    wait: tuple[float, float] = (0.0, 0.0)  # between(min, max) seconds, Locust's default is 0
    abort: AbortSettings = AbortSettings()


@dataclass(frozen=True)
class GateSettings:
    """``gate`` for one target: load plan, budgets and policy, overrides applied."""

    load: LoadSettings = LoadSettings()
    budgets: tuple[Budget, ...] = ()
    min_samples: int = 100
    saturation_cpu: float = 90.0  # percent of one core, per load process
    run_after_critical_failure: bool = False
    flaky_blocks: bool = False  # a flaky (passed on rerun) non-critical test blocks promotion


# A position in the document: mapping keys as written, list positions as _Index.
_KeyPath = tuple[Any, ...]


class _Index(int):
    """A list position in a key path, so ``[2]`` is told apart from a mapping key ``2``."""

    __slots__ = ()


@dataclass(frozen=True)
class Config:
    """A parsed stagegate.yaml. Targets stay unresolved until one is selected."""

    path: Path | None
    target_names: tuple[str, ...]
    # Each target as written (validated, ``${VAR}`` still in place); resolved on demand.
    _raw_targets: Mapping[str, Any] = field(repr=False, default_factory=dict)
    _gate: Mapping[str, GateSettings] = field(repr=False, default_factory=dict)
    # Line of every key path, so errors found at resolve time can still point into the file.
    _lines: Mapping[_KeyPath, int] = field(repr=False, compare=False, default_factory=dict)

    def resolve_target(self, name: str, environ: Mapping[str, str]) -> Target:
        """The target ``name`` with ``${VAR}``/``${VAR:-default}`` substituted.

        Raises ConfigError for an unknown name (listing the known ones) or a missing variable
        (naming the variable, the target, the file and line).
        """
        self._check_known(name)
        reader = _TargetReader(self._doc(), name, self._raw_targets[name], environ)
        try:
            return reader.read()
        except ConfigError as error:
            if not reader.secrets:
                raise
            # A value from the environment may be quoted back in "got ..."; never show it.
            raise ConfigError(
                _redact(error.problem, reader.secrets),
                path=error.path,
                line=error.line,
                key=error.key,
            ) from None
        except RecursionError:
            raise self._doc().error((), _TOO_DEEP) from None

    def gate_settings(self, name: str) -> GateSettings:
        """The gate settings for target ``name``: ``gate`` merged with ``gate.targets.<name>``."""
        self._check_known(name)
        return self._gate.get(name, GateSettings())

    def _doc(self) -> _Doc:
        return _Doc(self.path, self._lines)

    def _check_known(self, name: str) -> None:
        if name in self._raw_targets:
            return
        known = ", ".join(self.target_names) or "(none)"
        hint = did_you_mean(name, self.target_names)
        if self.path is None:
            raise ConfigError(
                f"unknown target {name!r}{hint or '.'} There is no {CONFIG_FILENAME}, so the only "
                f"target is 'local'; create {CONFIG_FILENAME} to define {name!r}."
            )
        raise ConfigError(
            f"unknown target {name!r}{hint or '.'} Known targets: {known}. "
            f"Define it under 'targets:' in {self.path.name}.",
            path=self.path,
        )


def load_config(path: Path | str) -> Config:
    """Read and validate ``path``. Raises ConfigError naming file, line and key."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"cannot read the file: it is not UTF-8 text (byte {error.start})", path=path
        ) from None
    except OSError as error:
        raise ConfigError(f"cannot read the file: {error.strerror or error}", path=path) from None
    try:
        data, lines = _parse_yaml(text, path)
        return _build_config(path, data, lines)
    except RecursionError:
        raise ConfigError(_TOO_DEEP, path=path) from None


# --- messages ----------------------------------------------------------------------------------

_MINIMAL = (
    f"a minimal {CONFIG_FILENAME} is:\n\n"
    "    targets:\n"
    "      local:\n"
    "        base_url: http://127.0.0.1:8000\n"
)
_TOO_DEEP = "the document is nested too deeply to be a stagegate configuration"
_MAX_VALUES = 100_000  # more than this and the file is an alias bomb, not a configuration


def _redact(text: str, secrets: Iterable[str]) -> str:
    return Redactor(secrets)(text)


def _unknown(what: str, word: object, valid: Sequence[str], label: str) -> str:
    """``unknown key 'x'; did you mean 'y'? Valid keys here: ...``"""
    hint = did_you_mean(word, valid)
    return f"unknown {what} {str(word)!r}{hint or '.'} {label}: {', '.join(valid)}."


def _got(value: object) -> str:
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


_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _format_key(keypath: _KeyPath) -> str:
    out = ""
    for part in keypath:
        if isinstance(part, _Index):
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


def _parse_yaml(text: str, path: Path) -> tuple[Any, dict[_KeyPath, int]]:
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
        self.lines: dict[_KeyPath, int] = {}
        self.active: set[int] = set()
        self.budget = _MAX_VALUES

    def convert(self, node: Node, keypath: _KeyPath) -> Any:
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
                    self.convert(item, (*keypath, _Index(i))) for i, item in enumerate(node.value)
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
                        f"a mapping key must be a plain value such as a name, not {_got(key)}",
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

_T = TypeVar("_T")


@dataclass(frozen=True)
class _Doc:
    """Where errors point: the file, and the line of every key path in it."""

    path: Path | None
    lines: Mapping[_KeyPath, int]

    @property
    def source_name(self) -> str:
        return self.path.name if self.path is not None else "<defaults>"

    def line(self, keypath: _KeyPath) -> int | None:
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

    def error(self, keypath: _KeyPath, message: str) -> ConfigError:
        return ConfigError(
            message, path=self.path, line=self.line(keypath), key=_format_key(keypath) or None
        )

    def mapping(self, value: object, keypath: _KeyPath, what: str = "a mapping") -> dict[Any, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.error(keypath, f"expected {what}, got {_got(value)}")
        return value

    def known_keys(self, value: Mapping[Any, Any], keypath: _KeyPath, valid: Sequence[str]) -> None:
        for key in value:
            if key not in valid:
                raise self.error((*keypath, key), _unknown("key", key, valid, "Valid keys here"))

    def required(self, value: Mapping[Any, Any], key: str, keypath: _KeyPath, hint: str) -> Any:
        if value.get(key) is None:
            raise self.error((*keypath, key), f"missing; {hint}")
        return value[key]

    def string(self, value: object, keypath: _KeyPath, what: str = "a string") -> str:
        if not isinstance(value, str):
            hint = " (put it in quotes)" if isinstance(value, (bool, int, float)) else ""
            raise self.error(keypath, f"expected {what}, got {_got(value)}{hint}")
        return value

    def boolean(self, value: object, keypath: _KeyPath) -> bool:
        if not isinstance(value, bool):
            raise self.error(keypath, f"expected true or false, got {_got(value)}")
        return value

    def integer(self, value: object, keypath: _KeyPath, minimum: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(keypath, f"expected a whole number >= {minimum}, got {_got(value)}")
        if value < minimum:
            raise self.error(keypath, f"must be at least {minimum}, got {value}")
        return value

    def number(self, value: object, keypath: _KeyPath, *, above: float) -> float:
        """A finite number strictly greater than ``above``."""
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.error(keypath, f"expected a number > {above:g}, got {_got(value)}")
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number) or number <= above:
            raise self.error(keypath, f"must be a number > {above:g}, got {_got(value)}")
        return number

    def duration(self, value: object, keypath: _KeyPath, *, positive: bool = False) -> float:
        try:
            seconds = parse_duration(value)
        except ValueError as error:
            raise self.error(keypath, str(error)) from None
        if positive and seconds <= 0:
            raise self.error(keypath, f"must be longer than 0, got {_got(value)}")
        return seconds

    def rate(self, value: object, keypath: _KeyPath) -> float:
        try:
            return parse_rate(value)
        except ValueError as error:
            raise self.error(keypath, str(error)) from None

    def percent(self, value: object, keypath: _KeyPath) -> float:
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
                f"expected a percentage from 1 to 100 such as 90 or '90%', got {_got(value)}",
            )
        return float(cast(float, number))

    def path_string(self, value: object, keypath: _KeyPath) -> str:
        text = self.string(value, keypath, "a path starting with /")
        if not text.startswith("/"):
            raise self.error(
                keypath, f"expected a path starting with /, such as /healthz, got {_got(text)}"
            )
        return text


def _check_json(doc: _Doc, value: Any, keypath: _KeyPath) -> Any:
    """``value`` if it is plain JSON data. Vars and request bodies travel to the load process
    as JSON, and an unquoted YAML date or a .nan would only fail there, with a traceback."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise doc.error(keypath, f"{_got(value)} is not a JSON number; put it in quotes")
        return value
    if isinstance(value, list):
        for i, item in enumerate(value):
            _check_json(doc, item, (*keypath, _Index(i)))
        return value
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise doc.error(
                    (*keypath, key),
                    f"a key here must be a string, got {_got(key)}; put it in quotes",
                )
            _check_json(doc, item, (*keypath, key))
        return value
    raise doc.error(
        keypath,
        f"expected plain data (text, numbers, true/false, lists, mappings), got "
        f"{_got(value)}; put it in quotes to keep it as text",
    )


def _present(values: Mapping[Any, Any], key: str) -> bool:
    return values.get(key) is not None


# --- ${VAR} templates --------------------------------------------------------------------------

_VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class _Ref(NamedTuple):
    name: str
    default: str | None


def _parse_template(text: str) -> list[str | _Ref]:
    """Split ``text`` into literal parts and ``${NAME}``/``${NAME:-default}`` references.

    ``$$`` is a literal ``$``; a lone ``$`` not followed by a name or brace stays as it is.
    Raises ValueError with a message saying what to write instead.
    """
    parts: list[str | _Ref] = []
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
            parts.append(_Ref(name, default if colon_dash else None))
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


# --- targets -----------------------------------------------------------------------------------

_TARGET_KEYS = (
    "base_url",
    "headers",
    "timeout",
    "ready",
    "version",
    "vars",
    "protected",
    "allow_load",
    "verify_tls",
)
_READY_KEYS = ("path", "timeout", "interval")
_VERSION_KEYS = ("path", "expect", "field")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_TRUE_WORDS = frozenset({"true", "yes", "on", "1"})
_FALSE_WORDS = frozenset({"false", "no", "off", "0"})


def _is_http_url(url: str) -> bool:
    if any(c.isspace() for c in url):
        return False
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not 0-65535
    except ValueError:  # also "Invalid IPv6 URL"
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


class _TargetReader:
    """Reads one target. With ``environ=None`` it only validates: values holding a ``${VAR}``
    are checked for syntax but not otherwise, since their value is not known yet."""

    def __init__(
        self, doc: _Doc, name: str, raw: object, environ: Mapping[str, str] | None
    ) -> None:
        self.doc = doc
        self.name = name
        self.raw = raw
        self.environ = environ
        self.keypath: _KeyPath = ("targets", name)
        self.secrets: set[str] = set()

    def substitute(self, text: str, keypath: _KeyPath) -> str | None:
        """``text`` with its references resolved; None while only validating and ``text`` has
        a reference."""
        try:
            parts = _parse_template(text)
        except ValueError as error:
            raise self.doc.error(keypath, str(error)) from None
        out: list[str] = []
        for part in parts:
            if isinstance(part, str):
                out.append(part)
                continue
            if self.environ is None:
                return None
            value = self.environ.get(part.name)
            if value:
                if keypath[2:3] in (("headers",), ("vars",)) and len(value) >= MIN_SECRET_LENGTH:
                    self.secrets.add(value)
                out.append(value)
            elif part.default is not None:
                out.append(part.default)
            else:
                state = "is not set" if value is None else "is set but empty"
                raise self.doc.error(
                    keypath,
                    f"environment variable {part.name} {state} (needed by target "
                    f"{self.name!r}). Set it, or give a default with ${{{part.name}:-value}}.",
                )
        return "".join(out)

    def text(self, value: object, keypath: _KeyPath, what: str = "a string") -> str | None:
        return self.substitute(self.doc.string(value, keypath, what), keypath)

    def typed(
        self,
        values: Mapping[Any, Any],
        key: str,
        keypath: _KeyPath,
        parse: Callable[[object, _KeyPath], _T],
        default: _T,
    ) -> _T:
        """``values[key]`` parsed; a string holding ``${VAR}`` is parsed once substituted."""
        value = values.get(key)
        keypath = (*keypath, key)
        if value is None:
            return default
        if isinstance(value, str) and "$" in value:
            substituted = self.substitute(value, keypath)
            if substituted is None:
                return default
            value = substituted
        return parse(value, keypath)

    def boolean(self, value: object, keypath: _KeyPath) -> bool:
        # Only a substituted value can arrive here as a string; YAML has parsed the rest.
        if isinstance(value, str):
            word = value.strip().lower()
            if word in _TRUE_WORDS:
                return True
            if word in _FALSE_WORDS:
                return False
        return self.doc.boolean(value, keypath)

    def deep(self, value: Any, keypath: _KeyPath) -> Any:
        """A copy of ``value`` with every string substituted."""
        if isinstance(value, str):
            substituted = self.substitute(value, keypath)
            return value if substituted is None else substituted
        if isinstance(value, dict):
            return {k: self.deep(v, (*keypath, k)) for k, v in value.items()}
        if isinstance(value, list):
            return [self.deep(v, (*keypath, _Index(i))) for i, v in enumerate(value)]
        return value

    def read(self) -> Target:
        doc, kp = self.doc, self.keypath
        values = doc.mapping(
            self.raw, kp, "a mapping with at least base_url, such as {base_url: https://...}"
        )
        doc.known_keys(values, kp, _TARGET_KEYS)
        base_url = self.base_url(values)
        headers = self.headers(values.get("headers"), (*kp, "headers"))
        timeout = self.typed(values, "timeout", kp, self.positive_duration, 10.0)
        raw_vars = doc.mapping(values.get("vars"), (*kp, "vars"))
        _check_json(doc, raw_vars, (*kp, "vars"))
        vars_ = self.deep(raw_vars, (*kp, "vars"))
        protected = self.typed(values, "protected", kp, self.boolean, False)
        return Target(
            name=self.name,
            base_url=base_url,
            headers=headers,
            timeout=timeout,
            ready=self.ready(values.get("ready"), (*kp, "ready")),
            version=self.version(values.get("version"), (*kp, "version")),
            vars=vars_,
            protected=protected,
            allow_load=self.typed(values, "allow_load", kp, self.boolean, not protected),
            verify_tls=self.typed(values, "verify_tls", kp, self.boolean, True),
            secrets=frozenset(self.secrets),
        )

    def positive_duration(self, value: object, keypath: _KeyPath) -> float:
        return self.doc.duration(value, keypath, positive=True)

    def base_url(self, values: Mapping[Any, Any]) -> str:
        keypath = (*self.keypath, "base_url")
        raw = self.doc.required(
            values,
            "base_url",
            self.keypath,
            "every target needs a base_url such as https://shop-staging.example.com",
        )
        url = self.text(raw, keypath, "a URL such as https://shop-staging.example.com")
        if url is None:
            return "http://unresolved.invalid"
        url = url.strip()
        if not _is_http_url(url):
            # A URL from the environment may carry credentials, even a malformed one.
            got = _got(url) if url == str(raw).strip() else "a value from the environment"
            raise self.doc.error(
                keypath,
                f"expected an http:// or https:// URL such as https://shop-staging.example.com, "
                f"got {got}",
            )
        password = urlsplit(url).password
        if password:
            self.secrets.update({password, unquote(password)})
        return url.rstrip("/")

    def headers(self, raw: object, keypath: _KeyPath) -> dict[str, str]:
        values = self.doc.mapping(raw, keypath, "a mapping of header name: value")
        headers: dict[str, str] = {}
        for name, value in values.items():
            kp = (*keypath, name)
            if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
                raise self.doc.error(
                    kp, f"{_got(name)} is not a valid HTTP header name, such as X-Api-Key"
                )
            if isinstance(value, int) and not isinstance(value, bool):
                value = str(value)
            text = self.text(value, kp, "a string (header value)")
            if text is not None and ("\r" in text or "\n" in text):
                raise self.doc.error(kp, "a header value cannot contain a line break")
            headers[name] = text if text is not None else ""
        return headers

    def ready(self, raw: object, keypath: _KeyPath) -> ReadyCheck | None:
        if raw is None:
            return None
        if isinstance(raw, str):  # `ready: /healthz` is short for `ready: {path: /healthz}`
            raw = {"path": raw}
        values = self.doc.mapping(raw, keypath, "a mapping such as {path: /healthz, timeout: 60s}")
        self.doc.known_keys(values, keypath, _READY_KEYS)
        path = self.path(
            self.doc.required(values, "path", keypath, "ready needs a path such as /healthz"),
            (*keypath, "path"),
        )
        return ReadyCheck(
            path=path,
            timeout=self.typed(values, "timeout", keypath, self.positive_duration, 60.0),
            interval=self.typed(values, "interval", keypath, self.positive_duration, 0.25),
        )

    def version(self, raw: object, keypath: _KeyPath) -> VersionCheck | None:
        if raw is None:
            return None
        values = self.doc.mapping(
            raw, keypath, 'a mapping such as {path: /version, expect: "${GIT_SHA}"}'
        )
        self.doc.known_keys(values, keypath, _VERSION_KEYS)
        hint = 'version needs path and expect, such as {path: /version, expect: "${GIT_SHA}"}'
        path = self.path(self.doc.required(values, "path", keypath, hint), (*keypath, "path"))
        expect = self.text(
            self.doc.required(values, "expect", keypath, hint),
            (*keypath, "expect"),
            "a string (the expected version)",
        )
        field_: str | None = None
        if _present(values, "field"):
            field_ = self.text(values["field"], (*keypath, "field"), "a dotted JSON field name")
            if field_ is not None and not all(field_.split(".")):
                raise self.doc.error(
                    (*keypath, "field"),
                    f"expected a dotted JSON field name such as build.sha, got {_got(field_)}",
                )
        return VersionCheck(path=path, expect=expect or "", field=field_)

    def path(self, value: object, keypath: _KeyPath) -> str:
        text = self.text(value, keypath, "a path starting with /")
        if text is None:
            return "/"
        return self.doc.path_string(text, keypath)


# --- gate --------------------------------------------------------------------------------------

_TOP_KEYS = ("version", "targets", "gate")
_POLICY_KEYS = ("min_samples", "saturation_cpu", "run_after_critical_failure", "flaky_blocks")
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
_Fields = dict[str, tuple[Any, _KeyPath]]
_BudgetMap = dict[str, dict[str, tuple[Budget, _KeyPath]]]


@dataclass
class _GatePart:
    """What one level (``gate`` or ``gate.targets.NAME``) writes, parsed but not merged."""

    policy: _Fields
    load: _Fields
    abort: _Fields
    budgets: _BudgetMap
    endpoint_keys: dict[str, _KeyPath]


def _parse_policy(doc: _Doc, values: Mapping[Any, Any], keypath: _KeyPath) -> _Fields:
    out: _Fields = {}
    readers: dict[str, Callable[[object, _KeyPath], object]] = {
        "min_samples": lambda v, kp: doc.integer(v, kp, minimum=1),
        "saturation_cpu": doc.percent,
        "run_after_critical_failure": doc.boolean,
        "flaky_blocks": doc.boolean,
    }
    for key, read in readers.items():
        if _present(values, key):
            kp = (*keypath, key)
            out[key] = (read(values[key], kp), kp)
    return out


def _parse_wait(doc: _Doc, value: object, keypath: _KeyPath) -> tuple[float, float]:
    if isinstance(value, list):
        if len(value) != 2:
            raise doc.error(
                keypath, f"expected [min, max] such as [1s, 3s], got a list of {len(value)}"
            )
        low = doc.duration(value[0], (*keypath, _Index(0)))
        high = doc.duration(value[1], (*keypath, _Index(1)))
        if low > high:
            raise doc.error(
                keypath, f"min ({format_duration(low)}) is more than max ({format_duration(high)})"
            )
        return (low, high)
    seconds = doc.duration(value, keypath)
    return (seconds, seconds)


def _parse_status(doc: _Doc, value: object, keypath: _KeyPath) -> tuple[int, ...]:
    items = value if isinstance(value, list) else [value]
    statuses: list[int] = []
    for i, item in enumerate(items):
        kp = (*keypath, _Index(i)) if isinstance(value, list) else keypath
        if isinstance(item, bool) or not isinstance(item, int) or not 100 <= item <= 599:
            raise doc.error(
                kp,
                f"expected an HTTP status such as 200 or a list such as [200, 404], "
                f"got {_got(item)}",
            )
        statuses.append(item)
    if not statuses:
        raise doc.error(keypath, "expected at least one HTTP status, got an empty list")
    return tuple(statuses)


def _parse_request_headers(doc: _Doc, value: object, keypath: _KeyPath) -> dict[str, str]:
    values = doc.mapping(value, keypath, "a mapping of header name: value")
    headers: dict[str, str] = {}
    for name, raw in values.items():
        kp = (*keypath, name)
        if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
            raise doc.error(kp, f"{_got(name)} is not a valid HTTP header name, such as X-Api-Key")
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


def _parse_request(doc: _Doc, value: object, keypath: _KeyPath) -> RequestSpec:
    example = "'GET /api/products' or {method: GET, path: /api/products}"
    if isinstance(value, str):
        words = value.split()
        if len(words) != 2:
            raise doc.error(
                keypath, f"expected 'METHOD /path' such as {example}, got {_got(value)}"
            )
        values: dict[Any, Any] = {"method": words[0], "path": words[1]}
    else:
        values = doc.mapping(value, keypath, f"a request such as {example}")
        doc.known_keys(values, keypath, _REQUEST_KEYS)
    method = "GET"
    if _present(values, "method"):
        kp = (*keypath, "method")
        method = doc.string(values["method"], kp, "an HTTP method").upper()
        if method not in _METHODS:
            raise doc.error(
                kp,
                _unknown("HTTP method", values["method"], _METHODS, "Valid methods"),
            )
    path = doc.path_string(
        doc.required(values, "path", keypath, f"a request needs a path, such as {example}"),
        (*keypath, "path"),
    )
    if "${" in path:
        raise doc.error((*keypath, "path"), "${...} is substituted only under targets")
    name = f"{method} {path}"
    if _present(values, "name"):
        name = doc.string(values["name"], (*keypath, "name"), "a request name")
        if not name.strip():
            raise doc.error((*keypath, "name"), "a request name cannot be empty")
    weight = 1
    if _present(values, "weight"):
        weight = doc.integer(values["weight"], (*keypath, "weight"), minimum=1)
    headers: dict[str, str] = {}
    if _present(values, "headers"):
        headers = _parse_request_headers(doc, values["headers"], (*keypath, "headers"))
    status: tuple[int, ...] = ()
    if _present(values, "expect_status"):
        status = _parse_status(doc, values["expect_status"], (*keypath, "expect_status"))
    return RequestSpec(
        method=method,
        path=path,
        name=name,
        weight=weight,
        headers=headers,
        json=_check_json(doc, values.get("json"), (*keypath, "json")),
        expect_status=status,
    )


def _parse_locustfile(doc: _Doc, value: object, keypath: _KeyPath) -> Path:
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


def _parse_abort(doc: _Doc, value: object, keypath: _KeyPath) -> _Fields:
    values = doc.mapping(value, keypath)
    doc.known_keys(values, keypath, _ABORT_KEYS)
    readers: dict[str, Callable[[object, _KeyPath], object]] = {
        "enabled": doc.boolean,
        "error_rate": doc.rate,
        "min_requests": lambda v, kp: doc.integer(v, kp, minimum=1),
        "latency_factor": lambda v, kp: doc.number(v, kp, above=1.0),
        "latency_for": lambda v, kp: doc.duration(v, kp, positive=True),
        "grace": doc.duration,
    }
    out: _Fields = {}
    for key, read in readers.items():
        if _present(values, key):
            kp = (*keypath, key)
            out[key] = (read(values[key], kp), kp)
    return out


def _parse_load(doc: _Doc, value: object, keypath: _KeyPath) -> tuple[_Fields, _Fields]:
    values = doc.mapping(value, keypath)
    doc.known_keys(values, keypath, _LOAD_KEYS)
    if _present(values, "requests") and _present(values, "locustfile"):
        raise doc.error(
            (*keypath, "locustfile"),
            "requests and locustfile cannot be used together; use the declarative requests or "
            "your own Locust file, not both",
        )
    readers: dict[str, Callable[[object, _KeyPath], object]] = {
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
        if _present(values, key):
            kp = (*keypath, key)
            out[key] = (read(values[key], kp), kp)
    abort = _parse_abort(doc, values.get("abort"), (*keypath, "abort"))
    return out, abort


def _parse_user_class(doc: _Doc, value: object, keypath: _KeyPath) -> str:
    if value not in _USER_CLASSES:
        raise doc.error(
            keypath,
            f"expected {' or '.join(repr(c) for c in _USER_CLASSES)} (fast: Locust's "
            f"FastHttpUser, http: HttpUser), got {_got(value)}",
        )
    return value


def _parse_requests(doc: _Doc, value: object, keypath: _KeyPath) -> tuple[RequestSpec, ...]:
    if not isinstance(value, list):
        raise doc.error(
            keypath,
            f"expected a list of requests such as ['GET /api/products'], got {_got(value)}",
        )
    if not value:
        raise doc.error(keypath, "expected at least one request, got an empty list")
    return tuple(_parse_request(doc, item, (*keypath, _Index(i))) for i, item in enumerate(value))


def _parse_budgets(
    doc: _Doc, value: object, keypath: _KeyPath
) -> tuple[_BudgetMap, dict[str, _KeyPath]]:
    values = doc.mapping(
        value,
        keypath,
        "a mapping of request name (or total) to limits, such as {total: {p95: 300ms}}",
    )
    out: _BudgetMap = {}
    endpoint_keys: dict[str, _KeyPath] = {}
    for endpoint, limits in values.items():
        ekp = (*keypath, endpoint)
        if not isinstance(endpoint, str) or not endpoint.strip():
            raise doc.error(
                ekp, f"expected a request name or {TOTAL!r} as the key, got {_got(endpoint)}"
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
                    f"got {_got(metric)}",
                )
            try:
                budget = _budgets.parse_budget(endpoint, metric, limit)
            except ValueError as error:
                raise doc.error(mkp, str(error)) from None
            budget = replace(budget, source=f"{doc.source_name}:{doc.line(mkp)}")
            # Keyed by the canonical metric, so an override's p95.0 replaces the base's p95.
            out[endpoint][budget.metric] = (budget, mkp)
    return out, endpoint_keys


def _parse_gate_part(doc: _Doc, values: Mapping[Any, Any], keypath: _KeyPath) -> _GatePart:
    load, abort = _parse_load(doc, values.get("load"), (*keypath, "load"))
    budgets, endpoint_keys = _parse_budgets(doc, values.get("budgets"), (*keypath, "budgets"))
    return _GatePart(
        policy=_parse_policy(doc, values, keypath),
        load=load,
        abort=abort,
        budgets=budgets,
        endpoint_keys=endpoint_keys,
    )


def _latest(*keypaths: _KeyPath | None) -> _KeyPath:
    # An override is more specific than the base, so a conflict is reported where it is.
    found = [kp for kp in keypaths if kp is not None]
    overrides = [kp for kp in found if kp[:2] == ("gate", "targets")]
    return (overrides or found or [("gate", "load")])[0]


def _merge_gate(doc: _Doc, name: str, base: _GatePart, over: _GatePart | None) -> GateSettings:
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

    duration, duration_kp = load.get("duration", (30.0, None))
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
    return GateSettings(
        load=load_settings,
        budgets=tuple(b for limits in budgets.values() for b, _ in limits.values()),
        **{key: value for key, (value, _) in policy.items()},
    )


def _check_budget_names(doc: _Doc, parts: Sequence[_GatePart]) -> None:
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


# --- the whole file ----------------------------------------------------------------------------


def _build_config(path: Path, data: Any, lines: dict[_KeyPath, int]) -> Config:
    doc = _Doc(path, lines)
    if data is None:
        raise ConfigError(f"the file is empty; {_MINIMAL}", path=path, line=1)
    if not isinstance(data, dict):
        raise doc.error(
            (),
            f"the top level must be a mapping with a 'targets' key, got {_got(data)}; {_MINIMAL}",
        )
    doc.known_keys(data, (), _TOP_KEYS)
    version = data.get("version")
    # type() rather than isinstance(): true and 1.0 are not the version number 1.
    if version is not None and (type(version) is not int or version != 1):
        raise doc.error(
            ("version",),
            f"this version of pytest-stagegate reads version: 1, got {_got(data['version'])}",
        )

    targets = data.get("targets")
    if not targets:
        raise doc.error(("targets",), f"no targets are defined; {_MINIMAL}")
    targets = doc.mapping(targets, ("targets",), "a mapping of target name: settings")
    for name in targets:
        if not isinstance(name, str) or not name or any(c.isspace() for c in name):
            raise doc.error(
                ("targets", name),
                f"a target name must be a word such as staging, got {_got(name)}"
                + (" (put it in quotes)" if not isinstance(name, str) else ""),
            )
        _TargetReader(doc, name, targets[name], None).read()
    names = tuple(targets)

    gate = doc.mapping(data.get("gate"), ("gate",))
    doc.known_keys(gate, ("gate",), _GATE_KEYS)
    base = _parse_gate_part(doc, gate, ("gate",))
    overrides: dict[str, _GatePart] = {}
    over_values = doc.mapping(
        gate.get("targets"), ("gate", "targets"), "a mapping of target name: overrides"
    )
    for name, values in over_values.items():
        keypath: _KeyPath = ("gate", "targets", name)
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
    settings = {name: _merge_gate(doc, name, base, overrides.get(name)) for name in names}
    return Config(
        path=path,
        target_names=names,
        _raw_targets=targets,
        _gate=settings,
        _lines=lines,
    )
