"""``templates``: parsing, the placeholders used, rendering strings and JSON bodies."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_stagegate.templates import (
    MissingValue,
    Placeholder,
    TemplateError,
    compile_json,
    compile_template,
    escape,
    json_names,
    names,
    parse,
    render,
    value_text,
)

TOKEN = Placeholder("capture", "token")
CART = Placeholder("vars", "cart_id")
SKU = Placeholder("row", "sku")


def test_parse_splits_literals_and_the_three_kinds_of_placeholder() -> None:
    assert parse("/api/cart/{vars.cart_id}/{row.sku}?t={token}") == (
        "/api/cart/",
        CART,
        "/",
        SKU,
        "?t=",
        TOKEN,
    )
    assert parse("") == ()
    assert parse("plain") == ("plain",)


def test_doubled_braces_are_literal_braces() -> None:
    assert parse("{{token}}") == ("{token}",)
    assert parse("{{{token}}}") == ("{", TOKEN, "}")
    assert render('{{"a": {n}}}', {"n": 1}) == '{"a": 1}'


def test_names_are_those_used_each_once_in_order() -> None:
    assert names("{row.sku}{token}{row.sku}/{vars.cart_id}") == (SKU, TOKEN, CART)
    assert names("/nothing/{{here}}") == ()


def test_vars_and_row_names_may_be_any_text_without_braces() -> None:
    assert parse("{row.first name}{vars.a.b}") == (
        Placeholder("row", "first name"),
        Placeholder("vars", "a.b"),
    )


@pytest.mark.parametrize(
    ("template", "words"),
    [
        ("/a/{token", "'{' at position 3 is not closed; write {{ for a literal {"),
        ("{a{b}}", "'{' at position 0 is not closed"),
        ("a}", "'}' at position 1 closes nothing; write }} for a literal }"),
        ("{}", "'{}' is not a placeholder"),
        ("{1st}", "'{1st}' is not a placeholder: a capture's name is letters, digits and _"),
        ("{user-id}", "'{user-id}' is not a placeholder"),
        ("{vars.}", "'{vars.}' names no var; write {vars.NAME}"),
        ("{row.}", "'{row.}' names no column; write {row.NAME}"),
        ("{row}", "'{row}' needs a name: write {row.NAME}"),
    ],
)
def test_a_malformed_template_says_where_and_what_to_write(template: str, words: str) -> None:
    with pytest.raises(TemplateError) as info:
        parse(template)
    assert words in str(info.value)


def test_render_substitutes_captures_vars_and_row() -> None:
    text = render(
        "/api/cart/{vars.cart_id}?sku={row.sku}&t={token}",
        {"token": "abc"},
        {"cart_id": 42},
        {"sku": "S-1"},
    )
    assert text == "/api/cart/42?sku=S-1&t=abc"


def test_a_value_that_is_not_a_string_is_substituted_as_compact_json() -> None:
    values = {"a": True, "b": None, "c": [1, "x"], "d": 2.5}
    assert render("{vars.a}|{vars.b}|{vars.c}|{vars.d}", vars=values) == 'true|null|[1,"x"]|2.5'
    assert value_text({"é": 1}) == '{"é":1}'


def test_a_missing_value_names_its_placeholder() -> None:
    with pytest.raises(MissingValue) as info:
        render("Bearer {token}", {})
    assert info.value.placeholder == TOKEN
    assert str(info.value) == "{token}: no value was captured as 'token'"
    with pytest.raises(MissingValue, match=r"\{row.sku\}: no column 'sku'"):
        render("{row.sku}", row={"user": "u"})


def test_a_template_without_placeholders_is_a_constant() -> None:
    template = compile_template("/api/{{x}}")
    assert template.constant == "/api/{x}"
    assert template.render() == "/api/{x}"
    assert compile_template("/a/{token}").constant is None
    assert compile_template("/a") is compile_template("/a")  # parsed once


def test_json_bodies_render_every_string_value_and_keep_the_rest() -> None:
    body = {
        "user": "{row.user}",
        "note": "cart {vars.cart_id} for {row.user}",
        "qty": 2,
        "tags": ["{token}", True, None, {"deep": "{{literal}}"}],
        "{key}": "keys are not templates",
    }
    body_template = compile_json(body)
    out = body_template.render({"token": "t0k3n"}, {"cart_id": 7}, {"user": "ann"})
    assert out == {
        "user": "ann",
        "note": "cart 7 for ann",
        "qty": 2,
        "tags": ["t0k3n", True, None, {"deep": "{literal}"}],
        "{key}": "keys are not templates",
    }
    assert body["user"] == "{row.user}"  # the body as written is never changed
    assert json_names(body) == (Placeholder("row", "user"), CART, TOKEN)
    assert not body_template.constant


def test_a_json_string_that_is_one_placeholder_becomes_the_values_text() -> None:
    assert compile_json({"n": "{vars.n}"}).render(vars={"n": 5}) == {"n": "5"}


def test_a_json_body_without_placeholders_renders_to_itself() -> None:
    body = {"a": [1, "x"], "b": {"c": None}}
    template = compile_json(body)
    assert template.constant and template.render() is body
    assert compile_json({"a": "{{x}}"}).render() == {"a": "{x}"}
    assert compile_json(None).render() is None


def test_a_malformed_string_in_a_json_body_says_where_it_is() -> None:
    with pytest.raises(TemplateError, match=r"^items\[1\]\.name: '\{' at position 0 is not"):
        compile_json({"items": [{}, {"name": "{oops"}]})


_LITERAL = st.text(max_size=8)
_NAME = st.text(
    st.characters(blacklist_characters="{}", blacklist_categories=("Cs",)), min_size=1, max_size=6
)
_PLACEHOLDER = st.one_of(
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,5}", fullmatch=True)
    .filter(lambda n: n not in ("vars", "row"))
    .map(lambda n: Placeholder("capture", n)),
    _NAME.map(lambda n: Placeholder("vars", n)),
    _NAME.map(lambda n: Placeholder("row", n)),
)


@given(st.lists(st.one_of(_LITERAL, _PLACEHOLDER), max_size=6))
def test_writing_parts_out_and_parsing_them_back_round_trips(
    parts: list[str | Placeholder],
) -> None:
    text = "".join(escape(p) if isinstance(p, str) else p.text for p in parts)
    merged: list[str | Placeholder] = []
    for part in parts:
        if isinstance(part, str):
            if not part:
                continue
            if merged and isinstance(merged[-1], str):
                merged[-1] += part
                continue
        merged.append(part)
    assert parse(text) == tuple(merged)
    values = {p.name: f"<{p.name}>" for p in parts if isinstance(p, Placeholder)}
    expected = "".join(p if isinstance(p, str) else f"<{p.name}>" for p in parts)
    assert render(text, values, values, values) == expected
