"""Bearer tokens issued by the control plane, verified here against its published JWKS.

The runtime is a resource server of its own: it checks signature, issuer, audience, expiry
and type (RFC 9068), then admits the caller only through grants in this runtime's tenant
(or platform-wide ones). A token that grants nothing here is not for this runtime (401);
one that does but with roles the runtime does not serve is refused (403).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import httpx
import msgspec
from joserfc import jwk, jwt
from joserfc.errors import JoseError
from joserfc.jwt import JWTClaimsRegistry
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult

from tenant_runtime.api.problems import Forbidden, Unauthorized

log = logging.getLogger("storeops.runtime.auth")

#: The algorithms the control plane signs with (never "none", never HMAC).
ALLOWED_ALGORITHMS = frozenset({"Ed25519", "RS256"})
_ACCESS_TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})
LEEWAY_SECONDS = 30

STORE_MANAGER = "store_manager"
REGIONAL_MANAGER = "regional_manager"
RETAILER_ADMIN = "retailer_admin"
PLATFORM_ADMIN = "platform_admin"
NOC_OPERATOR = "noc_operator"
#: Roles granted inside a tenant that this runtime serves.
TENANT_ROLES = frozenset({RETAILER_ADMIN, REGIONAL_MANAGER, STORE_MANAGER})
#: Platform-wide roles admitted too: the operator acts, the NOC reads.
PLATFORM_ROLES = frozenset({PLATFORM_ADMIN, NOC_OPERATOR})

#: Paths served without a bearer token (the portal pages authenticate in the browser).
PUBLIC_PATHS = ["^/healthz$", "^/readyz$", "^/metrics$", "^/hooks/", "^/portal", "^/schema"]


class Grant(msgspec.Struct, frozen=True):
    """A role at one node of the tenancy tree, as the control plane writes it in tokens."""

    role: str
    partner_id: UUID | None = None
    tenant_id: UUID | None = None
    region_id: UUID | None = None
    store_id: UUID | None = None

    @property
    def platform_wide(self) -> bool:
        return not (self.partner_id or self.tenant_id or self.region_id or self.store_id)


@dataclass(frozen=True)
class Caller:
    """Who is calling, reduced to what this runtime needs: roles and granted nodes."""

    subject: str
    name: str
    roles: frozenset[str]
    #: Stores granted to a store manager, regions to a regional manager (control-plane ids).
    store_ids: frozenset[UUID] = frozenset()
    region_ids: frozenset[UUID] = frozenset()

    @property
    def tenant_wide(self) -> bool:
        """Sees every run, task and dead letter of the tenant."""
        return bool(self.roles & {RETAILER_ADMIN, PLATFORM_ADMIN, NOC_OPERATOR})

    @property
    def admin(self) -> bool:
        return bool(self.roles & {RETAILER_ADMIN, PLATFORM_ADMIN})

    @property
    def read_only(self) -> bool:
        return self.roles <= {NOC_OPERATOR}


def admit(claims: dict[str, Any], tenant_id: UUID) -> Caller:
    """The caller these verified claims describe in ``tenant_id``'s runtime."""
    try:
        grants = msgspec.convert(claims.get("grants", []), list[Grant])
    except msgspec.ValidationError:
        raise Unauthorized("token claims are malformed: grants") from None
    ours = [
        g
        for g in grants
        if (g.role in TENANT_ROLES and g.tenant_id == tenant_id)
        or (g.role in PLATFORM_ROLES and g.platform_wide)
    ]
    ours = [
        g
        for g in ours
        if (g.role != STORE_MANAGER or g.store_id) and (g.role != REGIONAL_MANAGER or g.region_id)
    ]
    if not ours:
        touching = sorted({g.role for g in grants if g.tenant_id == tenant_id or g.platform_wide})
        if touching:
            raise Forbidden(
                f"roles {', '.join(touching)} are not served by the tenant runtime; it "
                f"serves {', '.join(sorted(TENANT_ROLES | PLATFORM_ROLES))}"
            )
        raise Unauthorized(
            f"this token grants no role in tenant {tenant_id}, which this runtime serves"
        )
    subject = str(claims["sub"])
    return Caller(
        subject=subject,
        name=str(claims.get("name") or subject),
        roles=frozenset(g.role for g in ours),
        store_ids=frozenset(g.store_id for g in ours if g.role == STORE_MANAGER and g.store_id),
        region_ids=frozenset(
            g.region_id for g in ours if g.role == REGIONAL_MANAGER and g.region_id
        ),
    )


@dataclass(frozen=True)
class _Key:
    algorithm: str
    key: Any


def _keys(jwks: dict[str, Any]) -> dict[str, _Key]:
    """The usable signing keys of a JWKS, by kid; others are skipped with a log line."""
    found: dict[str, _Key] = {}
    for entry in jwks.get("keys") or []:
        if not isinstance(entry, dict):
            continue
        kid, alg = entry.get("kid"), entry.get("alg")
        if not isinstance(kid, str) or alg not in ALLOWED_ALGORITHMS:
            log.warning("JWKS entry skipped: it needs a kid and alg %s", sorted(ALLOWED_ALGORITHMS))
            continue
        if entry.get("use", "sig") != "sig":
            continue
        try:
            found[kid] = _Key(algorithm=str(alg), key=jwk.import_key(entry))
        except (JoseError, ValueError, TypeError):
            log.warning("JWKS entry %s skipped: not an importable public key", kid)
    return found


def _header(token: str) -> dict[str, Any]:
    parts = token.split(".")
    if len(parts) != 3:
        raise Unauthorized("token is not a compact JWS")
    try:
        header = json.loads(base64.urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4)))
    except (binascii.Error, ValueError):
        raise Unauthorized("token header is not valid base64url JSON") from None
    if not isinstance(header, dict):
        raise Unauthorized("token header is not a JSON object")
    return header


class TokenVerifier:
    """Verifies access tokens; keys come from a JWKS given up front and/or fetched from
    ``jwks_url``. Keys are cached by kid and refreshed every ``refresh_seconds``; an unknown
    kid (a rotation) refetches at most once per ``miss_seconds``. When the control plane is
    unreachable the keys already held keep working."""

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        tenant_id: UUID,
        jwks: dict[str, Any] | None = None,
        jwks_url: str | None = None,
        http: httpx.AsyncClient | None = None,
        refresh_seconds: float = 300.0,
        miss_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if jwks is None and not jwks_url:
            raise ValueError("the runtime needs a JWKS or the control plane's JWKS URL")
        self.issuer = issuer.rstrip("/")
        self.audience = audience
        self.tenant_id = tenant_id
        self.jwks_url = jwks_url
        self.http = http
        self.refresh_seconds = refresh_seconds
        self.miss_seconds = miss_seconds
        self.clock = clock
        self.wall_clock = wall_clock
        self._keys = _keys(jwks) if jwks is not None else {}
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._lock = asyncio.Lock()

    async def _fetch(self) -> None:
        assert self.jwks_url is not None
        self._attempted_at = self.clock()
        try:
            if self.http is not None:
                response = await self.http.get(self.jwks_url)
            else:
                async with httpx.AsyncClient(timeout=5.0) as client:
                    response = await client.get(self.jwks_url)
            response.raise_for_status()
            document = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("JWKS fetch from %s failed: %s", self.jwks_url, type(exc).__name__)
            return
        if isinstance(document, dict):
            self._keys = _keys(document)
            self._fetched_at = self.clock()

    def _may_fetch(self) -> bool:
        return self._attempted_at is None or self.clock() - self._attempted_at >= self.miss_seconds

    async def key(self, kid: str) -> _Key | None:
        if self.jwks_url:
            stale = self._fetched_at is None or (
                self.clock() - self._fetched_at > self.refresh_seconds
            )
            if (stale or kid not in self._keys) and self._may_fetch():
                async with self._lock:
                    if self._may_fetch():
                        await self._fetch()
        return self._keys.get(kid)

    async def verify(self, token: str) -> Caller:
        header = _header(token)
        alg: Any = header.get("alg")
        kid: Any = header.get("kid")
        typ: Any = header.get("typ")
        if alg not in ALLOWED_ALGORITHMS:
            raise Unauthorized(
                f"token algorithm {alg!r} is not accepted; use one of {sorted(ALLOWED_ALGORITHMS)}"
            )
        if not isinstance(typ, str) or typ.lower() not in _ACCESS_TOKEN_TYPES:
            raise Unauthorized("token type must be at+jwt (an access token)")
        if not isinstance(kid, str):
            raise Unauthorized("token header has no key id (kid)")
        key = await self.key(kid)
        if key is None:
            raise Unauthorized("token signed by a key the control plane does not publish")
        if key.algorithm != alg:
            raise Unauthorized("token algorithm does not match its key")
        try:
            decoded = jwt.decode(token, key.key, algorithms=[alg])
            registry = JWTClaimsRegistry(
                now=int(self.wall_clock()),
                leeway=LEEWAY_SECONDS,
                iss={"essential": True, "value": self.issuer},
                aud={"essential": True, "value": self.audience},
                sub={"essential": True},
                exp={"essential": True},
                iat={"essential": True},
                jti={"essential": True},
            )
            registry.validate(decoded.claims)
        except JoseError as exc:
            raise Unauthorized(f"invalid token: {exc.description or exc.error}") from None
        return admit(decoded.claims, self.tenant_id)


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer`` header; None when there is no header."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("send an access token as 'Authorization: Bearer <token>'")
    return token.strip()


class BearerAuthMiddleware(AbstractAuthenticationMiddleware):
    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        token = bearer_token(connection.headers.get("authorization"))
        if token is None:
            raise Unauthorized("send an access token as 'Authorization: Bearer <token>'")
        verifier: TokenVerifier = connection.app.state.verifier
        return AuthenticationResult(user=await verifier.verify(token), auth=token)


def _roles(roles: Iterable[str]) -> str:
    return " or ".join(sorted(roles))


def requires_admin(connection: ASGIConnection[Any, Caller, Any, Any], _: BaseRouteHandler) -> None:
    """Tenant-wide writes: the retailer's admin (or the platform operator)."""
    if not connection.user.admin:
        raise Forbidden(f"this action needs the {_roles({RETAILER_ADMIN, PLATFORM_ADMIN})} role")


def requires_tenant_wide(
    connection: ASGIConnection[Any, Caller, Any, Any], _: BaseRouteHandler
) -> None:
    """Tenant-wide reads (dead letters): admins and the NOC."""
    if not connection.user.tenant_wide:
        raise Forbidden(
            f"this needs the {_roles({RETAILER_ADMIN, PLATFORM_ADMIN, NOC_OPERATOR})} role"
        )


def requires_actor(connection: ASGIConnection[Any, Caller, Any, Any], _: BaseRouteHandler) -> None:
    """Changes made by people working in the tenant; the NOC only reads here."""
    if connection.user.read_only:
        raise Forbidden("the noc_operator role reads the runtime; it does not act in it")
