"""The portal's rollouts: those in progress (newest first), then the partner's whole
history page by page with each wave's state inline (no rollout page exists to link to)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from litestar import Response, get

from control_plane.api.pagination import MAX_LIMIT
from control_plane.api.params import CtxDep, Text
from control_plane.context import Ctx
from control_plane.rollouts import service as rollouts
from control_plane.rollouts import views
from control_plane.rollouts.models import Rollout
from control_plane.rollouts.schemas import RolloutSummary
from control_plane.web.portal import choose_partner, portal_page, requires_portal, resolve

PAGE_SIZE = 25
#: Wave states after which the wave's tenants stay on the new version.
FINISHED_WAVES = frozenset({"passed", "promoted", "overridden"})


@dataclass(frozen=True)
class WaveStep:
    number: int
    size: int
    state: str


@dataclass(frozen=True)
class RolloutRow:
    rollout: RolloutSummary
    waves: list[WaveStep]

    @property
    def waves_done(self) -> int:
        return sum(1 for w in self.waves if w.state in FINISHED_WAVES)


async def _rows(ctx: Ctx, found: Sequence[Rollout]) -> list[RolloutRow]:
    counts = await views.tenant_counts(ctx, [r.id for r in found])
    return [
        RolloutRow(
            rollout=views.summary(r, counts.get(r.id, 0)),
            waves=[WaveStep(w["index"] + 1, w["size"], w["state"]) for w in r.waves],
        )
        for r in found
    ]


async def partner_rollouts(
    ctx: Ctx, partner_id: UUID, cursor: str | None
) -> tuple[list[Rollout], str | None]:
    """One page of the partner's rollouts in creation order. Platform staff see every
    partner's, so pages are read until this partner's fill one."""
    kept: list[Rollout] = []
    while len(kept) < PAGE_SIZE:
        found, cursor = await rollouts.list_rollouts(
            ctx, limit=PAGE_SIZE - len(kept), cursor=cursor
        )
        kept.extend(r for r in found if r.partner_id == partner_id)
        if cursor is None:
            break
    return kept, cursor


@get("/portal/rollouts", guards=[requires_portal], include_in_schema=False)
async def rollouts_page(ctx: CtxDep, partner: Text = None, cursor: Text = None) -> Response[str]:
    portal = await resolve(ctx, partner)
    if portal is None:
        return await choose_partner(ctx, "/portal/rollouts")
    history, nxt = await partner_rollouts(ctx, portal.partner.id, cursor)
    moving = await views.open_rollouts(ctx, limit=MAX_LIMIT)
    return portal_page(
        "portal/rollouts.html",
        ctx,
        portal,
        active="rollouts",
        history=await _rows(ctx, history),
        next_cursor=nxt,
        first_page=cursor is None,
        moving=[r for r in moving if r.partner_id == portal.partner.id],
    )


HANDLERS = [rollouts_page]
