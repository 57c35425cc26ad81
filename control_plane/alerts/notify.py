"""Writing the notification outbox: one row per channel for each alert transition that is
announced, in the transaction that makes the transition."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import or_, select

from control_plane.alerts.models import (
    SEVERITY_RANK,
    Alert,
    NotificationChannel,
    Severity,
)
from control_plane.alerts.models import Notification as Outbox
from control_plane.context import Ctx
from control_plane.db.session import system_session
from control_plane.tenancy.models import Tenant

EVENTS = ("alert.opened", "alert.resolved")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def payload(alert: Alert, event: str, now: datetime, tenant: Tenant | None) -> dict[str, Any]:
    """The message body: Standard Webhooks' recommended ``{type, timestamp, data}``."""
    return {
        "type": event,
        "timestamp": now.isoformat(),
        "data": {
            "alert_id": str(alert.id),
            "partner_id": str(alert.partner_id),
            "tenant_id": str(alert.tenant_id),
            "tenant_slug": tenant.slug if tenant else None,
            "tenant_name": tenant.name if tenant else None,
            "rule_key": alert.rule_key,
            "rule_name": alert.rule_name,
            "severity": alert.severity,
            "state": alert.state,
            "metric": alert.metric,
            "comparator": alert.comparator,
            "threshold": alert.threshold,
            "value": alert.value,
            "reason": alert.reason,
            "first_seen_at": _iso(alert.first_seen_at),
            "opened_at": _iso(alert.opened_at),
            "resolved_at": _iso(alert.resolved_at),
            "resolution": alert.resolution,
        },
    }


async def load_channels(ctx: Ctx, partner_id: UUID | None = None) -> list[NotificationChannel]:
    """The enabled channels of ``partner_id`` (of every partner if None) and the platform's,
    whatever the caller may read (a partner operator resolving an alert still tells the
    platform NOC)."""
    stmt = select(NotificationChannel).where(NotificationChannel.enabled.is_(True))
    if partner_id is not None:
        stmt = stmt.where(
            or_(
                NotificationChannel.partner_id.is_(None),
                NotificationChannel.partner_id == partner_id,
            )
        )
    reader = system_session(ctx.session)
    try:
        return list((await reader.scalars(stmt.order_by(NotificationChannel.id))).all())
    finally:
        await reader.close()


def channels_for(
    alert: Alert, channels: Sequence[NotificationChannel]
) -> list[NotificationChannel]:
    """Those of ``channels`` that hear about ``alert``: its partner's or the platform's, at
    or below its severity."""
    rank = SEVERITY_RANK[Severity(alert.severity)]
    return [
        c
        for c in channels
        if c.enabled
        and c.partner_id in (None, alert.partner_id)
        and SEVERITY_RANK[Severity(c.min_severity)] <= rank
    ]


async def enqueue(
    ctx: Ctx,
    alert: Alert,
    event: str,
    now: datetime,
    *,
    channels: Sequence[NotificationChannel] | None = None,
    tenant: Tenant | None = None,
) -> int:
    """Queue ``event`` about ``alert`` for each of its channels, once per channel ever
    (the outbox's unique key); returns how many rows were written. ``channels`` and
    ``tenant`` may be passed preloaded (the evaluation pass does)."""
    assert event in EVENTS
    if channels is None:
        channels = await load_channels(ctx, alert.partner_id)
    targets = channels_for(alert, channels)
    if event == "alert.opened":
        alert.notified_at = now
    if not targets:
        return 0
    done = set(
        (
            await ctx.session.scalars(
                select(Outbox.channel_id).where(Outbox.alert_id == alert.id, Outbox.event == event)
            )
        ).all()
    )
    if tenant is None:
        tenant = await ctx.session.scalar(select(Tenant).where(Tenant.id == alert.tenant_id))
    body = payload(alert, event, now, tenant)
    written = 0
    for channel in targets:
        if channel.id in done:
            continue
        ctx.session.add(
            Outbox(
                alert_id=alert.id,
                channel_id=channel.id,
                partner_id=alert.partner_id,
                tenant_id=alert.tenant_id,
                event=event,
                payload=body,
                next_attempt_at=now,
                created_at=now,
            )
        )
        written += 1
    await ctx.session.flush()
    return written
