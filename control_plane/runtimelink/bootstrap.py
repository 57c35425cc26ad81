"""Runtime bootstrap: a single-use, short-lived token, exchanged once for the runtime's own
OAuth client (role ``tenant_runtime`` at its tenant)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast
from uuid import UUID
from weakref import WeakKeyDictionary

from sqlalchemy import CursorResult, Result, select, update

from control_plane.audit.service import record, record_change
from control_plane.config import Settings, get_settings
from control_plane.context import Ctx
from control_plane.db import Database, Scope, utcnow
from control_plane.errors import Conflict, IllegalTransition, StoreOpsError, Unauthorized
from control_plane.identity import schemas as identity_schemas
from control_plane.identity import service as identity
from control_plane.identity.models import ApiClient
from control_plane.identity.principal import Grant, Principal
from control_plane.identity.roles import Role
from control_plane.runtimelink.models import BootstrapToken
from control_plane.tenancy import service as tenancy
from control_plane.tenancy.models import Tenant, TenantStatus

PREFIX = "sobt_"
#: 32 random bytes: 256 bits, so a plain SHA-256 digest is safe to store.
TOKEN_BYTES = 32
MAX_TOKEN_LENGTH = 200
ISSUE = "tenants:lifecycle"


class BootstrapTokenUsed(Conflict):
    type_, title = "bootstrap-token-used", "Bootstrap token already used"


class BootstrapTokenGone(StoreOpsError):
    status, type_, title = 410, "bootstrap-token-expired", "Bootstrap token expired"


class BootstrapTokenRevoked(BootstrapTokenGone):
    type_, title = "bootstrap-token-revoked", "Bootstrap token revoked"


@dataclass(frozen=True)
class Issued:
    id: UUID
    tenant_id: UUID
    token: str
    expires_at: datetime


@dataclass(frozen=True)
class RuntimeCredentials:
    tenant_id: UUID
    client_id: str
    client_secret: str
    token_url: str


#: The token issued while onboarding a tenant, for the caller that onboarded it to show.
_onboarding: WeakKeyDictionary[Tenant, Issued] = WeakKeyDictionary()


def rowcount(result: Result[Any]) -> int:
    """Rows an UPDATE matched."""
    return int(cast(CursorResult[Any], result).rowcount)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def onboarding_token(tenant: Tenant) -> Issued | None:
    """The bootstrap token :func:`issue_at_onboarding` made for ``tenant`` in this process."""
    return _onboarding.get(tenant)


async def issue(ctx: Ctx, tenant_id: UUID, ttl_seconds: int | None = None) -> Issued:
    """A new token for the tenant's runtime; earlier unused ones stop working."""
    tenant = await tenancy.get_tenant(ctx, tenant_id)
    ctx.principal.require(ISSUE, partner_id=tenant.partner_id, tenant_id=tenant.id)
    if tenant.status == TenantStatus.OFFBOARDED:
        raise IllegalTransition(f"tenant {tenant.slug} is offboarded; its runtime cannot bootstrap")
    ttl = ttl_seconds if ttl_seconds is not None else get_settings().bootstrap_token_ttl_seconds
    now = utcnow()
    revoked = rowcount(
        await ctx.session.execute(
            update(BootstrapToken)
            .where(
                BootstrapToken.tenant_id == tenant.id,
                BootstrapToken.used_at.is_(None),
                BootstrapToken.revoked_at.is_(None),
            )
            .values(revoked_at=now)
            .execution_options(synchronize_session=False)
        )
    )
    token = PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
    row = BootstrapToken(
        partner_id=tenant.partner_id,
        tenant_id=tenant.id,
        token_hash=digest(token),
        expires_at=now + timedelta(seconds=max(ttl, 1)),
        issued_by=ctx.principal.subject,
    )
    ctx.session.add(row)
    await ctx.session.flush()
    await record_change(
        ctx,
        "bootstrap_token.issue",
        row,
        after={"expires_at": row.expires_at.isoformat(), "revoked_earlier": revoked},
    )
    return Issued(row.id, tenant.id, token, row.expires_at)


async def issue_at_onboarding(ctx: Ctx, tenant: Tenant) -> Issued:
    issued = await issue(ctx, tenant.id)
    _onboarding[tenant] = issued
    return issued


async def exchange(db: Database, settings: Settings, token: str) -> RuntimeCredentials:
    """Spend the token: the tenant's runtime gets a new client, shown here once.

    The runtime's earlier bootstrap clients are deactivated: one runtime, one client.
    """
    if not token.startswith(PREFIX) or len(token) > MAX_TOKEN_LENGTH:
        raise Unauthorized("the bootstrap token is not valid")
    wanted = digest(token)
    # Nobody is authenticated yet: the lookup runs unscoped, on the digest alone.
    async with db.transaction(Scope.system()) as session:
        row = await session.scalar(
            select(BootstrapToken).where(BootstrapToken.token_hash == wanted)
        )
    if row is None or not hmac.compare_digest(row.token_hash, wanted):
        raise Unauthorized("the bootstrap token is not valid")
    now = utcnow()
    _check_usable(row, now)
    principal = Principal(
        subject=f"bootstrap:{row.id}",
        kind="system",
        name="runtime bootstrap",
        grants=(Grant(Role.RETAILER_ADMIN, partner_id=row.partner_id, tenant_id=row.tenant_id),),
        home_partner_id=row.partner_id,
        home_tenant_id=row.tenant_id,
    )
    async with db.transaction(principal.scope()) as session:
        ctx = Ctx(principal, session=session)
        claimed = rowcount(
            await session.execute(
                update(BootstrapToken)
                .where(
                    BootstrapToken.id == row.id,
                    BootstrapToken.used_at.is_(None),
                    BootstrapToken.revoked_at.is_(None),
                )
                .values(used_at=now)
                .execution_options(synchronize_session=False)
            )
        )
        if claimed != 1:
            raise BootstrapTokenUsed("this bootstrap token was already used; issue a new one")
        tenant = await tenancy.get_tenant(ctx, row.tenant_id)
        if tenant.status == TenantStatus.OFFBOARDED:
            raise IllegalTransition(f"tenant {tenant.slug} is offboarded")
        earlier = select(BootstrapToken.client_id).where(
            BootstrapToken.tenant_id == tenant.id, BootstrapToken.client_id.is_not(None)
        )
        await session.execute(
            update(ApiClient)
            .where(ApiClient.id.in_(earlier), ApiClient.active.is_(True))
            .values(active=False)
            .execution_options(synchronize_session=False)
        )
        client, _, secret = await identity.create_client(
            ctx,
            identity_schemas.ClientCreate(
                name=f"runtime {tenant.slug}",
                tenant_id=tenant.id,
                grants=[identity_schemas.GrantSpec(role=Role.TENANT_RUNTIME, tenant_id=tenant.id)],
            ),
        )
        await session.execute(
            update(BootstrapToken)
            .where(BootstrapToken.id == row.id)
            .values(client_id=client.id)
            .execution_options(synchronize_session=False)
        )
        await record(
            ctx,
            "bootstrap_token.exchange",
            target_type="bootstrap_token",
            target_id=row.id,
            partner_id=tenant.partner_id,
            tenant_id=tenant.id,
            after={"client": client.client_id},
        )
    return RuntimeCredentials(
        tenant_id=tenant.id,
        client_id=client.client_id,
        client_secret=secret,
        token_url=f"{settings.issuer}/oauth/token",
    )


def _check_usable(row: BootstrapToken, now: datetime) -> None:
    if row.used_at is not None:
        raise BootstrapTokenUsed(
            "this bootstrap token was already used; issue a new one "
            "(storeops tenant bootstrap-token, or POST .../runtime-bootstrap)"
        )
    if row.revoked_at is not None:
        raise BootstrapTokenRevoked(
            "this bootstrap token was revoked: a newer one was issued for the tenant"
        )
    if row.expires_at <= now:
        raise BootstrapTokenGone(
            f"this bootstrap token expired at {row.expires_at.isoformat()}; issue a new one"
        )
