"""verdict/files.py: the schema, atomic writing, loading and validating verdict files."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator  # type: ignore[import-untyped,unused-ignore]

from pytest_stagegate import _atomic
from pytest_stagegate.budgets import EndpointStats, FailedStats, evaluate, parse_budget
from pytest_stagegate.units import format_size
from pytest_stagegate.verdict import (
    SCHEMA_VERSION,
    TestRecord,
    VerdictError,
    baseline_stats,
    load_verdict,
    schema,
    validate_verdict,
    write_verdict,
)
from pytest_stagegate.verdict.files import (
    MAX_VERDICT_BYTES,
    SIGNATURE_ALG,
    canonical_bytes,
    check_signature,
    sign_verdict,
    signing_key,
)
from tests.verdict_samples import (
    SAMPLES,
    endpoints,
    good_gate,
)
from tests.verdict_samples import verdict as make

# -- the schema --------------------------------------------------------------------------------


def test_schema_is_a_valid_draft_2020_12_schema() -> None:
    document = schema()
    Draft202012Validator.check_schema(document)
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert document["properties"]["schema"] == {
        "description": "The version of this format.",
        "const": SCHEMA_VERSION,
    }


def test_schema_returns_a_fresh_copy() -> None:
    schema()["properties"].clear()
    assert schema()["properties"]


def edited(change: Any) -> dict[str, Any]:
    data = SAMPLES["pass"]().to_dict()
    change(data)
    return data


@pytest.mark.parametrize(
    ("change", "where"),
    [
        pytest.param(lambda d: d.update(promote=False), "$.promote", id="pass-not-promoted"),
        pytest.param(lambda d: d.update(verdict="fail"), "$.promote", id="fail-promoted"),
        pytest.param(lambda d: d.update(verdict="maybe"), "$.verdict", id="unknown-verdict"),
        pytest.param(lambda d: d.pop("target"), "$", id="missing-target"),
        pytest.param(lambda d: d["tests"].pop("records"), "$.tests", id="missing-nested"),
        pytest.param(lambda d: d.update(extra=1), "$", id="unknown-field"),
        pytest.param(lambda d: d["tests"].update(total=-1), "$.tests.total", id="negative"),
        pytest.param(
            lambda d: d.update(finished_at="2025-01-15 10:00"), "$.finished_at", id="timestamp"
        ),
        pytest.param(lambda d: d.update(reasons=[]), "$.reasons", id="no-reasons"),
        pytest.param(
            lambda d: d["gate"]["checks"][0].update(outcome="fail"),
            "$.gate",
            id="pass-with-failed-check",
        ),
        pytest.param(
            lambda d: d["gate"].update(status="aborted"),
            "$.gate.status",
            id="pass-with-aborted-gate",
        ),
        pytest.param(lambda d: d["tests"].update(failed=1), "$.tests.failed", id="pass-failed"),
        pytest.param(lambda d: d.update(interrupted=True), "$.interrupted", id="pass-interrupted"),
        pytest.param(
            lambda d: d["problems"].append({"kind": "fail", "reason": "x"}),
            "$.problems",
            id="pass-with-problem",
        ),
        pytest.param(
            lambda d: d["gate"]["endpoints"][0].update(rps="fast"),
            "$.gate.endpoints[0].rps",
            id="wrong-type",
        ),
        pytest.param(
            lambda d: d["commit"].update(source="jenkins"), "$.commit.source", id="unknown-source"
        ),
    ],
)
def test_schema_refuses_edited_verdicts(change: Any, where: str) -> None:
    data = edited(change)
    with pytest.raises(VerdictError, match=r"^not a valid verdict: at ") as info:
        validate_verdict(data)
    assert f"at {where}" in str(info.value)
    with pytest.raises(Exception):  # noqa: B017 - the independent validator agrees
        Draft202012Validator(schema()).validate(data)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (2, "verdict schema 2 is newer than this pytest-stagegate understands"),
        (0, "verdict schema 0 is not supported"),
        ("1", 'not a verdict: "schema" must be an integer'),
        (True, 'not a verdict: "schema" must be an integer'),
    ],
)
def test_validate_refuses_other_schema_versions(value: Any, message: str) -> None:
    data = SAMPLES["pass"]().to_dict()
    data["schema"] = value
    with pytest.raises(VerdictError, match=message):
        validate_verdict(data)


def test_validate_refuses_a_document_without_schema_field() -> None:
    with pytest.raises(VerdictError, match='there is no "schema" field'):
        validate_verdict({"verdict": "pass"})


def test_validate_refuses_a_non_object() -> None:
    with pytest.raises(VerdictError, match="expected a JSON object, got list"):
        validate_verdict([1, 2])  # type: ignore[arg-type]


def test_validate_accepts_mappings_and_tuples() -> None:
    from types import MappingProxyType

    data = SAMPLES["pass"]().to_dict()
    data["reasons"] = tuple(data["reasons"])
    validate_verdict(MappingProxyType(data))


# -- writing -----------------------------------------------------------------------------------


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def test_write_verdict_accepts_a_mapping_and_creates_directories(tmp_path: Path) -> None:
    path = tmp_path / "reports" / "deep" / "verdict.json"
    write_verdict(path, SAMPLES["pass"]().to_dict())
    assert load_verdict(path)["verdict"] == "pass"
    assert path.read_text().endswith("}\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_write_verdict_keeps_the_mode_of_the_file_it_replaces(tmp_path: Path) -> None:
    path = tmp_path / "verdict.json"
    path.write_text("{}")
    path.chmod(0o640)
    write_verdict(path, SAMPLES["pass"]())
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_failing_half_way_leaves_the_old_file_intact_and_no_temp_file(tmp_path: Path) -> None:
    path = tmp_path / "stagegate-verdict.json"
    write_verdict(path, SAMPLES["pass"]())
    old = path.read_bytes()

    data = SAMPLES["fail"]().to_dict()
    # Valid by the schema (the profile is free-form), but json cannot encode it: json.dump has
    # already streamed everything before "gate" into the temporary file when it fails.
    data["gate"]["profile"]["oops"] = object()
    written: list[int] = []
    real_fdopen = os.fdopen

    def spying_fdopen(fd: int, *args: Any, **kwargs: Any) -> Any:
        handle = real_fdopen(fd, *args, **kwargs)
        real_write = handle.write

        def write(chunk: str) -> int:
            written.append(len(chunk))
            return int(real_write(chunk))

        handle.write = write
        return handle

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(os, "fdopen", spying_fdopen)
        with pytest.raises(TypeError, match="not JSON serializable"):
            write_verdict(path, data)

    assert sum(written) > 100, "the failure should happen after part of the file was written"
    assert path.read_bytes() == old
    assert leftovers(tmp_path) == []


def test_an_invalid_verdict_is_not_written(tmp_path: Path) -> None:
    path = tmp_path / "stagegate-verdict.json"
    data = SAMPLES["pass"]().to_dict()
    data["promote"] = False
    with pytest.raises(VerdictError, match=r"at \$\.promote"):
        write_verdict(path, data)
    assert not path.exists()
    assert leftovers(tmp_path) == []


def test_atomic_write_failure_inside_the_block(tmp_path: Path) -> None:
    path = tmp_path / "out.txt"
    _atomic.atomic_write_text(path, "old\n")
    with pytest.raises(RuntimeError), _atomic.atomic_open(path) as fh:
        fh.write("new, but only half")
        raise RuntimeError("disk full")
    assert path.read_text() == "old\n"
    assert leftovers(tmp_path) == []


def test_atomic_write_bytes_and_replace_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "out.bin"
    _atomic.atomic_write_bytes(path, b"one")
    assert path.read_bytes() == b"one"

    def broken_replace(src: str, dst: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="No space left"):
        _atomic.atomic_write_bytes(path, b"two")
    assert path.read_bytes() == b"one"
    assert leftovers(tmp_path) == []


def test_text_is_written_with_unix_newlines_and_utf8(tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    _atomic.atomic_write_text(path, "größe\nzwei\n")
    assert path.read_bytes() == "größe\nzwei\n".encode()


# -- loading -----------------------------------------------------------------------------------


def test_load_verdict_missing_file(tmp_path: Path) -> None:
    with pytest.raises(VerdictError, match=r"nope\.json: no such file$"):
        load_verdict(tmp_path / "nope.json")


def test_load_verdict_directory(tmp_path: Path) -> None:
    with pytest.raises(VerdictError, match="is a directory"):
        load_verdict(tmp_path)


def test_load_verdict_not_json(tmp_path: Path) -> None:
    path = tmp_path / "v.json"
    path.write_text('{"schema": 1,\n "verdict": pass}')
    with pytest.raises(
        VerdictError, match=r"not valid JSON \(Expecting value at line 2, column 13\)"
    ):
        load_verdict(path)


def test_load_verdict_truncated(tmp_path: Path) -> None:
    path = tmp_path / "v.json"
    write_verdict(path, SAMPLES["pass"]())
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(VerdictError, match="not valid JSON"):
        load_verdict(path)


def test_load_verdict_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "v.json"
    path.write_bytes(b"\xff\xfe{}")
    with pytest.raises(VerdictError, match="not UTF-8 text"):
        load_verdict(path)


def test_load_verdict_refuses_nan(tmp_path: Path) -> None:
    path = tmp_path / "v.json"
    path.write_text('{"schema": 1, "duration_s": NaN}')
    with pytest.raises(VerdictError, match="NaN is not a JSON number"):
        load_verdict(path)


def test_load_verdict_refuses_duplicate_keys(tmp_path: Path) -> None:
    path = tmp_path / "v.json"
    text = json.dumps(SAMPLES["fail"]().to_dict())
    path.write_text(text[:-1] + ', "verdict": "pass"}')
    with pytest.raises(VerdictError, match="the key 'verdict' appears twice"):
        load_verdict(path)


def test_load_verdict_wrong_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "v.json"
    data = SAMPLES["pass"]().to_dict()
    data["schema"] = 2
    path.write_text(json.dumps(data))
    with pytest.raises(VerdictError, match=r"v\.json: verdict schema 2 is newer"):
        load_verdict(path)


def test_load_verdict_schema_violation_names_path_and_json_path(tmp_path: Path) -> None:
    path = tmp_path / "v.json"
    data = SAMPLES["pass"]().to_dict()
    data["tests"]["records"][0]["outcome"] = "great"
    path.write_text(json.dumps(data))
    with pytest.raises(VerdictError) as info:
        load_verdict(path)
    message = str(info.value)
    assert message.startswith(f"{path}: not a valid verdict: at $.tests.records[0].outcome: ")
    assert "'great' is not one of" in message


def test_lone_surrogates_do_not_break_writing(tmp_path: Path) -> None:
    path = tmp_path / "v.json"
    record = TestRecord("t.py::a", "failed", message="bad byte \udcff in output")
    write_verdict(path, make([record]))
    assert load_verdict(path)["tests"]["failed_tests"][0]["message"] == "bad byte \ufffd in output"


# -- the signature -----------------------------------------------------------------------------

KEY = b"k3y-for-tests-\xc3\xa9"


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The path of every scalar in a JSON document."""
    if isinstance(value, dict):
        return [p for key, item in value.items() for p in _leaves(item, (*path, key))]
    if isinstance(value, list):
        return [p for i, item in enumerate(value) for p in _leaves(item, (*path, i))]
    return [path]


def _tampered(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value + 1
    if isinstance(value, str):
        return value + "x"
    return "x"  # None


def test_canonical_bytes_are_sorted_compact_utf8_json_without_the_signature() -> None:
    data = {"b": 1, "a": "é", "signature": {"alg": SIGNATURE_ALG, "value": "0" * 64}}
    assert canonical_bytes(data) == '{"a":"é","b":1}'.encode()


def test_sign_verdict_is_hmac_sha256_of_the_canonical_form_and_schema_valid(
    tmp_path: Path,
) -> None:
    data = SAMPLES["fail"]().to_dict()
    signed = sign_verdict(data, KEY)
    assert "signature" not in data, "the input is not changed"
    expected = hmac.new(
        KEY,
        json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(),
        hashlib.sha256,
    ).hexdigest()
    assert signed["signature"] == {"alg": "HMAC-SHA256", "value": expected}
    assert {k: v for k, v in signed.items() if k != "signature"} == data
    path = tmp_path / "v.json"
    write_verdict(path, signed)
    loaded = load_verdict(path)
    assert loaded["signature"] == signed["signature"]
    assert check_signature(loaded, KEY) is None
    assert sign_verdict(signed, KEY) == signed, "re-signing replaces the signature"


def test_a_signature_made_with_another_key_does_not_match() -> None:
    signed = sign_verdict(SAMPLES["pass"]().to_dict(), KEY)
    problem = check_signature(signed, b"Zq9-other-key")
    assert problem is not None and "does not match" in problem
    assert "Zq9-other-key" not in problem and signed["signature"]["value"] not in problem


def test_check_signature_of_an_unsigned_or_malformed_signature() -> None:
    data = SAMPLES["pass"]().to_dict()
    assert check_signature(data, KEY) == "the verdict is not signed"
    data["signature"] = {"alg": "HMAC-MD5", "value": "0" * 64}
    assert "not an HMAC-SHA256 signature" in str(check_signature(data, KEY))
    data["signature"] = {"alg": "HMAC-SHA256", "value": "é" * 64}
    assert "does not match" in str(check_signature(data, KEY))


def test_sign_verdict_refuses_an_empty_key() -> None:
    with pytest.raises(ValueError, match="empty"):
        sign_verdict(SAMPLES["pass"]().to_dict(), b"")


@pytest.mark.parametrize("sample", ["pass", "fail"])
def test_tampering_with_any_field_breaks_the_signature(sample: str) -> None:
    signed = sign_verdict(SAMPLES[sample]().to_dict(), KEY)
    paths = [p for p in _leaves(signed) if p[0] != "signature"]
    assert len(paths) > 50
    for path in paths:
        copy = json.loads(json.dumps(signed))
        node = copy
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = _tampered(node[path[-1]])
        assert check_signature(copy, KEY) is not None, f"changing {path} kept the signature"
    # and adding or removing a field
    added = {**signed, "extra": 1}
    assert check_signature(added, KEY) is not None
    for key in [k for k in signed if k != "signature"]:
        removed = {k: v for k, v in signed.items() if k != key}
        assert check_signature(removed, KEY) is not None, key


def test_signing_key_from_the_environment() -> None:
    assert signing_key({}) is None
    assert signing_key({"STAGEGATE_SIGNING_KEY": ""}) is None  # an unset CI secret
    assert signing_key({"STAGEGATE_SIGNING_KEY": "sécret"}) == "sécret".encode()


# -- bounded reading ---------------------------------------------------------------------------


def test_load_verdict_refuses_a_file_larger_than_the_limit_reading_only_the_limit(
    tmp_path: Path,
) -> None:
    path = tmp_path / "v.json"
    write_verdict(path, SAMPLES["pass"]())
    size = path.stat().st_size
    assert load_verdict(path, max_bytes=size)["verdict"] == "pass"
    with pytest.raises(VerdictError) as info:
        load_verdict(path, max_bytes=size - 1)
    assert str(info.value) == (
        f"{path}: not a verdict: the file is larger than {format_size(size - 1)}, "
        "the most a verdict file may be"
    )


def test_load_verdict_of_an_endless_stream_is_bounded() -> None:
    # /dev/zero never ends: reading it whole would exhaust the memory.
    zero = Path("/dev/zero")
    if not zero.exists():
        pytest.skip("no /dev/zero")
    with pytest.raises(VerdictError, match="larger than 16MB"):
        load_verdict(zero)
    assert MAX_VERDICT_BYTES == 16 * 1024 * 1024


def test_load_verdict_of_deeply_nested_json(tmp_path: Path) -> None:
    path = tmp_path / "v.json"
    path.write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(VerdictError, match="nested too deeply"):
        load_verdict(path)


# --- the baseline ----------------------------------------------------------------------------
def baseline_of(*stats: EndpointStats) -> dict[str, EndpointStats]:
    return baseline_stats(make(gate=good_gate(endpoints=list(stats))).to_dict())


def test_a_baseline_reads_timeouts_and_the_failures_counted_apart(tmp_path: Path) -> None:
    # one of the 2 failures timed out (in the latency), the other is counted apart
    path = tmp_path / "baseline.json"
    write_verdict(path, make(gate=good_gate(endpoints=endpoints(failures=True))))
    stats = baseline_stats(load_verdict(path))
    total = next(e for e in endpoints(failures=True) if e.name == "total")
    assert stats["total"].timeouts == 1
    assert stats["total"].latency_samples == 2400 - 2 + 1  # requests - failures + timeouts
    assert stats["total"].failed == FailedStats(1, 0.75, 0.75, 0.75, {"p50": 0.75, "p95": 0.75})
    assert stats["total"] == dataclasses.replace(total, latency_samples=2399)
    # a name without failures: every request timed, nothing apart
    products = stats["GET /api/products"]
    assert (products.timeouts, products.latency_samples, products.failed) == (0, 600, None)


def test_a_baseline_whose_requests_mostly_failed_has_few_latency_samples() -> None:
    # 950 of 1,000 failed fast: its latency is over 50 responses, too few for a p95 baseline
    failing = EndpointStats(
        "GET /x", 1000, 950, 5.0, 40.0, 1.0, 90.0, {"p95": 80.0}, timeouts=0,
        latency_samples=50, failed=FailedStats(950, 0.5, 0.1, 2.0, {"p95": 1.0}),
    )  # fmt: skip
    baseline = baseline_of(failing)
    assert baseline["GET /x"].timed == 50
    current = {
        "GET /x": dataclasses.replace(failing, failures=0, failed=None, latency_samples=1000)
    }
    budget = parse_budget("GET /x", "p95_regression", "10%")
    (check,) = evaluate([budget], current, min_samples=100, baseline=baseline)
    assert check.outcome == "inconclusive"
    assert "the baseline has only 50 requests and at least 100 are needed" in check.message


def test_a_baseline_name_that_never_answered_has_no_latency_samples() -> None:
    # every request failed, none timed out: null latency in the verdict, 0 samples back
    dead = EndpointStats("GET /dead", 40, 40, 0.0, 0.0, 0.0, 0.0, {"p95": 0.0}, latency_samples=0)
    stats = baseline_of(dead)["GET /dead"]
    assert (stats.latency_samples, stats.timed, stats.percentiles) == (0, 0, {})


def test_a_0_1_baseline_without_timeouts_timed_every_request() -> None:
    entry = make(gate=good_gate()).to_dict()["gate"]["endpoints"][0]
    for key in ("timeouts", "failed"):
        entry.pop(key)
    stats = baseline_stats({"gate": {"endpoints": [entry]}})[entry["name"]]
    assert (stats.timeouts, stats.latency_samples, stats.failed) == (0, None, None)
    assert stats.timed == stats.requests


def test_the_verdict_package_exports_signing_and_reading_limits() -> None:
    from pytest_stagegate import verdict as package
    from pytest_stagegate.verdict import files

    for name in package.__all__:
        assert getattr(package, name) is not None, name
    for name in (
        "MAX_VERDICT_BYTES",
        "SIGNATURE_ALG",
        "SIGNATURE_FIELD",
        "canonical_bytes",
        "check_signature",
        "sign_verdict",
        "signing_key",
    ):
        assert name in package.__all__
        assert getattr(package, name) is getattr(files, name)
