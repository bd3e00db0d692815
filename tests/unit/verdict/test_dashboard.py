"""The history's HTML dashboard (verdict/dashboard.py): self-contained, escaped, with the
pass rate, time to verdict and latency trend charts."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path

from pytest_stagegate.verdict.dashboard import render_html
from pytest_stagegate.verdict.history import load_runs, store, summarize
from tests.unit.verdict.test_history import run_data

NOW = datetime(2026, 12, 2, 7, 0, tzinfo=timezone.utc)
EVIL = '<script>alert("x")</script><img src="https://evil.example/x.png">'


def page(tmp_path: Path, *, evil: bool = False) -> str:
    for i, state in enumerate(["pass", "fail", "pass", "pass"]):
        data = run_data(i, state, p95=100 + 10 * i, minutes=40 if i == 1 else 5)
        if evil:
            data["target"]["name"] = EVIL
            data["gate"]["endpoints"][0]["name"] = EVIL
            if data["tests"]["failed_tests"]:
                data["tests"]["failed_tests"][0]["nodeid"] = EVIL
        store(tmp_path, data, 10)
    runs, skipped = load_runs(tmp_path)
    return render_html(summarize(runs), source="hist & co", now=NOW, skipped=skipped)


def test_the_page_holds_the_charts_and_the_goals(tmp_path: Path) -> None:
    html = page(tmp_path)
    assert html.startswith("<!DOCTYPE html>")
    assert "pass rate 75%" in html and "3 of 4 runs passed; goal 95%" in html
    assert "goal 95%</text>" in html and "goal 30m</text>" in html
    assert "Time to verdict of staging" in html
    assert "p95 latency trend per request name of staging" in html
    assert html.count("<svg ") == 5  # pass rate, time, p95, p99, error rate
    assert html.count('stroke-dasharray="6,4"') == 2  # the two goal lines
    assert "hist &amp; co - made 2026-12-02 07:00 UTC" in html
    assert "tests/smoke/test_shop.py::test_login: 1 run" in html


def test_the_page_is_self_contained(tmp_path: Path) -> None:
    html = page(tmp_path)
    assert "<script" not in html and "<link" not in html and "@import" not in html
    assert "default-src 'none'" in html  # a browser refuses any resource anyway
    without_ns = html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert not re.search(r"(?i)(https?:)?//[a-z0-9]", without_ns)
    assert not re.search(r"(?i)\b(src|href)=", html)


def test_every_text_from_a_verdict_is_escaped(tmp_path: Path) -> None:
    html = page(tmp_path, evil=True)
    assert "<script" not in html and "<img" not in html and "evil.example" in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html


def test_no_runs(tmp_path: Path) -> None:
    assert "No gated verdicts in this history." in render_html([], now=NOW)
