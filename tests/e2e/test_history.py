"""Issue 13, part 2: the history of gated verdicts, its dashboard, and --gate-baseline auto.

Real gated runs (pytest through pytester, real Locust against a server on 127.0.0.1) keep
their verdicts in a history folder; ``--gate-baseline auto`` picks from it; ``stagegate
history`` (a real subprocess) draws the dashboard, which headless Chromium opens offline and
photographs. Ten real gated runs would cost a minute of CI: three are real, seven more are built
from a real one by the pure history layer (``history.store``), as the brief allows.
"""

from __future__ import annotations

import copy
import json
import shutil
import struct
import subprocess
import zlib
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from pytest_stagegate.verdict import sign_verdict
from pytest_stagegate.verdict.history import entries, store
from pytest_stagegate.verdict.model import parse_timestamp
from tests.conftest import write_stagegate
from tests.e2e.test_cli import stagegate
from tests.servers import HTTPTestServer, Route
from tests.tools import need_tool
from tests.unit.verdict.test_history import run_data

SIZE = (1200, 1600)


@pytest.fixture
def chromium(tmp_path: Path) -> list[str]:
    """The headless Chromium command line (without the URL); skips when it is missing (fails
    in CI: .ci/run installs it)."""
    found = need_tool(
        "chromium",
        "headless Chromium photographs the history dashboard (.ci/run installs it)",
        alternatives=("chromium-browser",),
        paths=("/usr/bin/chromium",),
    )
    return [
        found,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        f"--window-size={SIZE[0]},{SIZE[1]}",
    ]


def png_pixels(data: bytes) -> tuple[int, int, set[bytes]]:
    """(width, height, the distinct colours) of an 8-bit RGB or RGBA PNG: a tiny decoder
    (zlib and the five row filters), so no imaging library is needed."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour_type = struct.unpack(">IIBB", header[:10])
    assert depth == 8 and colour_type in (2, 6), (depth, colour_type)
    bpp = 3 if colour_type == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * bpp
    prev = bytearray(stride)
    colours: set[bytes] = set()
    for row in range(height):
        start = row * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + a) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + b) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
                line[i] = (line[i] + pred) & 0xFF
        colours.update(bytes(line[i : i + 3]) for i in range(0, stride, bpp * 7))  # sampled
        prev = line
    return width, height, colours


def gated(pytester: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, dict[str, Any]]:
    result = pytester.runpytest(
        "--gate", "--gate-history", "hist", "--gate-baseline", "auto", *args
    )
    return result, json.loads((pytester.path / "stagegate-verdict.json").read_text())


def test_ten_runs_give_a_history_a_dashboard_and_automatic_baselines(
    pytester: pytest.Pytester,
    serve: Any,
    chromium: list[str],
    tmp_path: Path,
) -> None:
    server: HTTPTestServer = serve({"/": Route(), "/api/slow": Route(latency=0.02)})
    gate: dict[str, Any] = {
        "load": {"duration": "1.5s", "requests": ["GET /", "GET /api/slow"]},
        "budgets": {"total": {"p95": "500ms", "p95_regression": "900%"}},
    }
    write_stagegate(pytester, server.url, gate=gate)
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.critical
        def test_home(http):
            assert http.get("/").status_code == 200
        """
    )
    hist = pytester.path / "hist"

    # 1. No passing verdict yet: the regression budget is not judged, the run says so, passes
    first, v1 = gated(pytester)
    assert first.ret == 0, first.stdout.str()
    first.stdout.fnmatch_lines(
        ["stagegate: baseline: no passing verdict of this target in the history yet"]
    )
    assert v1["baseline"] == {
        "from": "history",
        "history": "hist",
        "median_of": 1,
        "verdicts": [],
        "note": "no passing verdict of this target in the history yet",
    }
    assert not any(c["metric"] == "p95_regression" for c in v1["gate"]["checks"])
    assert any(
        "regression budget (p95_regression of total) was not judged" in r for r in v1["reasons"]
    )
    kept = entries(hist / "local")
    assert [p.name.rsplit("-", 1)[1] for p in kept] == ["pass.json"]
    assert json.loads(kept[0].read_text()) == v1  # the verdict as written

    # 2. The latest passing verdict is the baseline, named in the header and the verdict
    second, v2 = gated(pytester)
    assert second.ret == 0, second.stdout.str()
    second.stdout.fnmatch_lines([f"stagegate: baseline: {kept[0].name} (commit *, finished *)"])
    assert [v["file"] for v in v2["baseline"]["verdicts"]] == [
        str(Path("hist/local") / kept[0].name)
    ]
    total1 = next(e for e in v1["gate"]["endpoints"] if e["name"] == "total")
    regression = next(c for c in v2["gate"]["checks"] if c["metric"] == "p95_regression")
    assert regression["baseline"] == total1["percentiles"]["p95"]
    assert regression["outcome"] == "pass"

    # 3. A failing run (a budget too low for /api/slow) is kept; with median_of: 2 its
    # baseline is the median of runs 2 and 1 (the history layer's unit tests show that a
    # failing verdict is passed over)
    failing = copy.deepcopy(gate)
    failing["budgets"]["GET /api/slow"] = {"p95": "1ms"}
    failing["baseline"] = {"median_of": 2}
    write_stagegate(pytester, server.url, gate=failing)
    third, v3 = gated(pytester)
    assert third.ret == 1 and v3["verdict"] == "fail"
    third.stdout.fnmatch_lines(["stagegate: baseline: the median of the last 2 passing verdicts*"])
    kept = entries(hist / "local")
    assert [p.name.rsplit("-", 1)[1] for p in kept] == ["pass.json", "pass.json", "fail.json"]
    assert [Path(v["file"]).name for v in v3["baseline"]["verdicts"]] == [
        kept[1].name,
        kept[0].name,
    ]

    # Seven more, earlier, built from run 2's verdict: two fail, one is an error, one took
    # 40 minutes; the p95 climbs
    start = parse_timestamp(v2["started_at"])
    for i in range(7):
        data = copy.deepcopy(v2)
        began = start - timedelta(days=7 - i)
        took = timedelta(minutes=40 if i == 2 else 5 + i)
        data["started_at"] = began.strftime("%Y-%m-%dT%H:%M:%SZ")
        data["finished_at"] = (began + took).strftime("%Y-%m-%dT%H:%M:%SZ")
        data["verdict"] = ["pass", "fail", "pass", "error", "fail", "pass", "pass"][i]
        data["promote"] = data["verdict"] == "pass"
        for endpoint in data["gate"]["endpoints"]:
            endpoint["percentiles"]["p95"] = 10.0 + 5 * i
        store(hist, data, keep=200)
    assert len(entries(hist / "local")) == 10

    text = stagegate("history", "hist", "--format", "markdown", cwd=pytester.path)
    assert text.returncode == 0, text.stderr
    assert "Pass rate 60% (6 of 10: 1 error, 3 fail, 6 pass), below the 95% goal" in text.stdout
    assert "1 of 10 over the 30m goal" in text.stdout

    page = pytester.path / "dash.html"
    made = stagegate("history", "hist", "--html", str(page), cwd=pytester.path)
    assert made.returncode == 0, made.stderr
    html = page.read_text()
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in html and "<script" not in html

    shot = tmp_path / "dash.png"
    run = subprocess.run(
        [*chromium, f"--screenshot={shot}", page.as_uri()],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert shot.exists(), run.stderr.decode(errors="replace")[-2000:]
    width, height, colours = png_pixels(shot.read_bytes())
    assert (width, height) == SIZE
    assert len(colours) > 20  # text, lines, dots: not a blank page
    assert bytes.fromhex("2e7d32") in colours  # a passing run's green dot
    keep = Path(str(pytester.path)).parent / "history-dashboard.png"
    shutil.copy(shot, keep)  # for a person to look at (the pytester dir is kept a while)

    dom = subprocess.run(
        [*chromium, "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    ).stdout
    for text_shown in (
        "pass rate 60%",
        "goal 95%",
        "goal 30m",
        "Time to verdict of local",
        "p95 latency trend per request name of local",
        "GET /api/slow",
        "total",
    ):
        assert text_shown in dom, text_shown


def test_history_and_auto_baseline_usage_errors(
    pytester: pytest.Pytester, server: HTTPTestServer
) -> None:
    write_stagegate(pytester, server.url)
    pytester.makepyfile("def test_ok(): pass")
    no_history = pytester.runpytest("--gate", "--gate-baseline", "auto")
    assert no_history.ret == 4
    err = no_history.stderr.str()
    assert "--gate-baseline auto takes the latest passing verdict" in err
    assert "add --gate-history DIR" in err and "Traceback" not in err

    (pytester.path / "afile").write_text("x")
    not_dir = pytester.runpytest("--gate", "--gate-history", "afile")
    assert not_dir.ret == 4
    assert "--gate-history afile: is not a directory" in not_dir.stderr.str()
    assert not (pytester.path / "stagegate-verdict.json").exists()


def test_auto_baseline_drops_regression_budgets_only_on_a_first_run(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No load: ``--collect-only`` shows what the gate would judge (the header's budget count)
    and which baseline it chose, with the passing verdicts it passed over."""
    url = "http://127.0.0.1:9"
    gate = {"load": {"requests": ["GET /"]}, "budgets": {"total": {"p95_regression": "50%"}}}
    write_stagegate(pytester, url, gate=gate)
    pytester.makepyfile("def test_ok(): pass")
    hist = pytester.path / "hist"

    monkeypatch.setenv("STAGEGATE_SIGNING_KEY", "the-new-key-of-this-run")

    def budgets(lines: list[str]) -> int:
        (gate_on,) = [line for line in lines if line.startswith("stagegate: gate on: ")]
        return int(gate_on.rsplit(", ", 1)[1].removesuffix(" budgets"))

    def header() -> list[str]:
        args = ("--gate", "--gate-history", "hist", "--gate-baseline", "auto", "--collect-only")
        result = pytester.runpytest_subprocess(*args)
        assert result.ret == 0, result.stdout.str() + result.stderr.str()
        return [line for line in result.stdout.lines if line.startswith("stagegate: ")]

    def kept(state: str, key: bytes, base_url: str = url) -> Path:
        data = run_data(len(entries(hist / "local")), state)
        data["target"].update(name="local", base_url=base_url)
        return store(hist, sign_verdict(data, key), keep=10)

    # a first run: no baseline yet, the regression budget is dropped (so is it when the only
    # runs kept failed: the unit tests show that a history without a pass is a first run)
    first = header()
    dropped = budgets(first)  # stagegate_yaml's own budgets, without p95_regression
    assert "stagegate: baseline: no passing verdict of this target in the history yet" in first

    # a pass signed with the key before it was rotated: no usable baseline, the budget is
    # judged (inconclusive), the header names the pass and why
    kept("fail", b"the-new-key-of-this-run")
    old_key = kept("pass", b"the-old-key-of-last-month")
    lines = header()
    assert budgets(lines) == dropped + 1, lines
    assert (
        "stagegate: baseline: no usable passing verdict of this target among the 2 in the "
        f"history (1 fail, 1 pass); passed over 1 passing verdict: {old_key.name} (the "
        "verdict's signature does not match its content"
    ) in "\n".join(lines)

    # a newer pass of another deployment (same name, another base URL): passed over too
    elsewhere = kept("pass", b"the-new-key-of-this-run", "https://preview.example.com")
    lines = header()
    assert budgets(lines) == dropped + 1, lines
    (line,) = [x for x in lines if x.startswith("stagegate: baseline: ")]
    assert f"passed over 2 passing verdicts: {elsewhere.name} (another deployment: " in line
    assert f"; {old_key.name} (the verdict's signature does not match" in line
