"""pytest-html's report gets a stagegate section (``--html``): the verdict, the gate's budget
checks, the measured endpoints and a link to Locust's report, escaped and redacted. One real
gated run through pytester; the page is then opened in headless Chromium, whose DOM dump shows
that the report renders (pytest-html 4 draws its results table with JavaScript) with the
section in it."""

from __future__ import annotations

import html
import re
import secrets
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from tests.conftest import write_stagegate
from tests.servers import HTTPTestServer, Route
from tests.tools import need_module, need_tool


@pytest.fixture(autouse=True)
def _pytest_html() -> None:
    need_module("pytest_html", "the test extra installs pytest-html (or 'pytest-stagegate[html]')")


@pytest.fixture
def chromium() -> str:
    """The path of a Chromium (or Chrome) binary; the test is skipped, naming it, without
    (fails in CI: .ci/run installs it)."""
    return need_tool(
        "chromium",
        "headless Chromium opens the pytest-html report (.ci/run installs it)",
        alternatives=("chromium-browser", "google-chrome", "chrome"),
    )


def headless(chromium: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Headless Chromium with a throwaway profile and no network of its own."""
    return subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={profile}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_html_report_shows_the_final_verdict_escaped_and_redacted(
    pytester: pytest.Pytester,
    serve: Callable[[Mapping[str, Route]], HTTPTestServer],
    chromium: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token = "tok" + secrets.token_hex(12)  # a canary: any form of it in the page is a leak
    monkeypatch.setenv("HTML_SECTION_TOKEN", token)
    server = serve({"/": Route(), "/boom": Route(status=500)})
    # a request name with markup: it must show as text, never as an element
    shady = "GET <i>home</i>"
    write_stagegate(
        pytester,
        server.url,
        target={"headers": {"Authorization": "Bearer ${HTML_SECTION_TOKEN}"}},
        gate={
            "load": {
                "duration": "2s",
                "requests": [{"method": "GET", "path": "/", "name": shady}, "GET /boom"],
            },
            "budgets": {shady: {"p95": "500ms"}, "total": {"p95": "500ms"}},
        },
    )
    pytester.makepyfile(
        """
        def test_up(http, target):
            # the token in a test's captured output: pytest-html shows the log of every test
            print("auth header:", http.headers["Authorization"])
            assert http.get("/").status_code == 200
        """
    )
    # -p stagegate loads the plugin first, so pytest-html registers its report object before
    # the run: the order in which its page would be written before the verdict is decided
    result = pytester.runpytest(
        "-p", "stagegate", "--gate", "--gate-report", "locust.html", "--html=out/report.html"
    )
    assert result.ret == 1, result.stdout.str()  # /boom fails the default error budget
    page = (pytester.path / "out" / "report.html").read_text(encoding="utf-8")
    assert token not in page and html.escape(token) not in page
    assert "Bearer ***" in page or "***" in page  # the test's log is there, redacted

    # the section saw the final verdict (decided in pytest_sessionfinish, as the page was written)
    start = page.index('<section id="stagegate"')
    section = page[start : page.index("</section>", start)]
    assert 'data-verdict="fail"' in section
    assert "promote: <b>no</b>" in section
    assert "Every request to GET /boom failed" in section  # a reason, as the verdict words it
    # the gate table: endpoint, metric, limit, observed, samples, outcome per check
    rows = re.findall(
        r'<tr class="outcome-(\w+)"><td><code>([^<]*)</code></td><td>([^<]*)</td>'
        r"<td>([^<]*)</td>",
        section,
    )
    by_check = {
        (html.unescape(endpoint), metric): (outcome, html.unescape(limit))
        for outcome, endpoint, metric, limit in rows
    }
    assert by_check[(shady, "p95")] == ("pass", "<= 500 ms")
    assert by_check[("GET /boom", "error_rate")][0] == "fail"
    assert "<i>home</i>" not in section and "GET &lt;i&gt;home&lt;/i&gt;" in section
    # the link to Locust's report, relative to pytest-html's file
    assert '<a href="../locust.html">' in section
    assert (pytester.path / "locust.html").is_file()

    # the page renders: Chromium runs pytest-html's script, which fills the results table
    dom = headless(
        chromium,
        tmp_path / "profile",
        "--virtual-time-budget=5000",
        "--dump-dom",
        (pytester.path / "out" / "report.html").as_uri(),
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert 'id="stagegate"' in dom.stdout
    assert re.search(r'<td class="col-testId">[^<]*test_up</td>', dom.stdout), dom.stdout[-3000:]
    assert "<i>home</i>" not in dom.stdout and token not in dom.stdout
