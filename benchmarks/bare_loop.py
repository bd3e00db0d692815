"""A bare gevent loop of geventhttpclient requests: what one Python process can ask of a server
with the same HTTP library as the gate and FastHttpUser, and nothing else. Run as its own process.

    python benchmarks/bare_loop.py URL [--users 10] [--seconds 60] [--counts FILE]

``--users`` greenlets each hold their own ``HTTPClient`` (one keep-alive connection, as a user's
pool holds for one origin here) and send ``GET`` on the URL's path in a loop, reading every body
to its end; no timing, no statistics, no error classification. A greenlet samples the number of
answered requests 20 times a second and appends ``<epoch seconds> <requests>`` lines to
``--counts`` (flushed each time, so a reader sees them while it runs). Runs ``--seconds`` or
until SIGTERM/SIGINT. Used by bench_throughput.py as the floor the lean gate is compared with
(issue 15: lean gate / bare loop, goal >= 0.8).
"""

from __future__ import annotations

import argparse
import signal
import sys
import time

import gevent
import gevent.event
from geventhttpclient import HTTPClient
from geventhttpclient.url import URL

SAMPLE_INTERVAL = 0.05


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--counts", help="file to append '<time> <requests>' lines to")
    args = parser.parse_args()
    url = URL(args.url)
    path = url.request_uri
    answered = 0
    errors = 0

    def loop() -> None:
        nonlocal answered, errors
        client = HTTPClient.from_url(
            url, concurrency=1, connection_timeout=10.0, network_timeout=10.0
        )
        while True:
            try:
                response = client.get(path)
                response.read()
            except Exception:  # a benchmark floor: count and go on
                errors += 1
                gevent.sleep(0.01)
                continue
            answered += 1

    def sample() -> None:
        out = open(args.counts, "a") if args.counts else None  # noqa: SIM115
        try:
            while True:
                if out is not None:
                    out.write(f"{time.time():.6f} {answered}\n")
                    out.flush()
                gevent.sleep(SAMPLE_INTERVAL)
        finally:
            if out is not None:
                out.close()

    greenlets = [gevent.spawn(loop) for _ in range(args.users)]
    sampler = gevent.spawn(sample)
    stop = gevent.event.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        gevent.signal_handler(sig, stop.set)
    stop.wait(args.seconds)
    gevent.killall([*greenlets, sampler])
    print(f"{answered} requests, {errors} errors", file=sys.stderr)


if __name__ == "__main__":
    main()
