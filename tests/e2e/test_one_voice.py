"""Every message a run shows reads as one voice (issue 14): real runs, and every output they
produce (the terminal, ``stagegate report`` as text and Markdown, the JUnit XML, ``stagegate
verify``) searched for sentences that start in lower case, raw exception class paths, and
checks in another order than stagegate.yaml's. Pytest's own lines and a failing test's own
message are the test's words, not the plugin's: they are left out."""

from __future__ import annotations

import contextlib
import io
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest
import yaml

from pytest_stagegate.cli import main
from pytest_stagegate.verdict.junit import check_name
from tests.conftest import stagegate_yaml, write_stagegate
from tests.servers import HTTPTestServer, Route

# a class named by its module path: what a user should never have to read
RAW_CLASS = re.compile(
    r"\b(?:_pytest|pytest_stagegate|httpx|httpcore|locust|gevent|builtins|urllib3)"
    r"\.[\w.]*[A-Z]\w*|Traceback \(most recent call last\)"
)

# the budgets in stagegate.yaml's order: total first, metrics not alphabetical
BUDGETS = {
    "total": {"p95": "500ms", "min_rps": 100000, "p95_regression": "10%"},
    "GET /api/products": {"p99": "800ms", "error_rate": "5%"},
}
WRITTEN = [(e, m) for e, limits in BUDGETS.items() for m in limits]


def cli(*argv: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        main(list(argv))
    return out.getvalue()


def sentences(lines: Iterator[str]) -> Iterator[str]:
    """The plugin's sentences of a report or a terminal: the bullets (the reasons)."""
    for line in lines:
        text = line.strip()
        if text.startswith("- "):
            yield text[2:]


def check_rows(text: str, names: list[str]) -> list[str]:
    """The checks of the "Budget checks" table of a terminal or a report, in their order."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if "Budget checks" in line)
    rows = []
    for line in lines[start:]:
        cell = line.strip().lstrip("|").strip().strip("`").strip()
        found = [n for n in names if cell.startswith((f"{n} ", f"{n}`"))]
        if found:
            rows.append(max(found, key=len))
    return rows


def lower_case_starts(texts: Iterator[str]) -> list[str]:
    return [t for t in texts if t and t[0].islower()]


def stagegate_section(output: str) -> list[str]:
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if " stagegate " in line and "=" in line)
    return lines[start:]


def junit_messages(path: Path) -> list[str]:
    """The plugin's messages in its JUnit: every suite but the tests' (whose failure messages
    are the tests' own words)."""
    root = ET.parse(path).getroot()
    found = []
    for suite in root.iter("testsuite"):
        if suite.get("name") == "stagegate.tests":
            continue
        for element in suite.iter():
            if element.tag in ("failure", "error", "skipped"):
                found.append(element.get("message") or "")
                found.append((element.text or "").split("\n", 1)[0])
    return [m for m in found if m]


def test_a_failing_gated_run_speaks_with_one_voice(
    pytester: pytest.Pytester, server: HTTPTestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a request with a custom name whose expectation always fails: its error is the
    # expectation's own words, never Locust's CatchResponseError('...'), on its name as written
    failing = {"path": "/", "name": "home-contains", "expect": {"contains": "no-such-text-zq"}}
    doc = yaml.safe_load(
        stagegate_yaml(
            server.url, gate={"load": {"requests": ["GET /", "GET /api/products", failing]}}
        )
    )
    doc["gate"]["budgets"] = BUDGETS
    pytester.makefile(".yaml", stagegate=yaml.safe_dump(doc, sort_keys=False))
    pytester.makepyfile("def test_ok(http): assert http.get('/').status_code == 200")
    summary = pytester.path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    result = pytester.runpytest(
        "--gate", "--verdict", "v.json", "--verdict-junit", "j.xml", "--gate-report", "r.html"
    )
    assert result.ret == 1
    output = result.stdout.str() + result.stderr.str()
    section = stagegate_section(result.stdout.str())
    data = json.loads((pytester.path / "v.json").read_text())
    assert data["verdict"] == "fail", data["reasons"]
    # a regression budget without a baseline: its reason, once lower case, starts a sentence
    assert any(r.startswith("No baseline value for p95 of total") for r in data["reasons"])

    report = {fmt: cli("report", "v.json", "--format", fmt) for fmt in ("text", "markdown")}
    verify = cli("verify", "v.json", "--target", "local", "--allow-replaced-target")
    junit = pytester.path / "j.xml"

    # sentences start with a capital, everywhere
    assert lower_case_starts(sentences(iter(section))) == [], section
    for fmt, text in report.items():
        assert lower_case_starts(sentences(iter(text.splitlines()))) == [], (fmt, text)
    assert lower_case_starts(iter(junit_messages(junit))) == [], junit.read_text()
    assert verify.startswith("REFUSED: the verdict is fail, not pass: ")
    assert ".;" not in verify and "--allow-no-gate" not in verify, verify

    # no raw exception class paths in anything the plugin wrote or printed
    everything = [output, *report.values(), verify, junit.read_text(), summary.read_text()]
    assert [m for text in everything for m in RAW_CLASS.findall(text)] == []
    expectation = 'expect.contains "no-such-text-zq": not in the body'
    assert expectation in output and expectation in " ".join(data["reasons"]), data["reasons"]
    for text in [*everything, json.dumps(data)]:
        assert "CatchResponseError" not in text and "GET home-contains" not in text

    # one check order, stagegate.yaml's (the default error budgets after the written ones)
    order = [(c["endpoint"], c["metric"]) for c in data["gate"]["checks"]]
    assert order[: len(WRITTEN)] == WRITTEN
    names = [f"{m} of {e}" for e, m in order]
    for text in (result.stdout.str(), report["text"], report["markdown"]):
        assert check_rows(text, names) == names, text
    cases = [c.get("name") or "" for c in ET.parse(junit).getroot().iter("testcase")]
    expected = [check_name(c) for c in data["gate"]["checks"]]
    assert [c for c in cases if c in expected] == expected, cases

    # one formatter: no limit or value with more decimals than the report shows
    assert not re.search(r"\d\.\d{3,} ms", "\n".join(everything))
    # every file written is listed at the end
    for label, path in (
        ("json", "v.json"),
        ("junit", "j.xml"),
        ("html report", "r.html"),
        ("step summary", f"{summary} (appended)"),
    ):
        assert f"  {label}: {path}" in section, section


def test_a_wrong_build_speaks_with_one_voice(
    pytester: pytest.Pytester, serve: Callable[[Mapping[str, Route]], HTTPTestServer]
) -> None:
    shop = serve({"/version": Route(body=b'{"version": "1.0"}', content_type="application/json")})
    version = {"path": "/version", "field": "version", "expect": "2.0"}
    write_stagegate(pytester, shop.url, target={"version": version})
    pytester.makepyfile("def test_ok(): pass")
    result = pytester.runpytest("--gate", "--verdict", "v.json")
    assert result.ret == 1
    output = result.stdout.str() + result.stderr.str()
    assert RAW_CLASS.findall(output) == [] and "Exit:" not in output, output
    assert lower_case_starts(sentences(iter(stagegate_section(result.stdout.str())))) == []
    verify = cli("verify", str(pytester.path / "v.json"), "--target", "local")
    # an error verdict: --allow-no-gate could not help, so it is not offered
    assert verify.startswith("REFUSED: the verdict is error, not pass: Target 'local' runs the")
    assert "--allow-no-gate" not in verify and ".;" not in verify, verify
