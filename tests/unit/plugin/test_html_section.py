"""The pytest-html section's HTML (plugin/html_section.py): built from the verdict's data,
every text redacted, then escaped."""

from __future__ import annotations

import json
from pathlib import Path

from pytest_stagegate._redact import Redactor
from pytest_stagegate.plugin.html_section import report_href, section_html

GOLDEN = Path(__file__).parents[2] / "golden"


def fail_data() -> dict:  # type: ignore[type-arg]
    return json.loads((GOLDEN / "verdict-fail.json").read_text())  # type: ignore[no-any-return]


def test_the_section_shows_state_reasons_checks_and_endpoints() -> None:
    out = section_html(fail_data(), Redactor([]), target="staging", report_link="locust.html")
    assert 'data-verdict="fail"' in out and "promote: <b>no</b>" in out
    assert "<li>P95 of GET /api/products was 412.0 ms, over its budget of 300 ms.</li>" in out
    assert (
        '<tr class="outcome-fail"><td><code>GET /api/products</code></td><td>p95</td>'
        '<td>&lt;= 300 ms</td><td class="num">412.0 ms</td>'
    ) in out
    assert '<table class="stagegate-endpoints">' in out
    assert '<a href="locust.html">locust.html</a>' in out


def test_every_text_is_redacted_then_escaped() -> None:
    data = fail_data()
    data["reasons"] = ["<script>alert(1)</script> token s3cr3t-value-xyz leaked"]
    data["gate"]["checks"][0]["endpoint"] = 'GET /"><img src=x>'
    out = section_html(data, Redactor(["s3cr3t-value-xyz"]), target="staging")
    assert "s3cr3t" not in out
    assert "<script>" not in out and "&lt;script&gt;alert(1)&lt;/script&gt; token ***" in out
    assert "<img" not in out and "GET /&quot;&gt;&lt;img src=x&gt;" in out
    assert "Locust's report" not in out  # no link without a report


def test_a_run_without_a_verdict_says_so() -> None:
    out = section_html(None, Redactor([]), target="<local>")
    assert "no verdict was decided" in out and "&lt;local&gt;" in out


def test_the_link_is_relative_to_the_page(tmp_path: Path) -> None:
    page = tmp_path / "out" / "report.html"
    assert report_href(tmp_path / "locust report.html", page) == "../locust%20report.html"
