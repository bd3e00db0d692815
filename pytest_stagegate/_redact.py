"""Replacing secret values in text: one implementation for the pytest process and the Locust
child alike. Pure; imports nothing of the project."""

from __future__ import annotations

from collections.abc import Iterable

MASK = "***"
# A value this short cannot be hidden meaningfully (masking every "5" or "on" in the output
# destroys it and hides nothing); stagegate.yaml keeps such values out of the secrets.
MIN_SECRET_LENGTH = 4


class Redactor:
    """``Redactor(secrets)(text)`` is ``text`` with every secret replaced by ``***``."""

    def __init__(self, secrets: Iterable[str]) -> None:
        # longest first, so a secret that contains another is masked whole
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def __bool__(self) -> bool:
        return bool(self._secrets)

    def found_in(self, text: str) -> bool:
        return any(secret in text for secret in self._secrets)
