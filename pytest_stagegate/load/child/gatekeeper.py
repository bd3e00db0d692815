"""Locust's master and worker runners with the token handshake in front (``handshake``).

``GatedMasterRunner`` hands Locust a worker's ``client_ready`` only once the worker proved the
token: until then the worker is not in ``runner.clients``, so it is neither counted nor sent a
spawn message, a gate message or a quit, and every other message it sends (reports, hellos,
heartbeats, a forged ``client_stopped``) is dropped. A worker that proved the token but
loads another target than the master's (the base URL it states with its proof) is refused too,
the two URLs named. A message whose Locust node id is not the
ZeroMQ identity it came from is dropped too. A plain ``locust --worker`` never answers the
challenge: it is refused (named in the log) when it asks again, and gives up by itself.

``GatedWorkerRunner`` obeys only a master that proved the token in return: before the
master's proof it ignores every message (an ``ack`` included), so it never connects, reports
or loads for anyone else.
"""

# Locust's runners and Message are untyped; every call to them would need its own ignore.
# mypy: disable-error-code="no-untyped-call,no-untyped-def"
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import msgpack.exceptions  # type: ignore[import-untyped]
import zmq.error
from locust.env import Environment
from locust.exception import RPCError, RPCReceiveError
from locust.rpc import Message
from locust.runners import MasterRunner, WorkerRunner

from ... import defaults
from .failure import LoadFailure
from .handshake import (
    MSG_CHALLENGE,
    MSG_PROOF,
    MSG_REFUSED,
    MSG_WELCOME,
    new_nonce,
    proof,
    proof_matches,
    public_target,
    target_mismatch,
    worker_host,
)

__all__ = ["GatedMasterRunner", "GatedWorkerRunner"]

log = logging.getLogger("pytest_stagegate.load")

TOKEN = f"${defaults.WORKER_TOKEN_ENV}"
# A stagegate worker answers a challenge at once; a client_ready that comes again within this
# was sent before it (queued by ZeroMQ while the master was not up yet), not instead of it.
CHALLENGE_PATIENCE = 2.0


@dataclass
class _Challenge:
    nonce: str
    version: Any  # what the worker's client_ready said (Locust's version)
    sent: float


class GatedMasterRunner(MasterRunner):
    """A master that counts and commands only the workers that proved ``token``."""

    def __init__(
        self,
        environment: Environment,
        master_bind_host: str,
        master_bind_port: int,
        token: str,
        target: str,
    ) -> None:
        self._token = token
        self.target = target  # the gate's base URL: a worker loading another is refused
        self.challenges: dict[str, _Challenge] = {}
        self.proven: set[str] = set()
        self.refused: dict[str, str] = {}  # client id -> the sentence the log said
        self.refused_why: dict[str, str] = {}  # client id -> why, for the verdict's reason
        self.peers: dict[str, str] = {}  # client id -> the address its messages came from
        self._dropped: set[str] = set()
        super().__init__(environment, master_bind_host, master_bind_port)
        self._watch_peers()

    def __repr__(self) -> str:  # the token is an attribute: never in a repr
        return f"<GatedMasterRunner {self.master_bind_host}:{self.master_bind_port}>"

    # who is it ------------------------------------------------------------------------------
    def _watch_peers(self) -> None:
        """Note the TCP peer of every message (ZeroMQ's Peer-Address), to name workers by the
        address they really came from, not only by the host name they claim."""
        server = self.server
        peers = self.peers

        def recv_from_client() -> tuple[str, Message]:
            try:
                frames = server.socket.recv_multipart(copy=False)
                addr = bytes(frames[0].bytes).decode()
            except UnicodeDecodeError as e:
                raise RPCReceiveError("ZMQ interrupted or corrupted message") from e
            except zmq.error.ZMQError as e:
                raise RPCError("ZMQ network broken") from e
            try:
                peer = frames[1].get("Peer-Address")
            except Exception:  # an old libzmq, a transport without peers
                peer = None
            if peer:
                peers[addr] = str(peer)
            try:
                msg = Message.unserialize(bytes(frames[1].bytes))
            except (UnicodeDecodeError, msgpack.exceptions.ExtraData) as e:
                raise RPCReceiveError("ZMQ interrupted or corrupted message", addr=addr) from e
            return addr, msg

        server.recv_from_client = recv_from_client  # type: ignore[method-assign]

    def reset_connection(self) -> None:
        super().reset_connection()
        self._watch_peers()

    def describe(self, client_id: str) -> str:
        """``worker ID (host H, from ADDR)`` for the log."""
        peer = self.peers.get(client_id)
        where = f", from {peer}" if peer else ""
        return f"worker {client_id} (host {worker_host(client_id)}{where})"

    # the handshake --------------------------------------------------------------------------
    def handle_message(self, client_id: str, msg: Message) -> None:
        if msg.node_id != client_id:
            log.warning(
                "Dropped a %r message from %s that claimed to come from %r.",
                msg.type,
                self.describe(client_id),
                msg.node_id,
            )
            return
        if client_id in self.proven:
            super().handle_message(client_id, msg)
            return
        if msg.type == "client_ready":
            self._on_client_ready(client_id, msg)
        elif msg.type == MSG_PROOF:
            self._on_proof(client_id, msg)
        elif client_id not in self._dropped and client_id not in self.refused:
            self._dropped.add(client_id)
            log.warning(
                "Ignored a %r message from %s, which has not proven %s (and any other "
                "message until it does).",
                msg.type,
                self.describe(client_id),
                TOKEN,
            )

    def _on_client_ready(self, client_id: str, msg: Message) -> None:
        if client_id in self.refused:
            return  # said once in the log
        pending = self.challenges.get(client_id)
        if pending is not None:
            if time.monotonic() - pending.sent < CHALLENGE_PATIENCE:
                return  # queued while the master was not up yet: the challenge stands
            # asked again without answering: not a stagegate worker (Locust retries every 5 s)
            self._refuse(
                client_id,
                f"it did not answer the token challenge (a plain `locust --worker`, or a "
                f"stagegate worker older than 0.2), so it cannot prove {TOKEN}",
                tell=False,
            )
            return
        nonce = new_nonce()
        self.challenges[client_id] = _Challenge(nonce, msg.data, time.monotonic())
        log.info("%s asks to join: challenged to prove %s.", self.describe(client_id), TOKEN)
        self.server.send_to_client(Message(MSG_CHALLENGE, {"nonce": nonce}, client_id))

    def _on_proof(self, client_id: str, msg: Message) -> None:
        challenge = self.challenges.pop(client_id, None)
        data = msg.data if isinstance(msg.data, dict) else {}
        worker_nonce = data.get("nonce")
        if challenge is None or not isinstance(worker_nonce, str) or not worker_nonce:
            self._refuse(client_id, "it sent a proof for no challenge of this master")
            return
        expected = proof(self._token, "worker", challenge.nonce, worker_nonce, client_id)
        if not proof_matches(expected, data.get("proof")):
            self._refuse(client_id, f"its proof of {TOKEN} is wrong (another token)")
            return
        mismatch = target_mismatch(data.get("target"), self.target)
        if mismatch is not None:
            self._refuse(
                client_id,
                f"{mismatch} (a worker loading another deployment measures the wrong thing: "
                f"give it a stagegate.yaml whose target has the gate's base_url)",
                kind="target",
            )
            return
        self.proven.add(client_id)
        log.info("%s proved %s.", self.describe(client_id), TOKEN)
        mine = proof(self._token, "master", challenge.nonce, worker_nonce, client_id)
        self.server.send_to_client(Message(MSG_WELCOME, {"proof": mine}, client_id))
        # now Locust's own client_ready: ack, counted, dispatched to
        super().handle_message(client_id, Message("client_ready", challenge.version, client_id))

    def _refuse(self, client_id: str, why: str, *, tell: bool = True, kind: str = "token") -> None:
        self.challenges.pop(client_id, None)
        sentence = f"Refused load {self.describe(client_id)}: {why}. It is not counted."
        self.refused[client_id] = sentence
        self.refused_why[client_id] = why
        log.warning("%s", sentence)
        if tell:
            message = Message(MSG_REFUSED, {"reason": why, "kind": kind}, client_id)
            self.server.send_to_client(message)

    def refused_summary(self) -> str:
        """`` Refused 2: worker ... (host ..., from ...): why; ...`` for a reason, or ""."""
        if not self.refused:
            return ""
        each = [f"{self.describe(c)}: {why}" for c, why in self.refused_why.items()]
        return f" Refused {len(each)}: {'; '.join(each)}."


class GatedWorkerRunner(WorkerRunner):
    """A worker that proves ``token`` to its master and obeys only a master that proves it
    back. ``refused``: the master's reason when it refused this worker (then ``__init__``
    raises ``LoadFailure``)."""

    def __init__(
        self,
        environment: Environment,
        master_host: str,
        master_port: int,
        token: str,
        target: str,
    ) -> None:
        # set before Locust's __init__: it connects (sends client_ready, waits) in there
        self._token = token
        self.target = public_target(target)  # stated with the proof: the master compares
        self.refused_kind = "token"
        self._nonces: tuple[str, str] | None = None
        self.master_proven = False
        self.refused: str | None = None
        self._said_unproven = False
        super().__init__(environment, master_host, master_port)

    def __repr__(self) -> str:
        return f"<GatedWorkerRunner for {self.master_host}:{self.master_port}>"

    def connect_to_master(self) -> None:
        super().connect_to_master()
        if self.refused is not None:
            fix = (
                "Run the app where the gate's target is, or give this worker the gate's base_url"
                if self.refused_kind == "target"
                else f"Give it the master's {TOKEN}"
            )
            raise LoadFailure(
                f"The load master at {self.master_host}:{self.master_port} refused this "
                f"worker: {self.refused}. {fix}."
            )

    def handle_message(self, msg: Message) -> None:
        if msg.type == MSG_CHALLENGE:
            data = msg.data if isinstance(msg.data, dict) else {}
            master_nonce = data.get("nonce")
            if not isinstance(master_nonce, str) or not master_nonce:
                return
            worker_nonce = new_nonce()
            self._nonces = (master_nonce, worker_nonce)
            answer = proof(self._token, "worker", master_nonce, worker_nonce, self.client_id)
            self.client.send(
                Message(
                    MSG_PROOF,
                    {"nonce": worker_nonce, "proof": answer, "target": self.target},
                    self.client_id,
                )
            )
        elif msg.type == MSG_WELCOME:
            data = msg.data if isinstance(msg.data, dict) else {}
            if self._nonces is not None:
                expected = proof(self._token, "master", *self._nonces, self.client_id)
                if proof_matches(expected, data.get("proof")):
                    self.master_proven = True
                    log.info("The load master proved %s.", TOKEN)
                    return
            self._unproven(msg.type)
        elif msg.type == MSG_REFUSED:
            data = msg.data if isinstance(msg.data, dict) else {}
            if self.master_proven:
                return  # a proven master never refuses: not from it
            self.refused = str(data.get("reason") or "no reason given")
            self.refused_kind = str(data.get("kind") or "token")
            log.error("The load master refused this worker: %s.", self.refused)
            self.connection_event.set()  # connect_to_master stops waiting, and raises
        elif not self.master_proven:
            self._unproven(msg.type)
        else:
            super().handle_message(msg)

    def _unproven(self, kind: str) -> None:
        if not self._said_unproven:
            self._said_unproven = True
            log.error(
                "Ignoring the %r message of the master at %s:%s: it has not proven %s "
                "(not a stagegate master, or another token), and every message until it does.",
                kind,
                self.master_host,
                self.master_port,
                TOKEN,
            )
