"""Password hashing with argon2id (memory-hard), off the event loop.

Hashing and verifying take tens of milliseconds and 64 MiB on purpose; they
run in a small thread pool of the API process so the loop keeps serving.
"""
from __future__ import annotations

import asyncio
import functools
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

HASHER = PasswordHasher()  # argon2id, RFC 9106 "low memory" profile: t=3, m=64 MiB, p=4
POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="argon2")


@functools.cache
def dummy_hash() -> str:
    """Verified against when there is no account, so a wrong email costs as much time as a wrong password.

    Made on first use, not at import: every worker imports this module and most never sign anyone in.
    """
    return HASHER.hash("not a password anyone has")


async def hash_password(password: str) -> str:
    return await asyncio.get_running_loop().run_in_executor(POOL, HASHER.hash, password)


def _verify(password_hash: str | None, password: str) -> bool:
    try:
        return HASHER.verify(password_hash or dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        return False


async def verify_password(password_hash: str | None, password: str) -> bool:
    return await asyncio.get_running_loop().run_in_executor(POOL, _verify, password_hash, password) \
        and password_hash is not None
