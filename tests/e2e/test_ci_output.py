"""CI-native output end to end: one real gated run (pytest through pytester, real Locust
against a real server on 127.0.0.1, 3 s of load) in a simulated GitHub Actions environment,
its annotations parsed from the run's own stdout and its --gate-metrics file read by
prometheus_client's OpenMetrics parser; and the usage error of --gate-metrics without --gate.

The pure parts (escaping, the order, the cap, every metric family) are tested in-process in
tests/unit/verdict/test_annotations.py and test_openmetrics.py.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote

import pytest
import yaml

from tests.conftest import stagegate_yaml
from tests.servers import HTTPTestServer, Route

parser = pytest.importorskip(
    "prometheus_client.openmetrics.parser", reason="prometheus-client (the test extra) is missing"
)

COMMAND = re.compile(r"^::(error|warning)(?: (.*?))?::(.*)$")
TOKEN = "ci-output-token-93kq"  # a secret: the target's header comes from the environment


def annotations(lines: list[str]) -> list[dict[str, Any]]:
    """The workflow commands among stdout's lines, unescaped as GitHub reads them."""
    found = []
    for line in lines:
        match = COMMAND.match(line)
        if not match:
            continue
        props = dict(p.split("=", 1) for p in (match.group(2) or "").split(",") if p)
        found.append(
            {
                "level": match.group(1),
                **{k: unquote(v) for k, v in props.items()},
                "message": unquote(match.group(3)),
            }
        )
    return found


def config_text(url: str) -> str:
    text = stagegate_yaml(
        url,
        target={"headers": {"Authorization": "Bearer ${CI_OUTPUT_TOKEN}"}},
        gate={
            "min_samples": 5,
            "run_after_critical_failure": True,  # the failing critical test below
            "load": {"duration": "3s", "requests": ["GET /fast", "GET /slow"]},
        },
    )
    doc = yaml.safe_load(text)
    doc["gate"]["budgets"] = {
        "total": {"error_rate": "1%"},
        "GET /slow": {"p95": "30ms", "max": "40ms"},  # it answers in 60 ms: both fail
        # 2 users waiting 10 ms between requests make at most 600 in 3 s: p99.9 needs 1,000
        "GET /fast": {"p99.9": "1s"},
    }
    return yaml.safe_dump(doc, sort_keys=False)


TESTS = """
import os

import pytest


def test_catalog(http):
    assert http.get("/fast").status_code == 200


@pytest.mark.critical
def test_checkout():
    assert False, "checkout broke for " + os.environ["CI_OUTPUT_TOKEN"]
"""


def test_a_gated_run_on_github_annotates_the_lines_and_writes_metrics(
    pytester: pytest.Pytester,
    serve: Callable[[Mapping[str, Route]], HTTPTestServer],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = serve({"/fast": Route(), "/slow": Route(latency=0.06)})
    config = pytester.makefile(".yaml", stagegate=config_text(server.url))
    pytester.makepyfile(test_ci_out=TESTS)
    summary = pytester.path / "step-summary.md"
    monkeypatch.setenv("CI_OUTPUT_TOKEN", TOKEN)
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_WORKSPACE", str(pytester.path.parent))  # the rootdir: a folder
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    result = pytester.runpytest("--gate", "--gate-metrics", "out/stagegate-metrics.txt")
    out = result.stdout.str()
    assert result.ret == 1, out
    assert TOKEN not in out + result.stderr.str()
    verdict = json.loads((pytester.path / "stagegate-verdict.json").read_text())
    assert verdict["verdict"] == "fail"

    # -- annotations: each at the line that holds what it is about
    found = annotations(result.outlines)
    folder = pytester.path.name  # paths start at the workspace, one folder above the rootdir
    yaml_lines = config.read_text().splitlines()
    test_lines = (pytester.path / "test_ci_out.py").read_text().splitlines()

    def at(annotation: dict[str, Any], lines: list[str]) -> str:
        return lines[int(annotation["line"]) - 1].strip()

    by_title = {a["title"]: a for a in found}
    assert len(by_title) == len(found), found
    headline = by_title["stagegate verdict: FAIL on local (do not promote)"]
    assert headline["level"] == "error" and "file" not in headline
    critical = by_title["stagegate: critical test failed"]
    assert critical["level"] == "error"
    assert critical["file"] == f"{folder}/test_ci_out.py"
    assert "def test_checkout" in "\n".join(test_lines[int(critical["line"]) - 1 :][:2])
    assert "test_ci_out.py::test_checkout failed" in critical["message"]
    assert "***" in critical["message"]  # the token in its message is masked
    for metric, written in (("max", "max: 40ms"), ("p95", "p95: 30ms")):
        annotation = by_title[f"stagegate budget failed: {metric} of GET /slow"]
        assert annotation["level"] == "error" and annotation["file"] == f"{folder}/stagegate.yaml"
        assert written in at(annotation, yaml_lines)  # the line of the metric's key itself
    unjudged = by_title["stagegate budget not judged: p99.9 of GET /fast"]
    assert unjudged["level"] == "warning" and at(unjudged, yaml_lines) == "p99.9: 1s"
    assert "at least 1,000" in unjudged["message"]
    assert len(found) == 5, found  # the error budgets held: nothing else is annotated
    # the verdict records the same places, relative to the rootdir
    checks = {(c["endpoint"], c["metric"]): c for c in verdict["gate"]["checks"]}
    assert checks["GET /slow", "p95"]["source"]["file"] == "stagegate.yaml"
    assert "source" not in checks["GET /fast", "error_rate"]  # a default budget: no line
    # the step summary as before
    assert summary.read_text().startswith("## Stagegate verdict for local: ")

    # -- the metrics file: what the verdict says, through a real OpenMetrics parser
    text = (pytester.path / "out" / "stagegate-metrics.txt").read_text()
    assert text.endswith("# EOF\n") and TOKEN not in text
    samples = {
        (s.name, frozenset(s.labels.items())): s.value
        for family in parser.text_string_to_metric_families(text)
        for s in family.samples
    }

    def value(name: str, **labels: str) -> float:
        return samples[(name, frozenset({"target": "local", **labels}.items()))]

    assert value("stagegate_verdict", state="fail") == 1
    assert value("stagegate_verdict", state="pass") == 0
    assert value("stagegate_tests", outcome="failed") == 1
    for e in verdict["gate"]["endpoints"]:
        name = e["name"]
        assert value("stagegate_requests", endpoint=name) == e["requests"] > 0
        assert value("stagegate_error_ratio", endpoint=name) == e["error_rate"]
        assert value("stagegate_throughput_rps", endpoint=name) == e["rps"]
        for key, quantile in (("p50", "0.5"), ("p90", "0.9"), ("p95", "0.95"), ("p99", "0.99")):
            seconds = value("stagegate_latency_seconds", endpoint=name, quantile=quantile)
            assert math.isclose(seconds * 1000, e["percentiles"][key], rel_tol=1e-9)
    for c in verdict["gate"]["checks"]:
        labels = {"endpoint": c["endpoint"], "metric": c["metric"], "stage": ""}
        assert value("stagegate_check", outcome=c["outcome"], **labels) == 1
    listed = [line for line in result.outlines if "stagegate-metrics.txt" in line]
    assert listed, out  # the summary lists the file with the others


def test_gate_metrics_needs_the_gate(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", stagegate=stagegate_yaml("http://127.0.0.1:9"))
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest("--gate-metrics", "m.txt")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*--gate-metrics only applies to a gated run: add --gate.*"])
    assert "Traceback" not in result.stderr.str()
