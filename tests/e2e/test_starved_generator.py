"""A load generator starved of CPU (issue 15, item 4): the load child pinned to one CPU beside
busy processes pinned there too gets a fraction of a core and waits for the rest, so its CPU %
stays low while its requests queue. The saturation rule counts the wait (Linux
/proc/self/schedstat) with the CPU, so the verdict calls the latency budget inconclusive
instead of failing a good build on the generator's own queueing."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import yaml

from tests.conftest import stagegate_yaml
from tests.servers import HTTPTestServer

HOGS = 6  # the load child gets about a seventh of its CPU
HOG = "import time\nend = time.monotonic() + 60\nwhile time.monotonic() < end:\n    pass\n"


@contextlib.contextmanager
def starved_on(cpu: int) -> Iterator[list[int]]:
    """Busy processes pinned to ``cpu`` (each ends by itself within 60 s), and a thread that
    pins every load child under this process to it as soon as it appears; yields the pinned
    load children's PIDs."""
    hogs = [
        # each in a session of its own: with autogroup scheduling (Linux's default) the CPU is
        # shared between sessions first, and the load child runs in a session of its own
        subprocess.Popen(
            [sys.executable, "-c", HOG],
            start_new_session=True,
            preexec_fn=lambda: os.sched_setaffinity(0, {cpu}),
        )
        for _ in range(HOGS)
    ]
    pinned: list[int] = []
    stop = threading.Event()

    def pin() -> None:
        me = psutil.Process()
        while not stop.wait(0.02):
            for proc in me.children(recursive=True):
                if proc.pid in pinned:
                    continue
                with contextlib.suppress(psutil.Error, OSError):
                    if "pytest_stagegate.load.child" in " ".join(proc.cmdline()):
                        os.sched_setaffinity(proc.pid, {cpu})
                        pinned.append(proc.pid)

    watcher = threading.Thread(target=pin, daemon=True)
    watcher.start()
    try:
        yield pinned
    finally:
        stop.set()
        watcher.join()
        for hog in hogs:
            hog.kill()
            hog.wait()


@pytest.mark.skipif(
    not os.path.exists("/proc/self/schedstat") or not hasattr(os, "sched_setaffinity"),
    reason="needs Linux: /proc/self/schedstat (the wait for a CPU) and sched_setaffinity",
)
def test_starved_generator_makes_latency_inconclusive_not_failed(
    pytester: pytest.Pytester, server: HTTPTestServer
) -> None:
    doc = yaml.safe_load(stagegate_yaml(server.url))
    # a closed load with no wait: the load child always has work, so it is runnable nearly all
    # the time; a p95 budget no load through a starved generator meets
    doc["gate"]["load"].update(users=50, spawn_rate=50, duration="3s", wait="0s")
    doc["gate"]["budgets"] = {"total": {"p95": "0.1ms", "error_rate": "1%"}}
    pytester.makefile(".yaml", stagegate=yaml.safe_dump(doc, sort_keys=False))
    pytester.makepyfile("def test_ok():\n    pass\n")

    cpu = max(os.sched_getaffinity(0))
    with starved_on(cpu) as pinned:
        result = pytester.runpytest("--gate")
    assert pinned, "the load child was never seen, so never pinned"
    verdict = json.loads(Path(pytester.path / "stagegate-verdict.json").read_text())
    generator = verdict["gate"]["generator"]
    (local,) = generator["per_process"]
    assert generator["saturated"] is True, local
    # psutil's CPU % alone would not have said so: the process waited for the CPU it lacked
    assert local["cpu_max_percent"] < 90 <= local["busy_max_percent"], local
    assert local["wait_mean_percent"] >= 10, local
    assert "waited for a CPU" in generator["note"]
    assert "the machine is shared or too small" in generator["note"]
    (p95,) = [c for c in verdict["gate"]["checks"] if c["metric"] == "p95"]
    assert p95["outcome"] == "inconclusive", p95
    assert verdict["verdict"] != "fail", verdict["reasons"]
    assert any("waited for a CPU" in r for r in verdict["reasons"]), verdict["reasons"]
    assert "waited for a CPU" in result.stdout.str()
