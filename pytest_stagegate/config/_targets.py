"""``targets.NAME`` -> ``Target``: validated when the file is loaded, ``${VAR}`` substituted
when the target is selected, and the secrets that substitution brings in.

Rules the contract leaves open, decided here:

- ``${VAR}`` with ``VAR`` set but empty is an error, like unset: CI systems hand forks empty
  secrets, and ``Bearer `` with no token would only fail later and less clearly. ``${VAR:-}``
  opts into an empty value. (``$NAME`` without braces is refused by ``parse_template``.)
- Defaults written in the file are not secrets; values taken from the environment into headers
  and ``vars`` are, if at least 4 characters long. Typed values (timeouts, switches), the
  expected build in ``version.expect`` and the URL itself are not: masking every "5", "true" or
  commit id in the output would destroy it and hide nothing. A password in the base URL is, of
  any length (one too short to mask is reported by the run), and so is the base64 token of the
  ``Authorization: Basic`` header the HTTP clients derive from the URL's ``user:password``.
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

from .. import defaults
from .._redact import MIN_SECRET_LENGTH
from ..units import parse_size
from ._yaml import HEADER_NAME, Doc, Index, KeyPath, check_json, got, parse_template, present
from .model import ReadyCheck, Target, VersionCheck

_T = TypeVar("_T")

_TARGET_KEYS = (
    "base_url",
    "headers",
    "timeout",
    "ready",
    "version",
    "vars",
    "protected",
    "allow_load",
    "verify_tls",
    "max_body",
)
_READY_KEYS = ("path", "timeout", "interval")
_VERSION_KEYS = ("path", "expect", "field")
_TRUE_WORDS = frozenset({"true", "yes", "on", "1"})
_FALSE_WORDS = frozenset({"false", "no", "off", "0"})


def _is_http_url(url: str) -> bool:
    if any(c.isspace() for c in url):
        return False
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not 0-65535
    except ValueError:  # also "Invalid IPv6 URL"
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


class TargetReader:
    """Reads one target. With ``environ=None`` it only validates: values holding a ``${VAR}``
    are checked for syntax but not otherwise, since their value is not known yet."""

    def __init__(self, doc: Doc, name: str, raw: object, environ: Mapping[str, str] | None) -> None:
        self.doc = doc
        self.name = name
        self.raw = raw
        self.environ = environ
        self.keypath: KeyPath = ("targets", name)
        self.secrets: set[str] = set()

    def substitute(self, text: str, keypath: KeyPath) -> str | None:
        """``text`` with its references resolved; None while only validating and ``text`` has
        a reference."""
        try:
            parts = parse_template(text)
        except ValueError as error:
            raise self.doc.error(keypath, str(error)) from None
        out: list[str] = []
        for part in parts:
            if isinstance(part, str):
                out.append(part)
                continue
            if self.environ is None:
                return None
            value = self.environ.get(part.name)
            if value:
                if keypath[2:3] in (("headers",), ("vars",)) and len(value) >= MIN_SECRET_LENGTH:
                    self.secrets.add(value)
                out.append(value)
            elif part.default is not None:
                out.append(part.default)
            else:
                state = "is not set" if value is None else "is set but empty"
                raise self.doc.error(
                    keypath,
                    f"environment variable {part.name} {state} (needed by target "
                    f"{self.name!r}). Set it, or give a default with ${{{part.name}:-value}}.",
                )
        return "".join(out)

    def text(self, value: object, keypath: KeyPath, what: str = "a string") -> str | None:
        return self.substitute(self.doc.string(value, keypath, what), keypath)

    def typed(
        self,
        values: Mapping[Any, Any],
        key: str,
        keypath: KeyPath,
        parse: Callable[[object, KeyPath], _T],
        default: _T,
    ) -> _T:
        """``values[key]`` parsed; a string holding ``${VAR}`` is parsed once substituted."""
        value = values.get(key)
        keypath = (*keypath, key)
        if value is None:
            return default
        if isinstance(value, str) and "$" in value:
            substituted = self.substitute(value, keypath)
            if substituted is None:
                return default
            value = substituted
        return parse(value, keypath)

    def boolean(self, value: object, keypath: KeyPath) -> bool:
        # Only a substituted value can arrive here as a string; YAML has parsed the rest.
        if isinstance(value, str):
            word = value.strip().lower()
            if word in _TRUE_WORDS:
                return True
            if word in _FALSE_WORDS:
                return False
        return self.doc.boolean(value, keypath)

    def deep(self, value: Any, keypath: KeyPath) -> Any:
        """A copy of ``value`` with every string substituted."""
        if isinstance(value, str):
            substituted = self.substitute(value, keypath)
            return value if substituted is None else substituted
        if isinstance(value, dict):
            return {k: self.deep(v, (*keypath, k)) for k, v in value.items()}
        if isinstance(value, list):
            return [self.deep(v, (*keypath, Index(i))) for i, v in enumerate(value)]
        return value

    def read(self) -> Target:
        doc, kp = self.doc, self.keypath
        values = doc.mapping(
            self.raw, kp, "a mapping with at least base_url, such as {base_url: https://...}"
        )
        doc.known_keys(values, kp, _TARGET_KEYS)
        base_url = self.base_url(values)
        headers = self.headers(values.get("headers"), (*kp, "headers"))
        timeout = self.typed(
            values, "timeout", kp, self.positive_duration, defaults.REQUEST_TIMEOUT
        )
        raw_vars = doc.mapping(values.get("vars"), (*kp, "vars"))
        check_json(doc, raw_vars, (*kp, "vars"))
        vars_ = self.deep(raw_vars, (*kp, "vars"))
        protected = self.typed(values, "protected", kp, self.boolean, False)
        return Target(
            name=self.name,
            base_url=base_url,
            headers=headers,
            timeout=timeout,
            ready=self.ready(values.get("ready"), (*kp, "ready")),
            version=self.version(values.get("version"), (*kp, "version")),
            vars=vars_,
            protected=protected,
            allow_load=self.typed(values, "allow_load", kp, self.boolean, not protected),
            verify_tls=self.typed(values, "verify_tls", kp, self.boolean, True),
            secrets=frozenset(self.secrets),
            max_body=self.typed(values, "max_body", kp, self.size, defaults.MAX_BODY),
        )

    def size(self, value: object, keypath: KeyPath) -> int:
        try:
            return parse_size(value)
        except ValueError as error:
            raise self.doc.error(keypath, str(error)) from None

    def positive_duration(self, value: object, keypath: KeyPath) -> float:
        return self.doc.duration(value, keypath, positive=True)

    def base_url(self, values: Mapping[Any, Any]) -> str:
        keypath = (*self.keypath, "base_url")
        raw = self.doc.required(
            values,
            "base_url",
            self.keypath,
            "every target needs a base_url such as https://shop-staging.example.com",
        )
        url = self.text(raw, keypath, "a URL such as https://shop-staging.example.com")
        if url is None:
            return "http://unresolved.invalid"
        url = url.strip()
        if not _is_http_url(url):
            # A URL from the environment may carry credentials, even a malformed one.
            shown = got(url) if url == str(raw).strip() else "a value from the environment"
            raise self.doc.error(
                keypath,
                f"expected an http:// or https:// URL such as https://shop-staging.example.com, "
                f"got {shown}",
            )
        parts = urlsplit(url)
        if parts.password:
            self.secrets.update({parts.password, unquote(parts.password)})
            self.secrets.update(basic_auth_tokens(parts.username or "", parts.password))
        return url.rstrip("/")

    def headers(self, raw: object, keypath: KeyPath) -> dict[str, str]:
        values = self.doc.mapping(raw, keypath, "a mapping of header name: value")
        headers: dict[str, str] = {}
        for name, value in values.items():
            kp = (*keypath, name)
            if not isinstance(name, str) or not HEADER_NAME.fullmatch(name):
                raise self.doc.error(
                    kp, f"{got(name)} is not a valid HTTP header name, such as X-Api-Key"
                )
            if isinstance(value, int) and not isinstance(value, bool):
                value = str(value)
            text = self.text(value, kp, "a string (header value)")
            if text is not None and ("\r" in text or "\n" in text):
                raise self.doc.error(kp, "a header value cannot contain a line break")
            headers[name] = text if text is not None else ""
        return headers

    def ready(self, raw: object, keypath: KeyPath) -> ReadyCheck | None:
        if raw is None:
            return None
        if isinstance(raw, str):  # `ready: /healthz` is short for `ready: {path: /healthz}`
            raw = {"path": raw}
        values = self.doc.mapping(raw, keypath, "a mapping such as {path: /healthz, timeout: 60s}")
        self.doc.known_keys(values, keypath, _READY_KEYS)
        path = self.path(
            self.doc.required(values, "path", keypath, "ready needs a path such as /healthz"),
            (*keypath, "path"),
        )
        return ReadyCheck(
            path=path,
            timeout=self.typed(
                values, "timeout", keypath, self.positive_duration, defaults.READY_TIMEOUT
            ),
            interval=self.typed(
                values, "interval", keypath, self.positive_duration, defaults.READY_INTERVAL
            ),
        )

    def version(self, raw: object, keypath: KeyPath) -> VersionCheck | None:
        if raw is None:
            return None
        values = self.doc.mapping(
            raw, keypath, 'a mapping such as {path: /version, expect: "${GIT_SHA}"}'
        )
        self.doc.known_keys(values, keypath, _VERSION_KEYS)
        hint = 'version needs path and expect, such as {path: /version, expect: "${GIT_SHA}"}'
        path = self.path(self.doc.required(values, "path", keypath, hint), (*keypath, "path"))
        expect = self.text(
            self.doc.required(values, "expect", keypath, hint),
            (*keypath, "expect"),
            "a string (the expected version)",
        )
        field_: str | None = None
        if present(values, "field"):
            field_ = self.text(values["field"], (*keypath, "field"), "a dotted JSON field name")
            if field_ is not None and not all(field_.split(".")):
                raise self.doc.error(
                    (*keypath, "field"),
                    f"expected a dotted JSON field name such as build.sha, got {got(field_)}",
                )
        return VersionCheck(path=path, expect=expect or "", field=field_)

    def path(self, value: object, keypath: KeyPath) -> str:
        text = self.text(value, keypath, "a path starting with /")
        if text is None:
            return "/"
        return self.doc.path_string(text, keypath)


def basic_auth_tokens(user: str, password: str) -> set[str]:
    """The base64 tokens of the Basic header a client builds from a URL's userinfo (both as
    percent-encoded in the URL): httpx encodes ``user:password`` as UTF-8, requests and Locust's
    clients as Latin-1."""
    pair = f"{unquote(user)}:{unquote(password)}"
    tokens = {base64.b64encode(pair.encode("utf-8")).decode("ascii")}
    with contextlib.suppress(UnicodeEncodeError):  # not Latin-1: that client cannot send it
        tokens.add(base64.b64encode(pair.encode("latin-1")).decode("ascii"))
    return tokens
