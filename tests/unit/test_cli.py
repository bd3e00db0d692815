"""The ``stagegate`` command through ``main()``: verify (every refusal and the accept case),
report, compare, schema, usage errors. tests/e2e/test_cli.py runs the real command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from pytest_stagegate import cli, defaults
from pytest_stagegate.cli import main
from pytest_stagegate.verdict import (
    CommitInfo,
    GateRecord,
    TestRecord,
    Verdict,
    schema,
    write_verdict,
)
from pytest_stagegate.verdict.files import sign_verdict
from tests.verdict_samples import SAMPLES, SHA, check_golden, passing_checks

REPO = Path(__file__).resolve().parents[2]


def fresh(
    state: str = "pass",
    *,
    finished: datetime | None = None,
    sha: str | None = SHA,
    target: str = "staging",
    gate: bool = True,
) -> Verdict:
    """A verdict that finished an hour ago (or at ``finished``), with a passing load gate
    unless ``gate`` is false."""
    finished = finished or datetime.now(timezone.utc) - timedelta(hours=1)
    outcome = {"pass": "passed", "fail": "failed"}[state]
    return Verdict(
        target_name=target,
        base_url="https://shop-staging.example.com",
        commit=CommitInfo(sha=sha, ref="main", run_url=None, source="env" if sha else "unknown"),
        started_at=finished - timedelta(minutes=2),
        finished_at=finished,
        tests=[TestRecord("tests/test_shop.py::test_login", outcome, 0.1, critical=True)],  # type: ignore[arg-type]
        gate=GateRecord(status="completed", checks=passing_checks()) if gate else None,
        gate_requested=gate,
        plugin_version="0.1.0",
    )


@pytest.fixture
def verdict_file(tmp_path: Path) -> Path:
    path = tmp_path / "stagegate-verdict.json"
    write_verdict(path, fresh())
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def verify(capsys: pytest.CaptureFixture[str], path: Path, *extra: str) -> tuple[int, str]:
    code, out, err = run(capsys, "verify", str(path), "--target", "staging", *extra)
    assert err == ""
    assert out.count("\n") == 1, "verify prints exactly one line"
    return code, out.strip()


# -- verify: accept ----------------------------------------------------------------------------


def test_verify_refuses_smoke_tests_alone_unless_allowed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "v.json"
    write_verdict(path, fresh(gate=False))
    code, line = verify(capsys, path)
    assert code == 1
    assert "the load gate did not run" in line and "--allow-no-gate" in line
    code, line = verify(capsys, path, "--allow-no-gate")
    assert code == 0, line


def test_verify_accepts_a_passing_verdict(
    verdict_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, line = verify(capsys, verdict_file, "--commit", SHA, "--max-age", "24h")
    assert code == 0
    assert line == (
        f"OK: {verdict_file}: verdict pass for target 'staging' at commit {SHA[:12]}, "
        "finished 1h 0m ago"
    )


def test_verify_without_commit_and_with_default_max_age(
    verdict_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert verify(capsys, verdict_file)[0] == 0


@pytest.mark.parametrize(
    "commit",
    [SHA.upper(), SHA[:7], SHA[:12].upper()],
    ids=["uppercase", "prefix-7", "prefix-12-uppercase"],
)
def test_verify_accepts_commit_case_insensitively_and_by_prefix(
    verdict_file: Path, commit: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert verify(capsys, verdict_file, "--commit", commit)[0] == 0


def test_verify_accepts_a_full_sha_against_an_abbreviated_recorded_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "v.json"
    write_verdict(path, fresh(sha=SHA[:8].upper()))
    assert verify(capsys, path, "--commit", SHA)[0] == 0


def test_verify_tolerates_small_clock_skew(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "v.json"
    write_verdict(path, fresh(finished=datetime.now(timezone.utc) + timedelta(minutes=4)))
    assert verify(capsys, path)[0] == 0


@pytest.mark.parametrize("age", ["7d", "none", "90m", "7200"])
def test_verify_max_age_forms(
    verdict_file: Path, age: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert verify(capsys, verdict_file, "--max-age", age)[0] == 0


def test_verify_max_age_none_accepts_an_ancient_verdict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "v.json"
    write_verdict(path, SAMPLES["pass"]())
    assert verify(capsys, path, "--max-age", "none", "--commit", SHA)[0] == 0


# -- verify: every refusal ---------------------------------------------------------------------


def test_verify_refuses_another_target(
    verdict_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "verify", str(verdict_file), "--target", "production")
    assert code == 1
    assert out.strip() == "REFUSED: the verdict is for target 'staging', not 'production'"


def test_verify_refuses_another_commit(
    verdict_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = "0123456789abcdef0123456789abcdef01234567"
    code, line = verify(capsys, verdict_file, "--commit", other)
    assert code == 1
    assert line == f"REFUSED: the verdict is for commit {SHA}, not {other}"


def test_verify_refuses_a_commit_that_only_shares_a_short_prefix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "v.json"
    write_verdict(path, fresh(sha=SHA[:6]))  # too short to be a trustworthy abbreviation
    code, line = verify(capsys, path, "--commit", SHA)
    assert code == 1
    assert line.startswith("REFUSED: the verdict is for commit 3f2a9c, not")


@pytest.mark.parametrize("commit", ["main", SHA[:6], "0" + SHA[:12]])
def test_verify_refuses_a_ref_name_a_short_or_a_shifted_commit(
    verdict_file: Path, commit: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, line = verify(capsys, verdict_file, "--commit", commit)
    assert code == 1
    assert line == f"REFUSED: the verdict is for commit {SHA}, not {commit}"


def test_verify_matches_non_hex_commit_ids_exactly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "v.json"
    write_verdict(path, fresh(sha="r12345"))  # e.g. STAGEGATE_COMMIT=r12345 from an SVN build
    assert verify(capsys, path, "--commit", "R12345")[0] == 0
    assert verify(capsys, path, "--commit", "r1234")[0] == 1


def test_verify_refuses_a_verdict_without_commit_when_one_is_required(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "v.json"
    write_verdict(path, fresh(sha=None))
    code, line = verify(capsys, path, "--commit", SHA)
    assert code == 1
    assert line == (
        f"REFUSED: the verdict records no commit (source unknown), so it cannot be matched to {SHA}"
    )


def test_verify_refuses_an_old_verdict(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "v.json"
    finished = datetime.now(timezone.utc) - timedelta(hours=25, minutes=3)
    write_verdict(path, fresh(finished=finished))
    code, line = verify(capsys, path, "--max-age", "24h")
    assert code == 1
    assert line.startswith("REFUSED: the verdict finished 1d 1h ago (")
    assert line.endswith("), longer ago than --max-age 24h")


def test_verify_default_max_age_is_24h(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "v.json"
    write_verdict(path, fresh(finished=datetime.now(timezone.utc) - timedelta(days=2)))
    code, line = verify(capsys, path)
    assert code == 1
    assert "longer ago than --max-age 24h" in line


def test_verify_refuses_a_verdict_from_the_future(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "v.json"
    write_verdict(path, fresh(finished=datetime.now(timezone.utc) + timedelta(minutes=30)))
    code, line = verify(capsys, path, "--max-age", "none")
    assert code == 1
    assert "in the future; a clock is wrong or the file was edited" in line
    assert "29m" in line or "30m" in line


def test_verify_refuses_a_failing_verdict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "v.json"
    write_verdict(path, fresh("fail"))
    code, line = verify(capsys, path)
    assert code == 1
    assert line == (
        "REFUSED: the verdict is fail, not pass: Critical test tests/test_shop.py::test_login "
        "failed"
    )


@pytest.mark.parametrize("gate", ["not_run", "error", None])
def test_verify_offers_allow_no_gate_only_where_it_could_help(
    tmp_path: Path, gate: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    """A failed critical test kept the gate from running (or it errored, or it was never
    requested): --allow-no-gate cannot turn a fail into an accepted verdict, so it is not
    offered, and a reason quoted mid-line does not keep its full stop (no ".;")."""
    path = tmp_path / "v.json"
    verdict = fresh("fail", gate=gate is not None)
    if gate is not None:
        verdict.gate = GateRecord(status=gate, reason="the critical test failed (set it to run)")  # type: ignore[arg-type]
    write_verdict(path, verdict)
    code, line = verify(capsys, path)
    assert code == 1
    assert "--allow-no-gate" not in line
    assert ".;" not in line and not line.endswith(".")
    assert line.startswith("REFUSED: the verdict is fail, not pass: Critical test ")
    assert ("did not run for this verdict (pytest ... --gate)" in line) == (gate is None)


@pytest.mark.parametrize("state", ["error", "inconclusive"])
def test_verify_refuses_error_and_inconclusive(
    tmp_path: Path, state: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "v.json"
    data = SAMPLES[state]().to_dict()
    data["finished_at"] = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    write_verdict(path, data)
    code, out, _ = run(capsys, "verify", str(path), "--target", data["target"]["name"])
    assert code == 1
    assert out.startswith(f"REFUSED: the verdict is {state}, not pass: ")


def test_verify_lists_every_refusal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "v.json"
    write_verdict(
        path, fresh("fail", target="qa", finished=datetime(2024, 1, 1, tzinfo=timezone.utc))
    )
    code, line = verify(capsys, path, "--commit", "abcdef0")
    assert code == 1
    assert line.count("; ") == 3
    for part in ("is fail, not pass", "target 'qa', not 'staging'", "not abcdef0", "--max-age"):
        assert part in line


def test_verify_refuses_an_edited_verdict(
    verdict_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = json.loads(verdict_file.read_text())
    data["verdict"] = "pass"
    data["tests"]["failed"] = 3  # someone "fixed" a failing run by hand, but not consistently
    verdict_file.write_text(json.dumps(data))
    code, line = verify(capsys, verdict_file)
    assert code == 1
    assert line == (
        f"REFUSED: {verdict_file}: not a valid verdict: at $.tests.failed: 0 was expected"
    )


def test_verify_refuses_promote_edited_to_true(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "v.json"
    write_verdict(path, fresh("fail"))
    data = json.loads(path.read_text())
    data["promote"] = True
    path.write_text(json.dumps(data))
    code, line = verify(capsys, path)
    assert code == 1
    assert line.endswith("not a valid verdict: at $.promote: False was expected")


def test_verify_refuses_a_file_that_is_not_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "v.json"
    path.write_text("<html>502 Bad Gateway</html>")
    code, line = verify(capsys, path)
    assert code == 1
    assert line == (
        f"REFUSED: {path}: not a verdict: not valid JSON (Expecting value at line 1, column 1)"
    )


def test_verify_refuses_a_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, line = verify(capsys, tmp_path / "missing.json")
    assert code == 1
    assert line == f"REFUSED: {tmp_path / 'missing.json'}: no such file"


def test_verify_refuses_another_schema_version(
    verdict_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = json.loads(verdict_file.read_text())
    data["schema"] = 2
    verdict_file.write_text(json.dumps(data))
    code, line = verify(capsys, verdict_file)
    assert code == 1
    assert line == (
        f"REFUSED: {verdict_file}: verdict schema 2 is newer than this pytest-stagegate "
        "understands (schema 1); upgrade pytest-stagegate"
    )


@pytest.mark.skipif(
    sys.platform == "win32" or os.geteuid() == 0, reason="root reads unreadable files"
)
def test_verify_refuses_an_unreadable_file(
    verdict_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    verdict_file.chmod(0)
    code, line = verify(capsys, verdict_file)
    assert code == 1
    assert line == f"REFUSED: {verdict_file}: cannot read it: Permission denied"


# -- usage errors: exit 4, one message, no traceback ---------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["verify", "v.json", "--target", "staging", "--max-age", "soon"],
            "argument --max-age: expected a duration such as 250ms, 1.5s, 2m or 1h (or 7d, or "
            "none for no limit), got 'soon'",
        ),
        (
            ["verify", "v.json", "--target", "staging", "--max-age", "-1h"],
            "argument --max-age: expected",
        ),
        (
            ["verify", "v.json", "--target", "staging", "--commit", ""],
            "argument --commit: is empty; pass the commit SHA the verdict must be for",
        ),
        (
            ["verify", "v.json", "--target", "staging", "--commit", "abc def"],
            "argument --commit: expected one commit id without spaces, got 'abc def'",
        ),
        (["verify", "v.json"], "the following arguments are required: --target"),
        ([], "the following arguments are required: COMMAND"),
        (["promote"], "argument COMMAND: invalid choice: 'promote'"),
        (["report", "v.json", "--format", "html"], "argument --format: invalid choice: 'html'"),
    ],
)
def test_usage_errors_exit_4(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 4
    assert out == ""
    assert message in err
    assert err.startswith("usage: stagegate")
    assert "Traceback" not in err


def test_help_and_version_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--help")
    assert code == 0 and "verify" in out and "report" in out
    code, out, _ = run(capsys, "verify", "--help")
    assert code == 0 and "--max-age" in out
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.startswith("stagegate ")


# -- report, compare, schema -------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["text", "markdown"])
@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_report_golden(
    name: str, fmt: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "v.json"
    write_verdict(path, SAMPLES[name]())
    code, out, err = run(capsys, "report", str(path), "--format", fmt)
    assert (code, err) == (0, "")
    check_golden(f"report-{name}.{'md' if fmt == 'markdown' else 'txt'}", out)


def test_report_defaults_to_text(verdict_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "report", str(verdict_file))
    assert code == 0
    assert out.startswith("Stagegate verdict for staging: PASS, may be promoted\n=====")


def test_report_without_a_path_reads_the_verdict_in_the_current_directory(
    verdict_file: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.chdir(empty)
    code, out, err = run(capsys, "report")
    assert (code, out) == (4, "")
    assert err == (
        f"stagegate: error: no stagegate-verdict.json in the current directory ({empty}): run "
        "pytest --gate here first, or give the verdict's path: stagegate report PATH\n"
    )
    monkeypatch.chdir(verdict_file.parent)
    (verdict_file.parent / "stagegate-verdict.json").write_bytes(verdict_file.read_bytes())
    code, out, err = run(capsys, "report")
    assert (code, err) == (0, "")
    assert out.startswith("Stagegate verdict for staging: PASS, may be promoted\n=====")


def test_report_markdown_escapes_pipes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "v.json"
    verdict = fresh("fail")
    verdict.tests = (TestRecord("t.py::test_x[a|b]", "failed", message="left | right"),)
    write_verdict(path, verdict)
    code, out, _ = run(capsys, "report", str(path), "--format", "markdown")
    assert code == 0
    assert "| `t.py::test_x[a\\|b]` | failed |   | left \\| right |" in out


@pytest.mark.parametrize("number", ["1e400", "1" + "0" * 400])
def test_a_verdict_with_a_number_no_float_can_hold_is_refused(
    number: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An edited verdict whose timeline p95 overflows a float (1e400 reads as inf) is not a
    verdict: exit 4 naming it, never a crash in the chart nor a p95 read as 0 ms."""
    path = tmp_path / "v.json"
    write_verdict(path, SAMPLES["open"]())
    data = json.loads(path.read_text())
    data["gate"]["load"]["timeline"][1]["p95_ms"] = 12345.5
    path.write_text(json.dumps(data).replace("12345.5", number, 1))
    code, out, err = run(capsys, "report", str(path))
    assert (code, out) == (4, "")
    assert err == (
        f"stagegate: error: {path}: not a verdict: {number[:12]}... is not a finite number\n"
        if len(number) > 12
        else f"stagegate: error: {path}: not a verdict: {number} is not a finite number\n"
    )


@pytest.mark.parametrize("content", [None, "not json", '{"schema": 1}'])
def test_report_of_unreadable_input_exits_4(
    tmp_path: Path, content: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "v.json"
    if content is not None:
        path.write_text(content)
    code, out, err = run(capsys, "report", str(path))
    assert code == 4
    assert out == ""
    assert err.startswith(f"stagegate: error: {path}: ")
    assert err.count("\n") == 1


@pytest.mark.parametrize("fmt", ["text", "markdown"])
def test_compare_golden(fmt: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    write_verdict(old, SAMPLES["pass"]())
    write_verdict(new, SAMPLES["fail"]())
    code, out, err = run(capsys, "compare", str(old), str(new), "--format", fmt)
    assert (code, err) == (0, "")
    check_golden(f"compare.{'md' if fmt == 'markdown' else 'txt'}", out)
    if fmt == "text":
        assert "GET /api/products       p95           180.0 ms    412.0 ms  +128.9%" in out


def test_compare_of_a_missing_file_exits_4(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "missing.json"
    code, _, err = run(capsys, "compare", str(path), str(path))
    assert code == 4 and "no such file" in err


def test_schema_command_prints_the_shipped_schema(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "schema")
    assert code == 0
    assert json.loads(out) == schema()
    shipped = REPO / "pytest_stagegate" / "schema" / "verdict-1.schema.json"
    assert json.loads(shipped.read_text()) == schema()


def test_unexpected_os_error_is_one_line(
    verdict_file: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any) -> str:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(cli, "render", broken)
    code, _, err = run(capsys, "report", str(verdict_file))
    assert code == 4
    assert err == "stagegate: error: [Errno 5] Input/output error\n"


# -- verify: signatures, where it was measured, size (issue 10) -------------------------------

SIGNING_KEY = "Kx7-signing-key-never-shown-4f1e"


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> bytes:
    monkeypatch.setenv("STAGEGATE_SIGNING_KEY", SIGNING_KEY)
    return SIGNING_KEY.encode()


def signed_file(path: Path, data: dict[str, Any], key: bytes) -> Path:
    write_verdict(path, sign_verdict(data, key))
    return path


def forge(data: dict[str, Any]) -> dict[str, Any]:
    """The six consistent edits that turn a failing verdict into a schema-valid passing one."""
    forged = json.loads(json.dumps(data))
    forged["verdict"] = "pass"  # 1
    forged["promote"] = True  # 2
    forged["reasons"] = ["All 1 test passed and all 2 budgets held on staging."]  # 3
    forged["tests"]["failed"] = 0  # 4
    forged["tests"]["passed"] = forged["tests"]["total"]
    forged["tests"]["failed_tests"] = []  # 5
    for record in forged["tests"]["records"]:  # 6
        record["outcome"], record["message"] = "passed", ""
    return forged


def write_json(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(json.dumps(data, indent=2))
    return path


def test_the_six_edits_make_a_schema_valid_pass_that_only_the_signature_catches(
    tmp_path: Path, key: bytes, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    signed = sign_verdict(fresh("fail").to_dict(), key)
    path = write_json(tmp_path / "v.json", forge(signed))
    code, line = verify(capsys, path)
    assert code == 1
    assert line == (
        "REFUSED: the verdict's signature does not match its content: the file was changed "
        "after it was written, or it was signed with another key than the one in "
        "STAGEGATE_SIGNING_KEY"
    )
    # The forgery is otherwise a perfect pass: only the key can tell.
    monkeypatch.delenv("STAGEGATE_SIGNING_KEY")
    assert verify(capsys, path)[0] == 0
    # ... unless a signature is required, as the CI recipes do.
    code, line = verify(capsys, path, "--require-signature")
    assert code == 1
    assert line == (
        "REFUSED: --require-signature needs the signing key in $STAGEGATE_SIGNING_KEY, which "
        "is not set (or empty), so the verdict's signature cannot be checked"
    )


def test_a_forged_verdict_with_its_signature_removed_is_refused_when_required(
    tmp_path: Path, key: bytes, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    forged = forge(fresh("fail").to_dict())
    path = write_json(tmp_path / "v.json", forged)
    # With the key set, a removed signature cannot be told from none: refused, flag or not.
    for flags in (["--require-signature"], []):
        code, line = verify(capsys, path, *flags)
        assert code == 1
        assert line.startswith("REFUSED: the verdict is not signed (was STAGEGATE_SIGNING_KEY set")
        assert line.endswith("an unsigned verdict is refused: a removed signature looks the same")
    # Without a key an unsigned verdict is accepted (the 0.1 behaviour) unless required.
    monkeypatch.delenv("STAGEGATE_SIGNING_KEY")
    assert verify(capsys, path)[0] == 0
    assert verify(capsys, path, "--require-signature")[0] == 1


def test_verify_accepts_a_correctly_signed_verdict_and_says_so(
    tmp_path: Path, key: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    path = signed_file(tmp_path / "v.json", fresh().to_dict(), key)
    code, line = verify(capsys, path, "--require-signature", "--commit", SHA)
    assert code == 0
    assert line.endswith("finished 1h 0m ago; signature verified")


def test_verify_refuses_a_verdict_signed_with_another_key(
    tmp_path: Path, key: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    path = signed_file(tmp_path / "v.json", fresh().to_dict(), b"a key of another project")
    for extra in ((), ("--require-signature",)):
        code, line = verify(capsys, path, *extra)
        assert code == 1
        assert "signature does not match its content" in line


def test_a_revived_verdict_is_refused(
    tmp_path: Path, key: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    old = fresh(finished=datetime.now(timezone.utc) - timedelta(days=30)).to_dict()
    path = signed_file(tmp_path / "v.json", old, key)
    assert "longer ago than --max-age 24h" in verify(capsys, path)[1]
    data = json.loads(path.read_text())
    recent = datetime.now(timezone.utc) - timedelta(minutes=5)
    data["finished_at"] = recent.strftime("%Y-%m-%dT%H:%M:%SZ")
    data["started_at"] = (recent - timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    write_json(path, data)
    code, line = verify(capsys, path, "--require-signature")
    assert code == 1
    assert line.startswith("REFUSED: the verdict's signature does not match its content")


def test_a_relabelled_verdict_is_refused(
    tmp_path: Path, key: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    path = signed_file(tmp_path / "v.json", fresh(target="qa").to_dict(), key)
    data = json.loads(path.read_text())
    data["target"]["name"] = "staging"
    data["reasons"] = [r.replace("on qa", "on staging") for r in data["reasons"]]
    write_json(path, data)
    code, line = verify(capsys, path, "--require-signature")
    assert code == 1
    assert line.startswith("REFUSED: the verdict's signature does not match its content")


def test_the_signing_key_is_never_printed(
    tmp_path: Path, key: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    good = signed_file(tmp_path / "good.json", fresh().to_dict(), key)
    bad = write_json(tmp_path / "bad.json", forge(sign_verdict(fresh("fail").to_dict(), key)))
    outputs = []
    for argv in (
        ("verify", str(good), "--target", "staging", "--require-signature"),
        ("verify", str(bad), "--target", "staging", "--require-signature"),
        ("verify", str(bad), "--target", "prod", "--base-url", "https://x", "--max-age", "1s"),
        ("report", str(good)),
        ("verify", str(good), "--target"),
        ("verify", "--help"),
    ):
        _code, out, err = run(capsys, *argv)
        outputs.append(out + err)
    text = "\n".join(outputs)
    assert "signature does not match" in text and "signature verified" in text
    for part in (SIGNING_KEY, SIGNING_KEY[:8], SIGNING_KEY[-8:], key.hex()[:16]):
        assert part not in text


def replaced(target: str = "staging") -> Verdict:
    verdict = fresh(target=target)
    return Verdict(
        target_name=verdict.target_name,
        base_url="http://127.0.0.1:8000",
        configured_base_url="https://user:pw@shop-staging.example.com",
        commit=verdict.commit,
        started_at=verdict.started_at,
        finished_at=verdict.finished_at,
        tests=verdict.tests,
        gate=verdict.gate,
        plugin_version="0.1.0",
    )


def test_a_verdict_of_a_replaced_target_is_refused_unless_allowed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "v.json"
    write_verdict(path, replaced())
    data = json.loads(path.read_text())
    assert data["target"] == {
        "name": "staging",
        "base_url": "http://127.0.0.1:8000",
        "replaced": True,
        "configured_base_url": "https://***@shop-staging.example.com",
    }
    code, line = verify(capsys, path)
    assert code == 1
    assert line == (
        "REFUSED: the verdict was not measured on the configured target 'staging': a "
        "pytest_stagegate_configure_target hook replaced it (measured at http://127.0.0.1:8000, "
        "configured https://***@shop-staging.example.com); pass --allow-replaced-target to "
        "accept that"
    )
    code, line = verify(capsys, path, "--allow-replaced-target")
    assert code == 0
    assert line.endswith("; measured on a target a hook replaced (--allow-replaced-target)")
    # Allowing a replaced target does not allow another place.
    code, line = verify(
        capsys, path, "--allow-replaced-target", "--base-url", "https://shop-staging.example.com"
    )
    assert code == 1
    assert line == (
        "REFUSED: the verdict was measured at http://127.0.0.1:8000, not at "
        "https://shop-staging.example.com"
    )


@pytest.mark.parametrize(
    "url",
    [
        "https://shop-staging.example.com",
        "https://shop-staging.example.com/",
        "HTTPS://Shop-Staging.Example.com:443",
        "https://someone:secret@shop-staging.example.com",
    ],
)
def test_verify_base_url_accepts_the_same_place(
    verdict_file: Path, url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert verify(capsys, verdict_file, "--base-url", url)[0] == 0


@pytest.mark.parametrize(
    "url",
    [
        "http://shop-staging.example.com",
        "https://shop-staging.example.com:8443",
        "https://shop.example.com",
        "https://shop-staging.example.com/v2",
    ],
)
def test_verify_base_url_refuses_another_place(
    verdict_file: Path, url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, line = verify(capsys, verdict_file, "--base-url", url)
    assert code == 1
    assert line == (
        f"REFUSED: the verdict was measured at https://shop-staging.example.com, not at {url}"
    )


def test_verify_base_url_never_echoes_credentials(
    verdict_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, line = verify(capsys, verdict_file, "--base-url", "https://me:Pw-9931@elsewhere.test")
    assert code == 1
    assert "Pw-9931" not in line and "***@elsewhere.test" in line


@pytest.mark.parametrize("url", ["shop-staging.example.com", "ftp://x", "https://", "http://[::1"])
def test_verify_base_url_must_be_an_http_url(
    verdict_file: Path, url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _out, err = run(
        capsys, "verify", str(verdict_file), "--target", "staging", "--base-url", url
    )
    assert code == 4
    assert "--base-url: expected an http(s) URL" in err and "Traceback" not in err


def test_verify_refuses_an_oversized_file_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "huge.json"
    with path.open("wb") as fh:  # sparse: 64 MiB that take no disk
        fh.truncate(64 * 1024 * 1024)
    code, line = verify(capsys, path)
    assert code == 1
    assert line == (
        f"REFUSED: {path}: not a verdict: the file is larger than 16MB, the most a verdict "
        "file may be"
    )


# -- explain -----------------------------------------------------------------------------------

EXPLAINED = """\
targets:
  local: {base_url: "http://127.0.0.1:8000"}
gate:
  min_samples: 50
  default_error_rate: 2%
  saturation_cpu: 80
  load:
    rate: 20/s
    duration: 10s
    requests: [GET /]
  budgets:
    total: {p99: 500ms, min_rps: 5}
    "GET /": {p99.9: 1s, p95_regression: 10%, error_rate: off}
"""


def squeezed(text: str) -> str:
    """Whitespace runs as one space: the table's columns align with padding."""
    return "\n".join(" ".join(line.split()) for line in text.splitlines())


def test_explain_prints_each_budget_with_its_limit_and_the_samples_it_needs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "gate.yaml"
    path.write_text(EXPLAINED)
    code, out, err = run(capsys, "explain", "--config", str(path))
    assert (code, err) == (0, "")
    text = squeezed(out)
    assert text.startswith(f"Target 'local' of {path} (given with --config).")
    # in the order of the file; a percentile needs the larger of min_samples and its formula
    rows = [
        "total p99 <= 500 ms 100 p99: ceil(1 / (1 - 99/100))",
        "total min_rps >= 5 req/s 50 min_samples",
        "GET / p99.9 <= 1,000 ms 1,000 p99.9: ceil(1 / (1 - 99.9/100))",
        "GET / p95_regression <= +10% on the baseline 50 min_samples; the baseline needs as many",
        "GET / error_rate off (waived) - error_rate: off at gate.yaml:13",
        "every other request name and total error_rate <= 2% 50 gate.default_error_rate",
    ]
    lines = text.splitlines()
    assert [lines.index(row) for row in rows] == sorted(lines.index(row) for row in rows)
    for policy in (
        "min_samples: 50",
        "default_error_rate: 2%",
        "saturation_cpu: 80% of one core, per load process",
        "load: open model, 20/s, at most 10 concurrent iterations, for 10s",
    ):
        assert policy in lines
    flowing = " ".join(text.split())
    for rule in (
        "at least ceil(1 / (1 - NN/100)) (p50: 2, p90: 10, p95: 20, p99: 100, p99.9: 1,000)",
        "get one of 2% (gate.default_error_rate)",
        "at or above 80% of one core",
        "cannot start within 500ms of its schedule is dropped and counted. With more than 1% of",
        "; this load uses the open model.",
        "All failed: a request name, or a flow, whose requests (iterations) all failed fails",
        # default error budgets are per request name and total, never on a glob or a flow
        "globs and flows get none either: only the budgets written on them.",
        "else a flow's name (gate.load.flows), judged on its iterations",
        "else, with * ? or [, a glob over the request names, judged on their requests merged",
        "status_Nxx (status_1xx to status_5xx) is the share of all the requests of its key",
        "Hang: a load that measured no request while requests were still waiting is an error",
        "Unanswered: a request still waiting for its answer when the load stops is judged at its",
    ):
        assert rule in flowing


def test_explain_of_the_closed_model_and_a_written_total_error_budget(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "stagegate.yaml"
    path.write_text(
        "targets:\n  local: {base_url: 'http://127.0.0.1:1'}\n"
        "gate:\n  load: {users: 1, duration: 3s, warmup: 1s, requests: [GET /]}\n"
        "  budgets:\n    total: {error_rate: 5%, max: 2s}\n"
    )
    code, out, _ = run(capsys, "explain", "--config", str(path))
    assert code == 0
    text = squeezed(out)
    assert "total error_rate <= 5% 100 min_samples" in text.splitlines()
    assert "total max <= 2,000 ms 100 min_samples" in text.splitlines()
    assert "every other request name error_rate <= 1% 100 gate.default_error_rate" in (
        text.splitlines()
    )
    assert "load: closed model, 1 user for 3s, warm-up 1s not judged" in text.splitlines()
    assert "this load uses the closed model (users), in which nothing is dropped" in " ".join(
        text.split()
    )


def test_explain_usage_errors_exit_4_in_one_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "gate.yaml"
    path.write_text(EXPLAINED)
    code, out, err = run(capsys, "explain", "--config", str(path), "--target", "staging")
    assert (code, out) == (4, "")
    assert err.startswith(f"stagegate: error: {path}: unknown target 'staging'. Known targets:")
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "repo")
    code, out, err = run(capsys, "explain")
    assert (code, out) == (4, "")
    assert err == (
        f"stagegate: error: no stagegate.yaml in {tmp_path / 'repo'} (a repository root); run "
        "this in your project or pass --config PATH/TO/stagegate.yaml.\n"
    )


def test_the_explain_command_finds_the_config_walking_up(tmp_path: Path) -> None:
    """The installed command, run from a subdirectory of the project."""
    (tmp_path / "stagegate.yaml").write_text(EXPLAINED)
    (tmp_path / "tests").mkdir()
    env = {k: v for k, v in os.environ.items() if k != "STAGEGATE_TARGET"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest_stagegate.cli", "explain"],
        cwd=tmp_path / "tests",
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.startswith(
        f"Target 'local' of {tmp_path / 'stagegate.yaml'} (found walking up from "
        f"{tmp_path / 'tests'})."
    )
    assert "p99.9: ceil(1 / (1 - 99.9/100))" in done.stdout


def test_the_readme_states_the_rules_explain_prints_with_the_defaults() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## How the gate judges\n", 1)[1].split("\n## ", 1)[0]
    for text in (
        "stagegate explain [--target T] [--config PATH]",
        "`ceil(1 / (1 - NN/100))`: p50 2, p90 10, p95 20, p99 100, p99.9 1,000",
        f"`gate.min_samples` ({defaults.MIN_SAMPLES})",
        f"`gate.default_error_rate` ({defaults.ERROR_RATE:.0%})",
        f"`gate.saturation_cpu` ({defaults.SATURATION_CPU:g})",
        f"within {defaults.ARRIVAL_LAG:g} s of its schedule",
        f"more than {defaults.MAX_DROPPED:.0%} of the iterations due dropped",
        "| all failed |",
        "| hang |",
    ):
        assert text in section, text
