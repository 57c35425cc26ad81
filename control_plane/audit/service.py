"""Appending to and verifying the hash-chained audit log."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import inspect, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from control_plane.api.pagination import check_limit
from control_plane.audit.models import AuditEntry
from control_plane.context import Ctx
from control_plane.contracts import uuid7
from control_plane.db import utcnow
from control_plane.errors import InvalidInput

GENESIS = "0" * 64
_SENSITIVE = ("password", "secret", "token", "private", "hash", "credential", "api_key")
#: One lock id serialises appends on PostgreSQL so the chain never forks.
_CHAIN_LOCK = 0x5701_0A0D


def redact(data: dict[str, Any] | None) -> dict[str, Any] | None:
    """Drop values whose key names a secret; audit entries never carry them."""
    if data is None:
        return None
    out: dict[str, Any] = {}
    for key, value in data.items():
        if any(word in key.lower() for word in _SENSITIVE):
            out[key] = "[redacted]"
        elif isinstance(value, dict):
            out[key] = redact(value)
        else:
            out[key] = value
    return out


def snapshot(obj: Any) -> dict[str, Any]:
    """The column values of an ORM object, as JSON-friendly data."""
    values: dict[str, Any] = {}
    for attr in inspect(obj).mapper.column_attrs:
        values[attr.key] = _jsonable(getattr(obj, attr.key))
    return values


def _jsonable(value: Any) -> Any:
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _canonical(entry: AuditEntry) -> bytes:
    body = {
        "seq": entry.seq,
        "id": str(entry.id),
        "at": entry.at.isoformat(),
        "actor": entry.actor,
        "actor_kind": entry.actor_kind,
        "partner_id": str(entry.partner_id) if entry.partner_id else None,
        "tenant_id": str(entry.tenant_id) if entry.tenant_id else None,
        "action": entry.action,
        "target_type": entry.target_type,
        "target_id": entry.target_id,
        "before": entry.before,
        "after": entry.after,
        "request_id": entry.request_id,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()


def entry_hash(prev_hash: str, entry: AuditEntry) -> str:
    return hashlib.sha256(prev_hash.encode() + b"\n" + _canonical(entry)).hexdigest()


async def record(
    ctx: Ctx,
    action: str,
    *,
    target_type: str,
    target_id: UUID | str,
    partner_id: UUID | None = None,
    tenant_id: UUID | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append an entry in the caller's transaction (so it commits with the change)."""
    session = ctx.session
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _CHAIN_LOCK})
    table = AuditEntry.__table__
    last = (
        await session.execute(
            select(table.c.seq, table.c.hash).order_by(table.c.seq.desc()).limit(1)
        )
    ).first()
    seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
    entry = AuditEntry(
        seq=seq,
        id=uuid7(),
        at=utcnow(),
        actor=ctx.principal.subject,
        actor_kind=ctx.principal.kind,
        partner_id=partner_id,
        tenant_id=tenant_id,
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        before=redact(before),
        after=redact(after),
        request_id=ctx.request_id,
        prev_hash=prev,
    )
    entry.hash = entry_hash(prev, entry)
    session.add(entry)
    await session.flush()
    return entry


async def record_change(
    ctx: Ctx,
    action: str,
    obj: Any,
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEntry:
    """Audit a change to an object of the tree; target and acting-for ids come from it.

    ``action`` is ``<target type>.<verb>``; ``after`` defaults to the object's snapshot.
    """
    target_type = action.partition(".")[0]
    partner_id = obj.id if target_type == "partner" else getattr(obj, "partner_id", None)
    tenant_id = obj.id if target_type == "tenant" else getattr(obj, "tenant_id", None)
    return await record(
        ctx,
        action,
        target_type=target_type,
        target_id=obj.id,
        partner_id=partner_id,
        tenant_id=tenant_id,
        before=before,
        after=snapshot(obj) if after is None else after,
    )


@dataclass(frozen=True)
class AuditFilter:
    #: Exact action, or a prefix ending in '*' (e.g. "tenant.*").
    action: str | None = None
    actor: str | None = None
    target_type: str | None = None
    target_id: str | None = None
    partner_id: UUID | None = None
    tenant_id: UUID | None = None
    since: datetime | None = None
    until: datetime | None = None


async def list_entries(
    ctx: Ctx, where: AuditFilter, *, limit: int = 50, cursor: str | None = None
) -> tuple[list[AuditEntry], str | None]:
    """Newest first, scoped like every query; the cursor is the last seq seen."""
    stmt = select(AuditEntry)
    if where.action:
        stmt = stmt.where(
            AuditEntry.action.startswith(where.action[:-1])
            if where.action.endswith("*")
            else AuditEntry.action == where.action
        )
    for column, value in (
        (AuditEntry.actor, where.actor),
        (AuditEntry.target_type, where.target_type),
        (AuditEntry.target_id, where.target_id),
        (AuditEntry.partner_id, where.partner_id),
        (AuditEntry.tenant_id, where.tenant_id),
    ):
        if value is not None:
            stmt = stmt.where(column == value)
    if where.since:
        stmt = stmt.where(AuditEntry.at >= where.since)
    if where.until:
        stmt = stmt.where(AuditEntry.at < where.until)
    if cursor:
        if not cursor.isdigit():
            raise InvalidInput(f"cursor {cursor!r} is not one this API returned")
        stmt = stmt.where(AuditEntry.seq < int(cursor))
    limit = check_limit(limit)
    rows = list(
        (await ctx.session.scalars(stmt.order_by(AuditEntry.seq.desc()).limit(limit + 1))).all()
    )
    if len(rows) > limit:
        return rows[:limit], str(rows[limit - 1].seq)
    return rows, None


@dataclass(frozen=True)
class ChainProblem:
    position: int
    seq: int
    problem: str

    def __str__(self) -> str:
        return f"entry at position {self.position} (seq {self.seq}): {self.problem}"


async def _entries(session: AsyncSession) -> AsyncIterator[AuditEntry]:
    result = await session.stream_scalars(
        select(AuditEntry).order_by(AuditEntry.seq).execution_options(yield_per=1000)
    )
    async for entry in result:
        yield entry


async def verify_chain(session: AsyncSession) -> tuple[int, list[ChainProblem]]:
    """Walk the whole chain; return the entry count and every break found, by position."""
    problems: list[ChainProblem] = []
    prev = GENESIS
    count = 0
    #: Follows the entries read, so one gap is reported once, not at every later entry.
    expected_seq = 1
    async for entry in _entries(session):
        count += 1
        if entry.seq != expected_seq:
            problems.append(
                ChainProblem(
                    count, entry.seq, f"expected seq {expected_seq}: an entry was deleted or moved"
                )
            )
        expected_seq = entry.seq + 1
        if entry.prev_hash != prev:
            problems.append(
                ChainProblem(
                    count,
                    entry.seq,
                    "does not link to the entry before it: deleted, inserted or reordered",
                )
            )
        if entry_hash(entry.prev_hash, entry) != entry.hash:
            problems.append(
                ChainProblem(count, entry.seq, "content does not match its hash: edited")
            )
        prev = entry.hash
    return count, problems
