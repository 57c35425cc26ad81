"""Plan and apply a tenant's complete desired deployment list (``deploy plan|apply``)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlalchemy import select

from control_plane.audit.service import record_change, snapshot
from control_plane.context import Ctx
from control_plane.deployments import schemas
from control_plane.deployments.bindings import check_shared
from control_plane.deployments.models import Deployment
from control_plane.deployments.resolve import Resolver, Target
from control_plane.deployments.service import apply_target, changed_fields, writable_tenant
from control_plane.deployments.state import (
    check_generation,
    current_generation,
    generation_etag,
    lock_generation,
)
from control_plane.deployments.validation import InvalidDeployment, Problem, join
from control_plane.errors import Conflict
from control_plane.tenancy import service as tenancy
from control_plane.tenancy.models import Tenant


@dataclass(frozen=True)
class Step:
    change: schemas.Change
    target: Target | None
    existing: Deployment | None


async def _steps(ctx: Ctx, tenant: Tenant, data: schemas.DesiredDeployments) -> list[Step]:
    """What each template would go through; every problem of the whole list at once."""
    rows = (
        await ctx.session.scalars(select(Deployment).where(Deployment.tenant_id == tenant.id))
    ).all()
    existing = {d.template_id: d for d in rows}
    resolver = Resolver(ctx, tenant)
    problems: list[Problem] = []
    first_seen: dict[str, int] = {}
    bound: list[tuple[str, dict[str, Any]]] = []
    steps: list[Step] = []
    for index, wanted in enumerate(data.deployments):
        path = join("$.deployments", index)
        if wanted.template_id in first_seen:
            problems.append(
                Problem(
                    join(path, "template_id"),
                    f"{wanted.template_id} is listed twice (also at deployments"
                    f"[{first_seen[wanted.template_id]}]); a tenant deploys a template once",
                )
            )
            continue
        first_seen[wanted.template_id] = index
        current = existing.get(wanted.template_id)
        target = await resolver.target(
            template_id=wanted.template_id,
            version=wanted.version,
            params=wanted.params,
            bindings=wanted.bindings,
            triggers=wanted.triggers,
            status=wanted.status,
            path=path,
            running=(current.template_id, current.semver) if current else None,
        )
        if isinstance(target, list):
            problems += target
            continue
        problems += check_shared(target.bindings, bound, join(path, "bindings"))
        bound.append((f"deployments[{index}] ({wanted.template_id})", target.bindings))
        if current is None:
            change = schemas.Change(
                template_id=wanted.template_id, action="create", to_version=wanted.version
            )
        else:
            fields = changed_fields(current, target)
            change = schemas.Change(
                template_id=wanted.template_id,
                action="update" if fields else "unchanged",
                deployment_id=current.id,
                fields=fields,
                from_version=current.semver,
                to_version=target.version.semver,
            )
        steps.append(Step(change, target, current))
    if problems:
        raise InvalidDeployment(problems)
    for template_id, current in sorted(existing.items()):
        if template_id not in first_seen:
            change = schemas.Change(
                template_id=template_id,
                action="delete",
                deployment_id=current.id,
                from_version=current.semver,
            )
            steps.append(Step(change, None, current))
    return sorted(steps, key=lambda s: s.change.template_id)


def _summary(steps: list[Step]) -> dict[str, int]:
    counts = Counter(s.change.action for s in steps)
    return {action: counts.get(action, 0) for action in ("create", "update", "delete", "unchanged")}


async def plan(ctx: Ctx, tenant_id: UUID, data: schemas.DesiredDeployments) -> schemas.Plan:
    tenant = await writable_tenant(ctx, tenant_id)
    steps = await _steps(ctx, tenant, data)
    generation = await current_generation(ctx.session, tenant.id)
    return schemas.Plan(
        tenant_id=tenant.id,
        generation=generation,
        etag=generation_etag(generation),
        changes=[s.change for s in steps],
        summary=_summary(steps),
    )


async def apply(
    ctx: Ctx, tenant_id: UUID, data: schemas.DesiredDeployments, if_match: str | None
) -> schemas.Applied:
    """All of the plan or none of it, as one generation."""
    tenant = await writable_tenant(ctx, tenant_id)
    generation = await lock_generation(ctx.session, tenant)
    check_generation(generation.generation, if_match)
    steps = await _steps(ctx, tenant, data)
    creating = sum(1 for s in steps if s.change.action == "create")
    deleting = sum(1 for s in steps if s.change.action == "delete")
    await _check_quota(ctx, tenant, len(steps) - deleting, creating)
    changed = False
    for step in steps:
        action = step.change.action
        if action == "create":
            assert step.target is not None
            deployment = Deployment(partner_id=tenant.partner_id, tenant_id=tenant.id)
            apply_target(deployment, step.target)
            ctx.session.add(deployment)
            await ctx.session.flush()
            step.change.deployment_id = deployment.id
            await record_change(ctx, "deployment.create", deployment)
        elif action == "update":
            assert step.target is not None
            assert step.existing is not None
            before = snapshot(step.existing)
            apply_target(step.existing, step.target)
            await ctx.session.flush()
            await record_change(
                ctx,
                "deployment.update",
                step.existing,
                before=before,
                after={**snapshot(step.existing), "changed": step.change.fields},
            )
        elif action == "delete":
            assert step.existing is not None
            before = snapshot(step.existing)
            await ctx.session.delete(step.existing)
            await ctx.session.flush()
            await record_change(ctx, "deployment.delete", step.existing, before=before, after={})
        changed = changed or action != "unchanged"
    if changed:
        generation.generation += 1
        await ctx.session.flush()
    return schemas.Applied(
        tenant_id=tenant.id,
        generation=generation.generation,
        etag=generation_etag(generation.generation),
        changes=[s.change for s in steps],
        summary=_summary(steps),
    )


async def _check_quota(ctx: Ctx, tenant: Tenant, total: int, creating: int) -> None:
    if not creating:
        return
    effective, _ = await tenancy.effective_settings(ctx, tenant.id)
    quota = (effective.get("quotas") or {}).get("deployments")
    if quota is not None and total > int(quota):
        raise Conflict(
            f"the list deploys {total} templates; tenant {tenant.slug}'s quota is {quota}"
        )
