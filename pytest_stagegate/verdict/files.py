"""The verdict's files: writing ``stagegate-verdict.json`` atomically, reading it back
(``load_verdict``, as ``stagegate verify`` does), validating it against the shipped JSON Schema
(``pytest_stagegate/schema/verdict-1.schema.json``), signing it, and the baseline a later run
compares with.

The signature (with a key in ``STAGEGATE_SIGNING_KEY``) is an HMAC-SHA256 of the verdict's
*canonical form*: the verdict's JSON object without its ``signature`` field, serialised with
``json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
allow_nan=False)`` and encoded as UTF-8. It is stored in the verdict as
``"signature": {"alg": "HMAC-SHA256", "value": "<64 lowercase hex digits>"}``. Any change to any
other field, or a signature made with another key, makes ``check_signature`` report a mismatch.

Takes a ``Verdict`` by its ``to_dict`` (not by import), so that ``model`` may re-export these.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import importlib.resources
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from .._atomic import atomic_open
from ..budgets import EndpointStats, FailedStats, StatsKind
from ..defaults import MAX_VERDICT_BYTES, SIGNING_KEY_ENV
from ..errors import StagegateError
from ..units import format_size
from .records import SCHEMA_VERSION

__all__ = [
    "MAX_VERDICT_BYTES",
    "SIGNATURE_ALG",
    "SIGNATURE_FIELD",
    "SIGNING_KEY_ENV",
    "SupportsToDict",
    "VerdictError",
    "baseline_stats",
    "canonical_bytes",
    "check_signature",
    "load_verdict",
    "schema",
    "sign_verdict",
    "signing_key",
    "validate_verdict",
    "write_verdict",
]

SCHEMA_RESOURCE = "schema/verdict-1.schema.json"
SIGNATURE_FIELD = "signature"
SIGNATURE_ALG = "HMAC-SHA256"
# MAX_VERDICT_BYTES (defaults): a verdict is a few hundred kB even with thousands of tests;
# anything far larger is not one, and reading it whole could exhaust the memory of the machine
# that verifies it.


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


def load_verdict(path: Path, *, max_bytes: int = MAX_VERDICT_BYTES) -> dict[str, Any]:
    """Read and validate a verdict file. Raises VerdictError whose message starts with the path
    and says what is wrong: missing, unreadable, larger than ``max_bytes``, not JSON, another
    schema version, or the JSON path of the first schema violation. Reads at most
    ``max_bytes + 1`` bytes, whatever the file is (a huge file, a pipe, a device)."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read(max_bytes + 1)
        if len(raw) > max_bytes:
            raise VerdictError(
                f"{path}: not a verdict: the file is larger than {format_size(max_bytes)}, "
                "the most a verdict file may be"
            )
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise VerdictError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise VerdictError(f"{path}: is a directory, not a verdict file") from None
    except UnicodeDecodeError:
        raise VerdictError(f"{path}: not a verdict: the file is not UTF-8 text") from None
    except OSError as exc:
        raise VerdictError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    try:
        data = json.loads(
            text,
            object_pairs_hook=_no_duplicate_keys,
            parse_constant=_no_constant,
            parse_float=_finite_float,
            parse_int=_finite_int,
        )
    except json.JSONDecodeError as exc:
        raise VerdictError(
            f"{path}: not a verdict: not valid JSON ({exc.msg} at line {exc.lineno}, "
            f"column {exc.colno})"
        ) from None
    except ValueError as exc:
        raise VerdictError(f"{path}: not a verdict: {exc}") from None
    except RecursionError:
        raise VerdictError(f"{path}: not a verdict: the JSON is nested too deeply") from None
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


def signing_key(environ: Mapping[str, str]) -> bytes | None:
    """The signing key from ``STAGEGATE_SIGNING_KEY`` (UTF-8), or None when unset or empty
    (an unset CI secret expands to the empty string)."""
    value = environ.get(SIGNING_KEY_ENV, "")
    return value.encode("utf-8", "surrogateescape") if value else None


def canonical_bytes(data: Mapping[str, Any]) -> bytes:
    """The bytes the signature covers: ``data`` without its ``signature`` field, as compact
    JSON with sorted keys, non-ASCII characters as themselves, UTF-8 (see the module
    docstring)."""
    unsigned = {key: value for key, value in data.items() if key != SIGNATURE_FIELD}
    text = json.dumps(
        _plain(unsigned),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )
    return text.encode("utf-8", "surrogatepass")


def sign_verdict(data: Mapping[str, Any], key: bytes) -> dict[str, Any]:
    """A copy of the verdict data with its ``signature`` (replacing any earlier one)."""
    if not key:
        raise ValueError("the signing key is empty")
    signed = {k: v for k, v in data.items() if k != SIGNATURE_FIELD}
    signed[SIGNATURE_FIELD] = {"alg": SIGNATURE_ALG, "value": _mac(key, data)}
    return signed


def check_signature(data: Mapping[str, Any], key: bytes) -> str | None:
    """None when ``data`` carries a signature made with ``key`` over its canonical form;
    otherwise why not, as a plain clause (never showing the key or the expected value)."""
    signature = data.get(SIGNATURE_FIELD)
    if signature is None:
        return "the verdict is not signed"
    if not isinstance(signature, Mapping) or signature.get("alg") != SIGNATURE_ALG:
        return f"the verdict's signature is not an {SIGNATURE_ALG} signature"
    value = signature.get("value")
    if not isinstance(value, str) or not hmac.compare_digest(
        value.encode("ascii", "replace"), _mac(key, data).encode("ascii")
    ):
        return (
            "the verdict's signature does not match its content: the file was changed after "
            f"it was written, or it was signed with another key than the one in "
            f"{SIGNING_KEY_ENV}"
        )
    return None


def _mac(key: bytes, data: Mapping[str, Any]) -> str:
    return hmac.new(key, canonical_bytes(data), hashlib.sha256).hexdigest()


def schema() -> dict[str, Any]:
    """The shipped JSON Schema of the verdict (a fresh copy)."""
    loaded: dict[str, Any] = json.loads(_schema_text())
    return loaded


def baseline_stats(verdict: Mapping[str, Any]) -> dict[str, EndpointStats]:
    """The per-endpoint measurements of a (loaded) verdict, keyed by request name, for use as
    the baseline of ``*_regression`` budgets. Empty if the verdict has no gate measurements.

    Built as the current run's own ``EndpointStats`` are: when the entry has ``timeouts`` (a
    0.2 verdict), its latency is over ``requests - failures + timeouts`` samples (successful
    responses and timed-out requests), and ``failed`` (the other failures, counted apart) is
    read too; without it (0.1), the latency was over every request (``latency_samples`` None).
    A latency that is null (no request succeeded or timed out) reads as no samples. A 0.2
    verdict's ``flows`` are read too (``kind`` "flow", keyed by flow name), for regression
    budgets on a flow."""
    gate = verdict.get("gate") or {}
    stats: dict[str, EndpointStats] = {}
    # flows first: a request name of the same name (which config refuses) would win
    entries: list[tuple[StatsKind, Mapping[str, Any]]] = [
        *(("flow", e) for e in gate.get("flows", ())),
        *(("name", e) for e in gate.get("endpoints", ())),
    ]
    for kind, entry in entries:
        requests, failures = int(entry["requests"]), int(entry["failures"])
        timeouts = int(entry.get("timeouts") or 0)
        stats[entry["name"]] = EndpointStats(
            name=entry["name"],
            requests=requests,
            failures=failures,
            rps=float(entry.get("rps") or 0.0),
            avg_ms=float(entry.get("avg_ms") or 0.0),
            min_ms=float(entry.get("min_ms") or 0.0),
            max_ms=float(entry.get("max_ms") or 0.0),
            percentiles=_latencies(entry.get("percentiles")),
            timeouts=timeouts,
            latency_samples=requests - failures + timeouts if "timeouts" in entry else None,
            failed=_failed_stats(entry.get("failed")),
            status_classes={str(k): int(v) for k, v in (entry.get("status_classes") or {}).items()},
            kind=kind,
        )
    return stats


def _latencies(percentiles: Mapping[str, Any] | None) -> dict[str, float]:
    return {key: float(value) for key, value in (percentiles or {}).items() if value is not None}


def _failed_stats(failed: Mapping[str, Any] | None) -> FailedStats | None:
    """A baseline entry's ``failed`` (the failures that did not time out), or None."""
    if not failed:
        return None
    return FailedStats(
        requests=int(failed["requests"]),
        avg_ms=float(failed.get("avg_ms") or 0.0),
        min_ms=float(failed.get("min_ms") or 0.0),
        max_ms=float(failed.get("max_ms") or 0.0),
        percentiles=_latencies(failed.get("percentiles")),
    )


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


def _not_finite(text: str) -> ValueError:
    shown = text if len(text) <= 12 else text[:12] + "..."
    return ValueError(f"{shown} is not a finite number")


def _finite_float(text: str) -> float:
    # 1e400 reads as an infinity, which no verdict writes and every reader would trip on
    value = float(text)
    if not math.isfinite(value):
        raise _not_finite(text)
    return value


def _finite_int(text: str) -> int:
    # an int no float can hold (10**400) is as bad as 1e400 wherever it is used as a float
    if not math.isfinite(float(text)):
        raise _not_finite(text)
    return int(text)


def _plain(value: Any) -> Any:
    """Mappings as dicts and sequences as lists, the types jsonschema recognises."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value
