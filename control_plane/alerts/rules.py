"""Alert rules: platform defaults, partner overrides, and the rules in force for a tenant."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from sqlalchemy import Select, or_, select
from sqlalchemy.exc import IntegrityError

from control_plane.alerts import schemas
from control_plane.alerts.metrics import FieldProblem, check_rule
from control_plane.alerts.models import AlertRule, Severity
from control_plane.api.etag import check_if_match
from control_plane.api.pagination import fetch_page
from control_plane.audit.service import record_change, snapshot
from control_plane.context import Ctx
from control_plane.db.session import system_session
from control_plane.errors import Duplicate, Forbidden, InvalidInput, NotFound
from control_plane.tenancy.models import Partner, Tenant

READ = "alerts:read"
ACT = "alerts:act"
WRITE = "alerts:write"


def refuse(problems: list[FieldProblem], what: str = "the alert rule") -> InvalidInput:
    detail = "; ".join(f"{p.field}: {p.message} (allowed: {p.allowed})" for p in problems)
    return InvalidInput(f"{what} is refused: {detail}", errors=[p.as_dict() for p in problems])


async def _partner(ctx: Ctx, partner_id: UUID) -> Partner:
    partner = await ctx.session.scalar(select(Partner).where(Partner.id == partner_id))
    if partner is None:
        raise NotFound(f"partner {partner_id} does not exist")
    return partner


def _require_owner(ctx: Ctx, permission: str, partner_id: UUID | None) -> None:
    """Partner objects need the permission at that partner; platform ones, the platform."""
    if partner_id is None:
        if not ctx.scope.platform or not ctx.principal.has(permission):
            raise Forbidden(f"only the platform may change platform-wide objects ({permission})")
    else:
        ctx.principal.require(permission, partner_id=partner_id)


async def get_rule(ctx: Ctx, rule_id: UUID) -> AlertRule:
    rule = await ctx.session.scalar(select(AlertRule).where(AlertRule.id == rule_id))
    if rule is None:
        raise NotFound(f"alert rule {rule_id} does not exist")
    return rule


async def list_rules(
    ctx: Ctx,
    *,
    partner_id: UUID | None = None,
    platform_only: bool = False,
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[Sequence[AlertRule], str | None]:
    stmt: Select[Any] = select(AlertRule)
    if partner_id is not None:
        await _partner(ctx, partner_id)
        stmt = stmt.where(AlertRule.partner_id == partner_id)
    elif platform_only:
        stmt = stmt.where(AlertRule.partner_id.is_(None))
    return await fetch_page(ctx.session, stmt, AlertRule.id, limit=limit, cursor=cursor)


def _validate(rule: AlertRule, threshold: float | str) -> float:
    level, problems = check_rule(rule.metric, rule.comparator, threshold, rule.for_seconds)
    if problems or level is None:
        raise refuse(problems)
    return level


async def create_rule(ctx: Ctx, data: schemas.AlertRuleCreate) -> AlertRule:
    if data.partner_id is not None:
        await _partner(ctx, data.partner_id)
    _require_owner(ctx, WRITE, data.partner_id)
    base = None
    if data.partner_id is not None:
        base = await ctx.session.scalar(
            select(AlertRule).where(AlertRule.partner_id.is_(None), AlertRule.key == data.key)
        )
    missing = [
        f
        for f in ("metric", "comparator", "threshold", "severity")
        if getattr(data, f) is None and base is None
    ]
    if missing:
        raise refuse(
            [
                FieldProblem(f, f"{f} is required for a new rule key", "see the rule schema")
                for f in missing
            ]
        )

    def pick(name: str, default: Any) -> Any:
        value = getattr(data, name)
        if value is not None:
            return value
        return getattr(base, name) if base is not None else default

    rule = AlertRule(
        partner_id=data.partner_id,
        key=data.key,
        name=pick("name", data.key),
        description=pick("description", ""),
        metric=pick("metric", None),
        comparator=pick("comparator", None),
        for_seconds=pick("for_seconds", 0),
        severity=str(pick("severity", Severity.WARNING)),
        enabled=data.enabled,
    )
    rule.threshold = _validate(rule, pick("threshold", None))
    ctx.session.add(rule)
    try:
        await ctx.session.flush()
    except IntegrityError:
        owner = f"partner {data.partner_id}" if data.partner_id else "the platform"
        raise Duplicate(
            f"{owner} already has an alert rule with key {data.key!r}; change it with PATCH"
        ) from None
    await record_change(ctx, "alert_rule.create", rule)
    return rule


async def update_rule(
    ctx: Ctx, rule_id: UUID, data: schemas.AlertRuleUpdate, if_match: str | None
) -> AlertRule:
    rule = await get_rule(ctx, rule_id)
    _require_owner(ctx, WRITE, rule.partner_id)
    check_if_match(rule, if_match)
    before = snapshot(rule)
    threshold: float | str = rule.threshold if data.threshold is None else data.threshold
    candidate = AlertRule(
        metric=data.metric or rule.metric,
        comparator=data.comparator or rule.comparator,
        for_seconds=rule.for_seconds if data.for_seconds is None else data.for_seconds,
    )
    level = _validate(candidate, threshold)
    for name in ("name", "description", "metric", "comparator", "for_seconds", "enabled"):
        value = getattr(data, name)
        if value is not None:
            setattr(rule, name, value)
    if data.severity is not None:
        rule.severity = str(data.severity)
    if rule.threshold != level:
        rule.threshold = level
    await ctx.session.flush()
    await record_change(ctx, "alert_rule.update", rule, before=before)
    return rule


async def delete_rule(ctx: Ctx, rule_id: UUID, if_match: str | None) -> None:
    """A partner override deleted: the platform rule of its key applies again."""
    rule = await get_rule(ctx, rule_id)
    _require_owner(ctx, WRITE, rule.partner_id)
    check_if_match(rule, if_match)
    before = snapshot(rule)
    await ctx.session.delete(rule)
    await ctx.session.flush()
    await record_change(ctx, "alert_rule.delete", rule, before=before, after={})


def effective_rules(rules: Sequence[AlertRule], partner_id: UUID) -> dict[str, AlertRule]:
    """The enabled rules in force for a partner's tenants, by key: the partner's own rule
    of a key replaces the platform's (a disabled one removes it)."""
    chosen: dict[str, AlertRule] = {}
    for rule in rules:
        if rule.partner_id is None and rule.key not in chosen:
            chosen[rule.key] = rule
    for rule in rules:
        if rule.partner_id == partner_id:
            chosen[rule.key] = rule
    return {key: rule for key, rule in chosen.items() if rule.enabled}


async def rules_for_tenant(ctx: Ctx, tenant_id: UUID) -> list[AlertRule]:
    """The rules in force for a tenant the caller sees (its partner's overrides applied),
    even where the caller may not list the partner's rules (a retailer's staff)."""
    tenant = await ctx.session.scalar(select(Tenant).where(Tenant.id == tenant_id))
    if tenant is None:
        raise NotFound(f"tenant {tenant_id} does not exist")
    reader = system_session(ctx.session)
    try:
        rows = (
            await reader.scalars(
                select(AlertRule)
                .where(
                    or_(AlertRule.partner_id.is_(None), AlertRule.partner_id == tenant.partner_id)
                )
                .order_by(AlertRule.id)
            )
        ).all()
    finally:
        await reader.close()
    return sorted(effective_rules(rows, tenant.partner_id).values(), key=lambda r: r.key)
