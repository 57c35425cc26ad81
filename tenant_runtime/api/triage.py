"""Triage through the API: the audit of the runtime's AI decisions, the tenant's labelled
examples (imported here or learnt from reviews) and the recurring patterns it raised.

Functions take the database (or the engine) and know nothing of HTTP. Decisions are scoped
like the runs they belong to; examples and insights are tenant-wide, for tenant-wide roles.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Select, and_, delete, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from tenant_runtime.api import schemas
from tenant_runtime.api.auth import Caller
from tenant_runtime.api.ports import EnginePort
from tenant_runtime.api.problems import InvalidInput, NotFound
from tenant_runtime.api.queries import MAX_LIMIT, check_choice, convert, fetch_page, utc
from tenant_runtime.api.scope import Scope
from tenant_runtime.db.schema import ai_decisions, insights, runs, triage_examples
from tenant_runtime.triage.evaluate import TARGETS, project_examples
from tenant_runtime.triage.service import digest

DECISION_KINDS = ("classify", "recommend")
ROUTES = ("auto", "review", "advice")
EXAMPLE_SOURCES = ("review", "import")
INSIGHT_SCOPES = ("store", "region")
#: The shortest text worth learning from, once its surrounding spaces are gone.
MIN_TEXT = 3


def _aware(moment: datetime) -> datetime:
    """A moment in UTC (a zone-less one is taken to be UTC already), as stored."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


# --- AI decisions ------------------------------------------------------------------------


def _decisions(scope: Scope) -> Select[Any]:
    """Every decision whose run the caller may see."""
    stmt = select(ai_decisions)
    if not scope.everything:
        stmt = stmt.join(runs, runs.c.id == ai_decisions.c.run_id).where(scope.runs())
    return stmt


async def list_decisions(
    db: AsyncEngine,
    scope: Scope,
    *,
    run_id: UUID | None,
    kind: str | None,
    routed: str | None,
    since: datetime | None,
    limit: int,
    cursor: str | None,
) -> schemas.Page[schemas.AiDecision]:
    """The audit, newest first: ``since`` keeps those made at or after that moment."""
    check_choice("kind", kind, DECISION_KINDS)
    check_choice("routed", routed, ROUTES)
    stmt = _decisions(scope)
    if run_id is not None:
        stmt = stmt.where(ai_decisions.c.run_id == run_id)
    if kind:
        stmt = stmt.where(ai_decisions.c.kind == kind)
    if routed:
        stmt = stmt.where(ai_decisions.c.routed == routed)
    if since is not None:
        stmt = stmt.where(ai_decisions.c.created_at >= _aware(since))
    async with db.connect() as conn:
        rows, nxt = await fetch_page(conn, stmt, ai_decisions.c.id, limit, cursor)
    return schemas.Page(items=[convert(r, schemas.AiDecision) for r in rows], next_cursor=nxt)


async def get_decision(db: AsyncEngine, scope: Scope, decision_id: UUID) -> schemas.AiDecision:
    """A decision of a run the caller may see; any other is a 404, so it does not leak."""
    async with db.connect() as conn:
        row = (
            await conn.execute(_decisions(scope).where(ai_decisions.c.id == decision_id))
        ).first()
    if row is None:
        raise NotFound(f"AI decision {decision_id} does not exist")
    result: schemas.AiDecision = convert(row, schemas.AiDecision)
    return result


# --- the tenant's examples ---------------------------------------------------------------


async def list_examples(
    db: AsyncEngine,
    *,
    target: str | None,
    source: str | None,
    label: str | None,
    limit: int,
    cursor: str | None,
) -> schemas.Page[schemas.TriageExample]:
    check_choice("target", target, TARGETS)
    check_choice("source", source, EXAMPLE_SOURCES)
    stmt = select(triage_examples)
    if target:
        stmt = stmt.where(triage_examples.c.target == target)
    if source:
        stmt = stmt.where(triage_examples.c.source == source)
    if label:
        stmt = stmt.where(triage_examples.c.label == label)
    async with db.connect() as conn:
        rows, nxt = await fetch_page(conn, stmt, triage_examples.c.id, limit, cursor)
    return schemas.Page(items=[convert(r, schemas.TriageExample) for r in rows], next_cursor=nxt)


def _distinct_texts(data: schemas.ExamplesImport) -> dict[str, tuple[str, str]]:
    """(text, label) by the text's hash, texts trimmed; a text given twice: the last label."""
    chosen: dict[str, tuple[str, str]] = {}
    for index, example in enumerate(data.examples):
        text = example.text.strip()
        if len(text) < MIN_TEXT:
            raise InvalidInput(
                f"examples[{index}].text has {len(text)} characters besides surrounding "
                f"spaces; give at least {MIN_TEXT}",
                pointer=f"/examples/{index}/text",
            )
        chosen[digest(text)] = (text, example.label)
    return chosen


async def _platform_labels(target: str) -> set[str]:
    examples = await asyncio.to_thread(project_examples)
    return {e.label(target) for e in examples}


async def import_examples(
    engine: EnginePort, caller: Caller, data: schemas.ExamplesImport
) -> schemas.ExamplesImported:
    """Teach the tenant's model labelled texts (source ``import``), in one transaction. A
    text already labelled so is left alone, keeping where its label came from; the model
    is trained again at its next use."""
    chosen = _distinct_texts(data)
    known = await _platform_labels(data.target)
    created = relabelled = unchanged = 0
    async with engine.db.begin() as conn:
        found = await conn.execute(
            select(triage_examples.c.input_hash, triage_examples.c.label).where(
                triage_examples.c.target == data.target,
                triage_examples.c.input_hash.in_(list(chosen)),
            )
        )
        existing = {r.input_hash: r.label for r in found}
        known |= set(
            await conn.scalars(
                select(triage_examples.c.label)
                .where(triage_examples.c.target == data.target)
                .distinct()
            )
        )
        now = engine.clock()
        for input_hash, (text, label) in chosen.items():
            before = existing.get(input_hash)
            if before == label:
                unchanged += 1
                continue
            if before is None:
                created += 1
            else:
                relabelled += 1
            await engine.triage.learn(
                conn,
                target=data.target,
                text=text,
                label=label,
                source="import",
                actor=caller.subject,
                now=now,
            )
    return schemas.ExamplesImported(
        target=data.target,
        received=len(data.examples),
        created=created,
        relabelled=relabelled,
        unchanged=unchanged,
        repeated=len(data.examples) - len(chosen),
        new_labels=sorted({label for _, label in chosen.values()} - known),
    )


async def delete_example(db: AsyncEngine, example_id: UUID) -> None:
    """Forget one example; the model is trained again without it at its next use."""
    async with db.begin() as conn:
        gone = await conn.execute(delete(triage_examples).where(triage_examples.c.id == example_id))
    if gone.rowcount == 0:
        raise NotFound(f"triage example {example_id} does not exist")


# --- insights ----------------------------------------------------------------------------


def _insight_cursor(raised_at: datetime, insight_id: str) -> str:
    raw = json.dumps([_aware(raised_at).isoformat(), insight_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).rstrip(b"=").decode()


def _after_insight(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, insight_id = json.loads(raw)
        return _aware(datetime.fromisoformat(at)), str(insight_id)
    except (binascii.Error, ValueError, TypeError):
        raise InvalidInput(f"cursor {cursor!r} is not one this API returned") from None


async def list_insights(
    db: AsyncEngine,
    *,
    scope: str | None,
    label: str | None,
    since: datetime | None,
    limit: int,
    cursor: str | None,
) -> schemas.Page[schemas.Insight]:
    """Raised patterns, the most recently raised first (insight ids name a pattern, not a
    moment, so the page turns on the moment and the id together); ``since``: those whose
    latest incident is at or after that moment."""
    check_choice("scope", scope, INSIGHT_SCOPES)
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}, got {limit}")
    stmt = select(insights)
    if scope:
        stmt = stmt.where(insights.c.scope == scope)
    if label:
        stmt = stmt.where(insights.c.label == label)
    if since is not None:
        stmt = stmt.where(insights.c.last_at >= _aware(since))
    if cursor:
        at, insight_id = _after_insight(cursor)
        stmt = stmt.where(
            or_(
                insights.c.raised_at < at,
                and_(insights.c.raised_at == at, insights.c.id < insight_id),
            )
        )
    stmt = stmt.order_by(insights.c.raised_at.desc(), insights.c.id.desc()).limit(limit + 1)
    async with db.connect() as conn:
        rows = (await conn.execute(stmt)).all()
    nxt = None
    if len(rows) > limit:
        rows = rows[:limit]
        nxt = _insight_cursor(utc(rows[-1].raised_at), rows[-1].id)
    return schemas.Page(items=[convert(r, schemas.Insight) for r in rows], next_cursor=nxt)
