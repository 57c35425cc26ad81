"""The desired-state document a runtime pulls, its ETag, and the long poll that waits for
it to change."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from control_plane.catalog.models import CatalogVersion
from control_plane.config import Settings
from control_plane.contracts.desired_state import (
    CONTRACT_VERSION,
    DeploymentEntry,
    DesiredState,
    StoreEntry,
    canonical_json,
    document_etag,
)
from control_plane.db import Database, Scope
from control_plane.deployments.models import Deployment, DesiredStateGeneration
from control_plane.errors import InvalidInput
from control_plane.identity.principal import Principal
from control_plane.runtimelink.auth import runtime_tenant
from control_plane.runtimelink.notify import bus
from control_plane.tenancy.models import Store


@dataclass(frozen=True)
class Served:
    etag: str
    #: The canonical JSON document; None means "not modified".
    body: bytes | None
    #: The trace context of the change that produced it, when this process saw one.
    change_context: dict[str, str] | None = None


async def document(session: AsyncSession, tenant_id: UUID) -> DesiredState:
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
    )


async def _render(db: Database, scope: Scope, tenant_id: UUID) -> tuple[str, bytes]:
    async with db.transaction(scope) as session:
        body = canonical_json(await document(session, tenant_id))
    return document_etag(body), body


async def _fingerprint(db: Database, scope: Scope, tenant_id: UUID) -> tuple[Any, ...]:
    """Cheap to read, and different whenever the document may differ: every deployment
    change bumps the generation; store edits bump a store's version."""
    async with db.transaction(scope) as session:
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
    return (generation, *stores)


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
    if wait == 0 or not if_none_match:
        etag, body = await _render(db, scope, tenant_id)
        if _matches(if_none_match, etag):
            return Served(etag, None)
        return Served(etag, body, bus.change_context(tenant_id))
    poll = max(settings.desired_state_poll_ms, 50) / 1000
    deadline = time.monotonic() + wait
    async with bus.listen(tenant_id) as changed:
        seen = await _fingerprint(db, scope, tenant_id)
        etag, body = await _render(db, scope, tenant_id)
        while _matches(if_none_match, etag):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return Served(etag, None)
            try:
                await asyncio.wait_for(changed.wait(), timeout=min(poll, remaining))
            except TimeoutError:
                now = await _fingerprint(db, scope, tenant_id)
                if now == seen:
                    continue
                seen = now
            changed.clear()
            etag, body = await _render(db, scope, tenant_id)
    return Served(etag, body, bus.change_context(tenant_id))
