"""``GET /noc/stream``: the fleet grid's changes over server-sent events.

Each stream polls the fleet query every few seconds in a fresh scoped session and sends
only what changed: a ``rows`` event with the re-rendered rows whose content changed, or a
``page`` event with the whole page when tenants entered, left or moved within it. The
client renders relative times itself, so a heartbeat's age ticking is no change. A client
that disconnects cancels the generator (Litestar watches for ``http.disconnect``); a
session that expires ends the stream with an ``expired`` event.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator
from typing import Any
from uuid import UUID

import msgspec
from litestar import Request, get
from litestar.response import ServerSentEvent, ServerSentEventMessage

from control_plane.api.params import Text
from control_plane.context import Ctx
from control_plane.db import Database
from control_plane.health import noc
from control_plane.health.assess import Status
from control_plane.health.noc_routes import requires_noc
from control_plane.identity.principal import Principal
from control_plane.web.render import macro

#: How often a stream re-reads the fleet, in seconds.
POLL_SECONDS = 3.0
ROW_TEMPLATE = "noc/_rows.html"
#: Streams being served by this process (a disconnected client's ends at once).
OPEN_STREAMS = 0


def _material(row: noc.FleetRow) -> bytes:
    """What makes a row worth resending: all but the ticking age (and reasons that only
    restate it)."""
    changed = msgspec.structs.replace(row, heartbeat_age_s=None)
    if row.status != Status.DEGRADED:
        changed = msgspec.structs.replace(changed, reasons=[])
    return msgspec.json.encode(changed)


async def _poll(db: Database, principal: Principal, query: noc.FleetFilter) -> noc.Fleet:
    ctx = Ctx(principal, db=db)
    try:
        return await noc.fleet(ctx, query)
    finally:
        if (session := ctx.opened) is not None:
            await session.close()


def _expired(principal: Principal) -> bool:
    exp = principal.claims.get("exp")
    return isinstance(exp, int | float) and exp <= time.time()


def _event(kind: str, body: dict[str, Any]) -> ServerSentEventMessage:
    return ServerSentEventMessage(event=kind, data=msgspec.json.encode(body).decode())


async def updates(
    db: Database, principal: Principal, query: noc.FleetFilter, *, poll_seconds: float | None = None
) -> AsyncGenerator[ServerSentEventMessage, None]:
    """The stream's events, until the client goes away or the session expires."""
    global OPEN_STREAMS
    OPEN_STREAMS += 1
    try:
        async for message in _updates(db, principal, query, poll_seconds):
            yield message
    finally:
        OPEN_STREAMS -= 1


async def _updates(
    db: Database, principal: Principal, query: noc.FleetFilter, poll_seconds: float | None
) -> AsyncGenerator[ServerSentEventMessage, None]:
    seen: dict[UUID, bytes] = {}
    order: list[UUID] | None = None
    counts: dict[str, int] = {}
    yield ServerSentEventMessage(comment="fleet stream", retry=5000)
    while True:
        if _expired(principal):
            yield _event("expired", {"detail": "your session has expired; sign in again"})
            return
        grid = await _poll(db, principal, query)
        ids = [row.tenant_id for row in grid.items]
        summary = {"counts": grid.counts, "total": grid.total, "at": grid.generated_at.isoformat()}
        if ids != order:
            html = "".join(macro(ROW_TEMPLATE, "row", row) for row in grid.items)
            yield _event("page", {**summary, "html": html})
        else:
            changed = [r for r in grid.items if seen.get(r.tenant_id) != _material(r)]
            if changed or grid.counts != counts:
                rows = [
                    {"id": str(r.tenant_id), "html": macro(ROW_TEMPLATE, "row", r)} for r in changed
                ]
                yield _event("rows", {**summary, "rows": rows})
            else:
                yield ServerSentEventMessage(comment=f"unchanged {summary['at']}")
        order, counts = ids, grid.counts
        seen = {row.tenant_id: _material(row) for row in grid.items}
        await asyncio.sleep(POLL_SECONDS if poll_seconds is None else poll_seconds)


@get("/noc/stream", guards=[requires_noc], include_in_schema=False)
async def fleet_stream(
    request: Request[Principal, Any, Any],
    partner: Text = None,
    region: Text = None,
    status: Text = None,
    sort: Text = None,
    offset: Text = None,
    limit: Text = None,
) -> ServerSentEvent:
    query = noc.parse_filter(
        partner=partner, region=region, status=status, sort=sort, offset=offset, limit=limit
    )
    return ServerSentEvent(
        updates(request.app.state.db, request.user, query),
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
