"""The verdict's files: writing ``stagegate-verdict.json`` atomically, reading it back
(``load_verdict``, as ``stagegate verify`` does), validating it against the shipped JSON Schema
(``pytest_stagegate/schema/verdict-1.schema.json``), and the baseline a later run compares with.

Takes a ``Verdict`` by its ``to_dict`` (not by import), so that ``model`` may re-export these.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from .._atomic import atomic_open
from ..budgets import EndpointStats
from ..errors import StagegateError
from .records import SCHEMA_VERSION

__all__ = [
    "SupportsToDict",
    "VerdictError",
    "baseline_stats",
    "load_verdict",
    "schema",
    "validate_verdict",
    "write_verdict",
]

SCHEMA_RESOURCE = "schema/verdict-1.schema.json"


class VerdictError(StagegateError):
    """A verdict file that cannot be used: missing, not JSON, another schema, or invalid."""


class SupportsToDict(Protocol):
    """What ``write_verdict`` needs of a verdict: ``Verdict`` is one."""

    def to_dict(self) -> dict[str, Any]: ...


def write_verdict(path: Path, verdict: SupportsToDict | Mapping[str, Any]) -> None:
    """Validate and write ``verdict`` (a ``Verdict`` or its JSON data) to ``path`` atomically:
    readers see the old file or the complete new one, never a partial write. Raises
    VerdictError for an invalid verdict."""
    data = verdict if isinstance(verdict, Mapping) else verdict.to_dict()
    validate_verdict(data)
    with atomic_open(path, "w") as fh:
        # Streamed on purpose: a value json cannot encode fails half-way, inside the atomic block.
        json.dump(data, fh, indent=2, ensure_ascii=False, allow_nan=False)
        fh.write("\n")


def load_verdict(path: Path) -> dict[str, Any]:
    """Read and validate a verdict file. Raises VerdictError whose message starts with the path
    and says what is wrong: missing, unreadable, not JSON, another schema version, or the JSON
    path of the first schema violation."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise VerdictError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise VerdictError(f"{path}: is a directory, not a verdict file") from None
    except UnicodeDecodeError:
        raise VerdictError(f"{path}: not a verdict: the file is not UTF-8 text") from None
    except OSError as exc:
        raise VerdictError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise VerdictError(
            f"{path}: not a verdict: not valid JSON ({exc.msg} at line {exc.lineno}, "
            f"column {exc.colno})"
        ) from None
    except ValueError as exc:
        raise VerdictError(f"{path}: not a verdict: {exc}") from None
    try:
        validate_verdict(data)
    except VerdictError as exc:
        raise VerdictError(f"{path}: {exc}") from None
    return dict(data)


def validate_verdict(data: Mapping[str, Any]) -> None:
    """Raise VerdictError unless ``data`` is a valid schema-1 verdict."""
    if not isinstance(data, Mapping):
        raise VerdictError(f"not a verdict: expected a JSON object, got {type(data).__name__}")
    if "schema" not in data:
        raise VerdictError('not a verdict: there is no "schema" field')
    version = data["schema"]
    if type(version) is not int:
        raise VerdictError(f'not a verdict: "schema" must be an integer, got {version!r}')
    if version > SCHEMA_VERSION:
        raise VerdictError(
            f"verdict schema {version} is newer than this pytest-stagegate understands "
            f"(schema {SCHEMA_VERSION}); upgrade pytest-stagegate"
        )
    if version != SCHEMA_VERSION:
        raise VerdictError(
            f"verdict schema {version} is not supported; this pytest-stagegate reads schema "
            f"{SCHEMA_VERSION}"
        )
    from jsonschema.exceptions import best_match  # type: ignore[import-untyped,unused-ignore]

    error = best_match(_validator().iter_errors(_plain(data)))
    if error is not None:
        message = error.message
        if len(message) > 300:
            message = message[:297] + "..."
        raise VerdictError(f"not a valid verdict: at {error.json_path}: {message}")


def schema() -> dict[str, Any]:
    """The shipped JSON Schema of the verdict (a fresh copy)."""
    loaded: dict[str, Any] = json.loads(_schema_text())
    return loaded


def baseline_stats(verdict: Mapping[str, Any]) -> dict[str, EndpointStats]:
    """The per-endpoint measurements of a (loaded) verdict, keyed by request name, for use as
    the baseline of ``*_regression`` budgets. Empty if the verdict has no gate measurements."""
    gate = verdict.get("gate") or {}
    stats: dict[str, EndpointStats] = {}
    for entry in gate.get("endpoints", ()):
        stats[entry["name"]] = EndpointStats(
            name=entry["name"],
            requests=int(entry["requests"]),
            failures=int(entry["failures"]),
            rps=float(entry.get("rps") or 0.0),
            avg_ms=float(entry.get("avg_ms") or 0.0),
            min_ms=float(entry.get("min_ms") or 0.0),
            max_ms=float(entry.get("max_ms") or 0.0),
            percentiles={
                key: float(value)
                for key, value in (entry.get("percentiles") or {}).items()
                if value is not None
            },
        )
    return stats


@functools.cache
def _schema_text() -> str:
    return (
        importlib.resources.files("pytest_stagegate")
        .joinpath(SCHEMA_RESOURCE)
        .read_text(encoding="utf-8")
    )


@functools.cache
def _validator() -> Any:
    from jsonschema import Draft202012Validator  # type: ignore[import-untyped,unused-ignore]

    return Draft202012Validator(schema())


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Parsers disagree on which duplicate wins, so an edited file could read differently to
    # different tools; refuse it instead.
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"the key {key!r} appears twice in one object")
        result[key] = value
    return result


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _plain(value: Any) -> Any:
    """Mappings as dicts and sequences as lists, the types jsonschema recognises."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value
