"""The alert jobs: ``alerts.evaluate`` (rules against signals) and ``alerts.deliver``
(the notification outbox)."""

from __future__ import annotations

from datetime import datetime

from control_plane.alerts.delivery import deliver_due
from control_plane.alerts.evaluate import evaluate
from control_plane.config import Settings
from control_plane.context import Ctx
from control_plane.jobs import job


@job("alerts.evaluate", every_seconds=15)
async def evaluate_alerts(ctx: Ctx, now: datetime, _: Settings) -> int:
    return await evaluate(ctx, now)


@job("alerts.deliver", every_seconds=10)
async def deliver_notifications(ctx: Ctx, now: datetime, settings: Settings) -> int:
    return await deliver_due(ctx, now, settings)
