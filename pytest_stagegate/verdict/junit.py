"""The verdict as JUnit XML, for CI systems that show test reports (GitLab, Jenkins, Azure, ...).

Written from the verdict's JSON data (``Verdict.to_dict()`` or a loaded file), so the XML never
says anything the JSON does not. The layout follows the common "junit-10.xsd" dialect::

    <testsuites name="stagegate" ...>
      <testsuite name="stagegate.tests">     one testcase per test
      <testsuite name="stagegate.gate">      one testcase per budget check, plus "load run"
                                             (only when the gate was requested)
      <testsuite name="stagegate.checks">    checks added by hooks (only if there are any)
      <testsuite name="stagegate.verdict">   one testcase "promote": fails unless verdict is pass

The last suite exists so that a CI test view never looks green while the verdict blocks the
promotion (an interrupted run or a crashed worker is visible nowhere else). Every suite carries
the properties target, base_url, commit and verdict. A broken budget is a ``<failure>`` whose
message names the observed value, the limit and the sample count; an inconclusive check is
``<skipped>``. Timestamps are UTC without a zone designator, the form the dialect expects.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .._atomic import atomic_write_bytes
from ..budgets import Check
from ..metrics import REGRESSION
from ..units import format_limit, format_observed, format_rate
from .decide import check_sentence, sentence
from .model import parse_timestamp
from .report import (
    all_failed_rule,
    covers_text,
    limit_text,
    load_model_sentence,
    regression_allowance,
)

__all__ = ["check_name", "split_nodeid", "to_xml", "write_junit"]

# Characters XML 1.0 cannot carry at all, even escaped (ANSI colour codes in messages, ...).
_INVALID_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_MESSAGE_CHARS = 1000


def write_junit(path: Path, verdict: Mapping[str, Any]) -> None:
    """Write ``verdict`` (its JSON data) as JUnit XML to ``path``, atomically."""
    atomic_write_bytes(path, to_xml(verdict))


def to_xml(verdict: Mapping[str, Any]) -> bytes:
    """The JUnit XML document for ``verdict``, UTF-8 encoded, with an XML declaration."""
    properties = _properties(verdict)
    timestamp = _junit_timestamp(verdict["started_at"])
    suites = [_tests_suite(verdict, properties, timestamp)]
    gate = verdict.get("gate")
    if gate:
        suites.append(_gate_suite(gate, properties, timestamp))
    extra = verdict.get("checks") or []
    if extra:
        suites.append(
            _checks_suite("stagegate.checks", extra, properties, timestamp, time=0.0, cases=[])
        )
    suites.append(_verdict_suite(verdict, properties, timestamp))

    root = ET.Element("testsuites", name="stagegate")
    totals = dict.fromkeys(("tests", "failures", "errors", "skipped"), 0)
    total_time = 0.0
    for suite in suites:
        root.append(suite)
        for key in totals:
            totals[key] += int(suite.get(key, "0"))
        total_time += float(suite.get("time", "0"))
    for key, value in totals.items():
        root.set(key, str(value))
    root.set("time", _seconds(total_time))
    ET.indent(root)
    body: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=False)
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + body + b"\n"


def split_nodeid(nodeid: str) -> tuple[str, str]:
    """``tests/shop/test_cart.py::TestCart::test_add[1]`` -> ``("tests.shop.test_cart",
    "TestCart::test_add[1]")``. A node id without ``::`` (a module that failed to collect) is
    its own name."""
    module, sep, rest = nodeid.partition("::")
    stem = module.rsplit(".", 1)[0] if module.rsplit("/", 1)[-1].count(".") else module
    classname = stem.replace("\\", "/").strip("/").replace("/", ".")
    return classname, rest if sep else nodeid


def _where(check: Mapping[str, Any]) -> str:
    """``total``, or ``total in stage peak`` for a stage budget's check."""
    stage = check.get("stage")
    return f"{check['endpoint']} in stage {stage}" if stage else str(check["endpoint"])


def check_name(check: Mapping[str, Any]) -> str:
    """``p95 of GET /api/products <= 300 ms``: the budget, as a test name; ``error_rate of
    shopping: not all failed`` for the all-failed rule (``report.all_failed_rule``), whose
    ``<= 100%`` would contradict its failure."""
    metric, endpoint, limit = check["metric"], _where(check), check["limit"]
    if all_failed_rule(check):
        return f"{metric} of {endpoint}: not all failed"
    # By suffix, not parse_metric: a hook's check may name a metric outside the grammar.
    if metric.endswith(REGRESSION):
        # The allowance, not the limit it gives: a test's name must not change from run to run.
        allowed = regression_allowance(check)
        bound = "?" if allowed is None else f"+{format_rate(allowed)}"
        return f"{metric.removesuffix(REGRESSION)} of {endpoint} <= baseline {bound}"
    op = ">=" if metric == "min_rps" else "<="
    return f"{metric} of {endpoint} {op} {_limit(limit, check['unit'])}"


# -- suites ---------------------------------------------------------------------------------


def _tests_suite(
    verdict: Mapping[str, Any], properties: Sequence[tuple[str, str]], timestamp: str
) -> ET.Element:
    records = verdict["tests"]["records"]
    cases: list[ET.Element] = []
    for record in records:
        classname, name = split_nodeid(record["nodeid"])
        case = _case(name, classname, record["duration"])
        outcome, message = record["outcome"], record["message"]
        if record.get("flaky") and outcome == "passed":
            # Not a failure, but the rerun count belongs where people look at this test.
            out = ET.SubElement(case, "system-out")
            out.text = _clean(f"Passed only after {record['reruns']} rerun(s). {message}".strip())
        if outcome == "failed":
            _child(case, "failure", message or "Test failed", "failed", record)
        elif outcome == "error":
            _child(case, "error", message or "Test errored", "error", record)
        elif outcome == "skipped":
            default = "Destructive test on a protected target" if record.get("safety_skip") else ""
            reason = message or default or "Skipped"
            ET.SubElement(case, "skipped", message=_clean(reason, _MESSAGE_CHARS))
        elif outcome == "xfailed":
            ET.SubElement(case, "skipped", message=_clean(f"Expected failure: {message}".strip()))
        cases.append(case)
    time = sum(float(record["duration"]) for record in records)
    return _suite("stagegate.tests", cases, properties, timestamp, time)


def _gate_suite(
    gate: Mapping[str, Any], properties: Sequence[tuple[str, str]], timestamp: str
) -> ET.Element:
    load = _case("load run", "stagegate.gate", gate["load_seconds"])
    status, reason = gate["status"], gate["reason"]
    reason = sentence(reason) if reason.strip() else ""
    if status == "aborted":
        _child(load, "failure", reason or "The load was aborted early.", "aborted", None)
    elif status == "error":
        _child(load, "error", reason or "The load gate could not run.", status, None)
    elif status == "refused":
        _child(load, "error", reason or "The load gate was refused.", status, None)
    elif status == "not_run":
        ET.SubElement(load, "skipped", message=_clean(reason or "The load did not run."))
    else:
        total = next((e for e in gate["endpoints"] if e["name"] == "total"), None)
        if total is not None:
            out = ET.SubElement(load, "system-out")
            timeouts = total.get("timeouts") or 0
            out.text = (
                f"{total['requests']} requests, {total['failures']} failures"
                f"{f' ({timeouts} timed out)' if timeouts else ''} in {gate['load_seconds']:g} s"
            )
            model = gate.get("load")
            if isinstance(model, Mapping) and (model.get("model") == "open" or model.get("stages")):
                users = (gate.get("profile") or {}).get("users")
                out.text += f". {load_model_sentence(model, users)}"
    cases = [load]
    for waiver in gate.get("waivers") or ():  # 0.2: a waived error budget, said where it shows
        case = _case(f"{waiver['metric']} of {waiver['endpoint']} waived", "stagegate.gate", 0.0)
        where = f" at {waiver['source']}" if waiver.get("source") else ""
        ET.SubElement(
            case,
            "skipped",
            message=_clean(f"The error budget is waived (error_rate: off{where})."),
        )
        cases.append(case)
    return _checks_suite(
        "stagegate.gate", gate["checks"], properties, timestamp, gate["load_seconds"], cases
    )


def _checks_suite(
    name: str,
    checks: Sequence[Mapping[str, Any]],
    properties: Sequence[tuple[str, str]],
    timestamp: str,
    time: float,
    cases: list[ET.Element],
) -> ET.Element:
    cases = list(cases)
    for check in checks:
        case = _case(check_name(check), name, 0.0)
        if check["outcome"] == "fail":
            failure = ET.SubElement(
                case, "failure", message=_clean(_check_sentence(check)), type="budget"
            )
            failure.text = _clean(_check_details(check))
        elif check["outcome"] == "inconclusive":
            ET.SubElement(case, "skipped", message=_clean(_check_sentence(check)))
        if check.get("covers"):  # a group budget: its names (the test's name stays stable)
            ET.SubElement(case, "system-out").text = _clean(f"covers {covers_text(check)[1:-1]}")
        cases.append(case)
    return _suite(name, cases, properties, timestamp, time)


def _verdict_suite(
    verdict: Mapping[str, Any], properties: Sequence[tuple[str, str]], timestamp: str
) -> ET.Element:
    case = _case("promote", "stagegate.verdict", verdict["duration_s"])
    state = verdict["verdict"]
    summary = " ".join(verdict["reasons"])
    if state == "fail":
        element = ET.SubElement(
            case, "failure", message=_clean(summary, _MESSAGE_CHARS), type=state
        )
    elif state != "pass":
        element = ET.SubElement(case, "error", message=_clean(summary, _MESSAGE_CHARS), type=state)
    else:
        element = ET.SubElement(case, "system-out")
    element.text = _clean("\n".join(verdict["reasons"]))
    return _suite("stagegate.verdict", [case], properties, timestamp, verdict["duration_s"])


# -- elements -------------------------------------------------------------------------------


def _suite(
    name: str,
    cases: Sequence[ET.Element],
    properties: Sequence[tuple[str, str]],
    timestamp: str,
    time: float,
) -> ET.Element:
    def count(tag: str) -> int:
        return sum(1 for case in cases if case.find(tag) is not None)

    suite = ET.Element(
        "testsuite",
        name=name,
        tests=str(len(cases)),
        failures=str(count("failure")),
        errors=str(count("error")),
        skipped=str(count("skipped")),
        time=_seconds(time),
        timestamp=timestamp,
    )
    props = ET.SubElement(suite, "properties")
    for key, value in properties:
        ET.SubElement(props, "property", name=key, value=_clean(value))
    suite.extend(cases)
    return suite


def _case(name: str, classname: str, time: float) -> ET.Element:
    return ET.Element(
        "testcase", name=_clean(name), classname=_clean(classname), time=_seconds(time)
    )


def _child(
    case: ET.Element, tag: str, message: str, kind: str, record: Mapping[str, Any] | None
) -> None:
    element = ET.SubElement(case, tag, message=_clean(message, _MESSAGE_CHARS), type=kind)
    if record is not None and record.get("critical"):
        element.text = _clean(f"Critical test: {message}")
    else:
        element.text = _clean(message)


def _properties(verdict: Mapping[str, Any]) -> list[tuple[str, str]]:
    commit = verdict["commit"]
    return [
        ("target", verdict["target"]["name"]),
        ("base_url", verdict["target"]["base_url"]),
        ("commit", commit.get("sha") or ""),
        ("ref", commit.get("ref") or ""),
        ("run_url", commit.get("run_url") or ""),
        ("verdict", verdict["verdict"]),
        ("promote", "true" if verdict["promote"] else "false"),
    ]


def _check_sentence(check: Mapping[str, Any]) -> str:
    """The check's sentence as the verdict's reasons give it (``decide.check_sentence``): its
    own message, or one in the budgets' words, so message, body and reasons read alike."""
    if (check.get("message") or "").strip() or check.get("limit") is None:
        text = check.get("message") or f"{check['metric']} of {check['endpoint']}: no limit"
        return sentence(text)
    return check_sentence(
        Check(
            endpoint=check["endpoint"],
            metric=check["metric"],
            limit=float(check["limit"]),
            observed=check.get("observed"),
            samples=int(check.get("samples") or 0),
            outcome=check["outcome"],
            message="",
            unit=check["unit"],
            baseline=check.get("baseline"),
            stage=check.get("stage") or "",
        )
    )


def _check_details(check: Mapping[str, Any]) -> str:
    """The sentence, then the numbers in the report's form (its limit column)."""
    observed = check.get("observed")
    lines = [
        _check_sentence(check),
        "observed: "
        + ("not measured" if observed is None else format_observed(observed, check["unit"])),
        f"limit: {limit_text(check)}",
        f"samples: {check['samples']:,}",
        *([f"covers: {covers_text(check)[1:-1]}"] if check.get("covers") else []),
    ]
    return "\n".join(lines)


# -- text -----------------------------------------------------------------------------------


def _limit(value: float | None, unit: str) -> str:
    return "?" if value is None else format_limit(value, unit)


def _seconds(value: float) -> str:
    return f"{float(value):.3f}"


def _junit_timestamp(text: str) -> str:
    return parse_timestamp(text).strftime("%Y-%m-%dT%H:%M:%S")


def _clean(text: str, limit: int | None = None) -> str:
    text = _INVALID_XML.sub("\ufffd", text)
    if limit is not None and len(text) > limit:
        text = text[: limit - 3] + "..."
    return text
