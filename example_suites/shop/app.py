"""A tiny demo shop API for the example suite (standard library only).

    python app.py [--port 0]      # prints the port it listens on, then serves

Endpoints: GET /healthz, /version, /api/products ({"items": [...], "total": n}),
/api/products/{id}; POST /api/login {"user": "..."} -> {"access_token": "..."}; POST
/api/cart/{cart_id} {"sku": "..."} and GET /api/cart/{cart_id} with `Authorization: Bearer
<access_token>` (401 without) -> {"cart": id, "items": [{"sku", "quantity"}]}.

Switches (environment variables), to see what a failing run looks like:
    SHOP_MODE=empty       the product list is empty, with status 200 (the load gate's
                          expectation on it fails; the smoke tests, which check its shape, pass)
    SHOP_MODE=slow        product detail answers in ~300 ms (the gate's latency budget fails)
    SHOP_MODE=failing     the product list answers 500 (critical smoke tests fail)
    SHOP_MODE=stall       the app stalls for 500 ms at the end of every 5 s from its start (a GC
                          pause, a lock): a request that arrives during a stall is held until it
                          ends. SHOP_STALL_EVERY=2 stalls every 2 s instead.
    SHOP_BOOT_SECONDS=3   /healthz answers 503 for the first 3 seconds (the readiness wait)
    SHOP_VERSION=1.4.2    what /version reports
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import random
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PRODUCTS = [
    {"id": i, "sku": f"SKU-{i:03d}", "name": f"Product {i}", "price_cents": 100 * i + 99}
    for i in range(1, 21)
]
SKUS = {p["sku"] for p in PRODUCTS}
MODE = os.environ.get("SHOP_MODE", "normal")
BOOT_SECONDS = float(os.environ.get("SHOP_BOOT_SECONDS", "0"))
VERSION = os.environ.get("SHOP_VERSION", "1.4.2")
STALL_EVERY = float(os.environ.get("SHOP_STALL_EVERY", "5"))  # seconds, SHOP_MODE=stall
STALL_LENGTH = 0.5
if MODE == "stall" and not STALL_EVERY > STALL_LENGTH:
    sys.exit(f"SHOP_STALL_EVERY must be over {STALL_LENGTH} (seconds), got {STALL_EVERY}")
STARTED = time.monotonic()
CARTS: dict[str, dict[str, int]] = {}  # cart id -> sku -> quantity
CART_LOCK = threading.Lock()


def token_for(user: str) -> str:
    """The access token of ``user`` (the same user always gets the same token)."""
    return "shop-" + hashlib.sha256(f"demo-shop:{user}".encode()).hexdigest()[:32]


TOKENS: set[str] = set()  # tokens handed out by /api/login


def cart_of(cart_id: str) -> dict[str, object]:
    with CART_LOCK:
        cart = dict(CARTS.get(cart_id, {}))
    return {"cart": cart_id, "items": [{"sku": s, "quantity": n} for s, n in sorted(cart.items())]}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real API

    def setup(self) -> None:
        super().setup()
        # the answer's headers and body go out in two writes: with Nagle's algorithm and the
        # client's delayed ACK, the body would wait ~40 ms for the ACK of the headers
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def parse_request(self) -> bool:
        # Once the request has arrived, before any answer: every method and path.
        if MODE == "stall":
            stall()
        return super().parse_request()

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/":
            self._send(
                200,
                {
                    "shop": "demo",
                    "see": [
                        "/healthz",
                        "/version",
                        "/api/products",
                        "/api/login",
                        "/api/cart/{id}",
                    ],
                },
            )
        elif path == "/healthz":
            booting = time.monotonic() - STARTED < BOOT_SECONDS
            self._send(503 if booting else 200, {"status": "booting" if booting else "ok"})
        elif path == "/version":
            self._send(200, {"version": VERSION})
        elif path == "/api/products":
            if MODE == "failing":
                self._send(500, {"error": "database unavailable"})
            else:
                items = [] if MODE == "empty" else PRODUCTS
                self._send(200, {"items": items, "total": len(items)})
        elif path.startswith("/api/products/"):
            if MODE == "slow":
                time.sleep(random.uniform(0.25, 0.35))
            tail = path.rsplit("/", 1)[1]
            product = next((p for p in PRODUCTS if str(p["id"]) == tail), None)
            self._send(200 if product else 404, product or {"error": "no such product"})
        elif path.startswith("/api/cart/"):
            if self._authorized():
                self._send(200, cart_of(path.rsplit("/", 1)[1]))
        else:
            self._send(404, {"error": "not found"})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path = self.path.split("?", 1)[0]
        try:
            payload = json.loads(body) if body else {}
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            self._send(400, {"error": "expected a JSON object"})
        elif path == "/api/login":
            user = payload.get("user")
            if not isinstance(user, str) or not user:
                self._send(400, {"error": "expected {user, password}"})
                return
            token = token_for(user)
            with CART_LOCK:
                TOKENS.add(token)
            self._send(200, {"access_token": token, "token_type": "bearer"})
        elif path.startswith("/api/cart/") and path.count("/") == 3:
            if not self._authorized():
                return
            sku = payload.get("sku")
            if sku not in SKUS:
                self._send(404, {"error": f"no product with sku {sku!r}"})
                return
            cart_id = path.rsplit("/", 1)[1]
            with CART_LOCK:
                cart = CARTS.setdefault(cart_id, {})
                cart[sku] = cart.get(sku, 0) + 1
            self._send(201, cart_of(cart_id))
        else:
            self._send(404, {"error": "not found"})

    def _authorized(self) -> bool:
        """The request carries a token from /api/login; answers 401 otherwise."""
        scheme, _, token = (self.headers.get("Authorization") or "").partition(" ")
        with CART_LOCK:
            known = token in TOKENS
        if scheme.lower() == "bearer" and known:
            return True
        self._send(401, {"error": "log in first: Authorization: Bearer <access_token>"})
        return False

    def _send(self, status: int, payload: object) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def stall() -> None:
    """SHOP_MODE=stall: the last STALL_LENGTH seconds of every STALL_EVERY seconds since the
    start are a stall; a request arriving during one waits for its end."""
    phase = (time.monotonic() - STARTED) % STALL_EVERY
    if phase >= STALL_EVERY - STALL_LENGTH:
        time.sleep(STALL_EVERY - phase)


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        # A load generator closes its connections when it stops; that is not an error.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    server = Server(("127.0.0.1", args.port), Handler)
    print(server.server_address[1], flush=True)  # the port, for whoever started us
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    sys.exit(0)


if __name__ == "__main__":
    main()
