"""The redactor as it was before 0.2's data files (one regular expression alternation of every
form of every short secret, a set of every 8-character run of every long one): the reference the
faster ``pytest_stagegate._redact.Redactor`` must agree with (tests/unit/test_redact.py's
property test) and the baseline of benchmarks/bench_redact.py. Kept verbatim but for the name;
``reference_forms`` is the old ``forms_of``."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

MASK = "***"
# A value this short cannot be hidden meaningfully (masking every "5" or "on" in the output
# destroys it and hides nothing); stagegate.yaml keeps such values out of the secrets.
MIN_SECRET_LENGTH = 4
# Secrets at least this long are masked by any run of this many characters of any form.
RUN = 8
# A run (or short secret) with fewer distinct characters than this is not masked.
MIN_DISTINCT = 3

_HTML_SAFE = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "'": "\\u0027"}
_PERCENT = re.compile(r"%[0-9A-F]{2}")
_XML_ATTR = {"\n": "&#10;", "\r": "&#13;", "\t": "&#09;"}


def _repr_quoted(text: str, quote_char: str) -> str:
    """The body of Python's repr of ``text`` as if written between ``quote_char`` quotes."""
    body = repr(text)[1:-1]
    if repr(text)[0] == quote_char:
        return body
    # repr chose the other quote: it left ``quote_char`` bare and the other one unescaped
    other = "'" if quote_char == '"' else '"'
    return body.replace("\\" + other, other).replace(quote_char, "\\" + quote_char)


def _escapes(text: str) -> set[str]:
    """One level of string escaping: repr (both quotes, ascii) and JSON (plain, HTML-safe)."""
    out = {_repr_quoted(text, "'"), _repr_quoted(text, '"'), ascii(text)[1:-1]}
    for ensure_ascii in (True, False):
        dumped = json.dumps(text, ensure_ascii=ensure_ascii)[1:-1]
        out.add(dumped)
        out.add("".join(_HTML_SAFE.get(c, c) for c in dumped))
    return out


def _markup(text: str) -> set[str]:
    """``text`` as HTML/XML character data and attribute values."""
    attr = html.escape(text, quote=False).replace('"', "&quot;")
    for raw, entity in _XML_ATTR.items():
        attr = attr.replace(raw, entity)
    forms = {
        html.escape(text, quote=False),
        html.escape(text),  # &quot; &#x27;
        html.escape(text).replace("&#x27;", "&#39;"),
        html.escape(text).replace("&#x27;", "&apos;"),
        attr,
    }
    if not text.isascii():  # an ASCII document: &#233; for é
        forms |= {f.encode("ascii", "xmlcharrefreplace").decode("ascii") for f in forms}
    return forms


def reference_forms(secret: str) -> frozenset[str]:
    """Every text ``secret`` may appear as in the output (see the module docstring)."""
    forms = {secret}
    once = _escapes(secret)
    forms |= once
    for escaped in once:
        forms |= _escapes(escaped)
    # A value from a non-UTF-8 environment holds lone surrogates: URL-encode its bytes as
    # Python read them (surrogateescape), as a client sending them would.
    raw = secret.encode("utf-8", "surrogateescape")
    for url in (quote(raw, safe=""), quote(raw), quote_plus(raw), quote_plus(raw, "/")):
        forms |= {url, _PERCENT.sub(lambda m: m.group(0).lower(), url)}
    for form in list(forms):
        forms |= _markup(form)
    return frozenset(forms)


def _maskable(text: str) -> bool:
    return len(set(text)) >= MIN_DISTINCT


def _mask(stretch: str) -> str:
    """One ``***`` for a masked stretch, one per line if it spans lines: the output keeps its
    line structure."""
    if "\n" not in stretch:
        return MASK
    return "\n".join(MASK if line else "" for line in stretch.split("\n"))


def _token_regex(form: str) -> str:
    before = r"(?<!\w)" if re.match(r"\w", form) else ""
    after = r"(?!\w)" if re.match(r"\w", form[-1]) else ""
    return before + re.escape(form) + after


class ReferenceRedactor:
    """``Redactor(secrets)(text)`` is ``text`` with every form of every secret replaced by
    ``***``, by the rule of the module docstring."""

    def __init__(self, secrets: Iterable[str]) -> None:
        values = {s for s in secrets if s}
        long: set[str] = set()  # secrets masked by runs
        short: set[str] = set()  # secrets masked as whole tokens
        unmaskable = 0
        for value in values:
            if len(value) >= RUN:
                long.add(value)
                for line in value.splitlines():
                    line = line.strip()
                    if len(line) >= RUN and line != value:
                        long.add(line)
            elif len(value) >= MIN_SECRET_LENGTH and _maskable(value):
                short.add(value)
            else:
                unmaskable += 1
        grams: set[str] = set()
        for value in long:
            mine = {
                form[i : i + RUN]
                for form in reference_forms(value)
                for i in range(len(form) - RUN + 1)
            }
            mine = {gram for gram in mine if _maskable(gram)}
            if not mine and value in values:
                unmaskable += 1
            grams |= mine
        short_forms = {form for value in short for form in reference_forms(value)}
        self._grams = frozenset(grams)
        self._quads = frozenset(gram[i : i + 4] for gram in grams for i in range(RUN - 3))
        self._tokens = (
            re.compile(
                "|".join(_token_regex(f) for f in sorted(short_forms, key=lambda f: (-len(f), f)))
            )
            if short_forms
            else None
        )
        self.unmaskable = unmaskable
        """How many of the secrets cannot be masked (rule 3); never their values."""

    def __call__(self, text: str) -> str:
        if self._grams:
            text = self._mask_runs(text)
        if self._tokens is not None:
            text = self._tokens.sub(MASK, text)
        return text

    def _run_starts(self, text: str, first: bool = False) -> list[int]:
        """The positions where an 8-character run of a form starts (only the first one when
        ``first``), in order.

        Every window of 8 characters contains a whole block of 4 starting at a multiple of 4,
        so the text is read 4 characters at a time against the set of 4-character pieces of the
        forms, and only around a hit are the windows themselves looked up."""
        quads, grams = self._quads, self._grams
        starts: list[int] = []
        checked = -1  # windows starting at or before this position were looked up
        last = len(text) - RUN
        for block in range(0, len(text) - 3, 4):
            if text[block : block + 4] not in quads:
                continue
            for start in range(max(block - 4, checked + 1), min(block, last) + 1):
                if text[start : start + RUN] in grams:
                    starts.append(start)
                    if first:
                        return starts
            checked = max(checked, min(block, last))
        return starts

    def _mask_runs(self, text: str) -> str:
        starts = self._run_starts(text)
        if not starts:
            return text
        pieces: list[str] = []
        done = 0  # text[:done] is in pieces
        begin, end = 0, -1  # the stretch being masked
        for start in starts:
            if start > end:  # a new stretch (an adjacent run joins the previous one)
                if end >= 0:
                    pieces.append(_mask(text[begin:end]))
                pieces.append(text[done:start])
                begin = start
            end = max(end, start + RUN)
            done = end
        pieces.append(_mask(text[begin:end]))
        pieces.append(text[done:])
        return "".join(pieces)

    def __bool__(self) -> bool:
        return bool(self._grams) or self._tokens is not None

    def found_in(self, text: str) -> bool:
        return bool(
            (self._grams and self._run_starts(text, first=True))
            or (self._tokens is not None and self._tokens.search(text))
        )
