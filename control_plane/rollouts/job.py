"""The periodic job that moves rollouts on: apply checks, soaks, gates, rollbacks."""

from __future__ import annotations

from datetime import datetime

from control_plane.config import Settings
from control_plane.context import Ctx
from control_plane.jobs import job
from control_plane.rollouts import service


@job("rollouts.advance", every_seconds=5)
async def advance_rollouts(ctx: Ctx, now: datetime, _: Settings) -> int:
    return await service.advance_all(ctx, now)
