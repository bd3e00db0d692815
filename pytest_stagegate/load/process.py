"""Run the load in child processes, from the pytest process: spawn, watch, bound, kill.

``run_load(plan)`` starts ``python -m pytest_stagegate.load.runner`` (one local process, or a
master and N workers), hands each the plan on stdin, turns the master's JSON progress lines
into ``Progress`` callbacks, and returns the ``LoadResult`` the child wrote.

Guarantees:
  * Locust is never imported here (this module, and what it imports, stays gevent-free).
  * The run is bounded: children still alive ``plan.duration + grace`` seconds after the load
    started (or 30 s after spawning, plus 30 s for workers to connect, if it never starts) are
    killed, and the result says so (status "error").
  * No child outlives ``run_load``: each runs in its own process group (so a Ctrl-C at the
    terminal does not reach it half-way), and every exit path, KeyboardInterrupt and
    SystemExit included, kills the groups (SIGTERM, then SIGKILL after 3 s) and reaps them
    before re-raising. While running in the main thread with no SIGTERM handler installed,
    SIGTERM raises SystemExit here so that path is taken too. The children also exit by
    themselves if this process disappears.
  * Child stderr goes to ``log_path`` (or a temporary file), with ``plan.secrets`` replaced by
    ``***``; when a child dies without a result, the last lines of its log are in the reason.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO, Any

from ..errors import LoadError
from .plan import LoadPlan
from .result import LoadResult

__all__ = ["Progress", "run_load"]

RUNNER_MODULE = "pytest_stagegate.load.runner"
STARTUP_TIMEOUT = 30.0  # interpreter + locust import, before the load starts
WORKER_CONNECT_TIMEOUT = 30.0  # the master's own bound on waiting for workers
WORKER_EXIT_TIMEOUT = 5.0  # workers quit right after the master; then they are killed
KILL_WAIT = 3.0
LOG_TAIL_LINES = 20
EXIT_PORT_BUSY = 3  # the runner's code for "the master's port was taken"
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


@dataclass(frozen=True)
class Progress:
    """One progress report of a running load (counts include the warm-up)."""

    elapsed: float  # seconds since the load started
    duration: float
    users: int
    rps: float  # recent requests per second
    p95_ms: float  # recent 95th percentile
    requests: int
    failures: int
    warmup: bool

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> Progress:
        return cls(
            elapsed=float(event["elapsed"]),
            duration=float(event["duration"]),
            users=int(event["users"]),
            rps=float(event["rps"]),
            p95_ms=float(event["p95_ms"]),
            requests=int(event["requests"]),
            failures=int(event["failures"]),
            warmup=bool(event["warmup"]),
        )


class _PortBusy(Exception):
    pass


def run_load(
    plan: LoadPlan,
    *,
    workers: int = 0,
    on_progress: Callable[[Progress], None] | None = None,
    log_path: Path | None = None,
    grace: float = 15.0,
    python: str = sys.executable,
    remote_workers: int = 0,
    master_bind: tuple[str, int] | None = None,
) -> LoadResult:
    """Run ``plan`` and return what it measured.

    ``workers=0`` runs one local Locust process; ``workers=N`` a master and N workers on
    127.0.0.1. ``remote_workers=M`` makes the master wait for M more workers from other
    machines (``stagegate worker``), listening on ``master_bind`` (host, port).

    ``on_progress`` is called in this thread with every progress report; whatever
    it raises stops the run (children killed) and propagates. Raises ``LoadError`` when the
    load process cannot be started at all; every other failure is a result with status
    "error" and a reason.
    """
    if workers < 0 or remote_workers < 0:
        raise ValueError(f"workers must be 0 or more, got {workers} and {remote_workers}")
    with _sigterm_raises_system_exit():
        for attempt in (1, 2):
            try:
                run = _Run(plan, workers, on_progress, log_path, grace, python)
                run.remote_workers = remote_workers
                run.master_bind = master_bind
                return run.execute()
            except _PortBusy:
                if master_bind is not None:
                    return LoadResult.failed(
                        f"The load master could not listen on {master_bind[0]}:{master_bind[1]}: "
                        "the port is taken. Choose another with --gate-master-bind.",
                        users=plan.users,
                        workers=workers + remote_workers,
                    )
                if attempt == 2:
                    break
    return LoadResult.failed(
        "The load master could not listen for its workers: two free ports were taken "
        "before it could use them.",
        users=plan.users,
        workers=workers,
    )


@contextlib.contextmanager
def _sigterm_raises_system_exit() -> Iterator[None]:
    """Without a handler, SIGTERM would end this process at once and orphan the children."""
    installed = False
    previous: Any = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.getsignal(signal.SIGTERM)
        if previous == signal.SIG_DFL:

            def handler(signum: int, frame: FrameType | None) -> None:
                raise SystemExit(128 + signum)

            signal.signal(signal.SIGTERM, handler)
            installed = True
    try:
        yield
    finally:
        if installed:
            signal.signal(signal.SIGTERM, previous)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _redactor(secrets: list[str]) -> Callable[[str], str]:
    ordered = sorted({s for s in secrets if s}, key=len, reverse=True)

    def redact(text: str) -> str:
        for secret in ordered:
            text = text.replace(secret, "***")
        return text

    return redact


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    # the children must import this very package, installed or not
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_ROOT, env.get("PYTHONPATH", "")) if p)
    env.pop("LOCUST_SKIP_MONKEY_PATCH", None)  # the runner relies on gevent's patching
    env["PYTHONUNBUFFERED"] = "1"
    return env


class _Log:
    """The children's stderr, redacted, in one file; the last lines kept for error reasons."""

    def __init__(self, path: Path, redact: Callable[[str], str]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("w", encoding="utf-8")
        self._redact = redact
        self._lock = threading.Lock()
        self.tails: dict[str, collections.deque[str]] = {}

    def pump(self, label: str, stream: IO[bytes]) -> threading.Thread:
        tail: collections.deque[str] = collections.deque(maxlen=LOG_TAIL_LINES)
        self.tails[label] = tail
        prefix = f"[{label}] " if label else ""

        def run() -> None:
            for raw in iter(stream.readline, b""):
                line = self._redact(raw.decode("utf-8", "replace").rstrip("\n"))
                tail.append(line)
                # ValueError: the file was closed while this thread was still draining
                with self._lock, contextlib.suppress(ValueError):
                    self._file.write(prefix + line + "\n")
                    self._file.flush()
            stream.close()

        thread = threading.Thread(target=run, name=f"stagegate-log-{label}", daemon=True)
        thread.start()
        return thread

    def tail(self, label: str) -> str:
        lines = [line for line in self.tails.get(label, ()) if line.strip()]
        return "\n".join(lines[-LOG_TAIL_LINES:]) or "(the log is empty)"

    def close(self) -> None:
        with self._lock:
            self._file.close()


class _Run:
    def __init__(
        self,
        plan: LoadPlan,
        workers: int,
        on_progress: Callable[[Progress], None] | None,
        log_path: Path | None,
        grace: float,
        python: str,
    ) -> None:
        self.plan = plan
        self.workers = workers
        self.on_progress = on_progress
        self.grace = grace
        self.python = python
        self.redact = _redactor(plan.secrets)
        self.tmp = Path(tempfile.mkdtemp(prefix="stagegate-load-"))
        self.log_path = log_path or self.tmp / "load.log"
        self.result_path = self.tmp / "result.json"
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.threads: list[threading.Thread] = []
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.remote_workers = 0
        self.master_bind: tuple[str, int] | None = None

    # --- lifecycle ---------------------------------------------------------------------------
    def execute(self) -> LoadResult:
        log = _Log(self.log_path, self.redact)
        try:
            self._spawn_all(log)
            return self._watch(log)
        finally:
            self._kill_all()
            for thread in self.threads:
                thread.join(timeout=2.0)
            log.close()
            shutil.rmtree(self.tmp, ignore_errors=True)

    def _spawn_all(self, log: _Log) -> None:
        base = [self.python, "-m", RUNNER_MODULE]
        if self.workers or self.remote_workers:
            host, port = self.master_bind or ("127.0.0.1", _free_port())
            expected = str(self.workers + self.remote_workers)
            self._spawn(
                log,
                "master",
                [*base, "--mode", "master", "--workers", expected,
                 "--result", str(self.result_path),
                 "--master-host", host, "--master-port", str(port)],
            )  # fmt: skip
            # Local workers reach a master bound to every interface through loopback.
            local = "127.0.0.1" if host in ("0.0.0.0", "", "*") else host
            where = ["--master-host", local, "--master-port", str(port)]
            for i in range(1, self.workers + 1):
                self._spawn(log, f"worker {i}", [*base, "--mode", "worker", *where])
        else:
            self._spawn(log, "", [*base, "--mode", "local", "--result", str(self.result_path)])

    def _spawn(self, log: _Log, label: str, cmd: list[str]) -> None:
        controller = label in ("", "master")
        try:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE if controller else subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                start_new_session=True,  # own process group: killed as a whole, no stray Ctrl-C
                env=_child_env(),
            )
        except OSError as e:
            raise LoadError(f"Could not start the load process ({self.python}): {e}") from e
        self.procs.append((label, proc))
        assert proc.stdin is not None and proc.stderr is not None
        self.threads.append(log.pump(label, proc.stderr))
        if controller:
            assert proc.stdout is not None
            self.threads.append(self._read_events(proc.stdout, log))
        try:
            proc.stdin.write(self.plan.to_json().encode("utf-8"))
            proc.stdin.close()
        except OSError:
            pass  # it died before reading; its exit code and log tell why

    def _read_events(self, stream: IO[bytes], log: _Log) -> threading.Thread:
        def run() -> None:
            for raw in iter(stream.readline, b""):
                try:
                    event = json.loads(raw)
                except ValueError:
                    continue
                if isinstance(event, dict):
                    self.events.put(event)
            stream.close()

        thread = threading.Thread(target=run, name="stagegate-progress", daemon=True)
        thread.start()
        return thread

    def _watch(self, log: _Log) -> LoadResult:
        plan = self.plan
        label, controller = self.procs[0]
        spawned = time.monotonic()
        deadline = spawned + STARTUP_TIMEOUT + (WORKER_CONNECT_TIMEOUT if self.workers else 0)
        while True:
            try:
                event: dict[str, Any] | None = self.events.get(timeout=0.1)
            except queue.Empty:
                event = None
            if event is not None:
                kind = event.get("event")
                if kind == "started":
                    deadline = time.monotonic() + plan.duration + self.grace
                elif kind == "progress" and self.on_progress is not None:
                    try:
                        progress = Progress.from_event(event)
                    except (KeyError, TypeError, ValueError):
                        progress = None
                    if progress is not None:
                        self.on_progress(progress)
                continue  # drain queued events before looking at the processes
            if controller.poll() is not None:
                break
            for name, proc in self.procs[1:]:
                code = proc.poll()
                if code is not None and code != 0:
                    return self._failed(
                        f"The load {name} exited with code {code} during the run. "
                        f"Last lines of its log:\n{log.tail(name)}"
                    )
            if time.monotonic() > deadline:
                return self._failed(
                    f"The load process did not stop in time: it was still running "
                    f"{plan.duration:g} s of load + {self.grace:g} s of grace after it started, "
                    f"and was killed. Last lines of its log:\n{log.tail(label)}"
                )
        code = controller.returncode
        self._wait_workers()
        for thread in self.threads[:2]:  # the controller's stderr and stdout: all lines in
            thread.join(timeout=2.0)
        if code == EXIT_PORT_BUSY:
            raise _PortBusy
        name = f"load {label}" if label else "load process"
        if not self.result_path.exists():
            return self._failed(
                f"The {name} exited with code {code} without writing a result. "
                f"Last lines of its log:\n{log.tail(label)}"
            )
        try:
            return LoadResult.from_dict(json.loads(self.result_path.read_text("utf-8")))
        except ValueError as e:  # JSONDecodeError is a ValueError
            return self._failed(f"The {name} wrote a result that cannot be read: {e}")

    def _wait_workers(self) -> None:
        deadline = time.monotonic() + WORKER_EXIT_TIMEOUT
        for _, proc in self.procs[1:]:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))

    def _failed(self, reason: str) -> LoadResult:
        return LoadResult.failed(self.redact(reason), users=self.plan.users, workers=self.workers)

    def _kill_all(self) -> None:
        alive = [proc for _, proc in self.procs if proc.poll() is None]
        for proc in alive:
            _signal_group(proc, signal.SIGTERM)
        try:
            deadline = time.monotonic() + KILL_WAIT
            for proc in alive:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        finally:  # a second Ctrl-C while waiting must not leave anything behind
            for proc in alive:
                if proc.poll() is None:
                    # the whole group: a locustfile may have started processes of its own
                    _signal_group(proc, signal.SIGKILL)
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        proc.wait(timeout=KILL_WAIT)  # reaped: no zombie left behind


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    # start_new_session made the child the leader of a group with its own pid as id
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)
