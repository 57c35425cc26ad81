"""Sending the notification outbox: signed webhooks and e-mail, retried with backoff.

A row is marked sent in the transaction that sent it, so a success is never sent again; a
crash between the send and the commit sends it once more (webhook receivers deduplicate
on ``webhook-id``, mail readers on ``Message-ID``). After ``alert_delivery_max_attempts``
failures the row is dead and stays for the record.

E-mail is rendered in the brand of the channel's partner (the platform's for a platform
channel): subject, sender name, a plain-text part and an HTML alternative.
"""

from __future__ import annotations

import asyncio
import json
import smtplib
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from control_plane.alerts.models import ChannelKind, DeliveryState, NotificationChannel
from control_plane.alerts.models import Notification as Outbox
from control_plane.branding.resolve import brand_of
from control_plane.config import Settings
from control_plane.context import Ctx
from control_plane.contracts import mail
from control_plane.contracts.brand import DEFAULT, Brand, branding_templates, render_email
from control_plane.contracts.signing import webhook_headers
from control_plane.db.session import system_session

#: First retry after this; doubled each attempt, capped at MAX_BACKOFF.
BASE_BACKOFF = timedelta(seconds=30)
MAX_BACKOFF = timedelta(hours=1)
TIMEOUT_SECONDS = 10.0


class DeliveryError(Exception):
    """The channel refused or could not be reached; the message says why (no secrets)."""


def backoff(attempts: int) -> timedelta:
    delay: timedelta = BASE_BACKOFF * (2 ** max(attempts - 1, 0))
    return min(delay, MAX_BACKOFF)


def body_bytes(row: Outbox) -> bytes:
    return json.dumps(row.payload, sort_keys=True, separators=(",", ":")).encode()


async def send_webhook(channel: NotificationChannel, row: Outbox, http: httpx.AsyncClient) -> None:
    if not channel.url or not channel.secret:
        raise DeliveryError("the webhook channel has no url or secret")
    body = body_bytes(row)
    headers = webhook_headers([channel.secret], f"msg_{row.id.hex}", datetime.now(UTC), body)
    headers["content-type"] = "application/json"
    try:
        response = await http.post(channel.url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        raise DeliveryError(f"{type(exc).__name__}: {exc}") from None
    if not response.is_success:
        raise DeliveryError(f"the receiver answered {response.status_code}")


def _alert(row: Outbox) -> dict[str, Any]:
    """What the ``alert`` email templates show, from the outbox row's payload."""
    data: dict[str, Any] = row.payload["data"]
    return {
        "verb": "opened" if row.event == "alert.opened" else "resolved",
        "severity": str(data["severity"]),
        "tenant": data.get("tenant_name") or data.get("tenant_id"),
        "rule_name": data["rule_name"],
        "rule_key": data["rule_key"],
        "condition": f"{data['metric']} {data['comparator']} {data['threshold']:g}"
        f" (value {data['value']})",
        "reason": data["reason"],
        "first_seen_at": data["first_seen_at"],
        "resolved_at": data.get("resolved_at"),
        "resolution": data.get("resolution"),
        "alert_id": data["alert_id"],
    }


def email_message(
    channel: NotificationChannel, row: Outbox, settings: Settings, brand: Brand = DEFAULT
) -> EmailMessage:
    rendered = render_email(branding_templates(), "alert", brand, alert=_alert(row))
    return mail.compose(
        rendered,
        from_address=settings.smtp_from,
        to=list(channel.addresses),
        message_id=f"<{row.id.hex}@storeops.alerts>",
        date=row.created_at,
        headers={"X-StoreOps-Alert": str(row.payload["data"]["alert_id"])},
    )


async def channel_brand(
    session: AsyncSession, channel: NotificationChannel, settings: Settings
) -> Brand:
    """The partner's brand for a partner's channel; the platform's for a platform channel.
    Read unscoped: the delivery job may run with a scope that does not reach themes."""
    if channel.partner_id is None:
        return DEFAULT
    async with system_session(session) as everyone:
        return await brand_of(everyone, channel.partner_id, None, settings.public_url)


async def send_email(
    channel: NotificationChannel, row: Outbox, settings: Settings, brand: Brand = DEFAULT
) -> None:
    if not channel.addresses:
        raise DeliveryError("the email channel has no recipients")
    message = email_message(channel, row, settings, brand)
    try:
        # With no SMTP host, the local sink: <home>/mail/<outbox id>.eml.
        await asyncio.to_thread(
            mail.send, message, settings, Path(settings.home) / "mail", str(row.id)
        )
    except (OSError, smtplib.SMTPException) as exc:
        raise DeliveryError(f"{type(exc).__name__}: {exc}") from None


async def deliver_due(
    ctx: Ctx,
    now: datetime,
    settings: Settings,
    *,
    http: httpx.AsyncClient | None = None,
    limit: int = 100,
) -> int:
    """Send every outbox row due at ``now`` (up to ``limit``); returns the rows handled."""
    stmt = (
        select(Outbox)
        .where(Outbox.state == DeliveryState.PENDING, Outbox.next_attempt_at <= now)
        .order_by(Outbox.next_attempt_at, Outbox.id)
        .limit(limit)
    )
    if ctx.session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    rows = (await ctx.session.scalars(stmt)).all()
    if not rows:
        return 0
    channel_ids = {r.channel_id for r in rows}
    channels = {
        c.id: c
        for c in (
            await ctx.session.scalars(
                select(NotificationChannel).where(NotificationChannel.id.in_(channel_ids))
            )
        ).all()
    }
    brands: dict[UUID, Brand] = {}
    for found in channels.values():
        if found.kind == ChannelKind.EMAIL:
            brands[found.id] = await channel_brand(ctx.session, found, settings)
    own = http is None
    client = http or httpx.AsyncClient(timeout=TIMEOUT_SECONDS)
    try:
        for row in rows:
            channel = channels.get(row.channel_id)
            brand = brands.get(row.channel_id, DEFAULT)
            await _attempt(row, channel, brand, now, settings, client)
    finally:
        if own:
            await client.aclose()
    await ctx.session.flush()
    return len(rows)


async def _attempt(
    row: Outbox,
    channel: NotificationChannel | None,
    brand: Brand,
    now: datetime,
    settings: Settings,
    http: httpx.AsyncClient,
) -> None:
    row.attempts += 1
    try:
        if channel is None or not channel.enabled:
            raise DeliveryError("the channel is disabled")
        if channel.kind == ChannelKind.WEBHOOK:
            await send_webhook(channel, row, http)
        else:
            await send_email(channel, row, settings, brand)
    except DeliveryError as exc:
        row.last_error = str(exc)[:1000]
        if row.attempts >= settings.alert_delivery_max_attempts or channel is None:
            row.state = DeliveryState.DEAD
        else:
            row.next_attempt_at = now + backoff(row.attempts)
        return
    row.state = DeliveryState.SENT
    row.sent_at = now
    row.last_error = None
