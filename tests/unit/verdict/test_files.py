"""verdict/files.py: the schema, atomic writing, loading and validating verdict files."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator  # type: ignore[import-untyped,unused-ignore]

from pytest_stagegate import _atomic
from pytest_stagegate.verdict import (
    SCHEMA_VERSION,
    GateRecord,
    TestRecord,
    Verdict,
    VerdictError,
    load_verdict,
    schema,
    validate_verdict,
    write_verdict,
)
from tests.verdict_samples import (
    SAMPLES,
    endpoints,
    passing_checks,
    verdict,
)

LOGIN = "tests/test_shop.py::test_login"
CART = "tests/test_shop.py::test_cart"


make = verdict


def good_gate(**kwargs: Any) -> GateRecord:
    fields: dict[str, Any] = {
        "status": "completed",
        "endpoints": endpoints(),
        "checks": passing_checks(),
        "load_seconds": 30.0,
    }
    fields.update(kwargs)
    return GateRecord(**fields)


def state(verdict: Verdict) -> str:
    # A function call, so that type checkers do not narrow the state across additions.
    return verdict.state


def passed(nodeid: str = CART, **kwargs: Any) -> TestRecord:
    return TestRecord(nodeid, "passed", 0.1, **kwargs)


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
