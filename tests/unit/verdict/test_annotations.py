"""``verdict.annotations``: a verdict's data -> GitHub workflow commands, pointing at the
budget's line in stagegate.yaml or the test's file and line, escaped and redacted."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

from pytest_stagegate.budgets import Check
from pytest_stagegate.verdict import GateRecord, TestRecord
from pytest_stagegate.verdict.annotations import (
    MAX_PER_LEVEL,
    escape_data,
    escape_property,
    render,
)
from tests.verdict_samples import (
    check,
    endpoints,
    fail_verdict,
    inconclusive_verdict,
    pass_verdict,
    passing_checks,
    verdict,
)

COMMAND = re.compile(r"^::(error|warning)(?: (.*?))?::(.*)$")


def parse(line: str) -> dict[str, Any]:
    """One workflow command back into its parts, unescaped as GitHub reads it."""
    match = COMMAND.match(line)
    assert match, line
    props: dict[str, Any] = {}
    for prop in (match.group(2) or "").split(","):
        if prop:
            key, value = prop.split("=", 1)
            props[key] = unquote(value)
    return {"level": match.group(1), **props, "message": unquote(match.group(3))}


def sourced(c: Check, line: int, file: str = "stagegate.yaml") -> Check:
    return Check(**{**c.__dict__, "file": file, "line": line})


def gate_with(*checks: Check) -> GateRecord:
    return GateRecord(status="completed", endpoints=endpoints(), checks=checks)


def test_escaping_follows_githubs_toolkit() -> None:
    assert escape_data("50% of\r\nrequests: a, b") == "50%25 of%0D%0Arequests: a, b"
    assert escape_property("p95: 300ms, total%") == "p95%3A 300ms%2C total%25"


def test_a_passing_verdict_is_not_annotated() -> None:
    assert render(pass_verdict().to_dict(), config_file="stagegate.yaml") == []


def test_a_failed_budget_points_at_the_line_of_its_metric() -> None:
    failing = check("GET /slow", "p95", 30, 61.0, "fail", samples=200, message="P95 was high.")
    data = verdict(gate=gate_with(sourced(failing, 12)), gate_requested=True).to_dict()
    headline, annotation = (parse(line) for line in render(data, config_file="stagegate.yaml"))
    assert headline["level"] == "error" and "file" not in headline
    assert headline["title"] == "stagegate verdict: FAIL on staging (do not promote)"
    assert annotation == {
        "level": "error",
        "file": "stagegate.yaml",
        "line": "12",
        "title": "stagegate budget failed: p95 of GET /slow",
        "message": "P95 was high.",
    }


def test_paths_start_at_the_workspace() -> None:
    failing = check("total", "p95", 30, 61.0, "fail", message="Over.")
    data = verdict(gate=gate_with(sourced(failing, 7, "conf/stagegate.yaml"))).to_dict()
    lines = render(data, base="services/shop")
    assert parse(lines[1])["file"] == "services/shop/conf/stagegate.yaml"


def test_critical_tests_then_budgets_then_other_tests_then_warnings() -> None:
    data = fail_verdict().to_dict()
    # the sample's tests carry no location; give them one, as a real run does
    for t in data["tests"]["failed_tests"]:
        t["source"] = {"file": "tests/smoke/test_shop.py", "line": 40}
    data["tests"]["failed_tests"].append(
        {"nodeid": "tests/test_x.py::test_y", "outcome": "error", "critical": False, "message": ""}
    )
    parsed = [parse(line) for line in render(data, config_file="stagegate.yaml")]
    assert [(p["level"], p["title"]) for p in parsed] == [
        ("error", "stagegate verdict: FAIL on staging (do not promote)"),
        ("error", "stagegate: critical test failed"),
        ("error", "stagegate budget failed: p95 of GET /api/products"),
        ("error", "stagegate: test errored"),
        ("warning", "stagegate: test is flaky"),
    ]
    critical = parsed[1]
    assert (critical["file"], critical["line"]) == ("tests/smoke/test_shop.py", "40")
    assert critical["message"].startswith("Critical test tests/smoke/test_shop.py::test_login")
    assert "assert 500 == 200" in critical["message"]
    # a check whose budget has no line (the sample's) points at the file alone
    assert parsed[2]["file"] == "stagegate.yaml" and "line" not in parsed[2]
    assert "file" not in parsed[3]  # pytest gave no location


def test_inconclusive_checks_and_verdicts_are_warnings() -> None:
    data = inconclusive_verdict().to_dict()
    data["gate"]["checks"][2]["source"] = {"file": "stagegate.yaml", "line": 9}
    parsed = [parse(line) for line in render(data)]
    assert [p["level"] for p in parsed] == ["warning", "warning"]
    assert parsed[0]["title"].startswith("stagegate verdict: INCONCLUSIVE")
    assert parsed[1]["title"] == "stagegate budget not judged: p99.9 of total"
    assert (parsed[1]["file"], parsed[1]["line"]) == ("stagegate.yaml", "9")


def test_a_gate_that_could_not_run_still_says_so() -> None:
    data = verdict(
        gate=GateRecord(status="error", reason="The load process crashed."), gate_requested=True
    ).to_dict()
    (only,) = [parse(line) for line in render(data, config_file="stagegate.yaml")]
    assert only["level"] == "error" and "file" not in only
    assert "crashed" in only["message"]


def test_a_hooks_check_points_nowhere() -> None:
    hook = Check("smoke", "custom", 1, 2, 1, "fail", "A hook's check failed.", unit="ratio")
    data = verdict(
        [TestRecord("t.py::test_ok", "passed")], gate=gate_with(*passing_checks()), checks=[hook]
    ).to_dict()
    (_, annotation) = [parse(line) for line in render(data, config_file="stagegate.yaml")]
    assert "file" not in annotation and annotation["message"] == "A hook's check failed."


def test_messages_are_redacted_and_stay_on_one_line() -> None:
    failing = check("total", "p95", 30, 61.0, "fail", message="Token s3cr3t-value\nleaked, 50%")
    data = verdict(gate=gate_with(sourced(failing, 3))).to_dict()
    lines = render(data, redact=lambda text: text.replace("s3cr3t-value", "***"))
    assert all("\n" not in line and "s3cr3t" not in line for line in lines)
    assert parse(lines[1])["message"] == "Token ***\nleaked, 50%"


def test_each_level_is_cut_at_what_github_shows() -> None:
    failing = [
        sourced(check(f"GET /{i}", "p95", 30, 61.0, "fail", message=f"Slow {i}."), i + 1)
        for i in range(15)
    ]
    data = verdict(gate=gate_with(*failing)).to_dict()
    parsed = [parse(line) for line in render(data)]
    assert len(parsed) == MAX_PER_LEVEL
    assert parsed[-1]["title"] == "stagegate: 7 more errors"  # 15 + the headline - 9 shown
    assert [p["line"] for p in parsed[1:-1]] == [str(i) for i in range(1, 9)]
