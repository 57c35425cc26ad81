"""Deployments of one tenant: create, read, change, pause, delete. Every change bumps the
tenant's desired-state generation once and is audited, in the caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from sqlalchemy import Select, func, select
from sqlalchemy.exc import IntegrityError

from control_plane.api.etag import check_if_match
from control_plane.api.pagination import fetch_page
from control_plane.audit.service import record_change, snapshot
from control_plane.context import Ctx
from control_plane.deployments import schemas
from control_plane.deployments.bindings import check_shared
from control_plane.deployments.models import Deployment, DeploymentStatus
from control_plane.deployments.resolve import Resolver, Target
from control_plane.deployments.state import current_generation, drift_entry, lock_generation
from control_plane.deployments.validation import InvalidDeployment
from control_plane.errors import Conflict, Duplicate, IllegalTransition, NotFound
from control_plane.tenancy import service as tenancy
from control_plane.tenancy.models import Tenant, TenantStatus

#: Deployments change what a retailer's runtime does: the partner's (or platform's) call.
WRITE = "tenants:lifecycle"
READ = "tenants:read"


async def writable_tenant(ctx: Ctx, tenant_id: UUID) -> Tenant:
    tenant = await tenancy.get_tenant(ctx, tenant_id)
    ctx.principal.require(WRITE, partner_id=tenant.partner_id, tenant_id=tenant.id)
    if tenant.status == TenantStatus.OFFBOARDED:
        raise IllegalTransition(f"tenant {tenant.slug} is offboarded; its deployments are frozen")
    return tenant


async def _get(ctx: Ctx, tenant_id: UUID, deployment_id: UUID) -> Deployment:
    found = await ctx.session.scalar(
        select(Deployment).where(Deployment.id == deployment_id, Deployment.tenant_id == tenant_id)
    )
    if found is None:
        raise NotFound(f"deployment {deployment_id} does not exist")
    return found


def apply_target(deployment: Deployment, target: Target) -> None:
    deployment.template_id = target.template_id
    deployment.catalog_template_id = target.line.id
    deployment.catalog_version_id = target.version.id
    deployment.semver = target.version.semver
    deployment.params = target.params
    deployment.bindings = target.bindings
    deployment.triggers = target.triggers
    deployment.status = target.status
    deployment.content_hash = target.content_hash


def changed_fields(deployment: Deployment, target: Target) -> list[str]:
    current = {
        "version": deployment.semver,
        "params": deployment.params,
        "bindings": deployment.bindings,
        "triggers": deployment.triggers,
        "status": deployment.status,
    }
    return [key for key, value in target.fields().items() if current[key] != value]


async def _check_shared_bindings(
    ctx: Ctx, tenant: Tenant, target: Target, own: UUID | None
) -> None:
    others = (
        await ctx.session.scalars(
            select(Deployment)
            .where(Deployment.tenant_id == tenant.id, Deployment.id != own)
            .order_by(Deployment.template_id)
        )
    ).all()
    labels = [(f"the {d.template_id} deployment ({d.id})", d.bindings) for d in others]
    problems = check_shared(target.bindings, labels, "$.bindings")
    if problems:
        raise InvalidDeployment(problems)


async def _quota_left(ctx: Ctx, tenant: Tenant) -> None:
    effective, _ = await tenancy.effective_settings(ctx, tenant.id)
    quota = (effective.get("quotas") or {}).get("deployments")
    if quota is None:
        return
    count = await ctx.session.scalar(
        select(func.count()).select_from(Deployment).where(Deployment.tenant_id == tenant.id)
    )
    if int(count or 0) >= int(quota):
        raise Conflict(
            f"tenant {tenant.slug} already has {count} deployments, its quota; "
            "delete one or raise quotas.deployments"
        )


# --- reads ------------------------------------------------------------------------------


async def list_deployments(
    ctx: Ctx, tenant_id: UUID, *, limit: int = 50, cursor: str | None = None
) -> tuple[Sequence[Deployment], str | None, int]:
    await tenancy.get_tenant(ctx, tenant_id)
    stmt: Select[Any] = select(Deployment).where(Deployment.tenant_id == tenant_id)
    rows, nxt = await fetch_page(ctx.session, stmt, Deployment.id, limit=limit, cursor=cursor)
    return rows, nxt, await current_generation(ctx.session, tenant_id)


async def get_deployment(ctx: Ctx, tenant_id: UUID, deployment_id: UUID) -> tuple[Deployment, int]:
    await tenancy.get_tenant(ctx, tenant_id)
    deployment = await _get(ctx, tenant_id, deployment_id)
    return deployment, await current_generation(ctx.session, tenant_id)


async def desired_vs_reported(ctx: Ctx, tenant_id: UUID) -> schemas.DesiredVsReported:
    await tenancy.get_tenant(ctx, tenant_id)
    rows = (
        await ctx.session.scalars(
            select(Deployment)
            .where(Deployment.tenant_id == tenant_id)
            .order_by(Deployment.template_id)
        )
    ).all()
    generation = await current_generation(ctx.session, tenant_id)
    entries = [drift_entry(d, generation) for d in rows]
    return schemas.DesiredVsReported(
        tenant_id=tenant_id,
        generation=generation,
        drift=any(e.drift for e in entries),
        deployments=entries,
    )


# --- writes -----------------------------------------------------------------------------


async def create_deployment(
    ctx: Ctx, tenant_id: UUID, data: schemas.DeploymentCreate
) -> tuple[Deployment, int]:
    tenant = await writable_tenant(ctx, tenant_id)
    generation = await lock_generation(ctx.session, tenant)
    existing = await ctx.session.scalar(
        select(Deployment.id).where(
            Deployment.tenant_id == tenant.id, Deployment.template_id == data.template_id
        )
    )
    if existing is not None:
        raise Duplicate(
            f"tenant {tenant.slug} already deploys {data.template_id} (deployment {existing}); "
            "change its version or settings with PATCH, or use apply"
        )
    target = await Resolver(ctx, tenant).target(
        template_id=data.template_id,
        version=data.version,
        params=data.params,
        bindings=data.bindings,
        triggers=data.triggers,
        status=data.status,
    )
    if isinstance(target, list):
        raise InvalidDeployment(target)
    await _check_shared_bindings(ctx, tenant, target, None)
    await _quota_left(ctx, tenant)
    deployment = Deployment(partner_id=tenant.partner_id, tenant_id=tenant.id)
    apply_target(deployment, target)
    ctx.session.add(deployment)
    try:
        await ctx.session.flush()
    except IntegrityError:
        raise Duplicate(f"tenant {tenant.slug} already deploys {data.template_id}") from None
    generation.generation += 1
    await ctx.session.flush()
    await record_change(ctx, "deployment.create", deployment)
    return deployment, generation.generation


async def update_deployment(
    ctx: Ctx,
    tenant_id: UUID,
    deployment_id: UUID,
    data: schemas.DeploymentUpdate,
    if_match: str | None,
) -> tuple[Deployment, int]:
    tenant = await writable_tenant(ctx, tenant_id)
    deployment = await _get(ctx, tenant.id, deployment_id)
    check_if_match(deployment, if_match)
    generation = await lock_generation(ctx.session, tenant)
    target = await Resolver(ctx, tenant).target(
        template_id=deployment.template_id,
        version=data.version or deployment.semver,
        params=deployment.params if data.params is None else data.params,
        bindings=deployment.bindings if data.bindings is None else data.bindings,
        triggers=deployment.triggers if data.triggers is None else data.triggers,
        status=data.status or deployment.status,
        running=(deployment.template_id, deployment.semver),
    )
    if isinstance(target, list):
        raise InvalidDeployment(target)
    if data.bindings is not None:
        await _check_shared_bindings(ctx, tenant, target, deployment.id)
    fields = changed_fields(deployment, target)
    if not fields:
        return deployment, generation.generation
    before = snapshot(deployment)
    apply_target(deployment, target)
    generation.generation += 1
    await ctx.session.flush()
    await record_change(
        ctx,
        "deployment.update",
        deployment,
        before=before,
        after={**snapshot(deployment), "changed": fields},
    )
    return deployment, generation.generation


async def set_status(
    ctx: Ctx, tenant_id: UUID, deployment_id: UUID, status: DeploymentStatus, if_match: str | None
) -> tuple[Deployment, int]:
    """Pause or resume: the runtime stops (or starts again) starting runs of it."""
    tenant = await writable_tenant(ctx, tenant_id)
    deployment = await _get(ctx, tenant.id, deployment_id)
    check_if_match(deployment, if_match)
    if deployment.status == status:
        verb = "pause" if status == DeploymentStatus.PAUSED else "resume"
        raise IllegalTransition(
            f"cannot {verb} deployment {deployment.id}: it is already {status}",
            current_status=deployment.status,
        )
    generation = await lock_generation(ctx.session, tenant)
    target = await Resolver(ctx, tenant).target(
        template_id=deployment.template_id,
        version=deployment.semver,
        params=deployment.params,
        bindings=deployment.bindings,
        triggers=deployment.triggers,
        status=status,
        running=(deployment.template_id, deployment.semver),
    )
    if isinstance(target, list):
        raise InvalidDeployment(target)
    before = {"status": deployment.status}
    apply_target(deployment, target)
    generation.generation += 1
    await ctx.session.flush()
    action = "deployment.pause" if status == DeploymentStatus.PAUSED else "deployment.resume"
    await record_change(ctx, action, deployment, before=before, after={"status": status.value})
    return deployment, generation.generation


async def delete_deployment(
    ctx: Ctx, tenant_id: UUID, deployment_id: UUID, if_match: str | None
) -> int:
    tenant = await writable_tenant(ctx, tenant_id)
    deployment = await _get(ctx, tenant.id, deployment_id)
    check_if_match(deployment, if_match)
    generation = await lock_generation(ctx.session, tenant)
    before = snapshot(deployment)
    await ctx.session.delete(deployment)
    generation.generation += 1
    await ctx.session.flush()
    await record_change(ctx, "deployment.delete", deployment, before=before, after={})
    return generation.generation
