"""The Redactor: every form of a secret, the 8-character run rule, short secrets as whole
tokens, unmaskable ones counted (the rule is in pytest_stagegate/_redact.py's docstring)."""

from __future__ import annotations

import base64
import html
import io
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from urllib.parse import quote, quote_plus
from xml.etree import ElementTree

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_stagegate._redact import MASK, RedactingStream, Redactor, forms_of
from pytest_stagegate.config import load_config
from pytest_stagegate.plugin import redaction

from .redact_reference import ReferenceRedactor, reference_forms

JWT = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N"
ODD = "p%a@s\\s&w'o\"rd<x>-Zqé9"  # every character some encoding changes
KEY = ["MIIBVwIBADANBgkqhkiG9w0B", "AQEFAASCAUEwggE9AgEAAkEA"]
PEM = "\n".join(["-----BEGIN TEST KEY-----", *KEY, "-----END TEST KEY-----"])


def test_the_value_anywhere_even_inside_a_word() -> None:
    redact = Redactor([JWT])
    assert redact(f"Authorization: Bearer {JWT}") == "Authorization: Bearer ***"
    assert redact(f"x{JWT}y") == "x***y"
    assert redact("nothing here") == "nothing here"


def test_a_shortened_repr_is_caught_by_its_runs() -> None:
    redact = Redactor([JWT])
    # pytest's saferepr keeps the head and the tail of a long value
    shortened = f"assert {JWT[:10]!r}...{JWT[-9:]!r} == 'x'"
    assert redact(shortened) == "assert '***'...'***' == 'x'"
    # a run of 7 is no run
    assert redact(f"[{JWT[:7]}]") == f"[{JWT[:7]}]"
    assert redact(f"[{JWT[:8]}]") == "[***]"


def test_each_stretch_becomes_one_mask_extended_to_the_longest_run() -> None:
    redact = Redactor([JWT])
    assert redact(f"{JWT[:20]}|{JWT[30:50]}") == "***|***"
    # two runs of the value next to each other are one stretch
    assert redact(JWT[40:60] + JWT[:12]) == MASK
    assert redact(f"a {JWT[5:25]} b") == "a *** b"


def test_masking_twice_changes_nothing() -> None:
    redact = Redactor([JWT, ODD, PEM])
    text = f"{JWT!r} {ODD!r} {json.dumps(PEM)} {PEM}"
    once = redact(text)
    assert redact(once) == once
    assert not redact.found_in(once)


def _html_safe(text: str) -> str:
    """Jinja's ``tojson``, as Locust's HTML report embeds its data."""
    for char, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("'", "\\u0027")):
        text = text.replace(char, escape)
    return text


@pytest.mark.parametrize(
    ("written", "shown"),
    [
        pytest.param(ODD, "***", id="raw"),
        pytest.param(repr(ODD), "'***'", id="repr"),
        pytest.param(repr(ODD.replace('"', "")), '"***"', id="repr-double-quoted"),
        pytest.param(ascii(ODD), "'***'", id="ascii"),
        pytest.param(json.dumps(ODD), '"***"', id="json"),
        pytest.param(json.dumps(ODD, ensure_ascii=False), '"***"', id="json-unicode"),
        pytest.param(_html_safe(json.dumps(ODD)), '"***"', id="json-html-safe"),
        pytest.param(json.dumps(repr(ODD)), "\"'***'\"", id="repr-in-json"),
        pytest.param(quote(ODD, safe=""), "***", id="quote"),
        pytest.param(
            re.sub("%[0-9A-F]{2}", lambda m: m.group(0).lower(), quote(ODD, safe="")),
            "***",
            id="quote-lowercase-hex",
        ),
        pytest.param(quote_plus(ODD), "***", id="quote-plus"),
        pytest.param(html.escape(ODD), "***", id="html"),
        pytest.param(
            ElementTree.tostring(ElementTree.Element("failure", message=ODD)).decode(),
            '<failure message="***" />',
            id="xml-attribute",
        ),
    ],
)
def test_every_form_of_the_secret(written: str, shown: str) -> None:
    redact = Redactor([ODD])
    assert redact(f"before {written} after") == f"before {shown} after"
    assert redact.found_in(written)


def test_the_html_report_json_of_a_secret_with_amp_and_quote() -> None:
    secret = "amp&it's-0f9e8d7c"
    page = "window.templateArgs = " + _html_safe(json.dumps({"failures": [secret]}))
    assert Redactor([secret])(page) == 'window.templateArgs = {"failures": ["***"]}'


def test_every_line_of_a_multi_line_secret() -> None:
    redact = Redactor([PEM])
    diff = "\n".join(f"E         - {line}" for line in PEM.splitlines()[1:3])
    assert redact(diff) == "E         - ***\nE         - ***"
    assert redact(json.dumps({"message": PEM})) == '{"message": "***"}'
    assert redact(repr(PEM)) == "'***'"
    assert "BEGIN TEST KEY" not in redact(PEM.splitlines()[0])


def test_runs_of_fewer_than_3_distinct_characters_are_not_masked() -> None:
    # a JSON key file indented by 8 spaces, a banner of "=": no secret in those runs
    redact = Redactor(['{\n        "key": "k-3f9a"\n}', "========banner-3f9a77"])
    lines = [
        "==================== test session starts ====================",
        "        assert x == y",
        "E        -----",
    ]
    for line in lines:
        assert redact(line) == line
    # a run with 3 distinct characters (6 spaces, a quote, a letter) is masked
    assert redact('        "key": "k-3f9a"') == "  ***"
    assert redact("=====banner-3f9a77") == "***"


def test_forms_of_includes_the_escapes() -> None:
    forms = forms_of("a\\b&c'd\ne")
    assert {"a\\\\b&c\\'d\\ne", "a\\\\b\\u0026c\\u0027d\\ne", "a%5Cb%26c%27d%0Ae"} <= forms
    assert "a\\b&amp;c&#x27;d\ne" in forms


# -- short secrets ---------------------------------------------------------------------------


def test_a_short_secret_is_masked_as_a_whole_token_only() -> None:
    redact = Redactor(["rtio"])
    assert redact("AssertionError: assert 'rtio' == 'x'") == "AssertionError: assert '***' == 'x'"
    assert redact("http://ci:rtio@host pw=rtio rtio.") == "http://ci:***@host pw=*** ***."
    assert redact("xrtio rtioy _rtio rtio_") == "xrtio rtioy _rtio rtio_"


def test_a_short_secret_starting_with_punctuation() -> None:
    redact = Redactor(["!ab3"])
    assert redact("x!ab3 !ab3y") == "x*** !ab3y"  # ``!`` does not continue a word; ``y`` does


def test_a_short_secret_in_its_escaped_forms() -> None:
    secret = "p@s\\w"
    redact = Redactor([secret])
    assert redact(f"url {quote(secret, safe='')} repr {secret!r}") == "url *** repr '***'"


@pytest.mark.parametrize("value", ["e", "ab", "123", "aaaaaaa", "abababab"])
def test_too_short_or_too_uniform_is_unmaskable_and_counted(value: str) -> None:
    redact = Redactor([value])
    assert redact.unmaskable == 1
    assert not redact
    text = f"AssertionError: assert {value!r} == 'x'"
    assert redact(text) == text
    assert not redact.found_in(text)


def test_a_mix_counts_only_the_unmaskable() -> None:
    redact = Redactor(["e", JWT, "rtio", ""])
    assert redact.unmaskable == 1
    assert redact(f"e {JWT} rtio") == "e *** ***"


def test_no_secrets() -> None:
    redact = Redactor([])
    assert not redact and redact.unmaskable == 0
    assert redact("text") == "text"
    assert not redact.found_in("text")


def test_found_in_agrees_with_masking() -> None:
    redact = Redactor([JWT, "rtio"])
    for text in ("plain", f"..{JWT[3:12]}..", "a rtio b", "artiob", JWT[:7]):
        assert redact.found_in(text) == (redact(text) != text), text


def test_a_long_text_without_secrets_is_returned_whole() -> None:
    redact = Redactor([JWT, PEM, ODD])
    text = "lorem ipsum dolor sit amet, " * 5000
    assert redact(text) is text or redact(text) == text
    assert redact(text + JWT[10:30]) == text + MASK


# -- RedactingStream: sys.stdout/sys.stderr in the pytest process and the Locust child ---------


def test_a_redacting_stream_masks_each_write_and_reports_the_whole_text_written() -> None:
    out = io.StringIO()
    stream = RedactingStream(out, Redactor([JWT]))
    text = f"Authorization: Bearer {JWT}\n"
    assert stream.write(text) == len(text)  # no short write: print() does not retry
    stream.writelines([f"a {JWT[:20]}\n", "plain\n"])
    assert out.getvalue() == "Authorization: Bearer ***\na ***\nplain\n"


def test_a_redacting_stream_is_its_wrapped_stream_for_everything_but_writing() -> None:
    out = io.StringIO()
    stream = RedactingStream(out, Redactor([JWT]))
    assert stream.wrapped is out
    print(JWT, file=stream, flush=True)
    assert stream.getvalue() == "***\n" and stream.closed is False
    stream.close()
    assert out.closed


def test_the_pytest_process_and_the_load_child_share_one_redacting_stream() -> None:
    """One class for both sides, importable without pytest, locust or gevent."""
    code = (
        "import sys\n"
        "from pytest_stagegate._redact import RedactingStream\n"
        "from pytest_stagegate.load.child import output\n"
        "assert output.RedactingStream is RedactingStream\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'pytest', '_pytest', 'locust', 'gevent'}))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert run.stdout == "[]\n"
    assert vars(redaction)["RedactingStream"] is RedactingStream


# -- the base_url password and its Basic token, from stagegate.yaml --------------------------


def test_the_basic_header_of_a_base_url_password_is_masked(tmp_path: Path) -> None:
    (tmp_path / "stagegate.yaml").write_text(
        textwrap.dedent(
            """
            targets:
              staging:
                base_url: http://ci:${PW}@127.0.0.1:9
            """
        )
    )
    password = "pa%ss@wo\\rd-7"
    encoded = quote(password, safe="")
    target = load_config(tmp_path / "stagegate.yaml").resolve_target("staging", {"PW": encoded})
    url = httpx.URL(target.base_url)
    request = httpx.Request("GET", url)
    auth = httpx.BasicAuth(url.username, url.password)  # what httpx does for a base_url
    header = next(auth.auth_flow(request)).headers["Authorization"]
    token = header.removeprefix("Basic ")
    assert base64.b64decode(token).decode() == f"ci:{password}"
    for text in (header, f"HTTP Request: GET {target.base_url}/x", repr(password)):
        out = target.redact(text)
        assert password not in out and encoded not in out and token not in out
        assert "***" in out
    assert target.redact(header) == "Basic ***"
    assert target.redact(f"GET {target.base_url}/x") == "GET http://ci:***@127.0.0.1:9/x"


def test_a_secret_from_a_non_utf8_environment_is_masked_without_a_crash() -> None:
    # os.environ holds undecodable bytes as lone surrogates; quote() alone raised
    # UnicodeEncodeError on them, which would have stopped the run
    secret = "tok\udcffen-from-latin1-env"
    redactor = Redactor([secret])
    assert redactor(f"Authorization: {secret}!") == "Authorization: ***!"
    assert redactor("tok%FFen-from-latin1-env") == "***"  # as a client would send its bytes


# -- the fast matcher agrees with the straightforward one ------------------------------------


class _BucketRedactor(Redactor):
    """The Redactor as it is with a data file's many long secrets: their runs in buckets."""

    _grams_max = -1


class _BucketSetRedactor(_BucketRedactor):
    """... with every bucket a set of windows, as when thousands of values share a piece."""

    _joined_max = -1


_ALPHABET = "ab3_-.@ &'\"\\<>%/+\né\t=:x"


@st.composite
def _secrets_and_text(draw: st.DrawFn) -> tuple[list[str], str]:
    secrets = draw(
        st.lists(st.text(alphabet=_ALPHABET, min_size=1, max_size=14), min_size=1, max_size=5)
    )
    pieces = []
    for _ in range(draw(st.integers(0, 8))):
        secret = draw(st.sampled_from(secrets))
        form = draw(st.sampled_from(sorted(reference_forms(secret))))
        start = draw(st.integers(0, len(form)))
        end = draw(st.integers(start, len(form)))
        pieces.append(draw(st.sampled_from([form, form[start:end]])))
        pieces.append(draw(st.text(alphabet=_ALPHABET, max_size=4)))
    return secrets, "".join(pieces)


@settings(max_examples=400, deadline=None)
@given(_secrets_and_text())
def test_the_redactor_agrees_with_the_reference_implementation(
    case: tuple[list[str], str],
) -> None:
    """The old matcher (one regex alternation of the short forms, a set of every run of 8 of
    the long ones; tests/unit/redact_reference.py) and the fast one mask the same stretches."""
    secrets, text = case
    reference = ReferenceRedactor(secrets)
    for fast in (Redactor(secrets), _BucketRedactor(secrets), _BucketSetRedactor(secrets)):
        assert fast(text) == reference(text)
        assert fast.found_in(text) == reference.found_in(text)
        assert fast.unmaskable == reference.unmaskable
        assert bool(fast) == bool(reference)


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=1, max_size=20))
def test_forms_of_agrees_with_the_reference_for_any_text(secret: str) -> None:
    assert forms_of(secret) == reference_forms(secret)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="".join(map(chr, range(32, 127))), min_size=1, max_size=20))
def test_forms_of_a_printable_ascii_value_agrees_with_the_reference(secret: str) -> None:
    assert forms_of(secret) == reference_forms(secret)
