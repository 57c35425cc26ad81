"""Notification channels: where a partner's (or the platform's) alerts are announced."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from sqlalchemy import Select, select

from control_plane.alerts import schemas
from control_plane.alerts.metrics import FieldProblem
from control_plane.alerts.models import ChannelKind, NotificationChannel
from control_plane.alerts.rules import WRITE, _partner, _require_owner, refuse
from control_plane.api.etag import check_if_match
from control_plane.api.pagination import fetch_page
from control_plane.audit.service import record_change, snapshot
from control_plane.context import Ctx
from control_plane.contracts.signing import SECRET_PREFIX, InvalidSecret, WebhookSecret
from control_plane.errors import NotFound


def to_wire(channel: NotificationChannel) -> schemas.NotificationChannel:
    return schemas.NotificationChannel(
        id=channel.id,
        partner_id=channel.partner_id,
        name=channel.name,
        kind=channel.kind,
        url=channel.url,
        addresses=list(channel.addresses or []),
        min_severity=channel.min_severity,
        enabled=channel.enabled,
        has_secret=bool(channel.secret),
        created_at=channel.created_at,
        updated_at=channel.updated_at,
    )


def _audit_view(channel: NotificationChannel) -> dict[str, Any]:
    data = snapshot(channel)
    data.pop("secret", None)
    return data


def _key_bytes(secret: str) -> int:
    try:
        serialized = WebhookSecret.parse(secret).serialize()
    except InvalidSecret:
        return 0
    return len(base64.b64decode(serialized.removeprefix(SECRET_PREFIX)))


def _check(channel: NotificationChannel) -> None:
    problems: list[FieldProblem] = []
    if channel.kind == ChannelKind.WEBHOOK:
        if not channel.url:
            problems.append(FieldProblem("url", "a webhook channel needs a url", "http(s) URL"))
        if not channel.secret:
            problems.append(
                FieldProblem("secret", "a webhook channel needs a signing secret", "whsec_<base64>")
            )
        else:
            if not 24 <= _key_bytes(channel.secret) <= 64:
                problems.append(
                    FieldProblem(
                        "secret",
                        "the secret is not a Standard Webhooks secret of 24 to 64 bytes",
                        "whsec_ followed by the base64 of 24-64 random bytes",
                    )
                )
    elif not channel.addresses:
        problems.append(
            FieldProblem("addresses", "an email channel needs recipients", "e-mail addresses")
        )
    if problems:
        raise refuse(problems, "the notification channel")


async def create_channel(ctx: Ctx, data: schemas.NotificationChannelCreate) -> NotificationChannel:
    if data.partner_id is not None:
        await _partner(ctx, data.partner_id)
    _require_owner(ctx, WRITE, data.partner_id)
    channel = NotificationChannel(
        partner_id=data.partner_id,
        name=data.name,
        kind=str(data.kind),
        url=data.url if data.kind == ChannelKind.WEBHOOK else None,
        secret=data.secret if data.kind == ChannelKind.WEBHOOK else None,
        addresses=list(data.addresses or []) if data.kind == ChannelKind.EMAIL else [],
        min_severity=str(data.min_severity),
        enabled=data.enabled,
    )
    _check(channel)
    ctx.session.add(channel)
    await ctx.session.flush()
    await record_change(ctx, "notification_channel.create", channel, after=_audit_view(channel))
    return channel


async def get_channel(ctx: Ctx, channel_id: UUID) -> NotificationChannel:
    found = await ctx.session.scalar(
        select(NotificationChannel).where(NotificationChannel.id == channel_id)
    )
    if found is None:
        raise NotFound(f"notification channel {channel_id} does not exist")
    return found


async def list_channels(
    ctx: Ctx, *, partner_id: UUID | None = None, limit: int = 50, cursor: str | None = None
) -> tuple[Sequence[NotificationChannel], str | None]:
    stmt: Select[Any] = select(NotificationChannel)
    if partner_id is not None:
        stmt = stmt.where(NotificationChannel.partner_id == partner_id)
    return await fetch_page(ctx.session, stmt, NotificationChannel.id, limit=limit, cursor=cursor)


async def update_channel(
    ctx: Ctx, channel_id: UUID, data: schemas.NotificationChannelUpdate, if_match: str | None
) -> NotificationChannel:
    channel = await get_channel(ctx, channel_id)
    _require_owner(ctx, WRITE, channel.partner_id)
    check_if_match(channel, if_match)
    before = _audit_view(channel)
    for name in ("name", "url", "secret", "addresses", "min_severity", "enabled"):
        value = getattr(data, name)
        if value is not None:
            setattr(channel, name, str(value) if name == "min_severity" else value)
    _check(channel)
    await ctx.session.flush()
    after = _audit_view(channel)
    if data.secret is not None:
        after["secret_rotated"] = True
    await record_change(ctx, "notification_channel.update", channel, before=before, after=after)
    return channel


async def delete_channel(ctx: Ctx, channel_id: UUID, if_match: str | None) -> None:
    channel = await get_channel(ctx, channel_id)
    _require_owner(ctx, WRITE, channel.partner_id)
    check_if_match(channel, if_match)
    before = _audit_view(channel)
    await ctx.session.delete(channel)
    await ctx.session.flush()
    await record_change(ctx, "notification_channel.delete", channel, before=before, after={})
