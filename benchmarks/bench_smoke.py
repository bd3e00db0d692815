"""What the ``http`` fixture costs a smoke test, against a bare session-scoped httpx.Client.

    python benchmarks/bench_smoke.py [--tests 2000] [--rounds 9] [--quick]

Each round is one pytest run, plugin active (a stagegate.yaml whose target is the local
server), of a generated project holding three groups of the same trivial smoke test,
``assert client.get("/").status_code == 200``, N of each:

  http    the plugin's ``http`` fixture (deadline transport, max_body, request log, the
          test's request summary in its record);
  bare    a session-scoped ``httpx.Client(base_url=...)`` of the project's own conftest;
  bare 2  the same as ``bare`` with a second client: the control.

The groups are interleaved test by test, in blocks of three holding one test of each group in
an order drawn anew for each block and each round, so the three meet the same slowdowns of a
shared machine at the same moments and no group keeps a place in the order.

The project's conftest times each test's whole protocol (setup, call, teardown and every plugin
hook around them, reports and records included) and sums the times per group, but for the first
test of each group, which sets up the group's client (printed apart: the ``http`` fixture's
reuses the SSL context loaded for the client of the run's prepare hook, a bare client loads its
own). A round's ratio is http / bare, the bare time being the mean of the two bare groups (the
same test twice: a steadier reference than one; http against the first alone is printed too),
target <= 1.05; and bare 2 / bare, the method's own error, which should be 1.00. The script
prints the median of the rounds and their spread.

The server is nginx when installed (one worker, fixed 10-byte answers), on a CPU of its own when
there are two or more, pytest on another; otherwise benchmarks/fastserver.py.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from _common import cpu_plan, pinned, plain_server

GROUPS = ("http", "bare", "ctrl")

CONFTEST = textwrap.dedent(
    """
    import json
    import os
    import time

    import httpx
    import pytest

    _TIMES = {"http": 0.0, "bare": 0.0, "ctrl": 0.0}  # every test but the first of its group
    _FIRST = {}  # the first test of each group: it sets up the group's client


    @pytest.hookimpl(hookwrapper=True, tryfirst=True)
    def pytest_runtest_protocol(item, nextitem):
        start = time.perf_counter()
        yield
        took = time.perf_counter() - start
        group = item.name.split("_")[1]
        if group in _FIRST:
            _TIMES[group] += took
        else:
            _FIRST[group] = took


    def pytest_sessionfinish(session):
        with open(os.environ["STAGEGATE_BENCH_TIMES"], "w") as f:
            json.dump({"times": _TIMES, "first": _FIRST}, f)


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


def write_project(project: Path, url: str, tests: int, seed: int = 0) -> None:
    (project / "stagegate.yaml").write_text(f"targets:\n  local:\n    base_url: {url}\n")
    (project / "conftest.py").write_text(CONFTEST)
    (project / "pytest.ini").write_text("[pytest]\n")
    for old in project.glob("test_smoke_*.py"):
        old.unlink()
    order = interleaved(tests, seed)
    per_module = 1500
    for start in range(0, len(order), per_module):
        parts = ["import pytest\n\npytestmark = pytest.mark.smoke\n"]
        parts += [TEST.format(group=group, i=i) for group, i in order[start : start + per_module]]
        (project / f"test_smoke_{start // per_module:03d}.py").write_text("".join(parts))


def interleaved(tests: int, seed: int = 0) -> list[tuple[str, int]]:
    """``tests`` tests of each group, in blocks of three holding one test of each group in an
    order drawn at random (``random.Random(seed)``): the groups run at the same moments, and
    none keeps a place in the order (a fixed pattern weighed 3-6% on the bare-vs-bare control
    here: a test's cost depends on its place after the others)."""
    rng = random.Random(seed)
    order = []
    for i in range(tests):
        block = list(GROUPS)
        rng.shuffle(block)
        order += [(group, i) for group in block]
    return order


def one_round(project: Path, url: str) -> tuple[dict[str, float], dict[str, float], float]:
    """(seconds per group but its first test, its first test's seconds, the run's wall time)."""
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
    return data["times"], data["first"], wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=2000, help="tests per group (default 2000)")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--quick", action="store_true", help="300 tests per group, 3 rounds")
    args = parser.parse_args()
    tests, rounds = (300, 3) if args.quick else (args.tests, args.rounds)
    if tests < 2:
        parser.error("--tests: at least 2")
    server_cpus, test_cpus = cpu_plan()
    http_ratios: list[float] = []  # http / the mean of the two bare groups
    http_one: list[float] = []  # http / the first bare group alone
    ctrl_ratios: list[float] = []
    per_test: list[float] = []
    setup: dict[str, list[float]] = {"http": [], "bare": []}
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
                write_project(project, url, tests, seed=i + 1)  # a new order each round
                times, first, wall = one_round(project, url)
                http_ratios.append(times["http"] / ((times["bare"] + times["ctrl"]) / 2))
                http_one.append(times["http"] / times["bare"])
                ctrl_ratios.append(times["ctrl"] / times["bare"])
                per_test.append(times["bare"] / (tests - 1))
                setup["http"].append(first["http"])
                setup["bare"].append(first["bare"])
                print(
                    f"round {i + 1}: http / bare {http_ratios[-1]:.3f} "
                    f"(/ the first alone {http_one[-1]:.3f}), "
                    f"bare 2 / bare {ctrl_ratios[-1]:.3f}; "
                    f"per test: http {times['http'] / (tests - 1) * 1e6:,.0f} us, "
                    f"bare {times['bare'] / (tests - 1) * 1e6:,.0f} us; "
                    f"first test: http {first['http'] * 1e3:.1f} ms, "
                    f"bare {first['bare'] * 1e3:.1f} ms; run {wall:.1f} s"
                )
    print(
        f"ratio http fixture / bare httpx.Client: {statistics.median(http_ratios):.3f}  "
        f"(target <= 1.05; rounds {min(http_ratios):.3f}-{max(http_ratios):.3f})"
    )
    print(
        f"  against the first bare group alone:   {statistics.median(http_one):.3f}  "
        f"(rounds {min(http_one):.3f}-{max(http_one):.3f})"
    )
    print(
        f"ratio bare / bare (the method's error): {statistics.median(ctrl_ratios):.3f}  "
        f"(rounds {min(ctrl_ratios):.3f}-{max(ctrl_ratios):.3f})"
    )
    print(f"a bare test: {statistics.median(per_test) * 1e6:,.0f} us (median)")
    print(
        f"first test of a group (its client's setup, left out above): "
        f"http {statistics.median(setup['http']) * 1e3:.1f} ms, "
        f"bare {statistics.median(setup['bare']) * 1e3:.1f} ms (medians)"
    )
    print(f"({time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
