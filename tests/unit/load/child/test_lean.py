"""The lean request path's parts (``load/child/lean.py``): what goes on the wire is what Locust's
FastHttpSession sends, errors read as FastHttpUser's, and Locust's request event is fired only
when someone besides the gate listens.

``lean`` imports locust (which patches the standard library with gevent), so it never runs in
the pytest process: each test runs a short script in a fresh interpreter and reads its JSON."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[4]


def run_child(code: str) -> Any:
    script = "from pytest_stagegate.load.child import locust_setup  # locust first\n" + (
        textwrap.dedent(code)
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_lean_request_sends_what_fasthttpuser_sends() -> None:
    """Request line and headers, byte for byte: a plain GET, a JSON POST with the target's and
    the request's headers, the base URL's credentials as Basic auth, a path prefix."""
    heads = run_child(
        """
        import json
        import gevent.server
        from locust.contrib.fasthttp import FastHttpSession
        from locust.event import EventHook
        from pytest_stagegate.load.plan import LoadPlan
        from pytest_stagegate.load.child.lean import LeanRequest, LeanSession

        def answer(sock, addr):
            while sock.recv(65536):
                sock.sendall(b"HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\nok")

        server = gevent.server.StreamServer(("127.0.0.1", 0), answer)
        server.start()
        base = f"http://us%40er:p%3Ass@127.0.0.1:{server.server_port}/prefix"
        plan = LoadPlan(host=base, users=1, spawn_rate=1, duration=1)
        cases = [
            ("GET", "/a?b=1", {}, None),
            ("POST", "/cart", {"X-Target": "t", "X-Req": "r"}, {"sku": "é", "n": [1, 2]}),
            ("PUT", "/empty", {"accept-encoding": "identity"}, None),
        ]
        out = []
        for method, path, headers, body in cases:
            session = FastHttpSession(base, EventHook(), None, insecure=False)
            resp = session.request(method, path, headers=headers, json=body)
            theirs = resp._response._sent_request
            lean = LeanRequest(plan, method, "n", hold=False, judge=None, path=path,
                               headers=headers, json_body=body)
            _, _, _, data = lean._fixed_request(LeanSession(base, 5.0, False))
            mine = data.decode("latin-1")
            body_bytes = b"" if body is None else json.dumps(body).encode()
            out.append([theirs + body_bytes.decode("latin-1"), mine])
        print(json.dumps(out))
        """
    )
    assert len(heads) == 3
    for theirs, mine in heads:
        assert mine == theirs
    assert "Authorization: Basic " in heads[0][1]  # the base URL's credentials
    assert heads[0][1].startswith("GET /prefix/a?b=1 HTTP/1.1\r\n")


def test_errors_read_as_fasthttpusers() -> None:
    """With FastHttpUser's ``max_retries`` 0, a timeout or a broken pipe is RetriesExceeded
    around the original (a timeout by ``classify``), a refused connection is itself."""
    errors = run_child(
        """
        import errno, json, socket
        import gevent
        from pytest_stagegate.load.child.lean import locust_error
        from pytest_stagegate.load.child.recorder import classify
        url = "http://127.0.0.1:1/x"
        cases = [socket.timeout("timed out"), gevent.Timeout(1),
                 ConnectionRefusedError(111, "Connection refused"),
                 OSError(errno.EPIPE, "Broken pipe"), ConnectionResetError(104, "reset")]
        print(json.dumps([[repr(e := locust_error(c, url)), classify(e)] for c in cases]))
        """
    )
    assert errors[0] == [
        "RetriesExceeded('http://127.0.0.1:1/x', 0, original=timed out)",
        "timeout",
    ]
    assert errors[1][0].startswith("RetriesExceeded(") and errors[1][1] == "timeout"
    assert errors[2] == ["ConnectionRefusedError(111, 'Connection refused')", "failed"]
    assert errors[3][0].startswith("RetriesExceeded(") and errors[3][1] == "failed"
    assert errors[4] == ["ConnectionResetError(104, 'reset')", "failed"]


def test_the_request_event_fires_only_when_someone_else_listens() -> None:
    """The recorder's listener and Locust's runner's own (its statistics) are served directly;
    a third listener (a user's, OpenTelemetry's) gets the event, with every request."""
    seen = run_child(
        """
        import json
        from locust.env import Environment
        from locust.event import EventHook
        from locust import User
        from pytest_stagegate.load.child.lean import Sink, bind
        from pytest_stagegate.load.child.recorder import Recorder

        class U(User):
            pass

        env = Environment(user_classes=[U], events=None)
        runner = env.create_local_runner()
        rec = Recorder()
        rec.warmup_end = 0.0
        env.events.request.add_listener(rec.on_request)
        sink = env.stagegate_sink = Sink(env.events.request)
        bind(env, rec, runner.stats)
        out = [sink.firing()]
        sink.record("GET", "/a", 5.0, 2, None, 1.0, None, None, 200, None, "u")
        heard = []
        env.events.request.add_listener(lambda **kw: heard.append(kw["name"]))
        out.append(sink.firing())
        sink.record("GET", "/b", 5.0, 2, None, 1.0, None, None, 200, None, "u")
        fresh, _ = rec.take_fresh()
        out += [sorted(fresh), heard, runner.stats.num_requests]
        print(json.dumps(out))
        """
    )
    # /a recorded directly (Locust's statistics too), /b through the event, to everyone
    assert seen == [False, True, ["/a", "/b"], ["/b"], 2]


def test_a_broken_send_is_retried_as_geventhttpclient_retries_it() -> None:
    """A server that reads the request's head, sends half a response head and resets while
    a big body is still being sent: geventhttpclient (FastHttpUser's client) retries an
    idempotent request on a fresh connection (its pool's size + 1 times), never a POST; the
    lean path's ``_exchange`` as often, with the same error at the end."""
    seen = run_child(
        """
        import json, socket, struct
        import gevent, gevent.server
        from geventhttpclient.client import HTTPClient
        from geventhttpclient.url import URL
        from pytest_stagegate.load.child.lean import _agent_headers, _exchange, _head

        accepted = [0]

        def answer(sock, addr):
            accepted[0] += 1
            seen = b""
            while b"\\r\\n\\r\\n" not in seen:
                seen += sock.recv(65536)
            sock.sendall(b"HTTP/1.1 200 OK\\r\\nContent-Le")
            gevent.sleep(0.05)
            # the body unread, SO_LINGER 0: close() resets the connection
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()

        server = gevent.server.StreamServer(("127.0.0.1", 0), answer)
        server.start()
        url = URL(f"http://127.0.0.1:{server.server_port}/big")
        body = b"x" * (32 * 1024 * 1024)  # more than the socket buffers hold
        out = []
        for method in ("PUT", "POST"):
            for who in ("geventhttpclient", "lean"):
                accepted[0] = 0
                client = HTTPClient.from_url(
                    url, concurrency=2, network_timeout=10, connection_timeout=10
                )
                try:
                    if who == "lean":
                        head = _head(client, method, url.quoted_uri, _agent_headers({}), body)
                        _exchange(client, method, head + body)
                    else:
                        client.request(method, url.quoted_uri, body=body)
                    error = "none"
                except Exception as e:
                    error = repr(e)
                client.close()
                out.append([method, who, accepted[0], error])
        print(json.dumps(out))
        """
    )
    put_theirs, put_lean, post_theirs, post_lean = seen
    assert put_theirs[2] == 4  # the pool's 2 connections + 1 retries, and the first try
    assert put_lean[2:] == put_theirs[2:]
    assert post_theirs[2] == 1
    assert post_lean[2:] == post_theirs[2:]
    assert put_lean[3].startswith("HTTPParseError(")


def test_a_rendered_request_sends_what_fasthttpuser_sends() -> None:
    """A step whose target, header values or JSON body are rendered per request (a query from
    a template, a path from a data row, a rendered body, a fixed body under a rendered path, a
    rendered Authorization) takes the fast path (the cached header block, no request object)
    and puts on the wire, byte for byte, what FastHttpSession sends for the same request, under
    a base URL with credentials and a prefix and one without; targets the fast path does not
    send as written (a space, an escape requote_uri changes, path parameters, an empty query)
    and a rendered Host take the slow path and still send the same bytes; a header value
    geventhttpclient refuses is refused with its error."""
    out = run_child(
        """
        import json
        import gevent.server
        from locust.contrib.fasthttp import FastHttpSession
        from locust.event import EventHook
        from pytest_stagegate.load.plan import LoadPlan
        from pytest_stagegate.load.child import lean
        from pytest_stagegate.load.child.lean import LeanRequest, LeanSession

        received = []

        def answer(sock, addr):
            data = b""
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    return
                data += chunk
                while b"\\r\\n\\r\\n" in data:
                    head, _, rest = data.partition(b"\\r\\n\\r\\n")
                    length = 0
                    for line in head.split(b"\\r\\n")[1:]:
                        name, _, value = line.partition(b":")
                        if name.lower() == b"content-length":
                            length = int(value)
                    if len(rest) < length:
                        break
                    received.append((head + b"\\r\\n\\r\\n" + rest[:length]).decode("latin-1"))
                    data = rest[length:]
                    sock.sendall(b"HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\nok")

        slow = []
        real_slow = LeanRequest._send_compat

        def counted(self, *args):
            slow.append(1)
            return real_slow(self, *args)

        LeanRequest._send_compat = counted
        server = gevent.server.StreamServer(("127.0.0.1", 0), answer)
        server.start()
        port = server.server_port
        bases = [f"http://us%40er:p%3Ass@127.0.0.1:{port}/prefix", f"http://127.0.0.1:{port}"]
        ident = {"Accept-Encoding": "identity"}
        token = {"Accept-Encoding": "identity", "Authorization": "Bearer tok-1", "X-Id": "é 1"}
        # method, headers, the step's path and JSON body, the rendered path, body and headers
        cases = [
            ("GET", ident, "/json", None, "/json?sku=S-001", None, None),
            ("GET", {}, "/p/{row.id}", None, "/p/42?q=a+b&r=%2F", None, None),
            ("POST", {"X-Target": "t"}, "/cart", {"sku": "{row.sku}"}, None,
             {"sku": "é", "n": [1, 2]}, None),
            ("PUT", ident, "/items/{row.id}", {"fixed": True}, "/items/7?v=1", None, None),
            ("POST", {}, "/empty/{row.id}", None, "/empty/9", None, None),
            ("GET", ident, "/me", None, "/me?a=1", None, token),
            ("GET", ident, "/me", None, None, None, token),
            ("POST", {"X-Session": "s"}, "/o", None, None, {"q": 2},
             {"X-Session": "s-2", "Content-Type": "application/json; v=2", "x-b": "b"}),
            ("PUT", {}, "/n", {"n": 1}, None, None, {"X-N": ""}),
            ("DELETE", {}, "/d/{row.id}", None, "/d/a;b/c?x=1", None, None),
            ("GET", {}, "/{row.p}", None, "/a b?c=d", None, None),
            ("GET", {}, "/{row.p}", None, "/a;v=1?c=d", None, None),
            ("GET", {}, "/{row.p}", None, "/a?", None, None),
            ("GET", {}, "/{row.p}", None, "/x%41?y=%zz", None, None),
            ("GET", {}, "/h", None, "/h?x=1", None, {"Host": f"localhost:{port}"}),
        ]
        out = []
        for base in bases:
            plan = LoadPlan(host=base, users=1, spawn_rate=1, duration=1)
            for method, headers, path, fixed, rendered, body, sent_headers in cases:
                session = FastHttpSession(base, EventHook(), None, insecure=False)
                sent = rendered or path
                json_body = body if body is not None else fixed
                session.request(
                    method, sent, headers=sent_headers or headers, json=json_body
                ).raise_for_status()
                theirs = received[-1]
                req = LeanRequest(plan, method, "n", hold=False, judge=None, path=path,
                                  headers=headers, json_body=fixed)
                before = len(slow)
                lean_session = LeanSession(base, 5.0, False)
                for _ in range(2):  # the shape built, then used
                    resp, url = req._open(lean_session, rendered, sent_headers, body)
                    resp.release()
                out.append([method, sent, theirs, received[-1], len(slow) > before])
            # a header value geventhttpclient refuses: refused alike, on the slow path
            req = LeanRequest(plan, "GET", "n", hold=False, judge=None, path="/b", headers={})
            before = len(slow)
            try:
                req._open(LeanSession(base, 5.0, False), "/b?x=1", {"X-T": "a\\r\\nb"}, None)
                error = "none"
            except ValueError as e:
                error = str(e)
            out.append(["GET", "/b?x=1", "invalid value for header field 'X-T': 'a\\\\r\\\\nb'",
                        error, len(slow) > before])
        print(json.dumps(out))
        """
    )
    assert len(out) == 32
    slow_ones = ("/d/a;b/c?x=1", "/a b?c=d", "/a;v=1?c=d", "/a?", "/x%41?y=%zz", "/h?x=1", "/b?x=1")
    for method, sent, theirs, mine, slow in out:
        assert mine == theirs, (method, sent)
        # the fast path for every target it can send as written; a ``;`` in the path, a space,
        # an empty query, an escape requote_uri changes, a rendered Host, a header value
        # geventhttpclient refuses: the slow path
        assert slow == (sent in slow_ones), sent
    fast = [mine for _, _, _, mine, slow in out if not slow]
    assert fast[0].startswith("GET /prefix/json?sku=S-001 HTTP/1.1\r\n")
    assert "Authorization: Basic " in fast[0]
    assert fast[2].startswith("POST /prefix/cart HTTP/1.1\r\n")
    assert fast[2].endswith('\r\n\r\n{"sku": "\\u00e9", "n": [1, 2]}')
    assert "Content-Length: 0\r\n" in fast[4]  # a POST without a body, as geventhttpclient
    # rendered headers: the base URL's credentials win over a rendered Authorization, as
    # FastHttpSession's; without credentials the rendered one is sent
    assert "Authorization: Basic " in fast[5] and "tok-1" not in fast[5]
    assert "Authorization: Bearer tok-1\r\n" in fast[5 + 9]
    assert "Content-Type: application/json; v=2\r\n" in fast[7]
