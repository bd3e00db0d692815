"""The workers' shared secret, ``$STAGEGATE_WORKER_TOKEN``: checked, made, taken (no Locust).

Remote workers (``stagegate worker``) and the master of ``--gate-remote-workers`` read it from
their environment; the local workers of ``--gate-workers N`` get a fresh random one from
``run_load``. How it is proven without travelling: ``load/child/handshake.py``.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping, MutableMapping

from .. import defaults

__all__ = [
    "ENV",
    "MIN_TOKEN_LENGTH",
    "missing_token_paragraph",
    "new_token",
    "take_token",
    "token_problem",
]

ENV = defaults.WORKER_TOKEN_ENV
MIN_TOKEN_LENGTH = 16  # shorter ones are guessable, and the redactor masks runs of 8 or more


def new_token() -> str:
    """A fresh random token (a run's local workers share it with their master only)."""
    return secrets.token_urlsafe(32)


def token_problem(token: str | None) -> str | None:
    """Why ``token`` cannot be used, or None."""
    if token is None:
        return f"${ENV} is not set"
    if not token.strip():
        return f"${ENV} is empty"
    if len(token) < MIN_TOKEN_LENGTH:
        return f"${ENV} is shorter than {MIN_TOKEN_LENGTH} characters (it has {len(token)})"
    return None


def missing_token_paragraph(who: str, environ: Mapping[str, str] = os.environ) -> str | None:
    """The usage error's paragraph when ``environ`` holds no usable token, else None; ``who``
    starts it (``--gate-remote-workers``, ``stagegate worker``)."""
    problem = token_problem(environ.get(ENV))
    if problem is None:
        return None
    return (
        f"{who} needs the workers' shared secret: {problem}. Set ${ENV} to the same random "
        f'value (at least {MIN_TOKEN_LENGTH} characters, e.g. `python -c "import secrets; '
        f'print(secrets.token_urlsafe(32))"`) for the gated run and every `stagegate worker`: '
        f"a worker proves it before the master counts it or sends it anything, and the token "
        f"itself never travels. See docs/distributed.md."
    )


def take_token(environ: MutableMapping[str, str] = os.environ) -> str | None:
    """The token from the environment, removed from it: the project's code that runs in this
    process (a locustfile, its imports) and the processes it starts never see it."""
    return environ.pop(ENV, None)
