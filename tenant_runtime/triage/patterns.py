"""Recurring patterns: an incident category that keeps coming back at one store, or across
a region, within a window (e.g. three refrigeration incidents at one store in 30 days) is
raised as an insight with its evidence: to the region's manager (an email) and home to
the NOC (an ``insight`` telemetry event).

The incidents are the tenant's audited category decisions: the model's label when it
routed the incident itself, the person's when one reviewed it (an incident still waiting
for its review does not count yet). An insight's id names its pattern and its oldest
incident, so running the job again raises nothing new; an insight whose pattern grew is
sent home again with its new count, and a pattern still there once its oldest incident
has left the window is a new insight.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import msgspec
from sqlalchemy import or_, select, update

from control_plane.contracts.triage import Evidence, Insight, TriageSettings
from tenant_runtime.db.dialect import aware, insert_ignore, iso
from tenant_runtime.db.schema import ai_decisions, insights

if TYPE_CHECKING:
    from tenant_runtime.engine.executor import Engine

#: Evidence items an insight carries (the newest); the count covers them all.
EVIDENCE = 20


def find(
    rows: Sequence[Any], settings: TriageSettings, regions: dict[str, str | None]
) -> list[Insight]:
    """The patterns in ``rows`` (run_id, store, label, at, text, routed), oldest first."""
    groups: dict[tuple[str, str, str], list[Any]] = defaultdict(list)
    for row in rows:
        if not row.store:
            continue
        groups[("store", row.store, row.label)].append(row)
        region = regions.get(row.store)
        if region:
            groups[("region", region, row.label)].append(row)
    found = []
    for (scope, subject, label), members in sorted(groups.items()):
        threshold = settings.store_threshold if scope == "store" else settings.region_threshold
        if len(members) < threshold:
            continue
        members.sort(key=lambda r: (aware(r.at), str(r.run_id)))
        found.append(
            Insight(
                id=f"{scope}:{subject}:{label}:{members[0].run_id}",
                scope=scope,  # type: ignore[arg-type]
                subject=subject,
                label=label,
                count=len(members),
                threshold=threshold,
                window_days=settings.window_days,
                first_at=iso(members[0].at),
                last_at=iso(members[-1].at),
                evidence=[
                    Evidence(
                        run_id=str(r.run_id),
                        store=r.store,
                        at=iso(r.at),
                        text=" ".join(r.text.split())[:200],  # one line each in e-mails
                        routed=r.routed,
                    )
                    for r in members[-EVIDENCE:]
                ],
            )
        )
    return found


async def raise_insights(engine: Engine, settings: TriageSettings) -> list[Insight]:
    """Look at the window that ends now; raise what is new, send home what grew. Returns
    the insights raised or updated by this pass."""
    now = engine.clock()
    since = now - timedelta(days=settings.window_days)
    async with engine.db.connect() as conn:
        rows = (
            await conn.execute(
                select(
                    ai_decisions.c.run_id,
                    ai_decisions.c.store,
                    ai_decisions.c.text,
                    ai_decisions.c.routed,
                    ai_decisions.c.created_at.label("at"),
                    # The person's label when one reviewed it, else the model's.
                    ai_decisions.c.final_label,
                    ai_decisions.c.label,
                ).where(
                    ai_decisions.c.kind == "classify",
                    ai_decisions.c.target == "category",
                    ai_decisions.c.created_at >= since,
                    or_(ai_decisions.c.routed == "auto", ai_decisions.c.final_label.is_not(None)),
                )
            )
        ).all()
    incidents = [_Incident(r) for r in rows]
    regions = {
        store: (info.region if (info := engine.directory.store(store)) else None)
        for store in {i.store for i in incidents if i.store}
    }
    changed = []
    async with engine._unit() as u:
        for insight in find(incidents, settings, regions):
            known = (
                await u.conn.execute(
                    select(insights.c.count.label("seen")).where(insights.c.id == insight.id)
                )
            ).first()
            if known is not None and known.seen >= insight.count:
                continue
            values = {
                "count": insight.count,
                "last_at": _parse(insight.last_at),
                "evidence": msgspec.to_builtins(insight.evidence),
                "updated_at": u.now,
            }
            if known is None:
                insight.notified = _manager(insight, engine)
                added = await u.conn.execute(
                    insert_ignore(u.conn, insights).values(
                        id=insight.id,
                        scope=insight.scope,
                        subject=insight.subject,
                        label=insight.label,
                        threshold=insight.threshold,
                        window_days=insight.window_days,
                        first_at=_parse(insight.first_at),
                        notified=insight.notified,
                        raised_at=u.now,
                        **values,
                    )
                )
                if added.rowcount != 1:
                    continue  # another process raised it a moment ago
                if insight.notified is not None:
                    await engine._notify(
                        u, None, None, "insight", "email", insight.notified, describe(insight)
                    )
            else:
                insight.notified = await u.conn.scalar(
                    select(insights.c.notified).where(insights.c.id == insight.id)
                )
                await u.conn.execute(
                    update(insights).where(insights.c.id == insight.id).values(**values)
                )
            u.event(
                "insight",
                store=insight.subject if insight.scope == "store" else None,
                status="raised" if known is None else "updated",
                data=msgspec.to_builtins(insight),
            )
            changed.append(insight)
    return changed


def describe(insight: Insight) -> str:
    """The insight as the regional manager reads it: the pattern, then the incidents."""
    where = f"store {insight.subject}" if insight.scope == "store" else f"region {insight.subject}"
    lines = [
        f"{insight.count} {insight.label.replace('_', ' ')} incidents at {where} in the last "
        f"{insight.window_days} days (threshold {insight.threshold}), "
        f"{insight.first_at[:10]} to {insight.last_at[:10]}.",
        "",
    ]
    lines += [
        f"- {e.at[:16].replace('T', ' ')} store {e.store}: {e.text}" for e in insight.evidence
    ]
    return "\n".join(lines)


def _manager(insight: Insight, engine: Engine) -> str | None:
    """The manager of the insight's region; None for a store in no region (the NOC still
    hears of it)."""
    if insight.scope == "region":
        return f"regional_manager@region:{insight.subject}"
    info = engine.directory.store(insight.subject)
    return f"regional_manager@region:{info.region}" if info and info.region else None


class _Incident:
    """An audited category decision, with the label that counts."""

    __slots__ = ("at", "label", "routed", "run_id", "store", "text")

    def __init__(self, row: Any) -> None:
        self.run_id, self.store, self.text = row.run_id, row.store, row.text
        self.routed, self.at = row.routed, row.at
        self.label = row.final_label or row.label


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
