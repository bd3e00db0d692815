"""The workers' proof of the shared secret: the pure part (no Locust), unit-tested in-process.

Locust's master and workers speak ZeroMQ without authentication: anything that reaches the
master's port and says ``client_ready`` is counted as a worker, gets the spawn messages and the
gate's own messages, and its reports feed the verdict. The gate puts a challenge-response in
front of that (``gatekeeper``), keyed by the token both sides hold (``STAGEGATE_WORKER_TOKEN``;
the local workers of ``--gate-workers N`` get a fresh random one):

1. worker -> master  ``client_ready`` (Locust's own, unchanged)
2. master -> worker  ``stagegate_challenge`` {nonce: M, a fresh random 256-bit nonce}
3. worker -> master  ``stagegate_proof`` {nonce: W, fresh; proof: HMAC(token, worker|M|W|id)}
4. master -> worker  ``stagegate_welcome`` {proof: HMAC(token, master|M|W|id)}, then
   Locust's ``ack``: only now is the worker counted, and only now does it obey the master.

With its proof the worker states the target it loads (its own stagegate.yaml's base URL, in
public form: no credentials, query or fragment): the master refuses a worker that proved the
token but loads another place than the gate's target (``target_mismatch``), because its
measurements would be of another deployment. (This catches a misconfigured worker; a worker
that holds the token is trusted not to lie about it.)

``id`` is the worker's Locust client id, which is also its ZeroMQ routing identity, so a proof
is bound to one connection; the nonces make every proof single-use. The token itself never
travels. A wrong proof is answered with ``stagegate_refused`` and the worker named in the log.
This authenticates; it does not encrypt (docs/distributed.md says what travels).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import urlsplit, urlunsplit

from ...urls import place

__all__ = [
    "MSG_CHALLENGE",
    "MSG_PROOF",
    "MSG_REFUSED",
    "MSG_WELCOME",
    "new_nonce",
    "proof",
    "proof_matches",
    "public_target",
    "target_mismatch",
    "worker_host",
]

MSG_CHALLENGE = "stagegate_challenge"  # master -> worker: prove the token for this nonce
MSG_PROOF = "stagegate_proof"  # worker -> master: the proof, and the worker's own nonce
MSG_WELCOME = "stagegate_welcome"  # master -> worker: the master's proof; the worker is in
MSG_REFUSED = "stagegate_refused"  # master -> worker: the proof was wrong
NONCE_BYTES = 32
_PROTOCOL = b"stagegate-worker-token-v1"


def new_nonce() -> str:
    return secrets.token_hex(NONCE_BYTES)


def proof(token: str, role: str, master_nonce: str, worker_nonce: str, client_id: str) -> str:
    """HMAC-SHA256 keyed by ``token`` over the role ("worker" or "master"), both nonces and the
    worker's client id, in hex. The two roles' proofs differ, so neither side can reflect the
    other's."""
    message = b"\0".join(
        part.encode("utf-8") for part in (role, master_nonce, worker_nonce, client_id)
    )
    return hmac.new(token.encode("utf-8"), _PROTOCOL + b"\0" + message, hashlib.sha256).hexdigest()


def proof_matches(expected: str, given: object) -> bool:
    """In constant time; anything but a string is no proof."""
    return isinstance(given, str) and hmac.compare_digest(expected, given)


def worker_host(client_id: str) -> str:
    """The host name in a Locust client id (``HOSTNAME_<32 hex>``), as the worker says."""
    host, sep, tail = client_id.rpartition("_")
    return host if sep and len(tail) == 32 else client_id


def public_target(url: str) -> str:
    """``url`` as a worker states it to its master: scheme, host, port and path, without
    credentials, query or fragment (where secrets sit in a URL)."""
    try:
        parts = urlsplit(url.strip())
        host = parts.netloc.rsplit("@", 1)[-1]
    except ValueError:
        return "an unreadable URL"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def target_mismatch(stated: object, gate_target: str) -> str | None:
    """Why a worker that states ``stated`` as its target may not load for a gate whose target
    is ``gate_target``, or None when both name the same place."""
    gate = public_target(gate_target)
    if not isinstance(stated, str) or not stated:
        return (
            f"it did not say which target it loads (a stagegate worker older than this "
            f"master); the gate's target is {gate}"
        )
    here = place(gate_target)
    if here is not None and place(stated) == here:
        return None
    return f"it loads {public_target(stated)}, the gate's target is {gate}"
