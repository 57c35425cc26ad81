"""Issuing and verifying access tokens (JWT, RFC 9068 profile, RFC 8725 checks)."""

from __future__ import annotations

import base64
import binascii
import json
from collections import OrderedDict
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwt import JWTClaimsRegistry

from control_plane.config import Settings
from control_plane.contracts import uuid7
from control_plane.db import utcnow
from control_plane.errors import Unauthorized
from control_plane.identity.keys import ALLOWED_ALGORITHMS, KeyRing
from control_plane.identity.principal import Grant, Principal

_CACHE_SIZE = 10_000
_LEEWAY_SECONDS = 30


class TokenService:
    def __init__(self, settings: Settings, keyring: KeyRing) -> None:
        self.settings = settings
        self.keyring = keyring
        self._verified: OrderedDict[str, tuple[Principal, str, int]] = OrderedDict()
        self._claim_options: dict[str, Any] = dict(
            iss={"essential": True, "value": settings.issuer},
            aud={"essential": True, "value": settings.jwt_audience},
            sub={"essential": True},
            exp={"essential": True},
            iat={"essential": True},
            jti={"essential": True},
        )

    async def issue(self, principal: Principal, *, now: datetime | None = None) -> tuple[str, int]:
        key = await self.keyring.signing_key()
        issued = int((now or utcnow()).timestamp())
        ttl = self.settings.access_token_ttl_seconds
        claims: dict[str, Any] = {
            "iss": self.settings.issuer,
            "aud": self.settings.jwt_audience,
            "sub": principal.subject,
            "iat": issued,
            "nbf": issued,
            "exp": issued + ttl,
            "jti": uuid7().hex,
            "kind": principal.kind,
            "name": principal.name,
            "scope": " ".join(sorted({g.role.value for g in principal.grants})),
            "grants": msgspec.to_builtins(list(principal.grants)),
        }
        if principal.home_partner_id:
            claims["partner_id"] = str(principal.home_partner_id)
        if principal.home_tenant_id:
            claims["tenant_id"] = str(principal.home_tenant_id)
        header = {"alg": key.algorithm, "kid": key.kid, "typ": "at+jwt"}
        token = jwt.encode(header, claims, key.key, algorithms=[key.algorithm])
        return token, ttl

    async def verify(self, token: str, *, now: datetime | None = None) -> Principal:
        now = now or utcnow()
        ts = int(now.timestamp())
        hit = self._verified.get(token)
        if hit is not None:
            principal, cached_kid, exp = hit
            if ts < exp + _LEEWAY_SECONDS and self.keyring.cached(cached_kid, now):
                self._verified.move_to_end(token)
                return principal
            del self._verified[token]
        header = _header(token)
        alg: Any = header.get("alg")
        kid: Any = header.get("kid")
        if alg not in ALLOWED_ALGORITHMS:
            raise Unauthorized(f"token algorithm {alg!r} is not accepted")
        if not isinstance(kid, str):
            raise Unauthorized("token header has no key id (kid)")
        key = await self.keyring.verification_key(kid, now)
        if key is None:
            raise Unauthorized("token signed by an unknown or retired key")
        if key.algorithm != alg:
            raise Unauthorized("token algorithm does not match its key")
        try:
            decoded = jwt.decode(token, key.key, algorithms=[key.algorithm])
            registry = JWTClaimsRegistry(now=ts, leeway=_LEEWAY_SECONDS, **self._claim_options)
            registry.validate(decoded.claims)
        except JoseError as exc:
            raise Unauthorized(f"invalid token: {exc.description or exc.error}") from None
        principal = _principal(decoded.claims)
        self._verified[token] = (principal, kid, int(decoded.claims["exp"]))
        if len(self._verified) > _CACHE_SIZE:
            self._verified.popitem(last=False)
        return principal


def _header(token: str) -> dict[str, Any]:
    parts = token.split(".")
    if len(parts) != 3:
        raise Unauthorized("token is not a compact JWS")
    try:
        raw = base64.urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4))
        header = json.loads(raw)
    except (binascii.Error, ValueError):
        raise Unauthorized("token header is not valid base64url JSON") from None
    if not isinstance(header, dict):
        raise Unauthorized("token header is not a JSON object")
    return header


def _principal(claims: dict[str, Any]) -> Principal:
    try:
        grants = msgspec.convert(claims.get("grants", []), list[Grant])
        partner = claims.get("partner_id")
        tenant = claims.get("tenant_id")
        return Principal(
            subject=str(claims["sub"]),
            kind=str(claims.get("kind", "user")),
            name=str(claims.get("name", claims["sub"])),
            grants=tuple(grants),
            home_partner_id=UUID(partner) if partner else None,
            home_tenant_id=UUID(tenant) if tenant else None,
            token_id=str(claims["jti"]),
            claims=claims,
        )
    except (msgspec.ValidationError, ValueError, KeyError):
        raise Unauthorized("token claims are malformed") from None
