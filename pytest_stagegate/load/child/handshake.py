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

``id`` is the worker's Locust client id, which is also its ZeroMQ routing identity, so a proof
is bound to one connection; the nonces make every proof single-use. The token itself never
travels. A wrong proof is answered with ``stagegate_refused`` and the worker named in the log.
This authenticates; it does not encrypt (docs/distributed.md says what travels).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

__all__ = [
    "MSG_CHALLENGE",
    "MSG_PROOF",
    "MSG_REFUSED",
    "MSG_WELCOME",
    "new_nonce",
    "proof",
    "proof_matches",
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
