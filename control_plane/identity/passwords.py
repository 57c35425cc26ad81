"""Password hashing (argon2id through pwdlib) and client-secret digests."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import weakref
from functools import cache

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

_hasher = PasswordHash((Argon2Hasher(),))
_ARGON2_CONCURRENCY = 2
_slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


def _argon2_slots() -> asyncio.Semaphore:
    """argon2 takes ~200 ms and 64 MiB a call: off the event loop, two at a time per loop."""
    loop = asyncio.get_running_loop()
    if loop not in _slots:
        _slots[loop] = asyncio.Semaphore(_ARGON2_CONCURRENCY)
    return _slots[loop]


MIN_PASSWORD_LENGTH = 12


@cache
def _dummy_hash() -> str:
    """Verifying against this keeps an unknown user's timing equal to a wrong password's."""
    return _hasher.hash(secrets.token_urlsafe(16))


async def hash_password(password: str) -> str:
    async with _argon2_slots():
        return await asyncio.to_thread(_hasher.hash, password)


async def verify_password(password: str, password_hash: str | None) -> bool:
    async with _argon2_slots():
        if password_hash is None:
            await asyncio.to_thread(_hasher.verify, password, _dummy_hash())
            return False
        return await asyncio.to_thread(_hasher.verify, password, password_hash)


def new_client_id() -> str:
    return "so_" + secrets.token_hex(12)


def new_client_secret() -> str:
    return secrets.token_urlsafe(32)


def digest_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(secret: str, digest: str) -> bool:
    return hmac.compare_digest(digest_secret(secret), digest)
