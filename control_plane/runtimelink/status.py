"""What the runtime says it applied, stored per deployment (never as an edit of it)."""

from __future__ import annotations

from uuid import UUID

import msgspec
from sqlalchemy import select, update

from control_plane.context import Ctx
from control_plane.contracts.desired_state import StatusReport
from control_plane.db import utcnow
from control_plane.deployments.models import Deployment
from control_plane.deployments.state import current_generation
from control_plane.errors import InvalidInput
from control_plane.runtimelink.auth import runtime_tenant


class ReportResult(msgspec.Struct):
    tenant_id: UUID
    generation: int
    #: Deployments whose status was stored.
    accepted: list[UUID]
    #: Ids this tenant does not deploy (deleted meanwhile, or never its own).
    unknown: list[UUID]
    #: Reports older than one already stored for the deployment.
    stale: list[UUID]


async def report(ctx: Ctx, data: StatusReport) -> ReportResult:
    tenant_id, _ = runtime_tenant(ctx.principal)
    if data.tenant_id is not None and data.tenant_id != tenant_id:
        raise InvalidInput(f"tenant_id {data.tenant_id} is not this runtime's tenant")
    desired = await current_generation(ctx.session, tenant_id)
    if data.generation > desired:
        raise InvalidInput(
            f"generation {data.generation} is ahead of the desired generation {desired}"
        )
    ids = [d.id for d in data.deployments]
    if len(set(ids)) != len(ids):
        repeated = sorted({str(i) for i in ids if ids.count(i) > 1})
        raise InvalidInput(f"deployments lists {', '.join(repeated)} more than once")
    rows = (
        await ctx.session.execute(
            select(Deployment.id, Deployment.reported_generation).where(
                Deployment.tenant_id == tenant_id, Deployment.id.in_(ids)
            )
        )
    ).all()
    known = {row[0]: row[1] for row in rows}
    now = utcnow()
    accepted: list[UUID] = []
    unknown: list[UUID] = []
    stale: list[UUID] = []
    for item in data.deployments:
        if item.id not in known:
            unknown.append(item.id)
            continue
        previous = known[item.id]
        if previous is not None and previous > data.generation:
            stale.append(item.id)
            continue
        await ctx.session.execute(
            update(Deployment)
            .where(Deployment.id == item.id, Deployment.tenant_id == tenant_id)
            .values(
                reported_status=item.status,
                reported_generation=data.generation,
                reported_content_hash=item.content_hash,
                reported_reason=item.reason,
                reported_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        accepted.append(item.id)
    return ReportResult(
        tenant_id=tenant_id,
        generation=data.generation,
        accepted=accepted,
        unknown=unknown,
        stale=stale,
    )
