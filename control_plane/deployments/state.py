"""A tenant's desired-state generation, and drift between desired and reported."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from control_plane.contracts import uuid7
from control_plane.deployments import schemas
from control_plane.deployments.models import Deployment, DesiredStateGeneration
from control_plane.errors import PreconditionFailed
from control_plane.tenancy.models import Tenant


def generation_etag(generation: int) -> str:
    return f'"g{generation}"'


def check_generation(generation: int, if_match: str | None) -> None:
    """``If-Match`` (when given) must name the tenant's current deployments generation."""
    if if_match is None or if_match.strip() == "*":
        return
    tags = {t.strip().removeprefix("W/") for t in if_match.split(",")}
    current = generation_etag(generation)
    if current not in tags:
        raise PreconditionFailed(
            f"If-Match {if_match} does not match the tenant's current deployments generation "
            f"{current}; plan again and apply that plan"
        )


async def current_generation(session: AsyncSession, tenant_id: UUID) -> int:
    value = await session.scalar(
        select(DesiredStateGeneration.generation).where(
            DesiredStateGeneration.tenant_id == tenant_id
        )
    )
    return int(value or 0)


async def lock_generation(session: AsyncSession, tenant: Tenant) -> DesiredStateGeneration:
    """The tenant's generation row, locked until the transaction ends: changes to one
    tenant's deployments are serialised, so each bump is seen by the next writer."""
    stmt = (
        select(DesiredStateGeneration)
        .where(DesiredStateGeneration.tenant_id == tenant.id)
        .with_for_update()
    )
    row = await session.scalar(stmt)
    if row is not None:
        return row
    # First change for this tenant: create the row unless a concurrent writer just did.
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    await session.execute(
        insert(DesiredStateGeneration)
        .values(id=uuid7(), partner_id=tenant.partner_id, tenant_id=tenant.id, generation=0)
        .on_conflict_do_nothing(index_elements=["tenant_id"])
    )
    row = await session.scalar(stmt)
    assert row is not None
    return row


def drift_reason(deployment: Deployment, generation: int) -> str | None:
    """Why the runtime's last report does not confirm this deployment, or None."""
    if deployment.reported_at is None:
        return "never reported: the runtime has not confirmed this deployment yet"
    reasons = []
    if deployment.reported_status == "failed":
        reasons.append(
            f"the runtime failed to apply it: {deployment.reported_reason or 'no reason given'}"
        )
    reported = deployment.reported_generation or 0
    if reported < generation:
        reasons.append(f"reported generation {reported} is behind desired generation {generation}")
    if deployment.reported_content_hash != deployment.content_hash:
        reasons.append("the reported content hash differs from the desired content hash")
    return "; ".join(reasons) or None


def reported_of(deployment: Deployment) -> schemas.Reported | None:
    if deployment.reported_status is None:
        return None
    return schemas.Reported(
        status=deployment.reported_status,
        generation=deployment.reported_generation,
        content_hash=deployment.reported_content_hash,
        reason=deployment.reported_reason,
        reported_at=deployment.reported_at,
    )


def to_wire(deployment: Deployment, generation: int) -> schemas.Deployment:
    reason = drift_reason(deployment, generation)
    return schemas.Deployment(
        id=deployment.id,
        tenant_id=deployment.tenant_id,
        template_id=deployment.template_id,
        version=deployment.semver,
        catalog_template_id=deployment.catalog_template_id,
        content_hash=deployment.content_hash,
        params=deployment.params,
        bindings=deployment.bindings,
        triggers=deployment.triggers,
        status=deployment.status,
        desired_generation=generation,
        reported=reported_of(deployment),
        drift=reason is not None,
        drift_reason=reason,
        created_at=deployment.created_at,
        updated_at=deployment.updated_at,
    )


def drift_entry(deployment: Deployment, generation: int) -> schemas.DriftEntry:
    reason = drift_reason(deployment, generation)
    return schemas.DriftEntry(
        id=deployment.id,
        template_id=deployment.template_id,
        version=deployment.semver,
        status=deployment.status,
        content_hash=deployment.content_hash,
        reported=reported_of(deployment),
        drift=reason is not None,
        drift_reason=reason,
    )
