"""What makes two base URLs the same place (pure): ``stagegate verify --base-url`` compares
the verdict's target with the deploy job's, a Locust master a worker's target with its own."""

from __future__ import annotations

from urllib.parse import urlsplit

__all__ = ["place"]


def place(url: str) -> tuple[str, str, int, str] | None:
    """Scheme, host (any case), port (the scheme's default made explicit) and path without a
    trailing slash. Credentials, query and fragment are left out (the verdict masks
    credentials). None for what is not an http(s) URL."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return None
    if port is None:
        port = 443 if scheme == "https" else 80
    return scheme, parts.hostname.lower(), port, parts.path.rstrip("/")
