"""Secrets at rest: sealed under the environment's key, readable only with it."""
from __future__ import annotations

import pytest
from cryptography.exceptions import InvalidTag

from engine.sealing import PREFIX, seal, unseal

KEY = "Jq3vQy0bX9kP2mN7wR4tL8sZ1cF6hD5gA0eB3uV7yK2"


def test_a_sealed_secret_reads_back_only_under_its_key() -> None:
    sealed = seal(KEY, "whsec_abc123")
    assert sealed.startswith(PREFIX) and "whsec_abc123" not in sealed
    assert seal(KEY, "whsec_abc123") != sealed     # a fresh nonce every time
    assert unseal(KEY, sealed) == "whsec_abc123"
    with pytest.raises(InvalidTag):
        unseal(KEY[::-1], sealed)
    tampered = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    with pytest.raises(InvalidTag):
        unseal(KEY, tampered)


def test_a_secret_stored_before_sealing_is_used_as_it_is() -> None:
    assert unseal(KEY, "whsec_legacy") == "whsec_legacy"


def test_without_a_key_nothing_is_sealed() -> None:
    with pytest.raises(ValueError, match="PINGSTREAM_SECRETS_KEY"):
        seal("", "whsec_abc123")
