"""Run the load in child processes, from the pytest process: spawn, watch, bound, kill.

``run_load(plan)`` starts ``python -m pytest_stagegate.load.child`` (one local process, or a
master and N workers), hands each the plan on stdin, turns the master's JSON progress lines
into ``Progress`` callbacks, and returns the ``LoadResult`` the child wrote.

Guarantees:
  * Locust is never imported here (this module, and what it imports, stays gevent-free).
  * The run is bounded. The load must start within ``STARTUP_TIMEOUT`` (30 s) of the call,
    plus ``WORKER_CONNECT_TIMEOUT`` (30 s) when a master waits for workers, local or remote
    (this covers the whole start-up: the import check below and a retry on a taken port
    too). Once it started, the children must be done within ``plan.duration + grace +
    STOP_ALLOWANCE``; ``STOP_ALLOWANCE`` (15 s) is the master's wait for its workers' final
    reports (10 s) plus the HTML report and the result (5 s), and does not depend on
    ``grace``, which may be 0. Past either deadline the children are killed and the result
    says which deadline passed (status "error"). Ending takes at most 13 s more: a master that
    exits by itself leaves its workers ``WORKER_EXIT_TIMEOUT`` (5 s) to follow; whatever is
    still alive then gets SIGTERM, ``KILL_WAIT`` (3 s), SIGKILL and at most ``KILL_WAIT``
    (3 s) to be reaped; the threads reading the children's output get
    ``THREAD_JOIN_TIMEOUT`` (2 s). So, worst case, ``run_load`` returns within

        30 s + [30 s, with workers] + plan.duration + grace + 15 s + 13 s

    (plus a tenth of a second of polling), also when a child hangs or ignores SIGTERM.
  * No child outlives ``run_load``: each runs in its own process group (so a Ctrl-C at the
    terminal does not reach it half-way), and every exit path, KeyboardInterrupt and
    SystemExit included, kills the groups (SIGTERM, then SIGKILL after 3 s) and reaps them
    before re-raising. While running in the main thread with no SIGTERM handler installed,
    SIGTERM raises SystemExit here so that path is taken too. The children also exit by
    themselves if this process disappears.
  * Child stderr goes to ``log_path`` (or a temporary file), with ``plan.secrets`` replaced by
    ``***``; when a child dies without a result, the last lines of its log are in the reason.
    A ``log_path`` that cannot be written (a directory, a read-only place) is a ``LoadError``
    before anything starts; the temporary directory is removed on every path.
  * The children import this very ``pytest_stagegate``: when their interpreter would not find
    it by itself (not installed, e.g. a checkout on pytest's ``sys.path``), the directory that
    holds the package, and only that, is put on their ``PYTHONPATH``. Nothing else is added,
    so site-packages never shadows the standard library.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import json
import os
import queue
import shutil
import signal
import site
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

from .. import defaults
from .._redact import Redactor
from ..errors import LoadError
from .plan import EXIT_PORT_BUSY, STOP_ALLOWANCE, WORKER_CONNECT_TIMEOUT, LoadPlan
from .result import LoadResult
from .worker_token import ENV as WORKER_TOKEN_ENV
from .worker_token import new_token

__all__ = ["Progress", "run_load"]

CHILD_MODULE = "pytest_stagegate.load.child"
STARTUP_TIMEOUT = 30.0  # interpreter + locust import, before the load starts
WORKER_EXIT_TIMEOUT = 5.0  # workers quit right after the master; then they are killed
KILL_WAIT = 3.0
THREAD_JOIN_TIMEOUT = 2.0
IMPORT_PROBE_TIMEOUT = 10.0  # counts against STARTUP_TIMEOUT
LOG_TAIL_LINES = 20
PACKAGE = "pytest_stagegate"
_PACKAGE_DIR = Path(__file__).resolve().parents[1]  # .../pytest_stagegate
_PACKAGE_ROOT = _PACKAGE_DIR.parent  # the checkout, or site-packages when installed


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
    # the open model: the rate now (iterations/s, on the schedule) and the iterations dropped so
    # far (of the judged windows); None in the closed model
    rate: float | None = None
    dropped: int | None = None

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> Progress:
        return cls(
            rate=None if event.get("rate") is None else float(event["rate"]),
            dropped=None if event.get("dropped") is None else int(event["dropped"]),
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
    grace: float = defaults.STOP_GRACE,
    python: str = sys.executable,
    remote_workers: int = 0,
    master_bind: tuple[str, int] | None = None,
    worker_token: str | None = None,
) -> LoadResult:
    """Run ``plan`` and return what it measured.

    ``workers=0`` runs one local Locust process; ``workers=N`` a master and N workers on
    127.0.0.1. ``remote_workers=M`` makes the master wait for M more workers from other
    machines (``stagegate worker``), listening on ``master_bind`` (host, port).
    ``worker_token``: the secret every worker proves before the master counts it (the remote
    workers' ``$STAGEGATE_WORKER_TOKEN``); None gives the local workers a fresh random one.
    It reaches the children in their environment, never on a command line, and is masked in
    the load log.

    ``on_progress`` is called in this thread with every progress report; whatever
    it raises stops the run (children killed) and propagates. Raises ``LoadError`` when the
    load process cannot be started at all (no interpreter, an unwritable ``log_path``); every
    other failure is a result with status "error" and a reason.
    """
    if workers < 0 or remote_workers < 0:
        raise ValueError(f"workers must be 0 or more, got {workers} and {remote_workers}")
    if remote_workers and not worker_token:
        raise ValueError("remote workers need the token they prove (worker_token)")
    token = worker_token or new_token()
    began = time.monotonic()  # one startup allowance for both attempts: the bound holds
    with _sigterm_raises_system_exit():
        for attempt in (1, 2):
            try:
                run = _Run(
                    plan,
                    began=began,
                    workers=workers,
                    remote_workers=remote_workers,
                    master_bind=master_bind,
                    on_progress=on_progress,
                    log_path=log_path,
                    grace=grace,
                    python=python,
                    worker_token=token,
                )
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
        workers=workers + remote_workers,
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


def _child_env(python: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("LOCUST_SKIP_MONKEY_PATCH", None)  # the child relies on gevent's patching
    env["PYTHONUNBUFFERED"] = "1"
    pythonpath = env.get("PYTHONPATH", "")
    if _needs_checkout_on_path(python, pythonpath, os.getcwd()):
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_PACKAGE_ROOT), pythonpath) if p)
    return env


@functools.lru_cache(maxsize=8)
def _needs_checkout_on_path(python: str, pythonpath: str, cwd: str) -> bool:
    """Whether ``python``, started here with ``PYTHONPATH=pythonpath``, would import another
    ``pytest_stagegate`` than this one, or none, and the fix is to add the checkout.

    Asked of the interpreter itself (``importlib.util.find_spec``, which imports nothing):
    site-packages, ``.pth`` files and editable-install finders all count, as they will for the
    child. A package inside a site-packages directory is never added: that directory would
    shadow the standard library, and an installed package is the installer's business.
    """
    if _is_site_dir(_PACKAGE_ROOT):
        return False
    probe = (
        "import importlib.util as u\n"
        f"s = u.find_spec({PACKAGE!r})\n"
        "print(s.origin if s is not None and s.origin else '')\n"
    )
    env = {**os.environ, "PYTHONPATH": pythonpath}
    if not pythonpath:
        del env["PYTHONPATH"]
    try:
        found = subprocess.run(
            [python, "-c", probe],
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=IMPORT_PROBE_TIMEOUT,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return True  # cannot tell: make sure (a missing interpreter fails at spawn anyway)
    if not found:
        return True
    try:
        return Path(found).resolve().parent != _PACKAGE_DIR
    except OSError:
        return True


def _is_site_dir(path: Path) -> bool:
    if path.name in ("site-packages", "dist-packages"):
        return True
    with contextlib.suppress(Exception):  # site.* may be missing in embedded interpreters
        sites = [*site.getsitepackages(), site.getusersitepackages()]
        return any(Path(s).resolve() == path for s in sites)
    return False


class _Log:
    """The children's stderr, redacted, in one file; the last lines kept for error reasons."""

    def __init__(self, path: Path, redact: Callable[[str], str]) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = path.open("w", encoding="utf-8")
        except OSError as e:
            raise LoadError(
                f"Could not write the load log {path}: {e.strerror or e}. "
                "Choose a writable place for the verdict and its log."
            ) from e
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
                # ValueError: the file was closed while this thread was still draining;
                # OSError: the disk is full: keep draining, or the child blocks on its stderr
                with self._lock, contextlib.suppress(ValueError, OSError):
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
        *,
        began: float,
        workers: int,
        remote_workers: int,
        master_bind: tuple[str, int] | None,
        on_progress: Callable[[Progress], None] | None,
        log_path: Path | None,
        grace: float,
        python: str,
        worker_token: str,
    ) -> None:
        self.plan = plan
        self.workers = workers
        self.remote_workers = remote_workers
        self.master_bind = master_bind
        self.on_progress = on_progress
        self.log_path = log_path
        self.grace = grace
        self.python = python
        self.worker_token = worker_token
        self.redact = Redactor([*plan.secrets, worker_token])
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.threads: list[threading.Thread] = []
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.began = began  # when run_load was called: the startup allowance counts from it

    # --- lifecycle ---------------------------------------------------------------------------
    def execute(self) -> LoadResult:
        tmp: Path | None = None
        log: _Log | None = None
        try:
            try:
                tmp = Path(tempfile.mkdtemp(prefix="stagegate-load-"))
            except OSError as e:
                raise LoadError(f"Could not create a temporary directory for the load: {e}") from e
            log = _Log(self.log_path or tmp / "load.log", self.redact)
            result_path = tmp / "result.json"
            self._spawn_all(log, result_path)
            return self._watch(log, result_path)
        finally:
            try:
                self._kill_all()
            finally:  # a second Ctrl-C while killing must not leak the log or the directory
                _join(self.threads, THREAD_JOIN_TIMEOUT)
                if log is not None:
                    log.close()
                if tmp is not None:
                    shutil.rmtree(tmp, ignore_errors=True)

    def _spawn_all(self, log: _Log, result_path: Path) -> None:
        base = [self.python, "-m", CHILD_MODULE]
        env = _child_env(self.python)
        env.pop(WORKER_TOKEN_ENV, None)  # a local run's process has no master to prove it to
        if self.workers or self.remote_workers:
            # the master and its workers only: in the environment, not on a command line
            env = {**env, WORKER_TOKEN_ENV: self.worker_token}
            host, port = self.master_bind or ("127.0.0.1", _free_port())
            expected = str(self.workers + self.remote_workers)
            self._spawn(
                log,
                env,
                "master",
                [*base, "--mode", "master", "--workers", expected,
                 "--result", str(result_path),
                 "--master-host", host, "--master-port", str(port)],
            )  # fmt: skip
            # Local workers reach a master bound to every interface through loopback.
            local = "127.0.0.1" if host in ("0.0.0.0", "", "*") else host
            where = ["--master-host", local, "--master-port", str(port), "--shared-clock"]
            for i in range(1, self.workers + 1):
                self._spawn(log, env, f"worker {i}", [*base, "--mode", "worker", *where])
        else:
            self._spawn(log, env, "", [*base, "--mode", "local", "--result", str(result_path)])

    def _spawn(self, log: _Log, env: dict[str, str], label: str, cmd: list[str]) -> None:
        controller = label in ("", "master")
        try:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE if controller else subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                start_new_session=True,  # own process group: killed as a whole, no stray Ctrl-C
                env=env,
            )
        except OSError as e:
            raise LoadError(f"Could not start the load process ({self.python}): {e}") from e
        self.procs.append((label, proc))
        assert proc.stdin is not None and proc.stderr is not None
        self.threads.append(log.pump(label, proc.stderr))
        if controller:
            assert proc.stdout is not None
            self.threads.append(self._read_events(proc.stdout))
        try:
            proc.stdin.write(self.plan.to_json().encode("utf-8"))
            proc.stdin.close()
        except OSError:
            pass  # it died before reading; its exit code and log tell why

    def _read_events(self, stream: IO[bytes]) -> threading.Thread:
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

    def startup_allowance(self) -> tuple[float, str]:
        """Seconds from ``run_load``'s call to the load's start, and what they are made of."""
        if not (self.workers or self.remote_workers):
            return STARTUP_TIMEOUT, f"{STARTUP_TIMEOUT:g} s to start"
        parts = []
        if self.workers:
            parts.append(f"{self.workers} local")
        if self.remote_workers:
            parts.append(f"{self.remote_workers} remote")
        return STARTUP_TIMEOUT + WORKER_CONNECT_TIMEOUT, (
            f"{STARTUP_TIMEOUT:g} s to start + {WORKER_CONNECT_TIMEOUT:g} s for its "
            f"{' and '.join(parts)} worker(s) to connect"
        )

    def _watch(self, log: _Log, result_path: Path) -> LoadResult:
        plan = self.plan
        label, controller = self.procs[0]
        name = f"load {label}" if label else "load process"
        startup, startup_parts = self.startup_allowance()
        deadline = self.began + startup
        started = False
        while True:
            try:
                event: dict[str, Any] | None = self.events.get(timeout=0.1)
            except queue.Empty:
                event = None
            if event is not None:
                kind = event.get("event")
                if kind == "started" and not started:
                    started = True
                    deadline = time.monotonic() + plan.duration + self.grace + STOP_ALLOWANCE
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
            for worker, proc in self.procs[1:]:
                code = proc.poll()
                if code is not None and code != 0:
                    return self._failed(
                        f"The load {worker} exited with code {code} during the run. "
                        f"Last lines of its log:\n{log.tail(worker)}"
                    )
            if time.monotonic() > deadline:
                if not started:
                    return self._failed(
                        f"The {name} never started the load: it was still starting "
                        f"{startup:g} s after the load run began ({startup_parts}), and was "
                        f"killed. "
                        f"Last lines of its log:\n{log.tail(label)}"
                    )
                return self._failed(
                    f"The {name} did not stop in time: it was still running "
                    f"{plan.duration:g} s of load + {self.grace:g} s of grace + "
                    f"{STOP_ALLOWANCE:g} s to stop after it started, and was killed. "
                    f"Last lines of its log:\n{log.tail(label)}"
                )
        code = controller.returncode
        if code == EXIT_PORT_BUSY:
            raise _PortBusy  # its workers wait for nothing: killed at once, then a retry
        # the workers quit right after the master; its output is read to the end
        settle = time.monotonic() + WORKER_EXIT_TIMEOUT
        _join(self.threads[:2], WORKER_EXIT_TIMEOUT)  # the controller's stderr and stdout
        _wait_all([proc for _, proc in self.procs[1:]], settle)
        if not result_path.exists():
            return self._failed(
                f"The {name} exited with code {code} without writing a result. "
                f"Last lines of its log:\n{log.tail(label)}"
            )
        try:
            return LoadResult.from_dict(json.loads(result_path.read_text("utf-8")))
        except ValueError as e:  # JSONDecodeError is a ValueError
            return self._failed(f"The {name} wrote a result that cannot be read: {e}")

    def _failed(self, reason: str) -> LoadResult:
        return LoadResult.failed(
            self.redact(reason),
            users=self.plan.users,
            workers=self.workers + self.remote_workers,
        )

    def _kill_all(self) -> None:
        alive = [proc for _, proc in self.procs if proc.poll() is None]
        for proc in alive:
            _signal_group(proc, signal.SIGTERM)
        try:
            _wait_all(alive, time.monotonic() + KILL_WAIT)
        finally:  # a second Ctrl-C while waiting must not leave anything behind
            left = [proc for proc in alive if proc.poll() is None]
            for proc in left:
                # the whole group: a locustfile may have started processes of its own
                _signal_group(proc, signal.SIGKILL)
            _wait_all(left, time.monotonic() + KILL_WAIT)  # reaped: no zombie left behind


def _wait_all(procs: list[subprocess.Popen[bytes]], deadline: float) -> None:
    """Wait for every process to exit, all by one monotonic ``deadline``."""
    for proc in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))


def _join(threads: list[threading.Thread], timeout: float) -> None:
    """Join every thread, all within one ``timeout``."""
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    # start_new_session made the child the leader of a group with its own pid as id
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)
