"""Secrets at rest: sealed with AES-256-GCM under a key only the environment holds.

Signing secrets of alert channels must be readable by the worker that signs
(HMAC needs the secret itself), so they cannot be hashed; they are sealed
instead, by the API process that makes them, before they go on a topic.
Tables, changelogs, commands and replies hold only the sealed form
`sealed:v1:<base64url(nonce | ciphertext | tag)>`; whoever reads RocksDB or
Kafka without PINGSTREAM_SECRETS_KEY learns nothing. The key (at least 32
random bytes, like the other secrets) is stretched to 256 bits with SHA-256.
A value without the prefix was stored before sealing existed and is used as
it is.
"""
from __future__ import annotations

import base64
import hashlib
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREFIX = "sealed:v1:"


def _cipher(key: str) -> AESGCM:
    if not key:
        raise ValueError("PINGSTREAM_SECRETS_KEY is not set: secrets cannot be sealed or read")
    return AESGCM(hashlib.sha256(key.encode()).digest())


def seal(key: str, secret: str) -> str:
    nonce = os.urandom(12)
    sealed = _cipher(key).encrypt(nonce, secret.encode(), PREFIX.encode())
    return PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()


def unseal(key: str, stored: str) -> str:
    """The secret; raises cryptography's InvalidTag under another key or for a tampered value."""
    if not stored.startswith(PREFIX):
        return stored
    raw = base64.urlsafe_b64decode(stored[len(PREFIX):].encode())
    return _cipher(key).decrypt(raw[:12], raw[12:], PREFIX.encode()).decode()
