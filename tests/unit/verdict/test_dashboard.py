"""The history's HTML dashboard (verdict/dashboard.py): self-contained, escaped, with the
pass rate, time to verdict and latency trend charts."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

from pytest_stagegate.verdict.dashboard import render_html
from pytest_stagegate.verdict.history import load_runs, render, store, summarize
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


def short_runs(tmp_path: Path) -> tuple[str, str]:
    """Ten runs of about 12.5 s, 20 s apart (several start in the same minute), p95 from
    0.3 ms to 250 ms: the dashboard and the text of ``stagegate history``."""
    for i in range(10):
        data = run_data(0, "fail" if i in (3, 6) else "pass", p95=0.3 + 27.5 * i)
        began = datetime(2026, 12, 2, 7, 17, tzinfo=timezone.utc) + timedelta(seconds=20 * i)
        data["started_at"] = began.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        ended = began + timedelta(seconds=12.2 + 0.07 * i)
        data["finished_at"] = ended.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        store(tmp_path, data, 50)
    runs, skipped = load_runs(tmp_path)
    summaries = summarize(runs)
    return render_html(summaries, now=NOW, skipped=skipped), render(summaries)


def chart(html: str, title: str) -> str:
    start = html.index(f"<title>{title}")
    return html[start : html.index("</svg>", start)]


def axis_labels(svg: str) -> list[str]:
    return re.findall(r'text-anchor="end" fill="#555">([^<]*)</text>', svg)


def test_the_time_axis_fits_short_runs_and_says_the_goal_is_off_it(tmp_path: Path) -> None:
    html, _ = short_runs(tmp_path)
    svg = chart(html, "Time to verdict of staging")
    assert axis_labels(svg) == ["0s", "10s", "20s"]  # not 0 .. 50m with the runs flat on 0
    assert "goal 30m, off the chart</text>" in svg
    assert 'stroke-dasharray="6,4"' not in svg  # no goal line squeezing the runs


def test_the_time_goal_is_drawn_when_the_runs_come_near_it(tmp_path: Path) -> None:
    for i, minutes in enumerate([12, 14, 11]):  # longest 14 min: 30 min within 3 times
        store(tmp_path, run_data(i, minutes=minutes), 10)
    runs, _ = load_runs(tmp_path)
    svg = chart(render_html(summarize(runs), now=NOW), "Time to verdict of staging")
    assert "goal 30m</text>" in svg and "off the chart" not in svg
    assert axis_labels(svg) == ["0m", "25m", "50m"]


def test_runs_are_numbered_and_a_start_time_is_not_repeated(tmp_path: Path) -> None:
    html, _ = short_runs(tmp_path)
    svg = chart(html, "Pass rate of staging")
    under = re.findall(r'font-size="10">([^<]*)</text>', svg)
    assert under == ["12-02 07:17", "07:18", "07:19"]  # each minute once, the day once
    numbers = re.findall(r'text-anchor="middle" fill="#555">([^<]*)</text>', svg)
    assert numbers == ["#1", "#3", "#5", "#7", "#9"]
    assert "<td>#10</td><td>2026-12-02 07:20:00</td>" in html  # the table says which is which


def test_each_y_axis_has_one_format(tmp_path: Path) -> None:
    html, _ = short_runs(tmp_path)
    assert axis_labels(chart(html, "p95 latency trend")) == ["0 ms", "250 ms", "500 ms"]
    assert axis_labels(chart(html, "Error rate per")) == ["0%", "1%", "2%"]
    assert axis_labels(chart(html, "Pass rate of")) == ["0%", "50%", "100%"]


def test_time_to_verdict_is_rounded_alike_in_the_text_the_table_and_the_page(
    tmp_path: Path,
) -> None:
    html, text = short_runs(tmp_path)
    assert "Time to verdict: median 12.5s, longest 12.8s;" in text  # was 12.515s
    assert "time to verdict 12.5s</b>" in html  # was 13s
    assert "<td>12.8s</td>" in html and "  12.8s  " in text
