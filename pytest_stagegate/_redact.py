"""Replacing secret values in text, in every form they take: one implementation for the pytest
process and the Locust child alike. Pure; imports nothing of the project.

A secret rarely reaches the output as typed. pytest shows it through ``repr`` (a backslash
doubled, a newline as ``\\n``) and shortens a long repr (``'eyJhbGciOi...iJ9'``); JSON
escapes it (``\\u0026`` for ``&`` in Locust's HTML report); httpx logs a URL with the password
percent-encoded and sends it as a base64 Basic header; a diff shows a multi-line value one line
at a time. So each secret is masked in all of its *forms*:

- the value itself, and each line of a multi-line value (a line of 8 or more characters,
  surrounding spaces stripped, is a secret by itself);
- its Python repr-escaped text (``repr(s)[1:-1]``, with either quote, and ``ascii()``);
- its JSON-escaped text (``json.dumps``, with and without ``ensure_ascii``, and the HTML-safe
  variant Jinja's ``tojson`` writes into Locust's HTML report: ``<``, ``>``, ``&``, ``'`` as
  ``\\u003c``, ``\\u003e``, ``\\u0026``, ``\\u0027``); these escapes applied twice, as when a
  repr is written into a JSON file;
- its URL-encoded text (``quote`` with and without ``/`` safe, ``quote_plus``, upper- or
  lower-case hex);
- each of the above as HTML/XML text and attribute (``&amp;``, ``&#x27;``, ``&#10;``, and
  ``&#233;`` for a non-ASCII character in an ASCII document).

(The base64 Basic-auth token of a base_url's ``user:password`` is derived where the user is
known, in ``config/_targets.py``, and is a secret of its own.)

**The rule, exactly.** ``MIN_SECRET_LENGTH`` is 4; a run is a stretch of consecutive characters.

1. A secret of **8 or more characters**: every run of 8 or more characters that occurs in any of
   its forms is masked, wherever it appears (inside a word too), each hit extended to the
   longest such run; one stretch becomes one ``***`` (one per line if it spans lines, so the
   output keeps its lines). So a repr cut to ``'eyJhbGciOi...'``, a value split over two
   lines, or a prefix of a JSON-escaped value are caught. A run of 8 made of fewer than 3
   distinct characters (``--------`` of a PEM header, 8 spaces) hides nothing and would mask
   pytest's own separators: it is not masked.
2. A secret of **4 to 7 characters** is masked, in each of its forms, only as a whole token:
   not where a letter, digit or ``_`` directly precedes a form that begins with one, nor where
   one directly follows a form that ends with one. ``ci:hunter2@``, ``'hunter2'`` and
   ``pw=hunter2`` are masked; ``xhunter2y`` is not, and a secret ``rtio`` never turns
   ``AssertionError`` into ``Ass***nError``.
3. A secret **shorter than 4 characters**, or one of fewer than 3 distinct characters, cannot be
   masked without destroying the output (every ``5`` or ``a``) and hides nothing: it is not
   masked, and counted in ``Redactor.unmaskable`` (the run warns about it in its header).
   stagegate.yaml takes header and vars values shorter than 4 characters as no secrets at all;
   a base_url password of any length is a secret, so a short one is reported.

**How matching works** (its cost per line does not grow with the number of secrets: a data
file brings up to 100,000 of them, and every line of output goes through the redactor).

- Short secrets (rule 2): a form can only start where a word starts (a form beginning with a
  letter, digit or ``_``) or at a character some form begins with (the others); one generic
  regular expression finds those positions with the 4 characters there, looked up in a dict of
  the forms' first 4 characters (in C: a line with no candidate costs no Python loop). At a
  candidate, the form lengths under that key are tried longest first, each a set lookup plus the
  boundary check after the form; after a hit, the search goes on past it. This finds exactly
  what one regular expression of all the forms as alternatives, longest first, would (tested
  against it, tests/unit/redact_reference.py), without a cost per form.
- Long secrets (rule 1), up to 250,000 windows of 8 in their forms (some 8,000 UUIDs): the set
  of those windows, and the text read 4 characters at a time against the set of the windows'
  4-character pieces (every window of 8 holds an aligned block of 4), the windows looked up only
  around a hit. Beyond, that set would take ~100 bytes a window (450 MB for 100,000 UUIDs), so
  the forms are indexed by their 4-character pieces at positions that are multiples of 5 (every
  window of 8 holds one), each with the 12 characters around it (every window that holds it);
  the text's pieces are looked up at every position (in C), and only the windows around a hit
  are checked against that piece's text. A piece shared by many values (``@example`` in a
  column of e-mails) keeps the set of its windows instead. 100,000 UUIDs: ~20 MB.
"""

from __future__ import annotations

import html
import json
import re
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Iterator
from itertools import compress, count
from operator import itemgetter
from typing import IO, Any
from urllib.parse import quote, quote_plus

__all__ = ["MASK", "MIN_SECRET_LENGTH", "RUN", "RedactingStream", "Redactor", "forms_of"]

MASK = "***"
# A value this short cannot be hidden meaningfully (masking every "5" or "on" in the output
# destroys it and hides nothing); stagegate.yaml keeps such values out of the secrets.
MIN_SECRET_LENGTH = 4
# Secrets at least this long are masked by any run of this many characters of any form.
RUN = 8
# A run (or short secret) with fewer distinct characters than this is not masked.
MIN_DISTINCT = 3

_HTML_SAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "'": "\\u0027"})
_PERCENT = re.compile(r"%[0-9A-F]{2}")
_XML_ATTR = {"\n": "&#10;", "\r": "&#13;", "\t": "&#09;"}
# Printable ASCII that neither repr, JSON (HTML-safe too) nor HTML/XML escaping changes.
_PLAIN = re.compile(r"[ !#-%(-;=?-\[\]-~]*")
# What ``quote`` leaves as it is, whatever its ``safe``.
_URL_SAFE = re.compile(rb"[A-Za-z0-9_.~-]*")
_URL_SAFE_TEXT = re.compile(r"[A-Za-z0-9_.~-]*")
# What ``quote`` (``quote_plus``) encodes in ASCII text, with ``safe=""`` or ``"/"``
_UNSAFE = re.compile(r"[^A-Za-z0-9_.~-]+")
_UNSAFE_BUT_SLASH = re.compile(r"[^A-Za-z0-9_.~/-]+")
_UNSAFE_BUT_SPACE = re.compile(r"[^A-Za-z0-9_.~ -]+")
_UNSAFE_BUT_SPACE_SLASH = re.compile(r"[^A-Za-z0-9_.~ /-]+")


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
        out.add(dumped.translate(_HTML_SAFE))
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


def forms_of(secret: str) -> frozenset[str]:
    """Every text ``secret`` may appear as in the output (see the module docstring)."""
    if _PLAIN.fullmatch(secret):
        # Printable ASCII without a quote, backslash, ``&``, ``<`` or ``>``: no escape and no
        # markup changes it, so only its URL-encodings differ (the same set as below, quickly:
        # a data file brings 100,000 values).
        if _URL_SAFE_TEXT.fullmatch(secret):
            return frozenset((secret,))
        return frozenset({secret, *_plain_url_forms(secret)})
    forms = {secret}
    once = _escapes(secret)
    forms |= once
    for escaped in once:
        forms |= _escapes(escaped)
    # A value from a non-UTF-8 environment holds lone surrogates: URL-encode its bytes as
    # Python read them (surrogateescape), as a client sending them would.
    forms |= _url_forms(secret.encode("utf-8", "surrogateescape"))
    for form in list(forms):
        forms |= _markup(form)
    return frozenset(forms)


def _plain_url_forms(text: str) -> set[str]:
    """``_url_forms`` of printable ASCII ``text``, by one regular expression each."""
    urls = {_UNSAFE.sub(_percent, text)}
    if "/" in text:
        urls.add(_UNSAFE_BUT_SLASH.sub(_percent, text))
    if " " in text:
        plus = _UNSAFE_BUT_SPACE.sub(_percent, text).replace(" ", "+")
        urls |= {plus, _UNSAFE_BUT_SPACE_SLASH.sub(_percent, text).replace(" ", "+")}
    return urls | {_PERCENT.sub(_lower, url) for url in urls}


def _percent(match: re.Match[str]) -> str:
    return "".join(f"%{ord(c):02X}" for c in match.group(0))


def _url_forms(raw: bytes) -> set[str]:
    if _URL_SAFE.fullmatch(raw):
        return set()  # nothing to encode: the value itself
    # quote_plus is quote without a space; safe="/" differs only where there is a "/"
    urls = {quote(raw, safe="")}
    if b"/" in raw:
        urls.add(quote(raw))
    if b" " in raw:
        urls |= {quote_plus(raw), quote_plus(raw, "/")}
    return urls | {_PERCENT.sub(_lower, url) for url in urls}


def _lower(match: re.Match[str]) -> str:
    return match.group(0).lower()


def _maskable(text: str) -> bool:
    return len(set(text)) >= MIN_DISTINCT


def _mask(stretch: str) -> str:
    """One ``***`` for a masked stretch, one per line if it spans lines: the output keeps its
    line structure."""
    if "\n" not in stretch:
        return MASK
    return "\n".join(MASK if line else "" for line in stretch.split("\n"))


_WORD = re.compile(r"\w")
# Joins the pieces of long forms that share a 4-character piece; a window holding it cannot lie
# inside one piece, and pieces holding it are kept as sets of windows instead.
_SEP = "\x00"


def _pieces(text: str) -> Iterator[str]:
    """Every 4-character piece of ``text``, in order, without a Python loop."""
    return map("".join, zip(text, text[1:], text[2:], text[3:], strict=False))


class Redactor:
    """``Redactor(secrets)(text)`` is ``text`` with every form of every secret replaced by
    ``***``, by the rule of the module docstring."""

    # Up to this many windows of 8 in the long secrets' forms (about 30 MB), the windows
    # themselves are kept in a set; beyond, the buckets of ``_run_buckets``.
    _grams_max = 250_000
    # A bucket of joined pieces longer than this is kept as the set of its windows (a piece
    # shared by thousands of values, as in a column of e-mails, is searched in one lookup).
    _joined_max = 2048

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
        long_forms: set[str] = set()
        for value in long:
            mine = [f for f in forms_of(value) if _has_maskable_run(f)]
            if not mine and value in values:
                unmaskable += 1
            long_forms.update(mine)
        self._grams: frozenset[str] = frozenset()
        self._quads: frozenset[str] = frozenset()
        self._buckets: dict[str, str | frozenset[str]] = {}
        if sum(len(f) - RUN + 1 for f in long_forms) <= self._grams_max:
            self._grams = frozenset(
                gram
                for form in long_forms
                for gram in {form[i : i + RUN] for i in range(len(form) - RUN + 1)}
                if _maskable(gram)
            )
            self._quads = frozenset(gram[i : i + 4] for gram in self._grams for i in range(5))
        else:
            self._buckets = _run_buckets(long_forms, self._joined_max)
        self._short_forms = frozenset(form for value in short for form in forms_of(value))
        # forms are never shorter than their secret (4): the first 4 characters key them
        self._prefix = min(4, *(len(f) for f in self._short_forms)) if self._short_forms else 4
        lengths: dict[str, set[int]] = {}
        for form in self._short_forms:
            lengths.setdefault(form[: self._prefix], set()).add(len(form))
        # longest first: at one position, the longest form that is a whole token wins
        self._lengths = {key: sorted(ls, reverse=True) for key, ls in lengths.items()}
        self._candidates = _candidates(self._short_forms, self._prefix)
        self.unmaskable = unmaskable
        """How many of the secrets cannot be masked (rule 3); never their values."""

    def __call__(self, text: str) -> str:
        if self._grams or self._buckets:
            text = self._mask_runs(text)
        if self._short_forms:
            text = self._mask_tokens(text)
        return text

    # -- rule 1: runs of 8 -----------------------------------------------------------------

    def _run_starts(self, text: str, first: bool = False) -> list[int]:
        """The positions where an 8-character run of a form starts, in order (only one when
        ``first``)."""
        if self._grams:
            return self._gram_starts(text, first)
        return self._bucket_starts(text, first)

    def _gram_starts(self, text: str, first: bool) -> list[int]:
        """Every window of 8 characters contains a whole block of 4 starting at a multiple of 4,
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

    def _bucket_starts(self, text: str, first: bool) -> list[int]:
        """Every window of 8 characters of a form holds one of the form's 4-character pieces that
        start at a multiple of 5 in it (a window has 5 of them), so those pieces are the keys of
        ``_buckets``; the text's pieces are looked up at every position (in C: a text without a
        hit costs no Python loop), and only the windows around a hit are checked against the
        hit's bucket: the forms' text around the key, joined, or the set of its windows."""
        buckets = self._buckets
        n = len(text)
        if n < RUN or buckets.keys().isdisjoint(_pieces(text)):
            return []
        last = n - RUN
        found: set[int] = set()
        hits = compress(count(), map(buckets.__contains__, _pieces(text)))
        for hit in hits:
            bucket = buckets[text[hit : hit + 4]]
            for start in range(max(hit - 4, 0), min(hit, last) + 1):
                if start in found:
                    continue
                window = text[start : start + RUN]
                if isinstance(bucket, str):
                    if _SEP in window or window not in bucket:
                        continue
                elif window not in bucket:
                    continue
                if _maskable(window):
                    found.add(start)
                    if first:
                        return [start]
        return sorted(found)

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

    # -- rule 2: short secrets as whole tokens -------------------------------------------------

    def _tokens(self, text: str, first: bool = False) -> list[tuple[int, int]]:
        """The stretches ``(start, end)`` of the short secrets' forms found as whole tokens, in
        order, as one regular expression of the alternatives, longest first, would find them.

        A form that begins with a letter, digit or ``_`` can only start where a word starts; one
        that begins with another character, only at that character: ``_candidates`` finds those
        positions and their first 4 characters (in C: a text without a candidate costs no Python
        loop); a candidate's lengths are then looked up longest first."""
        lengths = self._lengths
        if lengths.keys().isdisjoint(map(_GROUP1, self._candidates.finditer(text))):
            return []
        forms, n, k = self._short_forms, len(text), self._prefix
        found: list[tuple[int, int]] = []
        done = 0
        for match in self._candidates.finditer(text):
            start = match.start()
            if start < done:
                continue
            for length in lengths.get(text[start : start + k], ()):
                end = start + length
                if end > n or text[start:end] not in forms:
                    continue
                if end < n and _WORD.match(text, end) and _WORD.match(text, end - 1):
                    continue  # a word goes on after a form that ends in one
                found.append((start, end))
                if first:
                    return found
                done = end
                break
        return found

    def _mask_tokens(self, text: str) -> str:
        found = self._tokens(text)
        if not found:
            return text
        pieces: list[str] = []
        done = 0
        for start, end in found:
            pieces.append(text[done:start])
            pieces.append(MASK)
            done = end
        pieces.append(text[done:])
        return "".join(pieces)

    def __bool__(self) -> bool:
        return bool(self._grams or self._buckets or self._short_forms)

    def found_in(self, text: str) -> bool:
        return bool(
            ((self._grams or self._buckets) and self._run_starts(text, first=True))
            or (self._short_forms and self._tokens(text, first=True))
        )


_GROUP1 = itemgetter(1)


def _has_maskable_run(form: str) -> bool:
    if len(form) >= RUN and _maskable(form[:RUN]):
        return True
    return any(_maskable(form[i : i + RUN]) for i in range(len(form) - RUN + 1))


def _run_buckets(forms: Iterable[str], joined_max: int) -> dict[str, str | frozenset[str]]:
    """For each 4-character piece that starts at a multiple of 5 in a form: the text around
    it in every form (12 characters: every window of 8 that holds it), joined by ``_SEP``, or,
    when that grows long or a form holds ``_SEP``, the set of those windows."""
    forms = list(forms)
    keys: list[str] = []
    around: list[str] = []
    for form in forms:
        n = len(form)
        if n <= 13:
            at = range(0, n - 3, 5)
            keys += [form[i : i + 4] for i in at]
            around += [form] * len(at)
        else:
            keys += [form[i : i + 4] for i in range(0, n - 3, 5)]
            around.append(form[:8])
            around += [form[i - 4 : i + 8] for i in range(5, n - 3, 5)]
    grouped: defaultdict[str, list[str]] = defaultdict(list)
    deque(map(list.append, map(grouped.__getitem__, keys), around), maxlen=0)  # in C
    del keys, around
    joinable = _SEP not in "".join(forms)
    buckets: dict[str, str | frozenset[str]] = {}
    for key, pieces in grouped.items():
        if joinable and len(pieces) == 1:
            buckets[key] = pieces[0]
        elif joinable and 14 * len(pieces) <= joined_max:  # a piece has at most 13 characters
            buckets[key] = _SEP.join(pieces)
        else:
            buckets[key] = frozenset(
                piece[i : i + RUN]
                for piece in set(pieces)  # values with much in common share many pieces
                for i in range(len(piece) - RUN + 1)
                if key in piece[i : i + RUN]
            )
    return buckets


def _candidates(forms: Iterable[str], k: int) -> re.Pattern[str]:
    """Where a form may start as a whole token, capturing its first ``k`` characters: where a
    word starts, and at each character other than a letter, digit or ``_`` a form begins with."""
    others = sorted({f[0] for f in forms if not _WORD.match(f[0])})
    starts = r"(?<!\w)\w"
    if others:
        starts += "|[" + "".join(re.escape(c) for c in others) + "]"
    return re.compile(f"(?=((?:{starts})[\\s\\S]{{{k - 1}}}))")


class RedactingStream:
    """A text stream (``sys.stdout``, ``sys.stderr``) with each write redacted: for what
    bypasses logging (``print``, tracebacks printed by gevent's hub, messages pytest writes
    there itself). The pytest process and the Locust child both use it. ``wrapped`` is the
    stream written to; everything but writing is the wrapped stream's."""

    def __init__(self, wrapped: IO[str], redact: Callable[[str], str]) -> None:
        self.wrapped = wrapped
        self._redact = redact

    def write(self, text: str) -> int:
        self.wrapped.write(self._redact(text))
        return len(text)  # what the caller gave: a shorter masked text is no short write

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.wrapped, name)
