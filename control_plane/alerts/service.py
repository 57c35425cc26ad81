"""Alerts as people see and handle them: list, read, acknowledge, resolve, assign, notes.

The NOC console calls :func:`open_alert_counts`, :func:`list_alerts`, :func:`acknowledge`
and :func:`resolve` directly. Every function reads through the caller's scoped session, so
an alert outside the caller's subtree does not exist for it (404).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Select, func, select

from control_plane.alerts import schemas
from control_plane.alerts.models import FIRING_STATES, Alert, AlertNote, AlertState
from control_plane.alerts.notify import enqueue
from control_plane.alerts.rules import ACT
from control_plane.alerts.suppress import active_silences, silence_for
from control_plane.api.pagination import fetch_page
from control_plane.audit.service import record_change, snapshot
from control_plane.context import Ctx
from control_plane.errors import IllegalTransition, NotFound

__all__ = [
    "acknowledge",
    "add_note",
    "assign",
    "get_alert",
    "list_alerts",
    "notes_of",
    "open_alert_counts",
    "resolve",
]


async def open_alert_counts(
    ctx: Ctx, tenant_ids: Collection[UUID] | None = None
) -> dict[UUID, int]:
    """Open and acknowledged alerts per tenant the caller sees (tenants without any are
    absent from the result)."""
    stmt = (
        select(Alert.tenant_id, func.count())
        .where(Alert.state.in_([str(s) for s in FIRING_STATES]))
        .group_by(Alert.tenant_id)
    )
    if tenant_ids is not None:
        stmt = stmt.where(Alert.tenant_id.in_(list(tenant_ids)))
    return {tenant: int(count) for tenant, count in (await ctx.session.execute(stmt)).all()}


async def list_alerts(
    ctx: Ctx,
    *,
    state: str | Collection[str] | None = None,
    severity: str | None = None,
    partner_id: UUID | None = None,
    tenant_id: UUID | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[Sequence[Alert], str | None]:
    """Alerts in creation order, filtered; ``state`` may be one state or several."""
    stmt: Select[Any] = select(Alert)
    if isinstance(state, str):
        stmt = stmt.where(Alert.state == state)
    elif state is not None:
        stmt = stmt.where(Alert.state.in_(list(state)))
    if severity is not None:
        stmt = stmt.where(Alert.severity == severity)
    if partner_id is not None:
        stmt = stmt.where(Alert.partner_id == partner_id)
    if tenant_id is not None:
        stmt = stmt.where(Alert.tenant_id == tenant_id)
    return await fetch_page(ctx.session, stmt, Alert.id, limit=limit, cursor=cursor)


async def get_alert(ctx: Ctx, alert_id: UUID) -> Alert:
    alert = await ctx.session.scalar(select(Alert).where(Alert.id == alert_id))
    if alert is None:
        raise NotFound(f"alert {alert_id} does not exist")
    return alert


async def notes_of(ctx: Ctx, alert_id: UUID) -> Sequence[AlertNote]:
    stmt = select(AlertNote).where(AlertNote.alert_id == alert_id).order_by(AlertNote.id)
    return (await ctx.session.scalars(stmt)).all()


async def _actionable(ctx: Ctx, alert_id: UUID, action: str) -> Alert:
    alert = await get_alert(ctx, alert_id)
    ctx.principal.require(ACT, partner_id=alert.partner_id, tenant_id=alert.tenant_id)
    if alert.state == AlertState.PENDING:
        # A pending alert may vanish (its condition cleared in time): nothing to act on.
        raise IllegalTransition(
            f"alert {alert.id} is pending (its condition has not held long enough to fire); "
            f"it cannot be {action} yet"
        )
    return alert


async def _note(ctx: Ctx, alert: Alert, body: str, now: datetime) -> AlertNote:
    note = AlertNote(
        alert_id=alert.id,
        partner_id=alert.partner_id,
        tenant_id=alert.tenant_id,
        author=ctx.principal.subject,
        body=body,
        created_at=now,
    )
    ctx.session.add(note)
    await ctx.session.flush()
    return note


async def acknowledge(
    ctx: Ctx, alert_id: UUID, note: str | None = None, *, now: datetime | None = None
) -> Alert:
    """Someone is on it: open -> acknowledged (acknowledging twice changes nothing)."""
    now = now or datetime.now(UTC)
    alert = await _actionable(ctx, alert_id, "acknowledged")
    if alert.state == AlertState.ACKNOWLEDGED:
        return alert
    if alert.state != AlertState.OPEN:
        raise IllegalTransition(
            f"alert {alert.id} is {alert.state}; only an open alert can be acknowledged"
        )
    before = snapshot(alert)
    alert.state = AlertState.ACKNOWLEDGED
    alert.acknowledged_at = now
    alert.acknowledged_by = ctx.principal.subject
    await ctx.session.flush()
    if note:
        await _note(ctx, alert, note, now)
    await record_change(ctx, "alert.acknowledge", alert, before=before)
    return alert


async def resolve(
    ctx: Ctx, alert_id: UUID, note: str | None = None, *, now: datetime | None = None
) -> Alert:
    """Closed by a person. Should the condition still hold, the next evaluation starts a
    new episode (pending first, then open after the rule's for-duration)."""
    now = now or datetime.now(UTC)
    alert = await _actionable(ctx, alert_id, "resolved")
    if alert.state == AlertState.RESOLVED:
        return alert
    before = snapshot(alert)
    alert.state = AlertState.RESOLVED
    alert.resolved_at = now
    alert.resolved_by = ctx.principal.subject
    alert.resolution = "manual"
    await ctx.session.flush()
    if note:
        await _note(ctx, alert, note, now)
    silenced = silence_for(await active_silences(ctx, now), alert) is not None
    if alert.notified_at is not None and not silenced:
        await enqueue(ctx, alert, "alert.resolved", now)
    await record_change(ctx, "alert.resolve", alert, before=before)
    return alert


async def assign(
    ctx: Ctx, alert_id: UUID, assignee: str | None, *, now: datetime | None = None
) -> Alert:
    alert = await _actionable(ctx, alert_id, "assigned")
    if alert.assignee == assignee:
        return alert
    before = snapshot(alert)
    alert.assignee = assignee
    await ctx.session.flush()
    await record_change(ctx, "alert.assign", alert, before=before)
    return alert


async def add_note(
    ctx: Ctx, alert_id: UUID, body: str, *, now: datetime | None = None
) -> AlertNote:
    alert = await _actionable(ctx, alert_id, "annotated")
    note = await _note(ctx, alert, body, now or datetime.now(UTC))
    await record_change(
        ctx,
        "alert.note",
        alert,
        after={"note_id": str(note.id), "author": note.author, "body": note.body},
    )
    return note


def to_wire(alert: Alert, notes: Sequence[AlertNote] | None = None) -> schemas.AlertDetail:
    fields = {f: getattr(alert, f) for f in schemas.Alert.__struct_fields__}
    wire_notes = [
        schemas.AlertNote(id=n.id, author=n.author, body=n.body, created_at=n.created_at)
        for n in notes or ()
    ]
    return schemas.AlertDetail(**fields, notes=wire_notes)


def to_summary(alert: Alert) -> schemas.Alert:
    return schemas.Alert(**{f: getattr(alert, f) for f in schemas.Alert.__struct_fields__})
