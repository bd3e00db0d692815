"""A tiny asyncio HTTP/1.1 keep-alive server for the benchmarks, run as its own process.

    python benchmarks/fastserver.py [--port 0] [--latency LOW_MS HIGH_MS] [--seed 1]

Prints ``READY <port>`` on stdout once it listens, then answers every request with
``200 ok`` (10 bytes of body), optionally after a latency drawn uniformly from
``[LOW_MS, HIGH_MS]`` by ``random.Random(seed)``, in arrival order. Runs until killed.

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

BODY = b"ok-ok-ok-k"
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "
    + str(len(BODY)).encode()
    + b"\r\nConnection: keep-alive\r\n\r\n"
    + BODY
)


class _Protocol(asyncio.Protocol):
    def __init__(self, delays: random.Random | None, low: float, high: float) -> None:
        self.buf = b""
        self.delays = delays
        self.low = low
        self.high = high
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
            self.buf = self.buf[end + 4 + length :]
            self._answer()

    def _answer(self) -> None:
        assert self.transport is not None
        if self.delays is None:
            self.transport.write(RESPONSE)
            return
        delay = self.delays.uniform(self.low, self.high) / 1000.0
        asyncio.get_running_loop().call_later(delay, self._write)

    def _write(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(RESPONSE)


async def serve(port: int, latency: tuple[float, float] | None, seed: int) -> None:
    # one generator for all connections: the latency sequence is fixed by the seed
    delays = random.Random(seed) if latency else None
    low, high = latency or (0.0, 0.0)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: _Protocol(delays, low, high), "127.0.0.1", port, backlog=4096
    )
    print(f"READY {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, nargs=2, metavar=("LOW_MS", "HIGH_MS"))
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    try:
        asyncio.run(serve(args.port, tuple(args.latency) if args.latency else None, args.seed))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
