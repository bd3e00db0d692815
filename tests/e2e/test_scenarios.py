"""Scenarios end to end (issue 12): expectations, captures, templates, journeys, data files and
group budgets, through the real commands against real servers on 127.0.0.1.

- The bundled example, as a user runs it (``pytest example_suites/shop --target=local
  --gate``), its load shortened: its journey (log in, list the products, check that the list
  is not empty, add one from the CSV to a cart) fails the gate with a reason that names the
  expectation when the shop's product list comes back empty with status 200
  (``SHOP_MODE=empty``): the issue's "Done when", whose passing half is test_gate.py's
  ``test_example_suite_passes_out_of_the_box`` (the example as is, every budget held).
- One pytester run against tests/servers.py's httpbin-like API: a login captured (JSON and
  header), templates from captures, target vars and a CSV row in path, headers, query and JSON
  body, checked at the server; a capture that finds nothing fails its request and skips the rest
  of its iteration; a glob budget lists the names it covered; a ``status_5xx`` budget fails on a
  route that answers some 503s, and agrees with the status classes counted; a data file's
  cells (passwords) in a failed expectation's error are never printed.
- Bad scenario keys: exit 4 with file:line:key, before any test or load (pytest in process:
  nothing is loaded; tests/unit/config/test_scenarios.py has every message).
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.servers import HTTPTestServer, Route, httpbin_routes, token_for

EXAMPLE = Path(__file__).parents[2] / "example_suites" / "shop"
EXPECTATION = 'expect.json "length(items) > `0`": got false, expected true'
SPEED = ("-p", "no:hypothesispytest")  # the inner runs do not need Hypothesis' plugin


def shortened_example(tmp_path: Path) -> Path:
    """A copy of the example whose load lasts 4 s (2 s of warm-up, as written) instead of 10 s."""
    shop = tmp_path / "shop"
    shutil.copytree(EXAMPLE, shop, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    text = (shop / "stagegate.yaml").read_text()
    text, n = re.subn(r"^    duration: 10s\n", "    duration: 4s\n", text, flags=re.M)
    assert n == 1, "the example's duration moved: update this test"
    (shop / "stagegate.yaml").write_text(text)
    return shop


def by_name(items: list[dict[str, Any]], name: str) -> dict[str, Any]:
    found = [i for i in items if i["name"] == name]
    assert len(found) == 1, (name, [i["name"] for i in items])
    return found[0]


def classes(endpoint: Mapping[str, Any]) -> dict[str, int]:
    """The endpoint's responses by status class, the classes it had."""
    return {k: n for k, n in endpoint.get("status_classes", {}).items() if n}


def checks_of(gate: Mapping[str, Any], endpoint: str) -> dict[str, dict[str, Any]]:
    return {c["metric"]: c for c in gate["checks"] if c["endpoint"] == endpoint}


def test_the_example_journey_fails_on_an_empty_product_list(tmp_path: Path) -> None:
    """The passing half (the journey and its budgets hold on a healthy shop) is
    tests/e2e/test_gate.py::test_example_suite_passes_out_of_the_box, on the example as is."""
    shop = shortened_example(tmp_path)
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SHOP_")}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", str(shop), "--target=local", "--gate",
         "-p", "no:cacheprovider", *SPEED],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={**environ, "SHOP_MODE": "empty"},
    )  # fmt: skip
    output = result.stdout + result.stderr
    verdict = json.loads((tmp_path / "stagegate-verdict.json").read_text())
    gate = verdict["gate"]
    assert gate["status"] == "completed", output
    # the smoke tests check the list's shape, not that it holds anything: they pass
    assert verdict["tests"]["passed"] == 8, output

    # the gate fails, and its reasons say which expectation failed
    assert result.returncode == 1, output
    assert verdict["verdict"] == "fail"
    assert [r for r in verdict["reasons"] if EXPECTATION in r], verdict["reasons"]
    assert EXPECTATION in output, output

    # every listing was answered 200 and is a failed request: the expectation failed it
    endpoints = gate["endpoints"]
    products = by_name(endpoints, "GET /api/products")
    assert products["requests"] > 0 and products["failures"] == products["requests"], products
    assert classes(products) == {"2xx": products["requests"]}
    shopping = by_name(gate["flows"], "shopping")
    assert shopping["requests"] > 0 and shopping["failures"] == shopping["requests"], shopping
    # the rest of the journey still ran (no capture depended on the listing), and passed:
    # the token captured at the login was accepted, the cart id and the CSV's sku filled in
    for name in ("GET /api/products/{id}", "POST /api/cart/{vars.cart_id}"):
        step = by_name(endpoints, name)
        assert step["requests"] > 0 and step["failures"] == 0, (name, output)
        assert classes(step) == {"2xx": step["requests"]}, step
    # the budgets on the journey and on the glob are judged; the glob says what it covered
    assert "p95" in checks_of(gate, "shopping"), gate["checks"]
    glob = checks_of(gate, "GET /api/*")["p99"]
    assert glob["covers"] == ["GET /api/products", "GET /api/products/{id}"], glob


USERS_CSV = [
    {"user": "ann", "password": "pw-ann-7f3k29", "sku": "A-1"},
    {"user": "bob", "password": "pw-bob-q81vz4", "sku": "A-2"},
    {"user": "cyd", "password": "pw-cyd-m20xd8", "sku": "A-3"},
]

SCENARIO = """
targets:
  local:
    base_url: {url}
    vars: {{tag: gate-run}}
gate:
  min_samples: 5
  load:
    users: 3
    spawn_rate: 3
    duration: 3s
    wait: 10ms
    data: {{file: users.csv, mode: cycle}}
    requests:
      - GET /api/flaky
    flows:
      - name: member
        weight: 2
        on_start:
          - method: POST
            path: /api/login
            json: {{user: "{{row.user}}", password: "{{row.password}}"}}
            capture: {{token: access_token, session: {{header: X-Session}}}}
        steps:
          - method: GET
            path: /api/me
            headers: {{Authorization: "Bearer {{token}}"}}
            expect: {{status: 200, json: {{user: {{present: true}}}}}}
          - method: GET
            path: /api/items
            expect: {{json: {{"length(items) > `0`": true}}, headers: {{content-type: json}}}}
          - method: POST
            path: /anything
            query: {{tag: "{{vars.tag}}"}}
            headers: {{X-Session: "{{session}}"}}
            json: {{sku: "{{row.sku}}", note: "row {{row.sku}} of {{vars.tag}}"}}
            expect: {{contains: '"tag": "gate-run"'}}
      - name: lost
        weight: 1
        steps:
          - {{method: GET, path: /api/items, name: lost items, capture: {{gone: "items[9].id"}}}}
          - {{method: GET, path: "/never/{{gone}}"}}
      - name: leaky
        weight: 1
        steps:
          - method: POST
            path: /echo
            name: echo password
            json: {{password: "{{row.password}}"}}
            expect: {{json: {{json.password: wrong}}}}
  budgets:
    total: {{status_5xx: 1%}}
    "GET /api/flaky": {{status_5xx: 40%, error_rate: 40%}}
    "GET /api/*": {{p99: 2s}}
    member: {{p95: 2s}}
"""


def test_a_scenario_against_an_httpbin_like_api(
    pytester: pytest.Pytester, serve: Callable[[Mapping[str, Route]], HTTPTestServer]
) -> None:
    routes = httpbin_routes(items=3, fail_every=4)
    routes["/echo"] = Route(respond=routes["/anything"].respond)  # the leaky flow's own echo
    server = serve(routes)
    pytester.makefile(".yaml", stagegate=SCENARIO.format(url=server.url))
    with (pytester.path / "users.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["user", "password", "sku"])
        writer.writeheader()
        writer.writerows(USERS_CSV)
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest(
        *SPEED, "--target=local", "--gate", "--verdict", "v.json", "--verdict-junit", "j.xml"
    )
    output = "\n".join(result.outlines + result.errlines)
    verdict = json.loads((pytester.path / "v.json").read_text())
    gate = verdict["gate"]
    assert gate["status"] == "completed", output
    endpoints = gate["endpoints"]

    # the journey: logged in once per user; the token and the session header captured and
    # sent; the target's vars and the user's CSV row filled in the path, query and JSON body
    login = by_name(endpoints, "POST /api/login")
    assert login["failures"] == 0, output
    assert server.count("/api/login") == 3  # once per user (on_start), warm-up included
    for name in ("GET /api/me", "GET /api/items", "POST /anything"):
        assert by_name(endpoints, name)["failures"] == 0, (name, output)
    rows = {r["user"]: r for r in USERS_CSV}
    sent = server.last_headers("/api/me")["Authorization"]
    assert sent in {f"Bearer {token_for(u)}" for u in rows}, sent
    session = server.last_headers("/anything")["X-Session"]
    assert session.startswith("sess-") and session[5:] in rows, session
    body = json.loads(server.last_body("/anything"))
    assert body["note"] == f"row {body['sku']} of gate-run"  # templates inside strings too
    assert body["sku"] in {r["sku"] for r in USERS_CSV}
    member = by_name(gate["flows"], "member")
    assert member["requests"] > 0 and member["failures"] == 0
    assert checks_of(gate, "member")["p95"]["outcome"] == "pass"

    # a capture that finds nothing fails its request and skips the rest of the iteration
    lost = by_name(endpoints, "lost items")
    assert lost["requests"] > 0 and lost["failures"] == lost["requests"]
    assert not [p for p in server.counts if p.startswith("/never")], server.counts
    assert by_name(gate["flows"], "lost")["failures"] == by_name(gate["flows"], "lost")["requests"]
    assert "capture gone: items[9].id found nothing" in output, output

    # the glob covers the names it matched, merged
    glob = checks_of(gate, "GET /api/*")["p99"]
    assert glob["covers"] == ["GET /api/flaky", "GET /api/items", "GET /api/me"], glob
    covered = sum(by_name(endpoints, n)["requests"] for n in glob["covers"])
    # (with the requests still waiting at the stop, judged at their waits so far)
    waiting = gate["load"]["unanswered_measured"]
    assert glob["samples"] <= covered + waiting and glob["outcome"] == "pass", glob

    # status_5xx: the share of all requests answered 5xx, as the status classes counted them
    total = by_name(endpoints, "total")
    flaky = by_name(endpoints, "GET /api/flaky")
    fives = sum(classes(e).get("5xx", 0) for e in endpoints if e is not total)
    assert fives == classes(flaky)["5xx"] == classes(total)["5xx"] > 0, flaky  # only the flaky's
    share = checks_of(gate, "total")["status_5xx"]
    assert share["observed"] == pytest.approx(fives / total["requests"], abs=2e-6), share
    assert share["outcome"] == "fail", share  # ~1 in 36 requests > 1%
    route = checks_of(gate, "GET /api/flaky")["status_5xx"]
    assert 0.15 <= route["observed"] <= 0.35 and route["outcome"] == "pass", route  # 1 in 4
    assert result.ret == 1 and verdict["verdict"] == "fail"
    assert any("5xx responses of total" in r for r in verdict["reasons"]), verdict["reasons"]

    # a secret column's cells (password, by its name) are secrets: the failed expectation's
    # error names it, never them
    leaky = by_name(endpoints, "echo password")
    assert leaky["requests"] > 0 and leaky["failures"] == leaky["requests"]
    assert 'expect.json "json.password"' in output, output
    files = [(pytester.path / name).read_text() for name in ("v.json", "j.xml")]
    written = "\n".join([output, *files])
    for row in USERS_CSV:
        assert row["password"] not in written, row["password"]


BAD = {
    "capture-before-use": (
        "      - {method: GET, path: /api/me, headers: {Authorization: 'Bearer {token}'}}\n",
        ("stagegate.yaml:", "token"),
    ),
    "bad-jmespath": (
        "      - {method: GET, path: /api/items, expect: {json: {'items[': 1}}}\n",
        ("stagegate.yaml:", "items["),
    ),
    "unknown-column": (
        "      - {method: GET, path: '/api/items/{row.color}'}\n",
        ("stagegate.yaml:", "color", "users.csv"),
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_scenario_keys_name_file_line_and_key(
    pytester: pytest.Pytester, server: HTTPTestServer, case: str
) -> None:
    request, expected = BAD[case]
    pytester.makefile(
        ".yaml",
        stagegate=(
            f"targets:\n  local:\n    base_url: {server.url}\n"
            "gate:\n  load:\n    data: {file: users.csv}\n    requests:\n" + request
        ),
    )
    (pytester.path / "users.csv").write_text("user,sku\nann,A-1\n")
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest_inprocess(*SPEED, "--target=local", "--gate")
    output = "\n".join(result.outlines + result.errlines)
    assert result.ret == pytest.ExitCode.USAGE_ERROR, output
    line = re.search(r"stagegate\.yaml:(\d+)", output)
    assert line is not None and int(line.group(1)) == 8, output  # the request's line
    for text in expected:
        assert text in output, (text, output)
    assert "Traceback" not in output, output
    assert server.total == 0  # refused before any load (and before the tests)
