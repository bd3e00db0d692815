"""Shared helpers of the benchmark scripts: start a fast server, make the package importable.

``plain_server()`` is nginx (one worker process, a fixed 10-byte answer, keep-alive) when
``nginx`` is on PATH, otherwise ``benchmarks/fastserver.py``; both answer paths under ``/json``
with ``JSON_BODY`` (application/json). nginx answers ~10x faster than
one Locust process can ask, so a throughput ratio measures the load generators, not the
server; the asyncio fallback tops out near one Locust process (~5,000 requests/s here) and
then the ratio mostly measures the server (the scripts say which one they used).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# what both servers answer under /json (benchmarks of expectations on a JSON body)
JSON_BODY = b'{"ok": true, "items": [1, 2, 3], "total": 3}'
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@contextlib.contextmanager
def fast_server(*args: str, cpus: set[int] | None = None) -> Iterator[str]:
    """Run benchmarks/fastserver.py in its own process; yields its base URL. With ``cpus``,
    the server runs on those CPUs only."""
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("fastserver.py")), *args],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().split()
        if len(line) != 2 or line[0] != "READY":
            raise RuntimeError(f"the benchmark server did not start: {line!r}")
        if cpus:
            pin_process_tree(proc.pid, cpus)
        yield f"http://127.0.0.1:{line[1]}"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)


NGINX_CONF = """
daemon off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    keepalive_requests 10000000;
    keepalive_timeout 65;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location / {{ return 200 "ok-ok-ok-k"; }}
        location /json {{ default_type application/json; return 200 '{json_body}'; }}
    }}
}}
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pin_process_tree(pid: int, cpus: set[int]) -> None:
    """Keep process ``pid`` and its children on ``cpus`` (Linux; elsewhere a no-op)."""
    if not hasattr(os, "sched_setaffinity"):
        return
    import psutil

    root = psutil.Process(pid)
    for proc in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.Error, OSError):
            os.sched_setaffinity(proc.pid, cpus)


@contextlib.contextmanager
def pinned(cpus: set[int] | None) -> Iterator[None]:
    """Run this process, and the processes it starts meanwhile, on ``cpus`` (None: as is)."""
    if cpus is None or not hasattr(os, "sched_setaffinity"):
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


@contextlib.contextmanager
def nginx_server(cpus: set[int] | None = None) -> Iterator[str]:
    """nginx in the foreground with a private config on a free port; yields its base URL.
    With ``cpus``, nginx runs on those CPUs only."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    with tempfile.TemporaryDirectory(prefix="stagegate-nginx-") as tmp:
        port = _free_port()
        conf = Path(tmp, "nginx.conf")
        conf.write_text(NGINX_CONF.format(tmp=tmp, port=port, json_body=JSON_BODY.decode()))
        proc = subprocess.Popen(
            [nginx, "-c", str(conf), "-p", tmp, "-e", f"{tmp}/error.log"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 10
            while True:
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)):
                    break
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"nginx did not start: {Path(tmp, 'error.log').read_text()}")
                time.sleep(0.05)
            if cpus:
                pin_process_tree(proc.pid, cpus)
            yield f"http://127.0.0.1:{port}"
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)


def have_nginx() -> bool:
    return bool(shutil.which("nginx") or os.path.exists("/usr/sbin/nginx"))


@contextlib.contextmanager
def plain_server(cpus: set[int] | None = None) -> Iterator[tuple[str, str]]:
    """The fastest server at hand, on ``cpus`` if given: yields (base URL, what it is)."""
    if have_nginx():
        with nginx_server(cpus) as url:
            yield url, "nginx, 1 worker process"
    else:
        with fast_server(cpus=cpus) as url:
            yield url, "benchmarks/fastserver.py (asyncio; nginx not installed)"


def cpu_plan() -> tuple[set[int] | None, set[int] | None]:
    """(the server's CPUs, the measured processes' CPU): apart, when there are two or more."""
    if not hasattr(os, "sched_getaffinity"):
        return None, None
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None, None
    return {cpus[-1]}, {cpus[0]}


# --- counting other processes' requests and CPU, side by side ---------------------------------


def value_at(samples: Sequence[tuple[float, float]], t: float, what: str) -> float:
    """A counter's value at time ``t``, interpolated between the (time, value) samples around
    it; SystemExit naming ``what`` when the samples do not cover ``t``."""
    for (t0, n0), (t1, n1) in itertools.pairwise(samples):
        if t0 <= t <= t1:
            return n0 + (n1 - n0) * (t - t0) / (t1 - t0) if t1 > t0 else float(n0)
    span = f"{samples[0][0]:.2f}-{samples[-1][0]:.2f}" if samples else "nothing"
    raise SystemExit(f"{what}: no samples around {t:.2f} (they cover {span})")


def rate_between(
    samples: Sequence[tuple[float, float]], start: float, end: float, what: str
) -> float:
    return (value_at(samples, end, what) - value_at(samples, start, what)) / (end - start)


def read_counts(path: Path) -> list[tuple[float, float]]:
    """The ``<time> <requests>`` lines a counted process appended so far (a torn last line
    left out)."""
    samples = []
    with contextlib.suppress(FileNotFoundError), open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 2 and line.endswith("\n"):
                samples.append((float(parts[0]), float(parts[1])))
    return samples


class CountedProcess:
    """A load generator in a child process (its own session) that appends ``<time> <requests>``
    lines to ``counts`` while it runs: wait until it is counting, read its samples at any time,
    stop it once they cover what is needed."""

    def __init__(self, argv: list[str], counts: Path, env: dict[str, str] | None = None) -> None:
        self.counts = counts
        counts.unlink(missing_ok=True)
        self.proc = subprocess.Popen(
            argv,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            # a session of its own, like the gate's load process: with the kernel's automatic
            # scheduling groups, each session shares the CPU evenly with the others
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def samples(self) -> list[tuple[float, float]]:
        return read_counts(self.counts)

    def wait_counting(self, timeout: float = 60.0) -> float:
        """Wait for its first sample (it is running); its time."""
        deadline = time.monotonic() + timeout
        while not (samples := self.samples()):
            if self.proc.poll() is not None:
                raise SystemExit(f"{self.proc.args[:4]} exited with {self.proc.returncode}")
            if time.monotonic() > deadline:
                raise SystemExit(f"{self.proc.args[:4]} did not start counting in {timeout:g} s")
            time.sleep(0.05)
        return samples[0][0]

    def stop_after(self, t: float, timeout: float = 60.0) -> list[tuple[float, float]]:
        """Wait until its samples pass time ``t``, stop it, and return them."""
        deadline = time.monotonic() + timeout
        while (samples := self.samples()) and samples[-1][0] <= t:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        self.stop()
        return self.samples()

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


class CpuClock:
    """A thread sampling, 10 times a second, the CPU seconds (user + system) of this process's
    descendants: ``cpu(pid)`` is a (time, CPU seconds) series to interpolate with ``value_at``;
    ``load_child()`` the pid of the gate's load process (``pytest_stagegate.load.child``)."""

    INTERVAL = 0.1

    def __init__(self) -> None:
        import psutil

        self._psutil = psutil
        self.series: dict[int, list[tuple[float, float]]] = {}
        self.cmdlines: dict[int, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        psutil = self._psutil
        me = psutil.Process()
        known: dict[int, Any] = {}
        while not self._stop.wait(self.INTERVAL):
            with contextlib.suppress(psutil.Error):
                for child in me.children(recursive=True):
                    if child.pid not in known:
                        known[child.pid] = child
                        with contextlib.suppress(psutil.Error):
                            self.cmdlines[child.pid] = " ".join(child.cmdline())
            for pid, proc in list(known.items()):
                try:
                    times = proc.cpu_times()
                except psutil.Error:
                    del known[pid]
                    continue
                now = time.time()
                self.series.setdefault(pid, []).append((now, times.user + times.system))

    def cpu(self, pid: int) -> list[tuple[float, float]]:
        return list(self.series.get(pid, []))

    def load_children(self) -> list[int]:
        return [p for p, c in self.cmdlines.items() if "pytest_stagegate.load.child" in c]

    def __enter__(self) -> CpuClock:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
