"""The alert queue as the NOC console shows it: firing alerts, worst and oldest first."""

from __future__ import annotations

from uuid import UUID

from control_plane.alerts import service
from control_plane.alerts.models import FIRING_STATES, SEVERITY_RANK, Severity
from control_plane.alerts.schemas import Alert
from control_plane.context import Ctx
from control_plane.errors import NotFound

ACTIONS = ("acknowledge", "resolve")


async def firing(ctx: Ctx, *, tenant_id: UUID | None = None, limit: int = 200) -> list[Alert]:
    """Open and acknowledged alerts the caller sees: open before acknowledged, then by
    severity, then oldest first."""
    rows, _ = await service.list_alerts(
        ctx, state=[str(s) for s in FIRING_STATES], tenant_id=tenant_id, limit=limit
    )
    alerts = [service.to_summary(row) for row in rows]
    alerts.sort(
        key=lambda a: (
            a.state != "open",
            -SEVERITY_RANK.get(Severity(a.severity), 0),
            a.opened_at or a.first_seen_at,
        )
    )
    return alerts


async def act(ctx: Ctx, alert_id: UUID, action: str, note: str | None = None) -> Alert:
    """Acknowledge or resolve; another subtree's alert is a 404, as the service decides."""
    if action == "acknowledge":
        return service.to_summary(await service.acknowledge(ctx, alert_id, note))
    if action == "resolve":
        return service.to_summary(await service.resolve(ctx, alert_id, note))
    raise NotFound(f"no alert action {action!r}; use {' or '.join(ACTIONS)}")
