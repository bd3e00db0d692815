"""Expectations and captures on a response (load/expect.py), in process."""

from __future__ import annotations

import json
from typing import Any

import jmespath
import jmespath.exceptions
import pytest

from pytest_stagegate.load.expect import SHOWN, compile_checks, needs_checks, shorten
from pytest_stagegate.load.plan import PlannedRequest


def req(**kwargs: Any) -> PlannedRequest:
    return PlannedRequest(method="GET", path="/x", name="GET /x", **kwargs)


def body(doc: Any) -> bytes:
    return json.dumps(doc).encode()


ITEMS = body({"items": [{"id": 42, "name": "Tea"}], "total": 1, "ok": True, "none": None})


def test_json_expectations_hold_and_fail_with_their_expression() -> None:
    checks = compile_checks(
        req(
            expect_json=[
                {"expr": "length(items) > `0`", "value": True},
                {"expr": "items[0].id", "value": 42.0},  # Python ==: 42 == 42.0
                {"expr": "total", "present": True},
                {"expr": "missing", "present": False},
            ]
        )
    )
    assert checks.needs_body and checks.needs_json
    assert checks.evaluate(200, {}, ITEMS) == ("", {}, [])
    empty = body({"items": [], "total": 0})
    assert checks.evaluate(200, {}, empty) == (
        'expect.json "length(items) > `0`": got false, expected true',
        {},
        [],
    )
    assert checks.evaluate(200, {}, body({"items": [{"id": 7}]}))[0] == (
        'expect.json "items[0].id": got 7, expected 42.0'
    )


def test_present_true_and_false() -> None:
    present = compile_checks(req(expect_json=[{"expr": "none", "present": True}]))
    assert present.evaluate(200, {}, ITEMS)[0] == 'expect.json "none": found nothing'
    absent = compile_checks(req(expect_json=[{"expr": "items[0].name", "present": False}]))
    assert absent.evaluate(200, {}, ITEMS)[0] == (
        'expect.json "items[0].name": got "Tea", expected nothing'
    )


def test_a_boolean_equals_only_a_boolean_and_strings_are_exact() -> None:
    checks = compile_checks(req(expect_json=[{"expr": "ok", "value": 1}]))
    assert checks.evaluate(200, {}, ITEMS)[0] == 'expect.json "ok": got true, expected 1'
    checks = compile_checks(req(expect_json=[{"expr": "items[0].name", "value": "tea"}]))
    assert checks.evaluate(200, {}, ITEMS)[0].startswith('expect.json "items[0].name": got "Tea"')


def test_a_body_that_is_not_json() -> None:
    checks = compile_checks(req(expect_json=[{"expr": "a", "value": 1}]))
    assert checks.evaluate(200, {}, b"<html>oops</html>") == (
        "expect.json: the body is not JSON",
        {},
        [],
    )
    assert checks.evaluate(200, {}, None)[0] == "expect.json: the body is not JSON"


def test_long_values_are_shortened() -> None:
    long = "x" * 500
    checks = compile_checks(req(expect_json=[{"expr": "a", "value": "y"}]))
    error, _, _ = checks.evaluate(200, {}, body({"a": long}))
    shown = error.split("got ")[1].split(", expected")[0]
    assert len(shown) == SHOWN and shown.endswith("…")
    assert shorten("abc") == "abc"


def test_contains_decodes_utf8_and_replaces_bad_bytes() -> None:
    checks = compile_checks(req(expect_contains="Welcome, Zoë"))
    assert checks.needs_body and not checks.needs_json
    assert checks.evaluate(200, {}, "<p>Welcome, Zoë</p>".encode()) == ("", {}, [])
    assert checks.evaluate(200, {}, b"\xff\xfe nothing") == (
        'expect.contains "Welcome, Zoë": not in the body',
        {},
        [],
    )


def test_headers_are_case_insensitive_and_contain_the_text() -> None:
    checks = compile_checks(req(expect_headers={"Content-Type": "application/JSON"}))
    assert not checks.needs_body
    assert checks.evaluate(200, {"content-type": "Application/json; charset=utf-8"}, None)[0] == ""
    assert checks.evaluate(200, {"content-type": "text/html"}, None)[0] == (
        'expect.headers "Content-Type": does not contain "application/JSON"'
    )
    assert checks.evaluate(200, {}, None)[0] == 'expect.headers "Content-Type": is missing'
    # a header sent twice (geventhttpclient gives a list): its values joined
    cookie = compile_checks(req(expect_headers={"set-cookie": "b=2"}))
    assert cookie.evaluate(200, {"Set-Cookie": ["a=1", "b=2"]}, None)[0] == ""


def test_status_with_and_without_expect_status() -> None:
    plain = compile_checks(req(expect_headers={"x": "y"}))
    assert plain.evaluate(503, {"x": "y"}, None)[0] == "HTTP 503"
    assert plain.evaluate(302, {"x": "y"}, None)[0] == ""
    listed = compile_checks(req(expect_status=[204, 200], expect_headers={"x": "y"}))
    assert listed.evaluate(404, {"x": "y"}, None)[0] == "HTTP 404, expected 200/204"
    assert listed.evaluate(204, {"x": "y"}, None)[0] == ""


def test_the_first_failed_expectation_is_the_error_in_a_fixed_order() -> None:
    checks = compile_checks(
        req(
            expect_status=[200],
            expect_json=[{"expr": "a", "value": 1}],
            expect_contains="zzz",
            expect_headers={"x": "y"},
        )
    )
    assert checks.evaluate(500, {}, b"nope")[0] == "HTTP 500, expected 200"
    assert checks.evaluate(200, {}, b"nope")[0] == "expect.json: the body is not JSON"
    assert checks.evaluate(200, {}, body({"a": 1}))[0].startswith("expect.contains")
    assert checks.evaluate(200, {}, body({"a": 1, "b": "zzz"}))[0].startswith("expect.headers")


def test_captures_strings_as_is_other_values_as_compact_json() -> None:
    checks = compile_checks(
        req(
            capture=[
                {"var": "token", "json": "access_token"},
                {"var": "ids", "json": "items[].id"},
                {"var": "first", "json": "items[0]"},
                {"var": "session", "header": "X-Session"},
            ]
        )
    )
    doc = body({"access_token": "tok-123", "items": [{"id": 1}, {"id": 2}]})
    error, captured, secrets = checks.evaluate(200, {"x-session": "s-9"}, doc)
    assert error == ""
    assert captured == {"token": "tok-123", "ids": "[1,2]", "first": '{"id":1}', "session": "s-9"}
    # secrets: JSON strings and header values only, never numbers, lists or objects
    assert secrets == ["tok-123", "s-9"]
    flags = compile_checks(req(capture=[{"var": "ok", "json": "ok"}, {"var": "n", "json": "n"}]))
    assert flags.evaluate(200, {}, body({"ok": True, "n": 12345678})) == (
        "",
        {"ok": "true", "n": "12345678"},
        [],
    )


def test_a_capture_that_finds_nothing_fails_and_captures_nothing() -> None:
    checks = compile_checks(
        req(capture=[{"var": "a", "json": "a"}, {"var": "token", "json": "access_token"}])
    )
    assert checks.evaluate(200, {}, body({"a": "x", "access_token": None})) == (
        "capture token: access_token found nothing",
        {"a": "x"},
        ["x"],
    )
    header = compile_checks(req(capture=[{"var": "s", "header": "X-Session"}]))
    assert not header.needs_body
    assert header.evaluate(200, {}, None) == ("capture s: header X-Session found nothing", {}, [])
    assert checks.evaluate(200, {}, b"not json") == ("capture a: the body is not JSON", {}, [])


def test_captures_are_taken_even_when_an_expectation_failed() -> None:
    # the caller notes the secrets before the error is recorded: a failed login's token is
    # masked wherever the error text quotes it
    token = "eyJhbGciOi-s3cr3t-token-value"
    checks = compile_checks(
        req(
            expect_json=[{"expr": "access_token", "value": "nope"}],
            capture=[{"var": "t", "json": "access_token"}],
        )
    )
    error, captured, secrets = checks.evaluate(200, {}, body({"access_token": token}))
    assert error == f'expect.json "access_token": got "{token}", expected "nope"'
    assert captured == {"t": token} and secrets == [token]
    # a failed status: the error is the status's, the captures are still taken
    cookie = "sid=s3cr3t-session-id-123456; HttpOnly"
    session = compile_checks(
        req(expect_headers={"x-ok": "yes"}, capture=[{"var": "sid", "header": "Set-Cookie"}])
    )
    assert session.evaluate(500, {"Set-Cookie": cookie}, None) == (
        "HTTP 500",
        {"sid": cookie},
        [cookie],
    )
    # an earlier failure stays the error; a capture that finds nothing adds none
    assert session.evaluate(200, {"x-ok": "yes"}, None) == (
        "capture sid: header Set-Cookie found nothing",
        {},
        [],
    )


def test_error_texts_never_quote_a_header_value_an_object_or_a_list() -> None:
    cookie = "sid=s3cr3t-session-id-123456; HttpOnly"
    checks = compile_checks(req(expect_headers={"set-cookie": "Secure"}))
    error = checks.evaluate(200, {"Set-Cookie": cookie}, None)[0]
    assert error == 'expect.headers "set-cookie": does not contain "Secure"'
    login = body({"access_token": "eyJhbGciOi-s3cr3t", "user": "ann"})
    whole = compile_checks(req(expect_json=[{"expr": "@", "value": "ok"}]))
    assert whole.evaluate(200, {}, login)[0] == 'expect.json "@": got an object, expected "ok"'
    for doc, shown in (([1, 2, 3], "a list of 3"), ([], "an empty list"), ({}, "an empty object")):
        assert whole.evaluate(200, {}, body(doc))[0] == (
            f'expect.json "@": got {shown}, expected "ok"'
        )
    gone = compile_checks(req(expect_json=[{"expr": "@", "present": False}]))
    assert gone.evaluate(200, {}, login)[0] == 'expect.json "@": got an object, expected nothing'
    assert "s3cr3t" not in str([whole.evaluate(200, {}, login), gone.evaluate(200, {}, login)])


def test_bad_jmespath_is_refused_at_compile_time() -> None:
    with pytest.raises(jmespath.exceptions.ParseError):
        compile_checks(req(expect_json=[{"expr": "items[", "value": 1}]))


def test_needs_checks() -> None:
    assert not needs_checks(req(expect_status=[200]))
    assert needs_checks(req(expect_contains=""))
    assert needs_checks(req(capture=[{"var": "a", "header": "b"}]))


@pytest.mark.parametrize(
    "expr",
    [
        "total", "items", "a.b", "a.b.c", "items[0].id", "length(items)", "a.missing",
        "total.x", "length(items) > `0`", "total == `3`", "total != `3`", "total >= `3.0`",
        "a.b.c == 'deep'", "`true`", "total < `1`", "length(a)", "ok == `1`", "ok == `true`",
        "length(items[?id > `0`])", "items[0].id <= total", "name > 'm'",
    ],
)  # fmt: skip
def test_compiled_searches_find_what_jmespath_finds(expr: str) -> None:
    docs = [
        {"total": 3, "items": [{"id": 1}], "a": {"b": {"c": "deep"}}, "ok": True, "name": "z"},
        {"total": 3.0, "items": "abc", "a": "text", "ok": 1, "name": 7},
        {"total": True, "items": {"k": 1}, "a": {"b": 2}},
        {"a": None, "items": []},
        {"a": [1], "total": "x"},
        [1, 2],
        "text",
        None,
    ]
    checks = compile_checks(req(capture=[{"var": "v", "json": expr}]))
    (capture,) = checks.captures
    assert capture.search is not None
    for doc in docs:
        try:
            want: Any = jmespath.search(expr, doc)
        except (jmespath.exceptions.JMESPathError, TypeError) as error:
            want = type(error)  # length() of null, 'z' > 1: the same error either way
        try:
            got: Any = capture.search(doc)
        except (jmespath.exceptions.JMESPathError, TypeError) as error:
            got = type(error)
        assert got == want and type(got) is type(want), (expr, doc)


def test_a_jmespath_error_fails_the_expectation_and_finds_nothing_to_capture() -> None:
    checks = compile_checks(req(expect_json=[{"expr": "length(items) > `0`", "value": True}]))
    error, _, _ = checks.evaluate(200, {}, body({"total": 0}))
    assert error.startswith('expect.json "length(items) > `0`": In function length()')
    compare = compile_checks(req(expect_json=[{"expr": "a > `1`", "value": True}]))
    error, _, _ = compare.evaluate(200, {}, body({"a": "text"}))
    assert error == (
        "expect.json \"a > `1`\": '>' not supported between instances of 'str' and 'int'"
    )
    capture = compile_checks(req(capture=[{"var": "n", "json": "length(items)"}]))
    assert capture.evaluate(200, {}, body({})) == ("capture n: length(items) found nothing", {}, [])


def test_json_in_utf16_is_read_too() -> None:
    checks = compile_checks(req(expect_json=[{"expr": "a", "value": "é"}]))
    assert checks.evaluate(200, {}, json.dumps({"a": "é"}).encode("utf-16")) == ("", {}, [])
    assert checks.evaluate(200, {}, b"")[0] == "expect.json: the body is not JSON"
