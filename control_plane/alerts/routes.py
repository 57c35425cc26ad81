"""``/api/v1/alerts`` and ``/api/v1/alert-rules``: the alert queue and the rules behind it."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, Response, delete, get, patch, post
from litestar.connection import ASGIConnection
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from sqlalchemy import select

from control_plane.alerts import rules, schemas, service
from control_plane.alerts.models import Alert, AlertState, Severity
from control_plane.api.auth import requires
from control_plane.api.pagination import Page
from control_plane.api.params import CtxDep, Cursor, IfMatch, Limit
from control_plane.api.responses import one, page, to_schema
from control_plane.db import Database
from control_plane.errors import NotFound
from control_plane.identity.principal import Principal


def requires_on_alert(permission: str) -> Any:
    """:func:`requires`, and an alert the caller cannot see is a 404 rather than a 403."""
    base = requires(permission)

    async def guard(connection: ASGIConnection[Any, Principal, Any, Any], handler: Any) -> None:
        alert_id = connection.path_params.get("alert_id")
        if alert_id is not None and not connection.user.has(permission):
            db: Database = connection.app.state.db
            async with db.session(connection.user.scope()) as session:
                found = await session.scalar(select(Alert.id).where(Alert.id == alert_id))
            if found is None:
                raise NotFound(f"alert {alert_id} does not exist")
        await base(connection, handler)

    guard.__name__ = base.__name__
    return guard


def _detail(alert: Alert, notes: Any = ()) -> Response[schemas.AlertDetail]:
    return Response(service.to_wire(alert, notes), headers={"ETag": alert.etag})


class AlertController(Controller):
    path = "/api/v1/alerts"
    tags = ["alerts"]
    guards = [requires_on_alert(rules.READ)]

    @get(
        "/",
        operation_id="listAlerts",
        description="Alerts of every tenant the caller sees, oldest first: pending (condition "
        "seen, for-duration not reached), open, acknowledged or resolved.",
    )
    async def list_(
        self,
        ctx: CtxDep,
        alert_state: Annotated[
            AlertState | None, QueryParameter(name="state", description="one state")
        ] = None,
        severity: FromQuery[Severity | None] = None,
        partner_id: FromQuery[UUID | None] = None,
        tenant_id: FromQuery[UUID | None] = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> Page[schemas.Alert]:
        rows, nxt = await service.list_alerts(
            ctx,
            state=alert_state,
            severity=severity,
            partner_id=partner_id,
            tenant_id=tenant_id,
            limit=limit,
            cursor=cursor,
        )
        return page(rows, nxt, schemas.Alert, service.to_summary)

    @get(
        "/{alert_id:uuid}",
        operation_id="getAlert",
        description="One alert with its notes, oldest first.",
    )
    async def get_(self, ctx: CtxDep, alert_id: FromPath[UUID]) -> Response[schemas.AlertDetail]:
        alert = await service.get_alert(ctx, alert_id)
        return _detail(alert, await service.notes_of(ctx, alert_id))

    @post(
        "/{alert_id:uuid}/acknowledge",
        operation_id="acknowledgeAlert",
        guards=[requires_on_alert(rules.ACT)],
        status_code=200,
        description="Someone is on it: an open alert becomes acknowledged (idempotent). "
        "An optional note is kept on the alert.",
    )
    async def acknowledge(
        self,
        ctx: CtxDep,
        alert_id: FromPath[UUID],
        data: JSONBody[schemas.AlertAction | None] = None,
    ) -> Response[schemas.AlertDetail]:
        alert = await service.acknowledge(ctx, alert_id, data.note if data else None)
        return _detail(alert, await service.notes_of(ctx, alert_id))

    @post(
        "/{alert_id:uuid}/resolve",
        operation_id="resolveAlert",
        guards=[requires_on_alert(rules.ACT)],
        status_code=200,
        description="Close the alert by hand. If the condition still holds, the next "
        "evaluation starts a new episode.",
    )
    async def resolve(
        self,
        ctx: CtxDep,
        alert_id: FromPath[UUID],
        data: JSONBody[schemas.AlertAction | None] = None,
    ) -> Response[schemas.AlertDetail]:
        alert = await service.resolve(ctx, alert_id, data.note if data else None)
        return _detail(alert, await service.notes_of(ctx, alert_id))

    @post(
        "/{alert_id:uuid}/assign",
        operation_id="assignAlert",
        guards=[requires_on_alert(rules.ACT)],
        status_code=200,
        description="Set (or, with null, clear) who handles the alert.",
    )
    async def assign(
        self, ctx: CtxDep, alert_id: FromPath[UUID], data: JSONBody[schemas.AlertAssign]
    ) -> Response[schemas.AlertDetail]:
        alert = await service.assign(ctx, alert_id, data.assignee)
        return _detail(alert, await service.notes_of(ctx, alert_id))

    @post(
        "/{alert_id:uuid}/notes",
        operation_id="addAlertNote",
        guards=[requires_on_alert(rules.ACT)],
        status_code=201,
        description="Append a note (notes are never edited or removed).",
    )
    async def add_note(
        self, ctx: CtxDep, alert_id: FromPath[UUID], data: JSONBody[schemas.AlertNoteCreate]
    ) -> schemas.AlertNote:
        note = await service.add_note(ctx, alert_id, data.body)
        return schemas.AlertNote(
            id=note.id, author=note.author, body=note.body, created_at=note.created_at
        )


class AlertRuleController(Controller):
    path = "/api/v1/alert-rules"
    tags = ["alerts"]
    guards = [requires(rules.READ)]

    @get(
        "/",
        operation_id="listAlertRules",
        description="Platform defaults (partner_id null) and partner rules the caller sees. "
        "A partner rule replaces the platform rule of the same key for its tenants.",
    )
    async def list_(
        self,
        ctx: CtxDep,
        partner_id: FromQuery[UUID | None] = None,
        platform: FromQuery[bool] = False,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> Page[schemas.AlertRule]:
        rows, nxt = await rules.list_rules(
            ctx, partner_id=partner_id, platform_only=platform, limit=limit, cursor=cursor
        )
        return page(rows, nxt, schemas.AlertRule)

    @post(
        "/",
        operation_id="createAlertRule",
        guards=[requires(rules.WRITE)],
        opt={"idempotent": True},
        description="A rule: metric comparator threshold, held for for_seconds, at a "
        "severity. Impossible thresholds are refused with the field and the allowed range.",
    )
    async def create(
        self, ctx: CtxDep, data: JSONBody[schemas.AlertRuleCreate]
    ) -> Response[schemas.AlertRule]:
        return one(await rules.create_rule(ctx, data), schemas.AlertRule, 201)

    @get("/{rule_id:uuid}", operation_id="getAlertRule", description="One alert rule.")
    async def get_(self, ctx: CtxDep, rule_id: FromPath[UUID]) -> Response[schemas.AlertRule]:
        return one(await rules.get_rule(ctx, rule_id), schemas.AlertRule)

    @patch(
        "/{rule_id:uuid}",
        operation_id="updateAlertRule",
        guards=[requires(rules.WRITE)],
        description="Change a rule's fields; the combination is checked as on create.",
    )
    async def update(
        self,
        ctx: CtxDep,
        rule_id: FromPath[UUID],
        data: JSONBody[schemas.AlertRuleUpdate],
        if_match: IfMatch = None,
    ) -> Response[schemas.AlertRule]:
        return one(await rules.update_rule(ctx, rule_id, data, if_match), schemas.AlertRule)

    @delete(
        "/{rule_id:uuid}",
        operation_id="deleteAlertRule",
        guards=[requires(rules.WRITE)],
        description="Delete a rule; deleting a partner override restores the platform rule.",
    )
    async def delete_(self, ctx: CtxDep, rule_id: FromPath[UUID], if_match: IfMatch = None) -> None:
        await rules.delete_rule(ctx, rule_id, if_match)


@get(
    "/api/v1/tenants/{tenant_id:uuid}/alert-rules",
    operation_id="listTenantAlertRules",
    tags=["alerts"],
    guards=[requires(rules.READ)],
    description="The enabled rules in force for one tenant: the platform defaults with its "
    "partner's overrides applied, by key.",
)
async def list_tenant_alert_rules(
    ctx: CtxDep, tenant_id: FromPath[UUID]
) -> list[schemas.AlertRule]:
    return [to_schema(r, schemas.AlertRule) for r in await rules.rules_for_tenant(ctx, tenant_id)]
