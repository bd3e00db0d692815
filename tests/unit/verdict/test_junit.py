"""The JUnit XML verdict: golden files, the junit-10.xsd dialect, and what each element says."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import xmlschema

from pytest_stagegate.verdict import GateRecord, TestRecord, Verdict
from pytest_stagegate.verdict.junit import check_name, split_nodeid, to_xml, write_junit
from tests.verdict_samples import (
    FINISHED,
    GITHUB,
    GOLDEN,
    JUNIT_XSD,
    SAMPLES,
    STARTED,
    check,
    check_golden,
    passing_checks,
    verdict,
)


@pytest.fixture(scope="module")
def xsd() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(JUNIT_XSD))


def make(tests: list[TestRecord], gate: GateRecord | None = None, **kwargs: Any) -> dict[str, Any]:
    return verdict(tests, gate=gate, **kwargs).to_dict()


def parse(verdict: dict[str, Any], xsd: xmlschema.XMLSchema) -> ET.Element:
    document = to_xml(verdict)
    xsd.validate(document.decode("utf-8"))
    return ET.fromstring(document)


def suite(root: ET.Element, name: str) -> ET.Element:
    found = root.find(f"testsuite[@name='{name}']")
    assert found is not None, f"no testsuite {name}"
    return found


def case(root: ET.Element, suite_name: str, name: str) -> ET.Element:
    found = suite(root, suite_name).find(f"testcase[@name='{name}']")
    assert found is not None, f"no testcase {name} in {suite_name}"
    return found


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_golden_xml(name: str, tmp_path: Path, xsd: xmlschema.XMLSchema) -> None:
    path = tmp_path / "stagegate-junit.xml"
    write_junit(path, SAMPLES[name]().to_dict())
    check_golden(f"junit-{name}.xml", path.read_text(encoding="utf-8"))
    xsd.validate(str(path))


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_every_golden_xml_validates_against_the_xsd(name: str, xsd: xmlschema.XMLSchema) -> None:
    xsd.validate(str(GOLDEN / f"junit-{name}.xml"))


def test_the_xsd_rejects_what_it_should(xsd: xmlschema.XMLSchema) -> None:
    # The schema is only worth checking against if it can say no.
    assert not xsd.is_valid("<testsuites><testsuite name='x'/></testsuites>")
    assert not xsd.is_valid(
        "<testsuites><testsuite name='x' tests='1' failures='0' errors='0' skipped='0' "
        "time='1' timestamp='2025-01-01T00:00:00'><testcase name='a' classname='c' time='x'/>"
        "</testsuite></testsuites>"
    )
    assert xsd.is_valid(
        "<testsuites><testsuite name='x' tests='1' failures='1' errors='0' skipped='0' "
        "time='1' timestamp='2025-01-01T00:00:00'><testcase name='a' classname='c' time='0.1'>"
        "<failure message='m' type='t'>text</failure></testcase></testsuite></testsuites>"
    )


def test_one_testcase_per_test_with_module_classname(xsd: xmlschema.XMLSchema) -> None:
    root = parse(SAMPLES["fail"]().to_dict(), xsd)
    tests = suite(root, "stagegate.tests")
    assert [(c.get("classname"), c.get("name")) for c in tests.findall("testcase")] == [
        ("tests.smoke.test_shop", "TestCatalog::test_list[page-1]"),
        ("tests.smoke.test_shop", "test_health"),
        ("tests.smoke.test_shop", "test_login"),
        ("tests.smoke.test_shop", "test_refunds"),
        ("tests.smoke.test_shop", "test_search_typo"),
    ]
    failure = case(root, "stagegate.tests", "test_login").find("failure")
    assert failure is not None
    assert failure.get("message") == (
        "assert 500 == 200 (POST /api/login answered 500 Internal Server Error)"
    )
    assert (tests.get("tests"), tests.get("failures"), tests.get("skipped")) == ("5", "1", "2")


def test_outcomes_map_to_elements(xsd: xmlschema.XMLSchema) -> None:
    root = parse(
        make(
            [
                TestRecord("t.py::err", "error", message="fixture broke"),
                TestRecord("t.py::skip", "skipped", message="not on staging"),
                TestRecord("t.py::safe", "skipped", message="protected", safety_skip=True),
                TestRecord("t.py::xf", "xfailed", message="known bug"),
                TestRecord("t.py::xp", "xpassed"),
            ]
        ),
        xsd,
    )
    error = case(root, "stagegate.tests", "err").find("error")
    assert error is not None and error.get("message") == "fixture broke"
    skipped = case(root, "stagegate.tests", "skip").find("skipped")
    assert skipped is not None and skipped.get("message") == "not on staging"
    safety = case(root, "stagegate.tests", "safe").find("skipped")
    assert safety is not None
    assert safety.get("message") == "protected"
    xfailed = case(root, "stagegate.tests", "xf").find("skipped")
    assert xfailed is not None and xfailed.get("message") == "Expected failure: known bug"
    assert list(case(root, "stagegate.tests", "xp")) == []


def test_broken_budget_names_observed_limit_and_samples(xsd: xmlschema.XMLSchema) -> None:
    root = parse(SAMPLES["fail"]().to_dict(), xsd)
    gate = suite(root, "stagegate.gate")
    names = [c.get("name") for c in gate.findall("testcase")]
    assert names == [
        "load run",  # then the checks in the order of the budgets (stagegate.yaml's)
        "p95 of total <= 300 ms",
        "error_rate of total <= 1%",
        "min_rps of total >= 20 req/s",
        "p99 of GET /api/products/{id} <= 500 ms",
        "p95 of GET /api/products <= 300 ms",
    ]
    failure = case(root, "stagegate.gate", "p95 of GET /api/products <= 300 ms").find("failure")
    assert failure is not None
    # one wording: the message is the check's sentence, as in the reasons, and so is the body's
    # first line; the body adds the numbers in the report's form
    said = "P95 of GET /api/products was 412.0 ms, over its budget of 300 ms."
    assert failure.get("message") == said
    assert (failure.text or "").splitlines() == [
        said,
        "observed: 412.0 ms",
        "limit: <= 300 ms",
        "samples: 600",
    ]
    assert failure.get("type") == "budget"
    assert (gate.get("tests"), gate.get("failures")) == ("6", "1")


def test_min_rps_and_error_rate_failures(xsd: xmlschema.XMLSchema) -> None:
    gate = GateRecord(
        status="completed",
        checks=[
            # a hook's checks without a message: one made in the budgets' words
            replace(
                check("total", "min_rps", 20, 12.34, "fail", unit="rps", samples=370), message=""
            ),
            replace(
                check("total", "error_rate", 0.01, 0.05, "fail", unit="ratio", samples=400),
                message="",
            ),
        ],
    )
    root = parse(make([TestRecord("t.py::a", "passed")], gate), xsd)
    rps = case(root, "stagegate.gate", "min_rps of total >= 20 req/s").find("failure")
    assert rps is not None
    assert rps.get("message") == (
        "The min_rps of total was 12.3 req/s, under its minimum of 20 req/s (370 samples)."
    )
    rate = case(root, "stagegate.gate", "error_rate of total <= 1%").find("failure")
    assert rate is not None
    assert rate.get("message") == (
        "The error_rate of total was 5%, over its budget of 1% (400 samples)."
    )


def test_regression_check(xsd: xmlschema.XMLSchema) -> None:
    # the limit of a check with a baseline is the baseline plus the allowance, in ms
    regression = check("total", "p95_regression", 132.0, 150.0, "fail", samples=900)
    regression = replace(regression, baseline=120.0, message="")
    root = parse(make([], GateRecord(status="completed", checks=[regression])), xsd)
    failure = case(root, "stagegate.gate", "p95 of total <= baseline +10%").find("failure")
    assert failure is not None
    assert failure.get("message") == (
        "The p95_regression of total was 150.0 ms, over its budget of 132 ms (900 samples)."
    )
    assert "limit: <= 132 ms (baseline 120.0 ms +10%)" in (failure.text or "")


def test_inconclusive_check_is_skipped_with_its_message(xsd: xmlschema.XMLSchema) -> None:
    root = parse(SAMPLES["inconclusive"]().to_dict(), xsd)
    skipped = case(root, "stagegate.gate", "p99.9 of total <= 250 ms").find("skipped")
    assert skipped is not None
    assert (
        skipped.get("message") == "P99.9 of total had only 120 samples; at least 1000 are needed."
    )


@pytest.mark.parametrize(
    ("status", "element", "message"),
    [
        ("aborted", "failure", "95% of requests failed."),
        ("error", "error", "Locust crashed."),
        ("refused", "error", "Production is protected."),  # a clause, shown as a sentence
        ("not_run", "skipped", "A critical test failed."),
    ],
)
def test_load_run_case(status: str, element: str, message: str, xsd: xmlschema.XMLSchema) -> None:
    reasons = {
        "aborted": "95% of requests failed.",
        "error": "Locust crashed.",
        "refused": "production is protected.",
        "not_run": "a critical test failed.",
    }
    gate = GateRecord(status=status, reason=reasons[status], checks=passing_checks())  # type: ignore[arg-type]
    root = parse(make([TestRecord("t.py::a", "passed")], gate), xsd)
    found = case(root, "stagegate.gate", "load run").find(element)
    assert found is not None
    assert found.get("message") == message


def test_completed_load_run_passes(xsd: xmlschema.XMLSchema) -> None:
    root = parse(SAMPLES["pass"]().to_dict(), xsd)
    load = case(root, "stagegate.gate", "load run")
    assert load.find("failure") is None and load.find("error") is None
    assert load.findtext("system-out") == "2400 requests, 2 failures in 30.2 s"


def test_no_gate_suite_when_the_gate_was_not_requested(xsd: xmlschema.XMLSchema) -> None:
    root = parse(make([TestRecord("t.py::a", "passed")]), xsd)
    assert [s.get("name") for s in root] == ["stagegate.tests", "stagegate.verdict"]


def test_extra_checks_get_their_own_suite(xsd: xmlschema.XMLSchema) -> None:
    verdict = Verdict(
        target_name="staging",
        base_url="http://x",
        commit=GITHUB,
        started_at=STARTED,
        finished_at=FINISHED,
        tests=[TestRecord("t.py::a", "passed")],
        checks=[check("db", "cpu", 80, 95.0, "fail", unit="ms", samples=10)],
    )
    root = parse(verdict.to_dict(), xsd)
    checks = suite(root, "stagegate.checks")
    assert (checks.get("tests"), checks.get("failures")) == ("1", "1")


@pytest.mark.parametrize(
    ("name", "element"),
    [("pass", None), ("fail", "failure"), ("error", "error"), ("inconclusive", "error")],
)
def test_verdict_case_mirrors_the_verdict(
    name: str, element: str | None, xsd: xmlschema.XMLSchema
) -> None:
    data = SAMPLES[name]().to_dict()
    promote = case(parse(data, xsd), "stagegate.verdict", "promote")
    if element is None:
        assert promote.find("failure") is None and promote.find("error") is None
    else:
        found = promote.find(element)
        assert found is not None
        assert found.get("type") == name
        assert (found.get("message") or "").startswith(data["reasons"][0])


def test_properties_and_totals(xsd: xmlschema.XMLSchema) -> None:
    root = parse(SAMPLES["fail"]().to_dict(), xsd)
    for element in root:
        props = {p.get("name"): p.get("value") for p in element.iter("property")}
        assert props["target"] == "staging"
        assert props["base_url"] == "https://shop-staging.example.com"
        assert props["commit"] == GITHUB.sha
        assert props["verdict"] == "fail"
        assert element.get("timestamp") == "2025-01-15T10:00:00"
    for key in ("tests", "failures", "errors", "skipped"):
        assert int(root.get(key) or -1) == sum(int(s.get(key) or 0) for s in root)


def test_invalid_xml_characters_are_replaced(xsd: xmlschema.XMLSchema) -> None:
    message = '\x1b[31mAssertionError\x1b[0m: got \x00 and <tag> & "quotes" \ud800'
    root = parse(make([TestRecord("t.py::a", "failed", message=message)]), xsd)
    failure = case(root, "stagegate.tests", "a").find("failure")
    assert failure is not None
    assert failure.get("message") == (
        '\ufffd[31mAssertionError\ufffd[0m: got \ufffd and <tag> & "quotes" \ufffd'
    )


def test_long_messages_are_cut_in_attributes(xsd: xmlschema.XMLSchema) -> None:
    root = parse(make([TestRecord("t.py::a", "failed", message="x" * 5000)]), xsd)
    failure = case(root, "stagegate.tests", "a").find("failure")
    assert failure is not None
    assert len(failure.get("message") or "") == 1000
    assert failure.text is not None and len(failure.text) >= 5000


@pytest.mark.parametrize(
    ("nodeid", "expected"),
    [
        ("tests/test_shop.py::test_login", ("tests.test_shop", "test_login")),
        (
            "tests/test_shop.py::TestCart::test_add[1-2]",
            ("tests.test_shop", "TestCart::test_add[1-2]"),
        ),
        ("test_top.py::test_x", ("test_top", "test_x")),
        ("tests/broken.py", ("tests.broken", "tests/broken.py")),
        ("tests/data/cases.yaml::case one", ("tests.data.cases", "case one")),
        ("tests/test_x.py::test_y[a::b]", ("tests.test_x", "test_y[a::b]")),
    ],
)
def test_split_nodeid(nodeid: str, expected: tuple[str, str]) -> None:
    assert split_nodeid(nodeid) == expected


@pytest.mark.parametrize(
    ("metric", "limit", "unit", "name"),
    [
        ("p95", 300.0, "ms", "p95 of total <= 300 ms"),
        ("p99.9", 1250.5, "ms", "p99.9 of total <= 1,250.5 ms"),
        ("avg", 80.0, "ms", "avg of total <= 80 ms"),
        ("error_rate", 0.005, "ratio", "error_rate of total <= 0.5%"),
        ("min_rps", 20.0, "rps", "min_rps of total >= 20 req/s"),
        ("p95_regression", 0.1, "ratio", "p95 of total <= baseline +10%"),  # no baseline
        ("p95_regression", 132.0, "ms", "p95 of total <= baseline +10%"),  # 120 ms + 10%
    ],
)
def test_check_name(metric: str, limit: float, unit: str, name: str) -> None:
    check = {"metric": metric, "endpoint": "total", "limit": limit, "unit": unit, "baseline": 120.0}
    if unit == "ratio":
        check["baseline"] = None
    assert check_name(check) == name
