"""``verdict.report``: the verdict as text or markdown, the comparison of two verdicts, and the
gate tables the terminal summary shows too. Pure: rendered from verdict dicts; the goldens are
the ones ``stagegate report`` is held to (tests/unit/test_cli.py runs it end to end)."""

from __future__ import annotations

import pytest

from pytest_stagegate.verdict import TestRecord
from pytest_stagegate.verdict.report import (
    _change,
    _profile,
    gate_table_lines,
    render,
    render_compare,
)
from tests.verdict_samples import SAMPLES, check_golden


@pytest.mark.parametrize("fmt", ["text", "markdown"])
@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_render_matches_the_golden_report(name: str, fmt: str) -> None:
    text = render(SAMPLES[name]().to_dict(), fmt)  # type: ignore[arg-type]
    check_golden(f"report-{name}.{'md' if fmt == 'markdown' else 'txt'}", text)


def test_markdown_escapes_pipes_in_cells() -> None:
    verdict = SAMPLES["fail"]()
    verdict.tests = (TestRecord("t.py::test_x[a|b]", "failed", message="left | right"),)
    text = render(verdict.to_dict(), "markdown")
    assert "| `t.py::test_x[a\\|b]` | failed |   | left \\| right |" in text


def test_gate_tables_are_the_reports_own_lines() -> None:
    data = SAMPLES["fail"]().to_dict()
    lines = gate_table_lines(data["gate"])
    report = render(data)
    for line, _ in lines:
        assert line in report  # the terminal shows exactly what the report prints
    failed = [line for line, alarm in lines if alarm]
    assert failed and all("FAIL" in line for line in failed)
    assert not [line for line, alarm in lines if alarm and "PASS" in line]


def test_compare_endpoints_only_on_one_side_and_missing_gate() -> None:
    old = SAMPLES["pass"]().to_dict()
    new = SAMPLES["inconclusive"]().to_dict()
    text = render_compare(old, new)
    assert "GET /api/products                                           only in the old run" in text
    assert render_compare(old, SAMPLES["error"]().to_dict()).endswith(
        "Nothing to compare: the new verdict has no load measurements.\n"
    )


def test_compare_changes() -> None:
    assert _change(100.0, 110.0, "ms") == "+10.0%"
    assert _change(100.0, 90.0, "rps") == "-10.0%"
    assert _change(0.001, 0.003, "ratio") == "+0.20 pp"
    assert _change(0.0, 0.0, "ms") == "+0.0%"
    assert _change(0.0, 5.0, "ms") == "n/a"
    assert _change(None, 5.0, "ms") == "n/a"


def test_report_profile_keeps_the_case_of_names() -> None:
    assert _profile({"scenario": "perf/Locustfile.py", "workers": 0}, 0) == (
        "Scenario: perf/Locustfile.py."
    )
    assert _profile({"duration_s": 30, "workers": 4}, 12.5) == (
        "30s of load, 4 worker processes, ran 12.5s."
    )


def test_report_profile_names_the_flows_and_the_open_models_concurrency() -> None:
    """A flows scenario says so, with its flows' names; the open model's users are the most
    concurrent iterations, not users (as the terminal's header says)."""
    profile = {"model": "open", "users": 100, "scenario": "flows", "flows": ["checkout", "browse"]}
    assert _profile(profile, 0) == (
        "At most 100 concurrent iterations, scenario: flows (checkout, browse)."
    )
    assert _profile({"users": 100, "scenario": "requests"}, 0) == ("100 users, scenario: requests.")


def test_a_regression_limit_reads_like_every_other_limit() -> None:
    """A limit derived from a baseline (871.894 ms + 10% = 959.0834 ms) is shown like a
    written one, in the report's column, in the check's sentence and in JUnit's test name
    (the allowance there, so that the name does not change from run to run)."""
    from pytest_stagegate.budgets import TOTAL, Budget, EndpointStats, evaluate
    from pytest_stagegate.verdict.junit import check_name
    from tests.verdict_samples import good_gate, verdict

    def stats(p95: float) -> dict[str, EndpointStats]:
        return {TOTAL: EndpointStats(TOTAL, 500, 0, 50.0, p95, 1.0, p95, {"p95": p95})}

    checks = evaluate(
        [Budget(TOTAL, "p95", 1500.0), Budget(TOTAL, "p95_regression", 0.1)],
        stats(990.0),
        min_samples=1,
        baseline=stats(871.894),
    )
    data = verdict(gate=good_gate(checks=checks)).to_dict()
    regression = next(c for c in data["gate"]["checks"] if c["metric"] == "p95_regression")
    table = "\n".join(line for line, _ in gate_table_lines(data["gate"]))
    assert "<= 1,500 ms" in table
    assert "<= 959.1 ms (baseline 871.9 ms +10%)" in table
    assert "959.08" not in render(data) + regression["message"]
    assert "at most 959.1 ms" in regression["message"]
    assert check_name(regression) == "p95 of total <= baseline +10%"


def test_the_all_failed_rule_reads_as_its_own_limit() -> None:
    """A name whose requests all failed fails by the all-failed rule, without an error budget
    (or with one of 100%): its limit reads "all failed" in the table (terminal and report) and
    in JUnit, never ``100%  <= 100%  FAIL``, which contradicts itself."""
    from pytest_stagegate.budgets import TOTAL, Budget, EndpointStats, evaluate
    from pytest_stagegate.verdict.junit import check_name, to_xml
    from tests.verdict_samples import good_gate, verdict

    stats = {
        "shopping": EndpointStats("shopping", 40, 40, 0.0, 0.0, 0.0, 0.0),
        "GET /b": EndpointStats("GET /b", 40, 40, 0.0, 0.0, 0.0, 0.0),
        TOTAL: EndpointStats(TOTAL, 80, 80, 0.0, 0.0, 0.0, 0.0),
    }
    budgets = [Budget("GET /b", "error_rate", 1.0), Budget(TOTAL, "error_rate", 0.05)]
    checks = evaluate(budgets, stats, min_samples=1)
    data = verdict(gate=good_gate(checks=checks)).to_dict()
    rows = [line for line, _ in gate_table_lines(data["gate"]) if "error_rate of" in line]
    by_name = {row.split()[2]: row for row in rows}
    assert "all failed" in by_name["shopping"] and "<= 100%" not in by_name["shopping"], rows
    assert "all failed" in by_name["GET"] and "<= 100%" not in by_name["GET"], rows
    assert "<= 5%" in by_name["total"], rows
    assert "<= 100%" not in render(data) + render(data, "markdown")
    rule = next(c for c in data["gate"]["checks"] if c["endpoint"] == "shopping")
    assert check_name(rule) == "error_rate of shopping: not all failed"
    xml = to_xml(data).decode()
    assert "limit: all failed" in xml and "&lt;= 100%" not in xml


def test_the_stages_table_shows_each_judged_stages_dropped_iterations() -> None:
    data = SAMPLES["open"]().to_dict()
    stages = data["gate"]["load"]["stages"]
    assert "iterations_due" not in stages[1]  # the golden's sample: no column
    plain = next(line for line in render(data).splitlines() if line.startswith("stage "))
    assert plain.split()[-1] == "p95"
    stages[1].update(iterations_due=2000, dropped=60)
    stages[2].update(iterations_due=230, dropped=0)
    text = render(data)
    header = next(line for line in text.splitlines() if line.startswith("stage "))
    assert header.split() == ["stage", "time", "level", "judged", "requests", "p95", "dropped"]
    rows = {
        line.split()[0]: line
        for line in text.splitlines()
        if line.split()[:1] in (["ramp"], ["peak"], ["cool"])
    }
    assert rows["peak"].endswith("60 of 2,000 (3%)") and rows["cool"].endswith("0 of 230 (0%)")
    assert rows["ramp"].rstrip().endswith("-")
    assert "| 60 of 2,000 (3%) |" in render(data, "markdown")
