"""Insights arriving in telemetry: picked out of a batch, checked, and upserted.

Called by the telemetry ingest (both the PostgreSQL and the embedded path) inside the
batch's own transaction, so an insight commits with the event that carried it. An
insight whose ``data`` does not fit the contract is logged and skipped, never refused
with the batch: a refused batch would stay at the head of the runtime's outbox for ever.
The raw event is stored either way.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast
from uuid import UUID

import msgspec
from sqlalchemy import Table, func
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from control_plane.contracts import uuid7
from control_plane.contracts.telemetry import Event, Kind
from control_plane.contracts.triage import Insight as Reported
from control_plane.insights.models import Insight

log = logging.getLogger(__name__)

#: Column widths of the ``insights`` table; longer or larger values make an insight invalid.
MAX_TEXT = 200
MAX_NUMBER = 2**31 - 1
#: Evidence kept per insight (the first as the runtime sends them: its newest, oldest first), and per item
#: the description's length (the contract's own excerpt length).
MAX_EVIDENCE = 20
EXCERPT = 200


@dataclass(frozen=True)
class Found:
    """A valid insight of a batch, with the event that carried it."""

    event_id: UUID
    at: datetime
    store: str | None
    insight: Reported
    first_at: datetime
    last_at: datetime


class InvalidInsight(ValueError):
    """An ``insight`` event whose data the control plane cannot store; says why."""


def _moment(value: str, field: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInsight(f"{field} {value!r} is not an ISO 8601 time") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def parse(event: Event) -> Found:
    """The insight an event carries, or :class:`InvalidInsight` saying what is wrong."""
    try:
        insight = msgspec.convert(event.data, Reported)
    except msgspec.ValidationError as exc:
        raise InvalidInsight(str(exc)) from None
    for name in ("id", "subject", "label", "notified"):
        value = getattr(insight, name)
        if value is not None and not 0 < len(value) <= MAX_TEXT:
            raise InvalidInsight(f"{name} must be 1-{MAX_TEXT} characters")
        if value is not None and "\x00" in value:
            raise InvalidInsight(f"{name} contains a NUL character")
    for name in ("count", "threshold", "window_days"):
        if not 0 <= getattr(insight, name) <= MAX_NUMBER:
            raise InvalidInsight(f"{name} must be between 0 and {MAX_NUMBER}")
    first_at, last_at = _moment(insight.first_at, "first_at"), _moment(insight.last_at, "last_at")
    return Found(event.id, event.at, event.store, insight, first_at, last_at)


def collect(events: Iterable[Event], tenant_id: UUID) -> list[Found]:
    """The batch's valid insights, one per insight id: the highest count (then the latest
    event) wins, since one statement may not update a row twice. Sorted by id, so two
    batches upserting the same insights lock their rows in the same order."""
    chosen: dict[str, Found] = {}
    for event in events:
        if event.kind is not Kind.INSIGHT:
            continue
        try:
            found = parse(event)
        except InvalidInsight as exc:
            log.warning("tenant %s: insight event %s skipped: %s", tenant_id, event.id, exc)
            continue
        held = chosen.get(found.insight.id)
        if held is None or (found.insight.count, found.at) > (held.insight.count, held.at):
            chosen[found.insight.id] = found
    return [chosen[key] for key in sorted(chosen)]


def _evidence(insight: Reported) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = msgspec.to_builtins(insight.evidence[:MAX_EVIDENCE])
    for item in items:
        item["text"] = item["text"][:EXCERPT]
    return items


def _row(tenant_id: UUID, partner_id: UUID, found: Found, now: datetime) -> dict[str, Any]:
    insight = found.insight
    return {
        "id": uuid7(),
        "created_at": now,
        "updated_at": now,
        "version": 1,
        "partner_id": partner_id,
        "tenant_id": tenant_id,
        "key": insight.id,
        "kind": insight.kind,
        "scope": insight.scope,
        "subject": insight.subject,
        "store": found.store,
        "label": insight.label,
        "count": insight.count,
        "threshold": insight.threshold,
        "window_days": insight.window_days,
        "first_at": found.first_at,
        "last_at": found.last_at,
        "evidence": _evidence(insight),
        "notified": insight.notified,
        "event_id": found.event_id,
        "reported_at": found.at,
    }


#: What a re-sent insight with a higher count replaces (the rest is the pattern itself).
UPDATED = (
    "count",
    "threshold",
    "window_days",
    "first_at",
    "last_at",
    "evidence",
    "store",
    "event_id",
    "reported_at",
    "updated_at",
)


async def record(
    session: AsyncSession,
    tenant_id: UUID,
    partner_id: UUID,
    found: list[Found],
    now: datetime | None = None,
) -> None:
    """Insert new insights; a known one is updated only when its count grew (a re-sent
    or older report changes nothing)."""
    if not found:
        return
    now = now or datetime.now(UTC)
    postgres = session.get_bind().dialect.name == "postgresql"
    insert = postgresql.insert if postgres else sqlite.insert
    table = cast(Table, Insight.__table__)
    stmt = insert(table).values([_row(tenant_id, partner_id, f, now) for f in found])
    excluded = stmt.excluded
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.tenant_id, table.c.key],
        set_={
            **{name: excluded[name] for name in UPDATED},
            "notified": func.coalesce(excluded["notified"], table.c["notified"]),
            "version": table.c.version + 1,
        },
        where=excluded["count"] > table.c["count"],
    )
    await session.execute(stmt)
