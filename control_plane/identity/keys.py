"""JWT signing keys: rotation, retirement, JWKS, and an in-process key cache."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from joserfc.jwk import OKPKey, RSAKey
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from control_plane.config import Settings
from control_plane.contracts import uuid7
from control_plane.db import Database, Scope, utcnow
from control_plane.identity.models import SigningKey

#: Algorithms a token header may name (RFC 8725 §3.1): never "none", never HMAC. EdDSA
#: keys sign as the fully-specified "Ed25519" (RFC 9864 deprecates the "EdDSA" name).
ALLOWED_ALGORITHMS = frozenset({"Ed25519", "RS256"})
_REFRESH_SECONDS = 10.0
#: Unknown kids trigger at most one reload per this many seconds.
_MISS_RELOAD_SECONDS = 1.0

AnyKey = OKPKey | RSAKey


def _generate(algorithm: str) -> AnyKey:
    if algorithm == "Ed25519":
        return OKPKey.generate_key("Ed25519")
    return RSAKey.generate_key(2048)


def _import(data: str) -> AnyKey:
    obj = json.loads(data)
    if obj["kty"] == "OKP":
        return OKPKey.import_key(obj)
    return RSAKey.import_key(obj)


async def rotate_signing_key(
    session: AsyncSession, settings: Settings, *, algorithm: str | None = None
) -> tuple[SigningKey, list[SigningKey]]:
    """Make a new signing key; the previous signers keep verifying until they retire."""
    now = utcnow()
    alg = algorithm or settings.jwt_algorithm
    if alg not in ALLOWED_ALGORITHMS:
        raise ValueError(f"unsupported algorithm {alg!r}; use one of {sorted(ALLOWED_ALGORITHMS)}")
    previous = list(
        (await session.scalars(select(SigningKey).where(SigningKey.status == "signing"))).all()
    )
    # A key signs for up to the refresh interval after rotation elsewhere, so its tokens
    # may outlive the rotation by ttl + refresh: retire only after that.
    retire_at = now + timedelta(seconds=settings.retirement_seconds + _REFRESH_SECONDS)
    for key in previous:
        key.status = "verifying"
        key.retires_at = retire_at
    kid = uuid7().hex
    jwk = _generate(alg)
    record = SigningKey(
        kid=kid,
        algorithm=alg,
        private_jwk=json.dumps(jwk.as_dict(private=True)),
        public_jwk=json.dumps({**jwk.as_dict(private=False), "kid": kid, "alg": alg, "use": "sig"}),
        status="signing",
    )
    session.add(record)
    await session.flush()
    return record, previous


async def retire_key(session: AsyncSession, kid: str) -> SigningKey | None:
    key = await session.scalar(select(SigningKey).where(SigningKey.kid == kid))
    if key is None:
        return None
    if key.status == "signing":
        raise ValueError(f"key {kid} is the current signing key; rotate first")
    key.status, key.retires_at = "retired", utcnow()
    return key


@dataclass(frozen=True)
class LoadedKey:
    kid: str
    algorithm: str
    key: AnyKey
    public: dict[str, Any]
    signing: bool
    retires_at: datetime | None

    def verifies_at(self, now: datetime) -> bool:
        return self.retires_at is None or self.retires_at > now


class KeyRing:
    """The keys this process signs and verifies with, reloaded from the database."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._keys: dict[str, LoadedKey] = {}
        self._loaded_at = 0.0
        self._lock = asyncio.Lock()

    async def _load(self) -> None:
        async with self._db.session(Scope.system()) as session:
            rows = (
                await session.scalars(select(SigningKey).where(SigningKey.status != "retired"))
            ).all()
        self._keys = {
            r.kid: LoadedKey(
                kid=r.kid,
                algorithm=r.algorithm,
                key=_import(r.private_jwk),
                public=json.loads(r.public_jwk),
                signing=r.status == "signing",
                retires_at=r.retires_at,
            )
            for r in rows
        }
        self._loaded_at = time.monotonic()

    async def _fresh(self, max_age: float = _REFRESH_SECONDS) -> dict[str, LoadedKey]:
        if time.monotonic() - self._loaded_at > max_age:
            async with self._lock:
                if time.monotonic() - self._loaded_at > max_age:
                    await self._load()
        return self._keys

    def invalidate(self) -> None:
        self._loaded_at = 0.0

    async def signing_key(self) -> LoadedKey:
        keys = await self._fresh()
        signers = [k for k in keys.values() if k.signing]
        if not signers:
            raise RuntimeError(
                "no signing key: run `storeops db upgrade` then `storeops keys rotate`"
            )
        return max(signers, key=lambda k: k.kid)

    async def verification_key(self, kid: str, now: datetime) -> LoadedKey | None:
        keys = await self._fresh()
        key = keys.get(kid)
        if key is None:
            keys = await self._fresh(_MISS_RELOAD_SECONDS)
            key = keys.get(kid)
        if key is None or not key.verifies_at(now):
            return None
        return key

    def cached(self, kid: str, now: datetime) -> bool:
        """Whether ``kid`` still verifies, without I/O (for the verified-token cache).

        A stale or invalidated ring answers no, so the caller takes the full path, which
        reloads: a retirement then reaches cached tokens as soon as it reaches new ones.
        """
        if time.monotonic() - self._loaded_at > _REFRESH_SECONDS:
            return False
        key = self._keys.get(kid)
        return key is not None and key.verifies_at(now)

    async def jwks(self) -> dict[str, Any]:
        keys = await self._fresh()
        now = utcnow()
        return {"keys": [k.public for k in keys.values() if k.verifies_at(now)]}
