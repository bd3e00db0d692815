"""A master and two workers as separate hosts: network namespaces on this machine.

Three namespaces made by the test (unique names, removed in ``finally``): the master's, which
holds the gated pytest run (the Locust master) and the target server on 10.213.7.1, and one
for each worker (10.213.7.2, 10.213.7.3), joined to it by veth pairs on a private /24. Each
worker is a real ``stagegate worker`` with its own stagegate.yaml, proving the token.

Where namespaces cannot be made (not root, no ``ip``, no permission), the test says why and
runs the same thing as separate processes on 127.0.0.1: a real run either way, not a skip.

What "the merged percentiles equal a single process's" means with a time-bounded load: the
workers share the load by time, so which request gets which delay, and how many requests
there are, differ from run to run. The server serves a seeded, deterministic delay per arrival
(a van der Corput sequence mapped onto four plateaus: 20, 50, 100, 200 ms) and logs every
delay it served; that log is the truth a single exact process would have measured. The merged
percentiles must land on the same plateau as the log's (at or above the served delay, below
the next plateau: the gap is the room for the network and the client), and the requests the
verdict counts are the ones the server served.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pytest_stagegate.histogram import LogHistogram
from tests.servers import master_port

REPO = Path(__file__).resolve().parents[2]
IP = shutil.which("ip") or ("/usr/sbin/ip" if Path("/usr/sbin/ip").exists() else None)
TOKEN = "netns-test-worker-token-4b1d9e"
PLATEAUS = (20.0, 50.0, 100.0, 200.0)  # ms, served at 30%, 40%, 27%, 3% of the arrivals
USERS = 8

SERVER = """\
import sys, threading
from tests.servers import HTTPTestServer, Route

lock = threading.Lock()
log = open(sys.argv[2], "a", buffering=1)


def van_der_corput(i):
    v, denominator = 0.0, 1.0
    while i:
        denominator *= 2
        v += (i & 1) / denominator
        i >>= 1
    return v


def delay(index, elapsed):
    u = van_der_corput(index + 1)
    d = 0.020 if u < 0.30 else 0.050 if u < 0.70 else 0.100 if u < 0.97 else 0.200
    with lock:
        log.write(f"{d * 1000:g}\\n")
    return d


server = HTTPTestServer({"/delay": Route(latency=delay), "/": Route()}, host=sys.argv[1])
server.start()
print(server.port, flush=True)
sys.stdin.read()
server.stop()
"""

CONFIG = """\
targets:
  local:
    base_url: {url}
gate:
  min_samples: 20
  load:
    users: {users}
    spawn_rate: {users}
    duration: 3s
    warmup: 0s
    wait: 0ms
    requests: [GET /delay]
  budgets:
    total: {{error_rate: 1%}}
"""


@dataclass
class Hosts:
    """Where each part runs: a namespace per host, or this machine's loopback."""

    master_ns: str | None
    worker_ns: tuple[str | None, str | None]
    master_ip: str
    why_not: str = ""  # why the loopback fallback, when it is one

    def run(self, ns: str | None, cmd: list[str]) -> list[str]:
        return cmd if ns is None or IP is None else [IP, "netns", "exec", ns, *cmd]


def _ip(*args: str) -> None:
    assert IP is not None
    subprocess.run([IP, *args], check=True, capture_output=True, text=True, timeout=30)


@contextlib.contextmanager
def _hosts() -> Iterator[Hosts]:
    """Three namespaces joined on 10.213.7.0/24, removed on every path; or loopback."""
    if IP is None:
        yield Hosts(None, (None, None), "127.0.0.1", why_not="iproute2's `ip` is not installed")
        return
    if os.geteuid() != 0:
        yield Hosts(None, (None, None), "127.0.0.1", why_not="not root (ip netns needs root)")
        return
    tag = secrets.token_hex(3)  # unique per test: xdist workers make their own
    master, a, b = f"sg{tag}m", f"sg{tag}a", f"sg{tag}b"
    made: list[str] = []
    try:
        try:
            for ns in (master, a, b):
                _ip("netns", "add", ns)
                made.append(ns)
                _ip("-n", ns, "link", "set", "lo", "up")
            for ns, last in ((a, 2), (b, 3)):
                here, there = f"{ns}0", f"{ns}1"  # the master's end, the worker's end
                _ip("link", "add", here, "netns", master, "type", "veth", "peer", "name",
                    there, "netns", ns)  # fmt: skip
                _ip("-n", master, "addr", "add", "10.213.7.1/24", "dev", here, "noprefixroute")
                _ip("-n", master, "link", "set", here, "up")
                _ip("-n", master, "route", "add", f"10.213.7.{last}/32", "dev", here)
                _ip("-n", ns, "addr", "add", f"10.213.7.{last}/24", "dev", there)
                _ip("-n", ns, "link", "set", there, "up")
        except subprocess.CalledProcessError as e:
            reason = f"`{' '.join(map(str, e.cmd))}` failed: {(e.stderr or '').strip()}"
            yield Hosts(None, (None, None), "127.0.0.1", why_not=reason)
            return
        yield Hosts(master, (a, b), "10.213.7.1")
    finally:
        for ns in made:  # the veth pairs go with their namespaces
            subprocess.run([IP, "netns", "del", ns], capture_output=True, timeout=30)


def test_a_master_and_two_workers_on_separate_hosts_merge_exactly(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "STAGEGATE_WORKER_TOKEN": TOKEN}
    env.pop("PYTEST_XDIST_WORKER", None)
    with _hosts() as hosts:
        if hosts.why_not:
            # said in the output (-rP / on failure) and as a property of the test
            print(f"network namespaces cannot be made here ({hosts.why_not}): the master "
                  "and its workers run as separate processes on 127.0.0.1 instead")  # fmt: skip
        (tmp_path / "server.py").write_text(SERVER)
        served_log = tmp_path / "served.log"
        server = subprocess.Popen(
            hosts.run(hosts.master_ns, [sys.executable, str(tmp_path / "server.py"),
                                        hosts.master_ip, str(served_log)]),
            cwd=REPO, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        procs: list[subprocess.Popen[str]] = [server]
        try:
            assert server.stdout is not None
            url = f"http://{hosts.master_ip}:{int(server.stdout.readline())}"
            gate_dir = tmp_path / "master"
            gate_dir.mkdir()
            (gate_dir / "stagegate.yaml").write_text(CONFIG.format(url=url, users=USERS))
            (gate_dir / "test_up.py").write_text(
                "def test_up(http): assert http.get('/').status_code == 200\n"
            )
            port = master_port()  # below the ephemeral range: no other test takes it meanwhile
            gate = subprocess.Popen(
                hosts.run(hosts.master_ns, [
                    sys.executable, "-m", "pytest", "--gate", "-p", "no:cacheprovider",
                    "--gate-remote-workers", "2",
                    "--gate-master-bind", f"{hosts.master_ip}:{port}"]),
                cwd=gate_dir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                text=True,
            )  # fmt: skip
            procs.append(gate)
            workers = []
            for i, ns in enumerate(hosts.worker_ns, start=1):
                where = tmp_path / f"worker-{i}"
                where.mkdir()
                (where / "stagegate.yaml").write_text(CONFIG.format(url=url, users=USERS))
                worker = subprocess.Popen(
                    hosts.run(ns, [
                        sys.executable, "-m", "pytest_stagegate.cli", "worker",
                        "--master-host", hosts.master_ip, "--master-port", str(port),
                        "--target", "local"]),
                    cwd=where, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                    text=True,
                )  # fmt: skip
                procs.append(worker)
                workers.append(worker)
            output, _ = gate.communicate(timeout=240)
            worker_logs = [w.communicate(timeout=60)[1] for w in workers]
            server.communicate(input="", timeout=30)  # stdin closed: it stops
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.communicate()

    assert gate.returncode == 0, output
    for worker, log in zip(workers, worker_logs, strict=True):
        assert worker.returncode == 0, log
    verdict = json.loads((gate_dir / "stagegate-verdict.json").read_text())
    load_log = (gate_dir / "stagegate-load.log").read_text()
    assert verdict["gate"]["profile"]["remote_workers"] == 2
    assert verdict["gate"]["generator"]["processes"] == 2  # both workers measured
    assert load_log.count("proved $STAGEGATE_WORKER_TOKEN") == 2
    if not hosts.why_not:  # each worker came from its own host
        for address in ("10.213.7.2", "10.213.7.3"):
            assert f"from {address}" in load_log, load_log

    served = [float(line) for line in served_log.read_text().split()]
    truth = LogHistogram()
    for ms in served:
        truth.record(ms)
    total = next(e for e in verdict["gate"]["endpoints"] if e["name"] == "total")
    # every request the workers made reached the server and was counted once: none lost in
    # the merge, none counted twice (the load starts with no warm-up; ``requests`` counts the
    # answers, and the requests still waiting at the stop, served too, are counted apart)
    unanswered = int(verdict["gate"].get("load", {}).get("unanswered", 0))
    assert unanswered <= USERS  # one request in flight per user at most
    assert total["requests"] + unanswered == len(served), (total, verdict["gate"].get("load"))
    assert total["failures"] == 0
    assert len(served) >= 100  # enough for p99 to sit inside its plateau
    for name in ("p50", "p95", "p99"):
        expected = truth.percentile(float(name[1:]))
        measured = float(total["percentiles"][name])
        above = [p for p in PLATEAUS if p > expected]
        ceiling = above[0] if above else 2 * expected
        assert expected * 0.999 <= measured < ceiling, (name, expected, measured)
