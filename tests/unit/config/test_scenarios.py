"""Scenarios in stagegate.yaml (issue 12): expectations, captures and templates, flows, data
files, budgets on flows and globs; per-target overrides; every mistake reported at its file,
line and key with a hint, in one paragraph."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_stagegate import defaults
from pytest_stagegate.budgets import Budget
from pytest_stagegate.config import (
    Capture,
    ConfigError,
    DataSpec,
    GateSettings,
    JsonExpect,
    RequestSpec,
    load_config,
)

MARK = "# <--"  # the line a bad case must be reported on

TARGETS = """\
targets:
  staging:
    base_url: "http://127.0.0.1:9"
    vars: {cart_id: 7}
  prod:
    base_url: "http://127.0.0.1:9"
    vars: {cart_id: 8, region: eu}
gate:
  load:
"""

USERS_CSV = "user,sku\nann@example.com,SKU-1001\nbob@example.com,SKU-1002\n"

JOURNEY = """\
    data: {file: data/users.csv, mode: unique}
    requests: ["GET /api/health"]
    flows:
      - name: checkout
        weight: 3
        wait: [100ms, 300ms]
        on_start:
          - method: POST
            path: /api/login
            json: {user: "{row.user}"}
            capture: {token: access_token, request_id: {header: X-Request-Id}}
        steps:
          - method: GET
            path: /api/products
            headers: {Authorization: "Bearer {token}"}
            query: {page: 1, q: "{row.sku}", ratio: 2.5}
            expect:
              status: 200
              json: {"length(items) > `0`": true, "total": {present: true}, "error": null}
              contains: items
              headers: {content-type: application/json}
            capture: {first: "items[0].id"}
          - method: POST
            path: "/api/cart/{vars.cart_id}"
            json: {sku: "{row.sku}", from: "{first}"}
  budgets:
    total: {p95: 300ms, status_5xx: 0.1%}
    "GET /api/*": {p99: 500ms}
    checkout: {p95: 2s}
"""


def write(tmp_path: Path, text: str, csv: str | bytes | None = USERS_CSV) -> Path:
    path = tmp_path / defaults.CONFIG_FILE
    path.write_text(text, encoding="utf-8")
    if csv is not None:
        (tmp_path / "data").mkdir(exist_ok=True)
        data = csv.encode("utf-8") if isinstance(csv, str) else csv
        (tmp_path / "data" / "users.csv").write_bytes(data)
    return path


def settings(tmp_path: Path, load: str, csv: str | None = USERS_CSV) -> dict[str, GateSettings]:
    config = load_config(write(tmp_path, TARGETS + load, csv))
    return {name: config.gate_settings(name) for name in ("staging", "prod")}


# --- what is read ------------------------------------------------------------------------------


def test_a_whole_journey_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the data file is relative to stagegate.yaml, not the cwd
    gate = settings(tmp_path, JOURNEY)["staging"]
    load = gate.load
    assert [r.name for r in load.requests] == ["GET /api/health"]
    assert load.data == DataSpec(
        file=(tmp_path / "data" / "users.csv").resolve(), mode="unique", columns=("user", "sku")
    )
    (flow,) = load.flows
    assert (flow.name, flow.weight, flow.wait) == ("checkout", 3, (0.1, 0.3))
    (login,) = flow.on_start
    assert login == RequestSpec(
        method="POST",
        path="/api/login",
        name="POST /api/login",
        json={"user": "{row.user}"},
        capture=(
            Capture("token", json="access_token"),
            Capture("request_id", header="X-Request-Id"),
        ),
    )
    products, cart = flow.steps
    assert products.headers == {"Authorization": "Bearer {token}"}
    assert products.query == {"page": "1", "q": "{row.sku}", "ratio": "2.5"}
    assert products.expect_status == (200,)
    assert products.expect_json == (
        JsonExpect("length(items) > `0`", value=True),
        JsonExpect("total", present=True),
        JsonExpect("error", value=None),
    )
    assert products.expect_contains == "items"
    assert products.expect_headers == {"content-type": "application/json"}
    assert products.capture == (Capture("first", json="items[0].id"),)
    # the name is the template as written: names never carry data
    assert cart.name == "POST /api/cart/{vars.cart_id}"
    assert cart.json == {"sku": "{row.sku}", "from": "{first}"}
    budgets = {(b.endpoint, b.metric): b.limit for b in gate.budgets}
    assert budgets[("GET /api/*", "p99")] == 500.0
    assert budgets[("checkout", "p95")] == 2000.0
    assert budgets[("total", "status_5xx")] == pytest.approx(0.001)


def test_expect_status_keeps_working_and_expect_takes_a_list(tmp_path: Path) -> None:
    load = settings(
        tmp_path,
        """\
    requests:
      - {path: /a, expect_status: 201}
      - {path: /b, expect: {status: [200, 204]}}
      - {path: /c, expect: {json: {"a": {present: false}, "b": [1, {c: x}]}}}
      - {path: /d, expect: {headers: {X-Count: 3}}}
""",
    )["staging"].load
    a, b, c, d = load.requests
    assert (a.expect_status, b.expect_status, c.expect_status) == ((201,), (200, 204), ())
    assert c.expect_json == (JsonExpect("a", present=False), JsonExpect("b", value=[1, {"c": "x"}]))
    assert d.expect_headers == {"X-Count": "3"}


def test_literal_braces_are_doubled_anywhere(tmp_path: Path) -> None:
    (request,) = settings(
        tmp_path,
        """\
    requests:
      - {path: "/a/{{id}}", headers: {X-T: "{{x}}"}, query: {q: "}}"}, json: {"{k}": "{{v}}"}}
""",
    )["staging"].load.requests
    assert request.path == "/a/{{id}}" and request.json == {"{k}": "{{v}}"}


def test_vars_are_checked_per_target_and_not_for_a_target_without_load(tmp_path: Path) -> None:
    text = """\
    requests: ["GET /r/{vars.region}"]
"""
    with pytest.raises(ConfigError, match="target 'staging' has no var 'region'"):
        settings(tmp_path, text)
    quiet = TARGETS.replace(
        '  staging:\n    base_url: "http://127.0.0.1:9"\n',
        '  staging:\n    base_url: "http://127.0.0.1:9"\n    protected: true\n',
    )
    config = load_config(write(tmp_path, quiet + text))
    assert config.gate_settings("prod").load.requests[0].path == "/r/{vars.region}"


def test_an_override_with_its_own_scenario_drops_the_base_data(tmp_path: Path) -> None:
    gate = settings(
        tmp_path,
        JOURNEY.replace(
            "  budgets:",
            "  targets:\n    prod:\n      load:\n"
            "        flows: [{name: browse, steps: ['GET /api/items']}]\n  budgets:",
        ).replace("    checkout: {p95: 2s}\n", ""),
    )
    assert gate["staging"].load.data is not None and gate["staging"].load.requests
    prod = gate["prod"].load
    assert prod.data is None and prod.requests == () and [f.name for f in prod.flows] == ["browse"]


def test_an_override_may_set_only_the_data_file(tmp_path: Path) -> None:
    (tmp_path / "other.csv").write_text("user,sku,extra\nu1,s1,e1\n", encoding="utf-8")
    gate = settings(
        tmp_path,
        JOURNEY.replace(
            "  budgets:", "  targets:\n    prod:\n      load: {data: {file: other.csv}}\n  budgets:"
        ),
    )
    prod = gate["prod"].load
    assert prod.data is not None and prod.data.file.name == "other.csv"
    assert prod.data.mode == "cycle" and prod.flows == gate["staging"].load.flows


def test_requests_and_flows_may_share_a_step_name(tmp_path: Path) -> None:
    load = settings(
        tmp_path,
        """\
    requests: ["GET /a"]
    flows: [{name: f, steps: ["GET /a", "GET /b"]}]
  budgets: {"GET /a": {p95: 1s}, f: {p99: 2s}, "GET /[ab]": {max: 3s}}
""",
    )["staging"]
    assert {b.endpoint for b in load.budgets} == {"GET /a", "f", "GET /[ab]"}


def test_an_exact_request_name_wins_over_a_glob(tmp_path: Path) -> None:
    gate = settings(
        tmp_path,
        """\
    requests: [{path: /a, name: "GET /a*"}]
  budgets: {"GET /a*": {p95: 1s}}
""",
    )["staging"]
    assert gate.budgets == (Budget("GET /a*", "p95", 1000.0, source=gate.budgets[0].source),)


# --- mistakes ----------------------------------------------------------------------------------

REQ = "    requests:\n"
FLOW = "    flows:\n      - name: f\n        steps:\n"
DATA = "    data: {file: data/users.csv}\n"
LOGIN = (
    "        on_start:\n          - {method: POST, path: /login, capture: {token: access_token}}\n"
)

BAD: list[tuple[str, str, str, list[str]]] = [
    # expect
    (
        "expect-and-expect_status",
        REQ + "      - {path: /a, expect: {status: 200}, expect_status: 200}  # <--\n",
        "gate.load.requests[0].expect_status",
        ["expect_status and expect cannot be used together", "expect: {status: 200"],
    ),
    (
        "expect-unknown-key",
        REQ + "      - {path: /a, expect: {staus: 200}}  # <--\n",
        "gate.load.requests[0].expect.staus",
        ["unknown key 'staus'; did you mean 'status'?", "status, json, contains, headers"],
    ),
    (
        "expect-bad-status",
        REQ + "      - {path: /a, expect: {status: [200, 99]}}  # <--\n",
        "gate.load.requests[0].expect.status[1]",
        ["expected an HTTP status such as 200"],
    ),
    (
        "expect-json-not-a-mapping",
        REQ + "      - {path: /a, expect: {json: items}}  # <--\n",
        "gate.load.requests[0].expect.json",
        ["expected a mapping of JMESPath expression: expected value"],
    ),
    (
        "expect-json-bad-jmespath",
        REQ + "      - path: /a\n        expect:\n          json:\n"
        '            "items[0": 1  # <--\n',
        'gate.load.requests[0].expect.json["items[0"]',
        ["'items[0' is not a valid JMESPath expression: it ends too early", "items[0].id"],
    ),
    (
        "expect-json-bad-token",
        REQ + '      - {path: /a, expect: {json: {"a b": 1}}}  # <--\n',
        'gate.load.requests[0].expect.json["a b"]',
        ["'a b' is not a valid JMESPath expression: unexpected token 'b' at column 3"],
    ),
    (
        "expect-json-unclosed-literal",
        REQ + '      - {path: /a, expect: {json: {"length(a) > `0": true}}}  # <--\n',
        'gate.load.requests[0].expect.json["length(a) > `0"]',
        ["Unclosed ` delimiter at column 13", "between backticks"],
    ),
    (
        "expect-json-empty-expression",
        REQ + '      - {path: /a, expect: {json: {"": true}}}  # <--\n',
        'gate.load.requests[0].expect.json[""]',
        ["a JMESPath expression cannot be empty"],
    ),
    (
        "expect-json-present-not-a-boolean",
        REQ + "      - {path: /a, expect: {json: {total: {present: maybe}}}}  # <--\n",
        "gate.load.requests[0].expect.json.total",
        ["expected {present: true} (the expression finds something) or {present: false}"],
    ),
    (
        "expect-json-present-with-more",
        REQ + "      - {path: /a, expect: {json: {total: {present: true, x: 1}}}}  # <--\n",
        "gate.load.requests[0].expect.json.total",
        ["expected {present: true}"],
    ),
    (
        "expect-json-not-plain-data",
        REQ + "      - {path: /a, expect: {json: {total: .nan}}}  # <--\n",
        "gate.load.requests[0].expect.json.total",
        ["is not a JSON number"],
    ),
    (
        "expect-contains-empty",
        REQ + "      - {path: /a, expect: {contains: ''}}  # <--\n",
        "gate.load.requests[0].expect.contains",
        ["the text to find cannot be empty"],
    ),
    (
        "expect-contains-not-text",
        REQ + "      - {path: /a, expect: {contains: 12}}  # <--\n",
        "gate.load.requests[0].expect.contains",
        ["expected the text the body contains, got 12 (put it in quotes)"],
    ),
    (
        "expect-headers-bad-name",
        REQ + "      - {path: /a, expect: {headers: {'Content Type': json}}}  # <--\n",
        'gate.load.requests[0].expect.headers["Content Type"]',
        ["is not a valid HTTP header name"],
    ),
    # capture
    (
        "capture-bad-name",
        REQ + "      - {path: /a, capture: {1st: id}}  # <--\n",
        "gate.load.requests[0].capture.1st",
        ["cannot name a captured value: use letters, digits and _", "{token}"],
    ),
    (
        "capture-reserved-name",
        REQ + "      - {path: /a, capture: {row: id}}  # <--\n",
        "gate.load.requests[0].capture.row",
        ["'row' cannot name a captured value: {row.NAME} means the data row's value"],
    ),
    (
        "capture-bad-jmespath",
        REQ + "      - {path: /a, capture: {id: 'items[0'}}  # <--\n",
        "gate.load.requests[0].capture.id",
        ["not a valid JMESPath expression"],
    ),
    (
        "capture-not-header",
        REQ + "      - {path: /a, capture: {id: {head: X-Id}}}  # <--\n",
        "gate.load.requests[0].capture.id",
        ["or {header: NAME}, got a mapping"],
    ),
    (
        "capture-bad-header",
        REQ + "      - {path: /a, capture: {id: {header: 'X Id'}}}  # <--\n",
        "gate.load.requests[0].capture.id.header",
        ["is not a valid HTTP header name"],
    ),
    # query
    (
        "query-list",
        REQ + "      - {path: /a, query: {q: [1, 2]}}  # <--\n",
        "gate.load.requests[0].query.q",
        ["expected text or a number (the query parameter's value), got a list"],
    ),
    (
        "query-env",
        REQ + "      - {path: /a, query: {q: '${Q}'}}  # <--\n",
        "gate.load.requests[0].query.q",
        ["${...} is substituted only under targets; use {vars.NAME}"],
    ),
    (
        "query-not-a-mapping",
        REQ + "      - {path: /a, query: q=1}  # <--\n",
        "gate.load.requests[0].query",
        ["expected a mapping of query parameter: value"],
    ),
    # templates
    (
        "template-unclosed-in-path",
        REQ + "      - {path: '/a/{token'}  # <--\n",
        "gate.load.requests[0].path",
        ["'{' at position 3 is not closed; write {{ for a literal {"],
    ),
    (
        "template-unclosed-in-short-form",
        REQ + "      - GET /a/{id  # <--\n",
        "gate.load.requests[0]",
        ["'{' at position 3 is not closed"],
    ),
    (
        "template-bad-in-header",
        REQ + "      - {path: /a, headers: {X-A: '}'}}  # <--\n",
        "gate.load.requests[0].headers.X-A",
        ["'}' at position 0 closes nothing; write }} for a literal }"],
    ),
    (
        "template-bad-in-query",
        REQ + "      - {path: /a, query: {q: '{user-id}'}}  # <--\n",
        "gate.load.requests[0].query.q",
        ["'{user-id}' is not a placeholder"],
    ),
    (
        "template-bad-in-json",
        REQ + "      - path: /a\n        json:\n          items:\n            - {}\n"
        "            - {name: '{vars}'}  # <--\n",
        "gate.load.requests[0].json.items[1].name",
        ["'{vars}' needs a name: write {vars.NAME}"],
    ),
    (
        "capture-used-in-requests",
        REQ + "      - {path: /a, headers: {Authorization: 'Bearer {token}'}}  # <--\n",
        "gate.load.requests[0].headers.Authorization",
        ["{token}: the requests run one per iteration", "in a flow's steps after the step"],
    ),
    (
        "capture-used-before-a-later-step-captures-it",
        FLOW + "          - GET /a/{id}  # <--\n          - {path: /b, capture: {id: id}}\n",
        "gate.load.flows[0].steps[0]",
        ["{id}: 'id' is captured by steps[1], after it is used here"],
    ),
    (
        "capture-used-by-the-request-that-captures-it",
        FLOW + "          - {path: '/a/{id}', capture: {id: id}}  # <--\n",
        "gate.load.flows[0].steps[0].path",
        ["'id' is captured by this request, after it is used here"],
    ),
    (
        "capture-never-captured",
        "    flows:\n      - name: f\n" + LOGIN + "        steps:\n"
        "          - {path: /a, json: {t: '{tokn}'}}  # <--\n",
        "gate.load.flows[0].steps[0].json.t",
        [
            "'tokn' is captured by no request of this flow before this one",
            "(captured before: token)",
            "did you mean 'token'?",
        ],
    ),
    (
        "capture-of-another-flow",
        "    flows:\n      - name: f\n" + LOGIN + "        steps: [GET /a]\n"
        "      - name: g\n        steps: ['GET /b/{token}']  # <--\n",
        "gate.load.flows[1].steps[0]",
        ["'token' is captured by no request of this flow before this one"],
    ),
    (
        "vars-unknown-for-one-target",
        REQ + "      - GET /r/{vars.region}  # <--\n",
        "gate.load.requests[0]",
        [
            "{vars.region}: target 'staging' has no var 'region'. Its vars: cart_id.",
            "Add it to targets.staging.vars, or give the target its own scenario",
        ],
    ),
    (
        "vars-typo",
        REQ + "      - {path: /c, json: {c: '{vars.cartid}'}}  # <--\n",
        "gate.load.requests[0].json.c",
        ["has no var 'cartid'; did you mean 'cart_id'?"],
    ),
    (
        "row-without-data",
        REQ + "      - GET /u/{row.user}  # <--\n",
        "gate.load.requests[0]",
        ["{row.user} needs a data file, and the scenario has none", "data: {file: users.csv}"],
    ),
    (
        "row-unknown-column",
        DATA + REQ + "      - {path: /u, query: {u: '{row.users}'}}  # <--\n",
        "gate.load.requests[0].query.u",
        ["{row.users}: users.csv has no column 'users'; did you mean 'user'?", "user, sku"],
    ),
    (
        "row-unknown-in-an-overrides-data-file",
        DATA + REQ + "      - GET /u/{row.sku}  # <--\n"
        "  targets:\n    prod:\n      load: {data: {file: other.csv}}\n",
        "gate.load.requests[0]",
        ["other.csv (the data file of target 'prod') has no column 'sku'"],
    ),
    # flows
    (
        "flows-not-a-list",
        "    flows: checkout  # <--\n",
        "gate.load.flows",
        ["expected a list of flows such as [{name: checkout"],
    ),
    (
        "flows-empty",
        "    flows: []  # <--\n",
        "gate.load.flows",
        ["got an empty list"],
    ),
    (
        "flow-without-name",
        "    flows:\n      - steps: [GET /a]  # <--\n",
        "gate.load.flows[0].name",
        ["missing; a flow needs a name (its budget key)"],
    ),
    (
        "flow-unknown-key",
        "    flows:\n      - {name: f, steps: [GET /a], step: [GET /b]}  # <--\n",
        "gate.load.flows[0].step",
        ["did you mean 'steps'?"],
    ),
    (
        "flow-duplicate-name",
        "    flows:\n      - {name: f, steps: [GET /a]}\n"
        "      - {name: f, steps: [GET /b]}  # <--\n",
        "gate.load.flows[1].name",
        ["flow 2 is named 'f' like flow 1: flow names must be unique"],
    ),
    (
        "flow-named-total",
        "    flows:\n      - {name: total, steps: [GET /a]}  # <--\n",
        "gate.load.flows[0].name",
        ["'total' is the budget key of all requests"],
    ),
    (
        "flow-named-like-a-request",
        "    requests: [GET /a]\n    flows:\n      - {name: GET /a, steps: [GET /b]}  # <--\n",
        "gate.load.flows[0].name",
        ["the flow 'GET /a' has the name of a request"],
    ),
    (
        "flow-named-like-its-step",
        "    flows:\n      - {name: GET /a, steps: [GET /a]}  # <--\n",
        "gate.load.flows[0].name",
        ["has the name of a request"],
    ),
    (
        "flow-without-steps",
        "    flows:\n      - {name: f, on_start: [GET /login]}  # <--\n",
        "gate.load.flows[0].steps",
        ["missing; a flow needs its steps"],
    ),
    (
        "flow-empty-steps",
        "    flows:\n      - {name: f, steps: []}  # <--\n",
        "gate.load.flows[0].steps",
        ["expected at least one of the steps, got an empty list"],
    ),
    (
        "flow-bad-weight",
        "    flows:\n      - {name: f, weight: 0, steps: [GET /a]}  # <--\n",
        "gate.load.flows[0].weight",
        ["must be at least 1"],
    ),
    (
        "flow-bad-wait",
        "    flows:\n      - {name: f, wait: [3s, 1s], steps: [GET /a]}  # <--\n",
        "gate.load.flows[0].wait",
        ["min (3s) is more than max (1s)"],
    ),
    (
        "flow-bad-step",
        "    flows:\n      - {name: f, steps: [{method: GET}]}  # <--\n",
        "gate.load.flows[0].steps[0].path",
        ["missing; a request needs a path"],
    ),
    (
        "flows-and-locustfile",
        "    locustfile: l.py  # <--\n    flows: [{name: f, steps: [GET /a]}]\n",
        "gate.load.locustfile",
        ["flows and locustfile cannot be used together"],
    ),
    # data
    (
        "data-without-file",
        "    data: {mode: cycle}  # <--\n",
        "gate.load.data.file",
        ["missing; data needs its CSV file, such as {file: users.csv"],
    ),
    (
        "data-not-found",
        "    data: {file: nothere.csv}  # <--\n",
        "gate.load.data.file",
        ["data file 'nothere.csv' not found", "relative to the directory of stagegate.yaml"],
    ),
    (
        "data-a-directory",
        "    data: {file: data}  # <--\n",
        "gate.load.data.file",
        ["data is a directory, not a CSV file"],
    ),
    (
        "data-bad-mode",
        "    data: {file: data/users.csv, mode: unqiue}  # <--\n",
        "gate.load.data.mode",
        ["unknown mode 'unqiue'; did you mean 'unique'?", "each row at most once"],
    ),
    (
        "data-unknown-key",
        "    data: {file: data/users.csv, shuffle: true}  # <--\n",
        "gate.load.data.shuffle",
        ["Valid keys here: file, mode"],
    ),
    (
        "data-and-locustfile",
        "    locustfile: l.py  # <--\n    data: {file: data/users.csv}\n",
        "gate.load.locustfile",
        ["data and locustfile cannot be used together", "a Locust file reads its own files"],
    ),
    (
        "override-data-under-base-locustfile",
        "    locustfile: l.py\n  targets:\n    prod:\n"
        "      load: {data: {file: data/users.csv}}  # <--\n",
        "gate.targets.prod.load.data",
        ["data and locustfile cannot be used together (for target 'prod')"],
    ),
    # budgets
    (
        "glob-matches-nothing",
        "    requests: [GET /a]\n  budgets:\n    'POST /*': {p95: 1s}  # <--\n",
        'gate.budgets["POST /*"]',
        ["the pattern 'POST /*' matches no request name", "requests are named 'GET /a'"],
    ),
    (
        "unknown-budget-key-close-to-a-flow",
        "    flows: [{name: checkout, steps: [GET /a]}]\n  budgets:\n"
        "    chekout: {p95: 1s}  # <--\n",
        "gate.budgets.chekout",
        ["no request is named 'chekout'; did you mean 'checkout'?", "or to a flow: 'checkout'"],
    ),
    (
        "stage-glob-matches-nothing",
        "    requests: [GET /a]\n    stages:\n      - duration: 1m\n        users: 2\n"
        "        budgets: {'GET /b*': {p95: 1s}}  # <--\n",
        'gate.load.stages[0].budgets["GET /b*"]',
        ["the pattern 'GET /b*' matches no request name"],
    ),
]


@pytest.mark.parametrize(("text", "key", "hints"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_a_mistake_names_file_line_and_key(
    tmp_path: Path, text: str, key: str, hints: list[str]
) -> None:
    (tmp_path / "l.py").write_text("", encoding="utf-8")
    (tmp_path / "other.csv").write_text("user,extra\nu1,e1\n", encoding="utf-8")
    check(tmp_path, TARGETS + text, key, hints)


def check(
    tmp_path: Path, text: str, key: str, hints: list[str], csv: str | bytes = USERS_CSV
) -> None:
    lines = [i for i, line in enumerate(text.splitlines(), 1) if MARK in line]
    assert len(lines) == 1, "each bad case marks exactly one line"
    path = write(tmp_path, text, csv)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    error, message = info.value, str(info.value)
    assert (error.path, error.line, error.key) == (path, lines[0], key), message
    assert message.startswith(f"{path}:{lines[0]}: {key}: "), message
    assert "\n" not in message
    for hint in hints:
        assert hint in message, f"{hint!r} not in {message!r}"


BAD_CSV: list[tuple[str, str | bytes, list[str]]] = [
    ("empty", "", ["users.csv is empty: its first line must name the columns"]),
    ("blank-header", " , \n", ["users.csv is empty"]),
    ("header-only", "user,sku\n", ["users.csv has a header (user, sku) but no rows"]),
    ("unnamed-column", "user,,sku\na,b,c\n", ["users.csv line 1: column 2 has no name"]),
    ("duplicate-column", "user, user\na,b\n", ["two columns are named 'user'"]),
    (
        "ragged-row",
        "user,sku\na,b\n\nc\n",
        ["users.csv line 4: 1 value for 2 columns (user, sku)", "quote a value that holds a comma"],
    ),
    ("not-utf8", b"user\n\xe9t\xe9\n", ["users.csv is not UTF-8 text (byte 5); save it as UTF-8"]),
    ("bad-quoting", 'user,sku\n"a"b,c\n', ["users.csv line 2: not valid CSV"]),
]


@pytest.mark.parametrize(("csv", "hints"), [c[1:] for c in BAD_CSV], ids=[c[0] for c in BAD_CSV])
def test_a_bad_data_file_is_named_at_its_key(
    tmp_path: Path, csv: str | bytes, hints: list[str]
) -> None:
    text = TARGETS + "    data: {file: data/users.csv}  # <--\n    requests: [GET /a]\n"
    check(tmp_path, text, "gate.load.data.file", hints, csv)


def test_a_data_file_may_have_at_most_max_data_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert defaults.MAX_DATA_ROWS == 100_000
    monkeypatch.setattr(defaults, "MAX_DATA_ROWS", 3)
    text = TARGETS + "    data: {file: data/users.csv}  # <--\n    requests: [GET /a]\n"
    rows = "u\n1\n2\n3\n"
    check(tmp_path, text, "gate.load.data.file", ["users.csv has more than 3 rows"], rows + "4\n")
    load_config(write(tmp_path, text, rows))  # exactly 3 is fine


def test_a_data_file_keeps_values_exactly_and_skips_a_bom_and_empty_lines(tmp_path: Path) -> None:
    csv = '\ufeff user , sku\n\n" a, b ","x\ny"\n'
    load = settings(tmp_path, DATA + "    requests: ['GET /{row.user}']\n", csv)["staging"].load
    assert load.data is not None and load.data.columns == ("user", "sku")
    from pytest_stagegate.config._data import read_data

    assert read_data(load.data.file).rows == [{"user": " a, b ", "sku": "x\ny"}]


def test_only_secret_columns_are_secrets(tmp_path: Path) -> None:
    # A plain column's value (a note saying "products") is data, not a secret: masking it would
    # turn "GET /api/products" into "GET /api/***" in every output. A column named like a
    # secret, or listed in data.secret, is.
    from pytest_stagegate.config._data import data_secrets, secret_column
    from pytest_stagegate.load.plan import data_secrets as plan_secrets

    csv = "user,note,api_key,userPassword,pin\nann@example.com,products,k-123456,pw-ann-7f3k,9731\n"
    text = "    data: {file: data/users.csv, secret: [user]}\n    requests: [GET /api/products]\n"
    load = settings(tmp_path, text, csv)["staging"].load
    assert load.data is not None and load.data.secret == ("user",)
    assert plan_secrets(load) == {"ann@example.com", "k-123456", "pw-ann-7f3k"}
    load = settings(tmp_path, "    data: {file: data/users.csv}\n    requests: [GET /a]\n", csv)[
        "staging"
    ].load
    assert plan_secrets(load) == {"k-123456", "pw-ann-7f3k"}
    secret = ["password", "passwd", "Secret", "TOKEN", "apiKey", "x-auth", "Credentials"]
    secret += ["session_id", "cookies", "access_token", "user_pass_WORD_password", "keys"]
    plain = ["note", "monkey", "keyboard", "author", "sku", "user", "passage", "keyss"]
    assert [c for c in secret if not secret_column(c)] == []
    assert [c for c in plain if secret_column(c)] == []
    assert data_secrets([{"note": "products", "token": "abc"}], ["note"]) == {"products"}


def test_data_secret_names_columns_of_the_file(tmp_path: Path) -> None:
    text = (
        TARGETS
        + "    data: {file: data/users.csv, secret: [user, skus]}  # <--\n    requests: [GET /a]\n"
    )
    hints = ["users.csv has no column 'skus'; did you mean 'sku'?", "Its columns: user, sku."]
    check(tmp_path, text, "gate.load.data.secret", hints)
    text = TARGETS + "    data: {file: data/users.csv, secret: {a: 1}}  # <--\n"
    text += "    requests: [GET /a]\n"
    check(tmp_path, text, "gate.load.data.secret", ["a list of column names"])


def test_flows_alone_are_a_scenario(tmp_path: Path) -> None:
    load = settings(tmp_path, "    flows: [{name: f, steps: [GET /a]}]\n")["staging"].load
    assert load.requests == () and load.has_scenario
