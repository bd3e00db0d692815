"""The workers' token: the proofs (load/child/handshake.py) and the token's checks
(load/worker_token.py). The handshake itself runs for real in tests/e2e/test_worker_token.py."""

from __future__ import annotations

import pytest

from pytest_stagegate.load.child.handshake import (
    new_nonce,
    proof,
    proof_matches,
    public_target,
    target_mismatch,
    worker_host,
)
from pytest_stagegate.load.worker_token import (
    MIN_TOKEN_LENGTH,
    missing_token_paragraph,
    new_token,
    take_token,
    token_problem,
)

TOKEN = "s3cret-token-for-the-workers"
M, W, ID = new_nonce(), new_nonce(), "runner-7_0123456789abcdef0123456789abcdef"


def test_a_proof_depends_on_every_part_and_never_holds_the_token() -> None:
    base = proof(TOKEN, "worker", M, W, ID)
    assert len(base) == 64 and TOKEN not in base
    assert proof(TOKEN, "worker", M, W, ID) == base  # deterministic: the master recomputes it
    others = {
        proof(TOKEN + "x", "worker", M, W, ID),  # another token
        proof(TOKEN, "master", M, W, ID),  # the other role: no reflection
        proof(TOKEN, "worker", new_nonce(), W, ID),  # another challenge: no replay
        proof(TOKEN, "worker", M, new_nonce(), ID),
        proof(TOKEN, "worker", M, W, ID.replace("7", "8")),  # another connection
        proof(TOKEN, "worker", M + W, "", ID),  # the parts are separated, not concatenated
    }
    assert base not in others and len(others) == 6


def test_proof_matches_only_the_same_string() -> None:
    good = proof(TOKEN, "worker", M, W, ID)
    assert proof_matches(good, good)
    assert not proof_matches(good, good[:-1] + ("0" if good[-1] != "0" else "1"))
    assert not proof_matches(good, None)
    assert not proof_matches(good, good.encode())
    assert not proof_matches(good, "")


def test_nonces_are_fresh() -> None:
    assert len({new_nonce() for _ in range(100)}) == 100
    assert len(new_nonce()) == 64


@pytest.mark.parametrize(
    ("token", "problem"),
    [
        (None, "$STAGEGATE_WORKER_TOKEN is not set"),
        ("", "$STAGEGATE_WORKER_TOKEN is empty"),
        ("   ", "$STAGEGATE_WORKER_TOKEN is empty"),
        ("x" * (MIN_TOKEN_LENGTH - 1), "shorter than 16 characters (it has 15)"),
        ("x" * MIN_TOKEN_LENGTH, None),
    ],
)
def test_token_problem(token: str | None, problem: str | None) -> None:
    found = token_problem(token)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


def test_the_usage_paragraph_names_the_variable_and_never_the_value() -> None:
    assert missing_token_paragraph("stagegate worker", {"STAGEGATE_WORKER_TOKEN": TOKEN}) is None
    text = missing_token_paragraph("stagegate worker", {"STAGEGATE_WORKER_TOKEN": "short-secret"})
    assert text is not None
    assert text.startswith("stagegate worker needs the workers' shared secret")
    assert "short-secret" not in text and "docs/distributed.md" in text
    assert "is not set" in (missing_token_paragraph("x", {}) or "")


def test_take_token_removes_it_from_the_environment() -> None:
    environ = {"STAGEGATE_WORKER_TOKEN": TOKEN, "OTHER": "1"}
    assert take_token(environ) == TOKEN
    assert environ == {"OTHER": "1"}
    assert take_token(environ) is None


def test_new_tokens_are_long_and_fresh() -> None:
    tokens = {new_token() for _ in range(50)}
    assert len(tokens) == 50
    assert all(token_problem(t) is None and len(t) >= 40 for t in tokens)


def test_worker_host() -> None:
    assert worker_host(ID) == "runner-7"
    assert worker_host("my_host_0123456789abcdef0123456789abcdef") == "my_host"
    assert worker_host("no-uuid-here") == "no-uuid-here"


def test_a_worker_states_its_target_without_credentials_query_or_fragment() -> None:
    stated = public_target("https://user:pa55word@Shop.example.com:8443/api/?key=s3cret#frag")
    assert stated == "https://Shop.example.com:8443/api/"
    assert "pa55word" not in stated and "s3cret" not in stated
    assert public_target("http://127.0.0.1:8000") == "http://127.0.0.1:8000"


@pytest.mark.parametrize(
    ("worker", "gate"),
    [
        ("http://127.0.0.1:41234", "http://127.0.0.1:41234"),
        ("http://127.0.0.1:41234/", "http://127.0.0.1:41234"),
        ("https://SHOP.example.com", "https://shop.example.com:443"),
        ("http://shop.example.com:80/api", "http://user:pw@shop.example.com/api/"),
        ("https://shop.example.com/", "https://shop.example.com/?token=x"),
    ],
)
def test_the_same_place_is_no_mismatch(worker: str, gate: str) -> None:
    assert target_mismatch(public_target(worker), gate) is None


@pytest.mark.parametrize(
    ("worker", "gate"),
    [
        ("http://127.0.0.1:8000", "http://127.0.0.1:41234"),  # the bundled example's trap
        ("http://localhost:41234", "http://127.0.0.1:41234"),
        ("https://127.0.0.1:41234", "http://127.0.0.1:41234"),
        ("http://127.0.0.1:41234/v2", "http://127.0.0.1:41234/v1"),
    ],
)
def test_another_place_is_named_with_the_gates_target(worker: str, gate: str) -> None:
    why = target_mismatch(public_target(worker), gate)
    assert why == f"it loads {public_target(worker)}, the gate's target is {gate}"


def test_a_mismatch_never_names_the_gates_credentials() -> None:
    why = target_mismatch("http://127.0.0.1:8000", "https://gate:pa55word@shop.example.com")
    assert why is not None and "pa55word" not in why
    assert "the gate's target is https://shop.example.com" in why


@pytest.mark.parametrize("stated", [None, "", 7])
def test_a_worker_that_states_no_target_is_refused(stated: object) -> None:
    why = target_mismatch(stated, "http://127.0.0.1:41234")
    assert why is not None and "did not say which target it loads" in why
