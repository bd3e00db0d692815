"""A tiny asyncio HTTP/1.1 keep-alive server for the benchmarks, run as its own process.

    python benchmarks/fastserver.py [--port 0] [--latency LOW_MS HIGH_MS] [--seed 1]
                                    [--stall PERIOD_S LENGTH_S [--origin EPOCH_S]]

Prints ``READY <port>`` on stdout once it listens, then answers every request with
``200 ok`` (10 bytes of body; a path under ``/json``: ``JSON_BODY``, application/json),
optionally after a latency drawn uniformly from ``[LOW_MS, HIGH_MS]`` by
``random.Random(seed)``, in arrival order. Runs until killed.

``--stall 5 0.5`` makes it stall for the last 0.5 s of every 5 s counted from ``--origin``
(a ``time.time()`` value; default: when it starts): a request that arrives during a stall is
answered when the stall ends. The caller that chose the origin knows the whole schedule, so it
can compute the latency each scheduled request truly had (benchmarks/bench_arrival.py).

Why not tests/servers.py: a threaded server tops out at a few thousand requests/s, below what
one Locust process generates, so a throughput comparison would measure the server. This one
answers from one event loop with no per-request thread; on the 2-core benchmark box it gets
one core while the load generator gets the other (nginx is not installed there).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time

BODY = b"ok-ok-ok-k"
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "
    + str(len(BODY)).encode()
    + b"\r\nConnection: keep-alive\r\n\r\n"
    + BODY
)


JSON_BODY = b'{"ok": true, "items": [1, 2, 3], "total": 3}'  # as _common.JSON_BODY
JSON_RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
    + str(len(JSON_BODY)).encode()
    + b"\r\nConnection: keep-alive\r\n\r\n"
    + JSON_BODY
)


class Stalls:
    """The last ``length`` seconds of every ``period`` seconds from ``origin`` (epoch)."""

    def __init__(self, period: float, length: float, origin: float) -> None:
        self.period, self.length, self.origin = period, length, origin

    def hold(self, now: float) -> float:
        phase = (now - self.origin) % self.period
        return self.period - phase if phase >= self.period - self.length else 0.0


class _Protocol(asyncio.Protocol):
    def __init__(
        self, delays: random.Random | None, low: float, high: float, stalls: Stalls | None
    ) -> None:
        self.buf = b""
        self.delays = delays
        self.low = low
        self.high = high
        self.stalls = stalls
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end].lower()
            length = 0
            at = head.find(b"content-length:")
            if at >= 0:
                length = int(head[at + 15 :].split(b"\r\n", 1)[0])
            if len(self.buf) < end + 4 + length:
                return
            # the request line: "GET /json... HTTP/1.1"
            response = JSON_RESPONSE if b" /json" in head[: head.find(b" ") + 6] else RESPONSE
            self.buf = self.buf[end + 4 + length :]
            self._answer(response)

    def _answer(self, response: bytes) -> None:
        assert self.transport is not None
        delay = 0.0 if self.stalls is None else self.stalls.hold(time.time())
        if self.delays is not None:
            delay += self.delays.uniform(self.low, self.high) / 1000.0
        if delay <= 0.0:
            self.transport.write(response)
            return
        asyncio.get_running_loop().call_later(delay, self._write, response)

    def _write(self, response: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(response)


async def serve(
    port: int, latency: tuple[float, float] | None, seed: int, stalls: Stalls | None = None
) -> None:
    # one generator for all connections: the latency sequence is fixed by the seed
    delays = random.Random(seed) if latency else None
    low, high = latency or (0.0, 0.0)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: _Protocol(delays, low, high, stalls), "127.0.0.1", port, backlog=4096
    )
    print(f"READY {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, nargs=2, metavar=("LOW_MS", "HIGH_MS"))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--stall", type=float, nargs=2, metavar=("PERIOD_S", "LENGTH_S"))
    parser.add_argument("--origin", type=float, help="epoch seconds the stall schedule counts from")
    args = parser.parse_args()
    stalls = None
    if args.stall:
        period, length = args.stall
        stalls = Stalls(period, length, args.origin if args.origin is not None else time.time())
    latency = tuple(args.latency) if args.latency else None
    try:
        asyncio.run(serve(args.port, latency, args.seed, stalls))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
