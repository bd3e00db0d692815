"""What the ``http`` fixture costs a smoke test, against a bare session-scoped httpx.Client.

    python benchmarks/bench_smoke.py [--tests 2000] [--rounds 9] [--quick]

Each round is one pytest run, plugin active (a stagegate.yaml whose target is the local
server), of a generated project holding three groups of the same trivial smoke test,
``assert client.get("/").status_code == 200``, N of each:

  http    the plugin's ``http`` fixture (deadline transport, max_body, request log, the
          test's request summary in its record);
  bare    a session-scoped ``httpx.Client(base_url=...)`` of the project's own conftest;
  bare 2  the same as ``bare`` with a second client: the control.

The groups are interleaved test by test (``http_0, bare_0, ctrl_0, http_1, ctrl_1, bare_1,
...``: each group right after each other one equally often), so the three meet the same
slowdowns of a shared machine at the same moments. The project's conftest times each test's whole
protocol (setup, call, teardown and every plugin hook around them, reports and records
included) and sums the times per group. A round's ratio is http / bare (target <= 1.05) and
bare 2 / bare (the method's own error, which should be 1.00); the script prints the median of
the rounds and their spread.

The server is nginx when installed (one worker, fixed 10-byte answers), on a CPU of its own when
there are two or more, pytest on another; otherwise benchmarks/fastserver.py.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from _common import pinned, plain_server

GROUPS = ("http", "bare", "ctrl")

CONFTEST = textwrap.dedent(
    """
    import json
    import os
    import time

    import httpx
    import pytest

    _TIMES = {"http": 0.0, "bare": 0.0, "ctrl": 0.0}
    _COUNTS = {"http": 0, "bare": 0, "ctrl": 0}


    @pytest.hookimpl(hookwrapper=True, tryfirst=True)
    def pytest_runtest_protocol(item, nextitem):
        start = time.perf_counter()
        yield
        group = item.name.split("_")[1]
        _TIMES[group] += time.perf_counter() - start
        _COUNTS[group] += 1


    def pytest_sessionfinish(session):
        with open(os.environ["STAGEGATE_BENCH_TIMES"], "w") as f:
            json.dump({"times": _TIMES, "counts": _COUNTS}, f)


    @pytest.fixture(scope="session")
    def bare():
        with httpx.Client(base_url=os.environ["STAGEGATE_BENCH_URL"]) as client:
            yield client


    @pytest.fixture(scope="session")
    def ctrl():
        with httpx.Client(base_url=os.environ["STAGEGATE_BENCH_URL"]) as client:
            yield client
    """
)

TEST = """
def test_{group}_{i}({group}):
    assert {group}.get("/").status_code == 200
"""


def write_project(project: Path, url: str, tests: int) -> None:
    (project / "stagegate.yaml").write_text(f"targets:\n  local:\n    base_url: {url}\n")
    (project / "conftest.py").write_text(CONFTEST)
    (project / "pytest.ini").write_text("[pytest]\n")
    order = interleaved(tests)
    per_module = 1500
    for start in range(0, len(order), per_module):
        parts = ["import pytest\n\npytestmark = pytest.mark.smoke\n"]
        parts += [TEST.format(group=group, i=i) for group, i in order[start : start + per_module]]
        (project / f"test_smoke_{start // per_module:03d}.py").write_text("".join(parts))


def interleaved(tests: int) -> list[tuple[str, int]]:
    """``tests`` tests of each group, in the repeated order http, bare, ctrl, http, ctrl, bare:
    each group comes right after each other one equally often, so what a test leaves behind
    (garbage, cold caches) weighs on every group alike."""
    pattern = [GROUPS[0], GROUPS[1], GROUPS[2], GROUPS[0], GROUPS[2], GROUPS[1]]
    made = dict.fromkeys(GROUPS, 0)
    order = []
    while min(made.values()) < tests:
        for group in pattern:
            if made[group] < tests:
                order.append((group, made[group]))
                made[group] += 1
    return order


def one_round(project: Path, url: str) -> tuple[dict[str, float], float]:
    """(seconds per group, the run's wall time)."""
    times = project / "times.json"
    env = {**os.environ, "STAGEGATE_BENCH_URL": url, "STAGEGATE_BENCH_TIMES": str(times)}
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--target=local"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"the benchmark run failed ({done.returncode}):\n{done.stdout[-3000:]}")
    data = json.loads(times.read_text())
    return data["times"], wall


def cpu_plan() -> tuple[set[int] | None, set[int] | None]:
    """(the server's CPUs, pytest's CPU): apart, when there are two or more."""
    if not hasattr(os, "sched_getaffinity"):
        return None, None
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None, None
    return {cpus[-1]}, {cpus[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=2000, help="tests per group (default 2000)")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--quick", action="store_true", help="300 tests per group, 3 rounds")
    args = parser.parse_args()
    tests, rounds = (300, 3) if args.quick else (args.tests, args.rounds)
    server_cpus, test_cpus = cpu_plan()
    http_ratios: list[float] = []
    ctrl_ratios: list[float] = []
    per_test: list[float] = []
    started = time.monotonic()
    with plain_server(server_cpus) as (url, server), tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        write_project(project, url, tests)
        print(f"server: {server}; {tests:,} tests per group, {rounds} rounds")
        if server_cpus:
            print(f"server on CPU {server_cpus}, pytest on CPU {test_cpus}")
        else:
            print("CPUs: not pinned (one CPU, or no affinity control)")
        with pinned(test_cpus):
            one_round(project, url)  # warm-up: bytecode, file cache
            for i in range(rounds):
                times, wall = one_round(project, url)
                http_ratios.append(times["http"] / times["bare"])
                ctrl_ratios.append(times["ctrl"] / times["bare"])
                per_test.append(times["bare"] / tests)
                print(
                    f"round {i + 1}: http / bare {http_ratios[-1]:.3f}, "
                    f"bare 2 / bare {ctrl_ratios[-1]:.3f}; "
                    f"per test: http {times['http'] / tests * 1e6:,.0f} us, "
                    f"bare {times['bare'] / tests * 1e6:,.0f} us; run {wall:.1f} s"
                )
    print(
        f"ratio http fixture / bare httpx.Client: {statistics.median(http_ratios):.3f}  "
        f"(target <= 1.05; rounds {min(http_ratios):.3f}-{max(http_ratios):.3f})"
    )
    print(
        f"ratio bare / bare (the method's error): {statistics.median(ctrl_ratios):.3f}  "
        f"(rounds {min(ctrl_ratios):.3f}-{max(ctrl_ratios):.3f})"
    )
    print(f"a bare test: {statistics.median(per_test) * 1e6:,.0f} us (median)")
    print(f"({time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
