"""``/api/v1/silences``, ``/api/v1/maintenance-windows`` and ``/api/v1/notification-channels``."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from litestar import Controller, Response, delete, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody

from control_plane.alerts import channels, rules, schemas, suppress
from control_plane.api.auth import requires
from control_plane.api.pagination import Page
from control_plane.api.params import CtxDep, Cursor, IfMatch, Limit
from control_plane.api.responses import one, page


class SilenceController(Controller):
    path = "/api/v1/silences"
    tags = ["alerts"]
    guards = [requires(rules.READ)]

    @get(
        "/",
        operation_id="listSilences",
        description="Silences the caller sees; active=true keeps those in force now.",
    )
    async def list_(
        self,
        ctx: CtxDep,
        active: FromQuery[bool] = False,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> Page[schemas.Silence]:
        rows, nxt = await suppress.list_silences(
            ctx, active_at=datetime.now(UTC) if active else None, limit=limit, cursor=cursor
        )
        return page(rows, nxt, schemas.Silence)

    @post(
        "/",
        operation_id="createSilence",
        guards=[requires(rules.ACT)],
        opt={"idempotent": True},
        description="Mute notifications of the alerts matching every matcher given (partner, "
        "tenant, rule key, severity) from starts_at (default now) to ends_at. Alerts are still "
        "recorded, marked silenced.",
    )
    async def create(
        self, ctx: CtxDep, data: JSONBody[schemas.SilenceCreate]
    ) -> Response[schemas.Silence]:
        return one(await suppress.create_silence(ctx, data), schemas.Silence, 201)

    @get("/{silence_id:uuid}", operation_id="getSilence", description="One silence.")
    async def get_(self, ctx: CtxDep, silence_id: FromPath[UUID]) -> Response[schemas.Silence]:
        return one(await suppress.get_silence(ctx, silence_id), schemas.Silence)

    @delete(
        "/{silence_id:uuid}",
        operation_id="expireSilence",
        guards=[requires(rules.ACT)],
        description="End the silence now (it stays listed, with its new end).",
    )
    async def expire(self, ctx: CtxDep, silence_id: FromPath[UUID]) -> None:
        await suppress.expire_silence(ctx, silence_id)


class MaintenanceWindowController(Controller):
    path = "/api/v1/maintenance-windows"
    tags = ["alerts"]
    guards = [requires(rules.READ)]

    @get("/", operation_id="listMaintenanceWindows", description="Maintenance windows.")
    async def list_(
        self,
        ctx: CtxDep,
        partner_id: FromQuery[UUID | None] = None,
        tenant_id: FromQuery[UUID | None] = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> Page[schemas.MaintenanceWindow]:
        rows, nxt = await suppress.list_windows(
            ctx, partner_id=partner_id, tenant_id=tenant_id, limit=limit, cursor=cursor
        )
        return page(rows, nxt, schemas.MaintenanceWindow)

    @post(
        "/",
        operation_id="createMaintenanceWindow",
        guards=[requires(rules.WRITE)],
        opt={"idempotent": True},
        description="While it lasts no alert opens for the partner's tenants (or one tenant); "
        "alerts already open still resolve when their condition clears.",
    )
    async def create(
        self, ctx: CtxDep, data: JSONBody[schemas.MaintenanceWindowCreate]
    ) -> Response[schemas.MaintenanceWindow]:
        return one(await suppress.create_window(ctx, data), schemas.MaintenanceWindow, 201)

    @get(
        "/{window_id:uuid}",
        operation_id="getMaintenanceWindow",
        description="One maintenance window.",
    )
    async def get_(
        self, ctx: CtxDep, window_id: FromPath[UUID]
    ) -> Response[schemas.MaintenanceWindow]:
        return one(await suppress.get_window(ctx, window_id), schemas.MaintenanceWindow)

    @delete(
        "/{window_id:uuid}",
        operation_id="deleteMaintenanceWindow",
        guards=[requires(rules.WRITE)],
        description="Remove a maintenance window.",
    )
    async def delete_(self, ctx: CtxDep, window_id: FromPath[UUID]) -> None:
        await suppress.delete_window(ctx, window_id)


class NotificationChannelController(Controller):
    path = "/api/v1/notification-channels"
    tags = ["alerts"]
    guards = [requires(rules.READ)]

    @get(
        "/",
        operation_id="listNotificationChannels",
        description="Channels the caller sees; webhook secrets are never returned.",
    )
    async def list_(
        self,
        ctx: CtxDep,
        partner_id: FromQuery[UUID | None] = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> Page[schemas.NotificationChannel]:
        rows, nxt = await channels.list_channels(
            ctx, partner_id=partner_id, limit=limit, cursor=cursor
        )
        return page(rows, nxt, schemas.NotificationChannel, channels.to_wire)

    @post(
        "/",
        operation_id="createNotificationChannel",
        guards=[requires(rules.WRITE)],
        opt={"idempotent": True},
        description="A signed webhook (Standard Webhooks; the whsec_ secret is write-only) or "
        "e-mail recipients. Alerts are announced when they open and when they resolve.",
    )
    async def create(
        self, ctx: CtxDep, data: JSONBody[schemas.NotificationChannelCreate]
    ) -> Response[schemas.NotificationChannel]:
        channel = await channels.create_channel(ctx, data)
        return Response(channels.to_wire(channel), status_code=201, headers={"ETag": channel.etag})

    @get(
        "/{channel_id:uuid}",
        operation_id="getNotificationChannel",
        description="One channel (without its secret).",
    )
    async def get_(
        self, ctx: CtxDep, channel_id: FromPath[UUID]
    ) -> Response[schemas.NotificationChannel]:
        channel = await channels.get_channel(ctx, channel_id)
        return Response(channels.to_wire(channel), headers={"ETag": channel.etag})

    @patch(
        "/{channel_id:uuid}",
        operation_id="updateNotificationChannel",
        guards=[requires(rules.WRITE)],
        description="Change a channel; a new secret replaces the old one.",
    )
    async def update(
        self,
        ctx: CtxDep,
        channel_id: FromPath[UUID],
        data: JSONBody[schemas.NotificationChannelUpdate],
        if_match: IfMatch = None,
    ) -> Response[schemas.NotificationChannel]:
        channel = await channels.update_channel(ctx, channel_id, data, if_match)
        return Response(channels.to_wire(channel), headers={"ETag": channel.etag})

    @delete(
        "/{channel_id:uuid}",
        operation_id="deleteNotificationChannel",
        guards=[requires(rules.WRITE)],
        description="Delete a channel and its undelivered notifications.",
    )
    async def delete_(
        self, ctx: CtxDep, channel_id: FromPath[UUID], if_match: IfMatch = None
    ) -> None:
        await channels.delete_channel(ctx, channel_id, if_match)
