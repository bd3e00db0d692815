"""How fast a dead target ends the load: seconds to the verdict against the configured duration.

    python benchmarks/bench_abort.py [--duration 60]

run_load() against a port nothing listens on (every connection refused), one local process
and then a master with two workers. Prints, for each, the load time until the child stopped
itself (result.load_seconds), the wall time of the whole run_load() call (interpreter
start-up and Locust import included), and both as a ratio of the configured duration.
"""

from __future__ import annotations

import argparse
import socket
import time

import _common  # noqa: F401  (puts the repository on sys.path)

from pytest_stagegate.load.plan import LoadPlan, PlannedRequest
from pytest_stagegate.load.process import run_load


def refused_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--users", type=int, default=10)
    args = parser.parse_args()
    for workers in (0, 2):
        plan = LoadPlan(
            host=refused_url(),
            users=args.users,
            spawn_rate=args.users,
            duration=args.duration,
            requests=[PlannedRequest("GET", "/", "GET /")],
        )
        t0 = time.monotonic()
        result = run_load(plan, workers=workers)
        wall = time.monotonic() - t0
        mode = f"{workers} workers" if workers else "1 local process"
        print(
            f"{mode}: {result.status} after {result.load_seconds:.2f} s of load "
            f"({result.load_seconds / args.duration:.3f} of {args.duration:g} s), "
            f"{wall:.2f} s wall ({wall / args.duration:.3f}); {result.reason}"
        )


if __name__ == "__main__":
    main()
