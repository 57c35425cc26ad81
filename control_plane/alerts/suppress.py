"""Silences (alerts recorded, notifications muted) and maintenance windows (no alert opens)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import Select, select

from control_plane.alerts import schemas
from control_plane.alerts.metrics import FieldProblem
from control_plane.alerts.models import Alert, MaintenanceWindow, Silence
from control_plane.alerts.rules import ACT, WRITE, _partner, _require_owner, refuse
from control_plane.api.pagination import fetch_page
from control_plane.audit.service import record_change, snapshot
from control_plane.context import Ctx
from control_plane.db.session import system_session
from control_plane.errors import NotFound
from control_plane.tenancy.models import Tenant

#: The longest a silence or maintenance window may be set for.
MAX_SPAN = timedelta(days=90)


async def _owner(
    ctx: Ctx, partner_id: UUID | None, tenant_id: UUID | None
) -> tuple[UUID | None, UUID | None]:
    """The (partner, tenant) an object hangs on, each visible to the caller (else 404)."""
    if tenant_id is not None:
        tenant = await ctx.session.scalar(select(Tenant).where(Tenant.id == tenant_id))
        if tenant is None:
            raise NotFound(f"tenant {tenant_id} does not exist")
        if partner_id is not None and partner_id != tenant.partner_id:
            raise refuse(
                [
                    FieldProblem(
                        "tenant_id",
                        f"tenant {tenant_id} does not belong to partner {partner_id}",
                        "a tenant of the given partner, or no partner_id",
                    )
                ],
                "the request",
            )
        return tenant.partner_id, tenant.id
    if partner_id is not None:
        await _partner(ctx, partner_id)
    return partner_id, None


def _span(starts_at: datetime, ends_at: datetime, now: datetime) -> None:
    problems = []
    for name, value in (("starts_at", starts_at), ("ends_at", ends_at)):
        if value.tzinfo is None:
            problems.append(
                FieldProblem(name, f"{name} has no time zone", "an RFC 3339 time with an offset")
            )
    if problems:
        raise refuse(problems, "the request")
    if ends_at <= starts_at:
        problems.append(
            FieldProblem("ends_at", "ends_at is not after starts_at", "a time after starts_at")
        )
    elif ends_at <= now:
        problems.append(FieldProblem("ends_at", "ends_at is in the past", "a time in the future"))
    elif ends_at - starts_at > MAX_SPAN:
        problems.append(
            FieldProblem("ends_at", "the span is longer than 90 days", "at most 90 days")
        )
    if problems:
        raise refuse(problems, "the request")


# --- silences ---------------------------------------------------------------------------


async def create_silence(ctx: Ctx, data: schemas.SilenceCreate) -> Silence:
    partner_id, tenant_id = await _owner(ctx, data.partner_id, data.tenant_id)
    now = datetime.now(UTC)
    starts_at = data.starts_at or now
    _span(starts_at, data.ends_at, now)
    _require_owner(ctx, ACT, partner_id)
    silence = Silence(
        partner_id=partner_id,
        tenant_id=tenant_id,
        rule_key=data.rule_key,
        severity=str(data.severity) if data.severity else None,
        starts_at=starts_at,
        ends_at=data.ends_at,
        reason=data.reason,
        created_by=ctx.principal.subject,
    )
    ctx.session.add(silence)
    await ctx.session.flush()
    await record_change(ctx, "silence.create", silence)
    return silence


async def get_silence(ctx: Ctx, silence_id: UUID) -> Silence:
    found = await ctx.session.scalar(select(Silence).where(Silence.id == silence_id))
    if found is None:
        raise NotFound(f"silence {silence_id} does not exist")
    return found


async def list_silences(
    ctx: Ctx, *, active_at: datetime | None = None, limit: int = 50, cursor: str | None = None
) -> tuple[Sequence[Silence], str | None]:
    stmt: Select[Any] = select(Silence)
    if active_at is not None:
        stmt = stmt.where(Silence.starts_at <= active_at, Silence.ends_at > active_at)
    return await fetch_page(ctx.session, stmt, Silence.id, limit=limit, cursor=cursor)


async def expire_silence(ctx: Ctx, silence_id: UUID) -> Silence:
    """Ends it now (kept for the record); notifications resume at the next evaluation."""
    silence = await get_silence(ctx, silence_id)
    _require_owner(ctx, ACT, silence.partner_id)
    before = snapshot(silence)
    now = datetime.now(UTC)
    if silence.ends_at > now:
        silence.ends_at = max(now, silence.starts_at)
        await ctx.session.flush()
        await record_change(ctx, "silence.expire", silence, before=before)
    return silence


def silence_for(silences: Sequence[Silence], alert: Alert) -> Silence | None:
    """The first of the (active) ``silences`` matching the alert."""
    for s in silences:
        if (
            (s.partner_id is None or s.partner_id == alert.partner_id)
            and (s.tenant_id is None or s.tenant_id == alert.tenant_id)
            and (s.rule_key is None or s.rule_key == alert.rule_key)
            and (s.severity is None or s.severity == alert.severity)
        ):
            return s
    return None


async def active_silences(ctx: Ctx, now: datetime) -> Sequence[Silence]:
    """Every silence in force, whoever may read it: a platform-wide silence mutes an
    alert a partner's operator resolves, too."""
    stmt = select(Silence).where(Silence.starts_at <= now, Silence.ends_at > now)
    if ctx.scope.platform:
        return (await ctx.session.scalars(stmt.order_by(Silence.id))).all()
    reader = system_session(ctx.session)
    try:
        return (await reader.scalars(stmt.order_by(Silence.id))).all()
    finally:
        await reader.close()


# --- maintenance windows ----------------------------------------------------------------


async def create_window(ctx: Ctx, data: schemas.MaintenanceWindowCreate) -> MaintenanceWindow:
    if data.partner_id is None and data.tenant_id is None:
        raise refuse(
            [
                FieldProblem(
                    "partner_id", "a maintenance window needs a partner or a tenant",
                    "partner_id or tenant_id",
                )
            ],
            "the maintenance window",
        )  # fmt: skip
    partner_id, tenant_id = await _owner(ctx, data.partner_id, data.tenant_id)
    _span(data.starts_at, data.ends_at, datetime.now(UTC))
    assert partner_id is not None
    _require_owner(ctx, WRITE, partner_id)
    window = MaintenanceWindow(
        partner_id=partner_id,
        tenant_id=tenant_id,
        starts_at=data.starts_at,
        ends_at=data.ends_at,
        reason=data.reason,
        created_by=ctx.principal.subject,
    )
    ctx.session.add(window)
    await ctx.session.flush()
    await record_change(ctx, "maintenance_window.create", window)
    return window


async def get_window(ctx: Ctx, window_id: UUID) -> MaintenanceWindow:
    found = await ctx.session.scalar(
        select(MaintenanceWindow).where(MaintenanceWindow.id == window_id)
    )
    if found is None:
        raise NotFound(f"maintenance window {window_id} does not exist")
    return found


async def list_windows(
    ctx: Ctx,
    *,
    partner_id: UUID | None = None,
    tenant_id: UUID | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[Sequence[MaintenanceWindow], str | None]:
    stmt: Select[Any] = select(MaintenanceWindow)
    if partner_id is not None:
        stmt = stmt.where(MaintenanceWindow.partner_id == partner_id)
    if tenant_id is not None:
        stmt = stmt.where(MaintenanceWindow.tenant_id == tenant_id)
    return await fetch_page(ctx.session, stmt, MaintenanceWindow.id, limit=limit, cursor=cursor)


async def delete_window(ctx: Ctx, window_id: UUID) -> None:
    window = await get_window(ctx, window_id)
    _require_owner(ctx, WRITE, window.partner_id)
    before = snapshot(window)
    await ctx.session.delete(window)
    await ctx.session.flush()
    await record_change(ctx, "maintenance_window.delete", window, before=before, after={})


async def tenants_in_maintenance(ctx: Ctx, now: datetime) -> tuple[set[UUID], set[UUID]]:
    """(partners wholly in maintenance, tenants in maintenance) at ``now``."""
    rows = (
        await ctx.session.execute(
            select(MaintenanceWindow.partner_id, MaintenanceWindow.tenant_id).where(
                MaintenanceWindow.starts_at <= now, MaintenanceWindow.ends_at > now
            )
        )
    ).all()
    partners = {p for p, t in rows if t is None}
    tenants = {t for _, t in rows if t is not None}
    return partners, tenants
