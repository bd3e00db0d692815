"""``plugin.state.RunSecrets``: the run's one set of secrets and its redactor."""

from __future__ import annotations

from pytest_stagegate.config import Target
from pytest_stagegate.plugin.state import RunSecrets

CONFIGURED = Target(
    name="staging",
    base_url="https://staging.example.com",
    secrets=frozenset({"configured-token-0001"}),
)
REPLACED = Target(name="staging", base_url="http://127.0.0.1:8000")
KEY = "signing-key-never-shown-77"


def test_both_targets_and_the_signing_key_are_masked() -> None:
    secrets = RunSecrets.of(REPLACED, CONFIGURED, KEY.encode())
    text = f"a hook failed with configured-token-0001 and {KEY}"
    assert secrets(text) == "a hook failed with *** and ***"
    assert secrets.redactor(text) == secrets(text)
    assert secrets.values == {"configured-token-0001", KEY}


def test_the_signing_key_is_never_shared_with_other_processes() -> None:
    secrets = RunSecrets.of(REPLACED, CONFIGURED, KEY.encode())
    assert secrets.shared == {"configured-token-0001"}  # the load plan, xdist workers


def test_nothing_is_shown() -> None:
    secrets = RunSecrets.of(CONFIGURED, signing_key=KEY.encode())
    assert "configured-token" not in repr(secrets) and KEY not in repr(secrets)


def test_without_a_replacement_or_a_key_the_targets_secrets_alone() -> None:
    assert RunSecrets.of(CONFIGURED).values == CONFIGURED.secrets
    assert RunSecrets.of(REPLACED).values == frozenset()
    assert RunSecrets.of(REPLACED, signing_key=None)("anything") == "anything"


def test_a_key_with_undecodable_bytes_is_masked_around_them() -> None:
    key = b"left-part-of-key\xffright-part-of-key"
    secrets = RunSecrets.of(REPLACED, signing_key=key)
    shown = key.decode("utf-8", "surrogateescape")  # as os.environ holds it
    assert secrets.values == {"left-part-of-key", "right-part-of-key"}
    assert secrets(f"key={shown}") == "key=***\udcff***"
