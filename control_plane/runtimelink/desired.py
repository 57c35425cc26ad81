"""The desired-state document a runtime pulls, its ETag, and the long poll that waits for
it to change. The document carries the tenant's effective brand and triage settings, so
publishing or rolling back a theme, or changing the tenant's or its partner's triage
settings, changes the ETag like a deployment does."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from control_plane.branding.models import Theme, ThemeStatus
from control_plane.branding.resolve import brand_of, tenant_partner
from control_plane.catalog.models import CatalogVersion
from control_plane.config import Settings
from control_plane.contracts.brand import DEFAULT, Brand
from control_plane.contracts.desired_state import (
    CONTRACT_VERSION,
    DeploymentEntry,
    DesiredState,
    StoreEntry,
    canonical_json,
    document_etag,
)
from control_plane.contracts.triage import TriageSettings
from control_plane.db import Database, Scope
from control_plane.db.session import system_session
from control_plane.deployments.models import Deployment, DesiredStateGeneration
from control_plane.errors import InvalidInput
from control_plane.identity.principal import Principal
from control_plane.runtimelink.auth import runtime_tenant
from control_plane.runtimelink.notify import bus
from control_plane.tenancy.models import Partner, Store, Tenant
from control_plane.tenancy.policy import resolve_settings, triage_settings


@dataclass(frozen=True)
class Served:
    etag: str
    #: The canonical JSON document; None means "not modified".
    body: bytes | None
    #: The trace context of the change that produced it, when this process saw one.
    change_context: dict[str, str] | None = None


async def tenant_brand(session: AsyncSession, tenant_id: UUID, public_url: str) -> Brand:
    """The tenant's effective brand with its images inline. Read unscoped: a runtime's own
    scope does not reach its partner's theme, which is still part of its look."""
    async with system_session(session) as everyone:
        partner_id = await tenant_partner(everyone, tenant_id)
        if partner_id is None:
            return DEFAULT
        return await brand_of(everyone, partner_id, tenant_id, public_url, inline=True)


async def tenant_triage(session: AsyncSession, tenant_id: UUID) -> TriageSettings | None:
    """The tenant's effective triage settings (partner defaults, tenant overrides). Read
    unscoped, like the brand: the partner's settings are beyond the runtime's own scope."""
    async with system_session(session) as everyone:
        row = (
            await everyone.execute(
                select(Partner.settings, Tenant.settings)
                .join(Partner, Partner.id == Tenant.partner_id)
                .where(Tenant.id == tenant_id)
            )
        ).one_or_none()
    if row is None:
        return None
    effective, _ = resolve_settings(row[0], row[1])
    return triage_settings(effective)


async def document(session: AsyncSession, tenant_id: UUID, public_url: str) -> DesiredState:
    generation = await session.scalar(
        select(DesiredStateGeneration.generation).where(
            DesiredStateGeneration.tenant_id == tenant_id
        )
    )
    rows = (
        await session.execute(
            select(Deployment, CatalogVersion.spec)
            .join(CatalogVersion, CatalogVersion.id == Deployment.catalog_version_id)
            .where(Deployment.tenant_id == tenant_id)
            .order_by(Deployment.template_id)
        )
    ).all()
    stores = (
        await session.scalars(select(Store).where(Store.tenant_id == tenant_id).order_by(Store.id))
    ).all()
    return DesiredState(
        tenant_id=tenant_id,
        contract_version=CONTRACT_VERSION,
        generation=int(generation or 0),
        deployments=[
            DeploymentEntry(
                id=d.id,
                template_id=d.template_id,
                version=d.semver,
                content_hash=d.content_hash,
                spec=spec,
                params=d.params,
                bindings=d.bindings,
                triggers=d.triggers,
                status=d.status,
            )
            for d, spec in rows
        ],
        stores={
            str(s.id): StoreEntry(
                code=s.code,
                name=s.name,
                region_id=s.region_id,
                timezone=s.timezone,
                opening_hours=s.opening_hours or {},
                holidays=s.holidays or [],
            )
            for s in stores
        },
        brand=await tenant_brand(session, tenant_id, public_url),
        triage=await tenant_triage(session, tenant_id),
    )


async def _render(
    db: Database, scope: Scope, tenant_id: UUID, public_url: str
) -> tuple[str, bytes]:
    async with db.transaction(scope) as session:
        body = canonical_json(await document(session, tenant_id, public_url))
    return document_etag(body), body


async def _partner_of(db: Database, tenant_id: UUID) -> UUID | None:
    async with db.session(Scope.system()) as session:
        return await tenant_partner(session, tenant_id)


async def _fingerprint(db: Database, tenant_id: UUID, partner_id: UUID | None) -> tuple[Any, ...]:
    """Cheap to read, and different whenever the document may differ: every deployment
    change bumps the generation; store edits bump a store's version; a theme publish or
    rollback changes which version is live, and since when (a rollback publishes an older
    number again); a settings change (triage) bumps the tenant's or partner's version.
    Unscoped, because the partner's themes and settings are beyond the runtime's own
    scope; every read names the tenant or its partner."""
    owners = [f"tenant:{tenant_id}", f"partner:{partner_id}"]
    async with db.transaction(Scope.system()) as session:
        generation = await session.scalar(
            select(DesiredStateGeneration.generation).where(
                DesiredStateGeneration.tenant_id == tenant_id
            )
        )
        stores = (
            await session.execute(
                select(
                    func.count(Store.id), func.max(Store.updated_at), func.sum(Store.version)
                ).where(Store.tenant_id == tenant_id)
            )
        ).one()
        themes = await session.execute(
            select(Theme.owner, Theme.number, Theme.published_at)
            .where(Theme.owner.in_(owners), Theme.status == ThemeStatus.PUBLISHED)
            .order_by(Theme.owner)
        )
        versions = (
            await session.execute(
                select(Tenant.version, Partner.version)
                .join(Partner, Partner.id == Tenant.partner_id)
                .where(Tenant.id == tenant_id)
            )
        ).one_or_none()
        return (generation, *stores, tuple(versions or ()), *(tuple(row) for row in themes))


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
    return "*" in tags or etag in tags


async def serve(
    db: Database, settings: Settings, principal: Principal, if_none_match: str | None, wait: int
) -> Served:
    """The document, or "not modified" once ``wait`` seconds pass without a change.

    A change committed in this process wakes the poll at once; one committed elsewhere is
    seen by the database check every ``desired_state_poll_ms``.
    """
    tenant_id, _ = runtime_tenant(principal)
    limit = settings.desired_state_max_wait_seconds
    if not 0 <= wait <= limit:
        raise InvalidInput(f"wait must be between 0 and {limit} seconds, got {wait}")
    scope = principal.scope()
    public_url = settings.public_url
    if wait == 0 or not if_none_match:
        etag, body = await _render(db, scope, tenant_id, public_url)
        if _matches(if_none_match, etag):
            return Served(etag, None)
        return Served(etag, body, bus.change_context(tenant_id))
    poll = max(settings.desired_state_poll_ms, 50) / 1000
    deadline = time.monotonic() + wait
    partner_id = await _partner_of(db, tenant_id)
    async with bus.listen(tenant_id, partner_id) as changed:
        seen = await _fingerprint(db, tenant_id, partner_id)
        etag, body = await _render(db, scope, tenant_id, public_url)
        while _matches(if_none_match, etag):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return Served(etag, None)
            try:
                await asyncio.wait_for(changed.wait(), timeout=min(poll, remaining))
            except TimeoutError:
                now = await _fingerprint(db, tenant_id, partner_id)
                if now == seen:
                    continue
                seen = now
            changed.clear()
            etag, body = await _render(db, scope, tenant_id, public_url)
    return Served(etag, body, bus.change_context(tenant_id))
