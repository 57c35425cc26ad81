"""``billing.meter``: keeps usage to date fresh by metering today and yesterday again."""

from __future__ import annotations

from datetime import datetime, timedelta

from control_plane.billing import meters
from control_plane.config import Settings
from control_plane.context import Ctx
from control_plane.jobs import job


@job("billing.meter", every_seconds=300)
async def meter_recent(ctx: Ctx, now: datetime, _: Settings) -> int:
    """Yesterday too, for events that arrive after midnight. Retention keeps at least a
    whole day of raw events, so both days are still there to count."""
    today = now.date()
    return await meters.meter_span(
        ctx.session, today - timedelta(days=1), today + timedelta(days=1), now=now
    )
