"""The verdict files are complete or absent, never half-written, and never mixed across runs.

- A writer killed (SIGKILL) at random moments, and at two chosen ones (half-way through the
  JSON, after the JUnit bytes were synced but before the rename), leaves the real files either
  absent or byte-identical to a complete write; readers in between never see anything else.
  What a killed writer does leave is its temporary file (``_atomic.py``: ``.<name>.<random>.tmp``
  in the same directory; a SIGKILL cannot be cleaned up after). That is acceptable only because
  it can never be mistaken for the real file: it is hidden, has another name, and the CI recipe's
  ``stagegate-*`` artifact pattern does not match it. The tests check exactly that.
- A second pytest run in the same directory replaces the first run's verdict and JUnit files
  completely.
- A run stopped with SIGTERM while a test runs leaves a complete verdict saying so, and a
  complete JUnit file.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import textwrap
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from pytest_stagegate.verdict import load_verdict
from tests.conftest import write_stagegate
from tests.servers import HTTPTestServer

VERDICT = "stagegate-verdict.json"
JUNIT = "stagegate-junit.xml"
LOAD_LOG = "stagegate-load.log"
RECORDS = 1500  # 0.6 MB of JSON, 0.25 MB of XML: writing both takes a few hundred ms
TMP_NAME = re.compile(r"^\.(stagegate-verdict\.json|stagegate-junit\.xml)\.[A-Za-z0-9_]+\.tmp$")
# The inner runs do not need Hypothesis' pytest plugin, whose import is most of their start-up.
SPEED = ("-p", "no:hypothesispytest")
PATIENCE = 60.0  # seconds to wait for a child to get somewhere; never reached when all is well

# The child: builds one large verdict, then rewrites both files in a loop (or once, or stops at
# a chosen point) with the package's own writers.
WRITER = textwrap.dedent(
    """\
    import json, os, sys, time
    from datetime import datetime, timedelta, timezone
    from pathlib import Path

    from pytest_stagegate.verdict.junit import write_junit
    from pytest_stagegate.verdict import CommitInfo, TestRecord, Verdict, write_verdict

    out, mode, records = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])


    def data(target):
        start = datetime(2025, 1, 15, 10, 0, tzinfo=timezone.utc)
        tests = [
            TestRecord(
                nodeid=f"tests/test_big.py::test_{i:05d}",
                outcome="failed" if i % 7 == 0 else "passed",
                duration=0.01,
                message="assert response.status_code == 200 " * 5 if i % 7 == 0 else "",
            )
            for i in range(records)
        ]
        return Verdict(
            target_name=target,
            base_url="https://staging.example.com",
            commit=CommitInfo(sha="3f2a9c1e5b7d4a60812c9e3f5a7b1d2c4e6f8a90", source="env"),
            started_at=start,
            finished_at=start + timedelta(seconds=90),
            tests=tests,
            plugin_version="0.1.0",
        ).to_dict()


    def write(d):
        write_verdict(out / "stagegate-verdict.json", d)
        write_junit(out / "stagegate-junit.xml", d)


    def stop_here(*args, **kwargs):
        print("stopped", flush=True)
        time.sleep(600)


    first = data("staging")
    if mode == "once":
        write(first)
    elif mode == "loop":
        print("ready", flush=True)
        while True:
            write(first)
    elif mode == "json-half-written":
        write(first)
        second = data("second")

        def half_dump(obj, fh, **kwargs):
            text = json.dumps(obj, **kwargs)
            fh.write(text[: len(text) // 2])
            fh.flush()
            stop_here()

        json.dump = half_dump
        write(second)
    elif mode == "junit-before-rename":
        write(first)
        second = data("second")
        write_verdict(out / "stagegate-verdict.json", second)
        os.replace = stop_here
        write_junit(out / "stagegate-junit.xml", second)
    """
)


@pytest.fixture
def writer(tmp_path: Path) -> Path:
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    return script


@pytest.fixture
def reference(writer: Path, tmp_path: Path) -> dict[str, bytes]:
    """The bytes of a complete write of the child's first verdict."""
    ref = tmp_path / "reference"
    ref.mkdir()
    subprocess.run(
        [sys.executable, str(writer), str(ref), "once", str(RECORDS)], check=True, timeout=120
    )
    files = {name: (ref / name).read_bytes() for name in (VERDICT, JUNIT)}
    # It is a real verdict: schema-valid, all records; and well-formed JUnit.
    assert len(load_verdict(ref / VERDICT)["tests"]["records"]) == RECORDS
    assert len(_junit_testcases(files[JUNIT], "stagegate.tests")) == RECORDS
    return files


def _junit_testcases(data: bytes, suite: str) -> list[ET.Element]:
    root = ET.fromstring(data)
    found = [s for s in root.iter("testsuite") if s.get("name") == suite]
    assert len(found) == 1, [s.get("name") for s in root.iter("testsuite")]
    return list(found[0].iter("testcase"))


def _start(writer: Path, out: Path, mode: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(writer), str(out), mode, str(RECORDS)],
        stdout=subprocess.PIPE,
        text=True,
    )


def _wait_for_line(proc: subprocess.Popen[str], wanted: str) -> None:
    assert proc.stdout is not None
    line = proc.stdout.readline()  # the child prints nothing else
    assert line.strip() == wanted, f"child said {line!r}, exit code {proc.poll()}"


def _kill(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=PATIENCE)
    assert proc.stdout is not None
    proc.stdout.close()


def _leftovers(directory: Path) -> list[str]:
    real = {VERDICT, JUNIT}
    others = sorted(p.name for p in directory.iterdir() if p.name not in real)
    strangers = [name for name in others if not TMP_NAME.match(name)]
    assert strangers == [], f"unexpected files: {strangers}"
    return others


def _assert_real_files_only_match_the_artifact_pattern(directory: Path) -> None:
    # The CI recipes upload "stagegate-*": a temporary file must never be among them.
    assert sorted(p.name for p in directory.glob("stagegate-*")) == sorted([VERDICT, JUNIT])


def test_a_killed_writer_leaves_complete_files_or_none(
    writer: Path, reference: dict[str, bytes], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    rng = random.Random(20250115)
    seen_absent = dict.fromkeys(reference, 0)
    seen_complete = dict.fromkeys(reference, 0)
    kills = 20
    patience = time.monotonic() + PATIENCE  # for the first complete read, over all kills
    for _ in range(kills):
        proc = _start(writer, out, "loop")
        try:
            _wait_for_line(proc, "ready")
            # Read the files while the child rewrites them, for a random while, then kill it;
            # but not before one complete read of each file: reads that only ever found the
            # files absent would prove nothing about torn writes.
            until = time.monotonic() + rng.uniform(0.0, 1.0)
            while True:
                for name, expected in reference.items():
                    try:
                        data = (out / name).read_bytes()
                    except FileNotFoundError:
                        assert seen_complete[name] == 0, f"{name} vanished after it existed"
                        seen_absent[name] += 1
                        continue
                    assert data == expected, f"{name}: {len(data)} of {len(expected)} bytes"
                    seen_complete[name] += 1
                now = time.monotonic()
                if now >= until and (all(seen_complete.values()) or now >= patience):
                    break
        finally:
            _kill(proc)
        for name, expected in reference.items():
            path = out / name
            if path.exists():
                assert path.read_bytes() == expected, f"{name} is not a complete write"

    # The reads overlapped real writes: each file was seen complete (and never torn, above).
    assert all(seen_complete.values()), f"no complete read: {seen_complete}"
    # After all that, what is there is valid as a whole.
    if (out / VERDICT).exists():
        assert len(load_verdict(out / VERDICT)["tests"]["records"]) == RECORDS
    if (out / JUNIT).exists():
        assert len(_junit_testcases((out / JUNIT).read_bytes(), "stagegate.tests")) == RECORDS
    # The CI recipes upload "stagegate-*": a temporary file must never be among them.
    assert {p.name for p in out.glob("stagegate-*")} <= {VERDICT, JUNIT}
    leftovers = _leftovers(out)
    # At most one temporary file per killed write (the one being written at the moment).
    assert len(leftovers) <= kills
    print(
        f"\n{kills} kills: {len(leftovers)} temporary file(s) left behind; reads saw "
        f"{seen_complete} complete files and {seen_absent} absent ones"
    )


@pytest.mark.parametrize("stop", ["json-half-written", "junit-before-rename"])
def test_a_writer_killed_at_a_chosen_point_leaves_the_previous_files(
    writer: Path, reference: dict[str, bytes], tmp_path: Path, stop: str
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    proc = _start(writer, out, stop)
    try:
        _wait_for_line(proc, "stopped")
    finally:
        _kill(proc)
    # The first, complete write is still there, whole.
    if stop == "json-half-written":
        assert (out / VERDICT).read_bytes() == reference[VERDICT]
        assert (out / JUNIT).read_bytes() == reference[JUNIT]
    else:
        # The second verdict was written in full; its JUnit never replaced the first one.
        assert load_verdict(out / VERDICT)["target"]["name"] == "second"
        assert (out / JUNIT).read_bytes() == reference[JUNIT]
    _assert_real_files_only_match_the_artifact_pattern(out)
    (leftover,) = _leftovers(out)
    tmp = (out / leftover).read_bytes()
    if stop == "json-half-written":
        # Truncated JSON, under a name no reader uses.
        assert leftover.startswith(f".{VERDICT}.")
        with pytest.raises(json.JSONDecodeError):
            json.loads(tmp)
    else:
        # Complete and synced, only not renamed yet.
        assert leftover.startswith(f".{JUNIT}.")
        assert ET.fromstring(tmp).iter("testsuite")


# --- pytest runs ------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STAGEGATE_TARGET", raising=False)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


def _config(pytester: pytest.Pytester, url: str) -> None:
    """Two targets on ``url``; a 1 s gate with one lenient budget, judged on any sample."""
    write_stagegate(
        pytester,
        url,
        targets={"other": {"base_url": url}},
        gate={
            "min_samples": 1,
            "load": {"duration": "1s", "wait": None, "abort": None},
            "budgets": {"total": {"error_rate": "50%", "p95": None}},
        },
    )


def _junit_names(path: Path) -> list[tuple[str, str]]:
    root = ET.parse(path).getroot()
    return [
        (str(case.get("classname")), str(case.get("name")))
        for suite in root.iter("testsuite")
        for case in suite.iter("testcase")
    ]


def _nodeids(verdict: dict[str, Any]) -> set[str]:
    return {record["nodeid"] for record in verdict["tests"]["records"]}


def test_a_second_run_replaces_the_first_runs_files(
    pytester: pytest.Pytester, server: HTTPTestServer
) -> None:
    _config(pytester, server.url)
    pytester.makepyfile(
        test_first="def test_a(): pass\ndef test_b(): pass\ndef test_c(): pass\n",
        test_second="def test_broken():\n    assert 1 == 2\n",
    )
    first = pytester.runpytest(*SPEED, "test_first.py", "--gate")
    assert first.ret == 0, first.stdout.str()
    verdict = load_verdict(pytester.path / VERDICT)
    assert _nodeids(verdict) == {
        "test_first.py::test_a",
        "test_first.py::test_b",
        "test_first.py::test_c",
    }
    assert verdict["gate"] is not None
    suites = {s.get("name") for s in ET.parse(pytester.path / JUNIT).getroot().iter("testsuite")}
    assert "stagegate.gate" in suites

    second = pytester.runpytest(*SPEED, "test_second.py", "--target", "other", "--verdict", VERDICT)
    assert second.ret == 1, second.stdout.str()
    verdict = load_verdict(pytester.path / VERDICT)
    assert _nodeids(verdict) == {"test_second.py::test_broken"}
    assert verdict["tests"]["total"] == 1 and verdict["tests"]["failed"] == 1
    assert verdict["target"]["name"] == "other"
    assert verdict["gate"] is None
    assert verdict["verdict"] == "fail"

    text = (pytester.path / JUNIT).read_text()
    assert "test_first" not in text and "'local'" not in text
    suites = {s.get("name") for s in ET.parse(pytester.path / JUNIT).getroot().iter("testsuite")}
    assert "stagegate.gate" not in suites
    tests_cases = [n for n in _junit_names(pytester.path / JUNIT) if "test_second" in n[0]]
    assert tests_cases == [("test_second", "test_broken")]
    assert not list(pytester.path.glob(".stagegate-*.tmp"))


def test_a_second_run_leaves_no_artifact_of_the_first(
    pytester: pytest.Pytester, server: HTTPTestServer
) -> None:
    _config(pytester, server.url)
    pytester.makepyfile(test_one="def test_a(): pass\n")
    assert pytester.runpytest(*SPEED, "--gate").ret == 0
    before = {p.name for p in pytester.path.glob("stagegate-*")} - {"stagegate.yaml"}
    assert LOAD_LOG in before  # the gated run keeps Locust's log next to its verdict
    assert pytester.runpytest(*SPEED, "--verdict", VERDICT).ret == 0
    after = {p.name for p in pytester.path.glob("stagegate-*")} - {"stagegate.yaml"}
    assert after == {VERDICT, JUNIT}


def test_sigterm_during_a_test_leaves_a_complete_interrupted_verdict(
    pytester: pytest.Pytester, server: HTTPTestServer
) -> None:
    _config(pytester, server.url)
    pytester.makepyfile(
        test_slow="""
        import pathlib
        import time

        def test_before():
            pass

        def test_sleeps():
            pathlib.Path("started.marker").write_text("started")
            time.sleep(30)

        def test_after():
            pass
        """
    )
    marker = pytester.path / "started.marker"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *SPEED, "--gate"],
        cwd=pytester.path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "GITHUB_STEP_SUMMARY"},
    )
    try:
        deadline = time.monotonic() + PATIENCE
        while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.exists(), "the slow test never started"
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=PATIENCE)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, output
    assert "Traceback" not in output, output

    verdict = load_verdict(pytester.path / VERDICT)  # parses and validates against the schema
    assert verdict["verdict"] == "error" and verdict["promote"] is False
    assert verdict["interrupted"] is True
    assert "interrupted" in verdict["reasons"][0], verdict["reasons"]
    outcomes = {r["nodeid"]: r["outcome"] for r in verdict["tests"]["records"]}
    assert outcomes.get("test_slow.py::test_before") == "passed", outcomes
    assert "test_slow.py::test_after" not in outcomes
    assert server.total == 0  # no load after an interrupt

    root = ET.parse(pytester.path / JUNIT).getroot()  # well-formed, complete
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    promote = suites["stagegate.verdict"].find("testcase")
    assert promote is not None
    error = promote.find("error")  # a verdict "error" is a JUnit <error>, so CI shows it red
    assert error is not None and "interrupted" in str(error.get("message")), ET.tostring(promote)
    assert ("test_slow", "test_before") in _junit_names(pytester.path / JUNIT)
    assert not list(pytester.path.glob(".stagegate-*.tmp"))
