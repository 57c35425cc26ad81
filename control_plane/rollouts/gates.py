"""Health gates: the new version's failure and SLA-breach rates against the old version's,
read from the raw telemetry events of the wave's tenants over its soak window."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from control_plane.contracts.telemetry import Kind
from control_plane.telemetry.models import Heartbeat, events

PASS, FAIL, WAITING = "pass", "fail", "waiting"


@dataclass(frozen=True)
class Thresholds:
    #: Largest allowed rise of the failure rate (failed / finished runs), as a fraction.
    max_failure_rate_increase: float = 0.05
    #: Largest allowed rise of the SLA breach rate (task.breached / task.opened).
    max_breach_rate_increase: float = 0.05
    #: Finished runs of the new version a verdict needs.
    min_runs: int = 20
    #: How far back before the wave the old version's baseline reaches, in seconds.
    baseline_seconds: int = 3600
    #: A wave's runtime silent (no heartbeat) this long after it applied is a regression.
    max_silence_seconds: int = 120

    @classmethod
    def of(cls, data: dict[str, Any]) -> Thresholds:
        return cls(**data)


@dataclass(frozen=True)
class Sample:
    runs: int = 0
    failed: int = 0
    tasks_opened: int = 0
    tasks_breached: int = 0

    @property
    def failure_rate(self) -> float:
        return self.failed / self.runs if self.runs else 0.0

    @property
    def breach_rate(self) -> float:
        return self.tasks_breached / self.tasks_opened if self.tasks_opened else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "failure_rate": round(self.failure_rate, 4),
            "breach_rate": round(self.breach_rate, 4),
        }


@dataclass(frozen=True)
class Reading:
    verdict: str
    new: Sample
    old: Sample
    failure_rate_increase: float
    breach_rate_increase: float
    reasons: list[str] = field(default_factory=list)

    def as_dict(self, at: datetime) -> dict[str, Any]:
        return {
            "at": at.isoformat(),
            "verdict": self.verdict,
            "new": self.new.as_dict(),
            "old": self.old.as_dict(),
            "failure_rate_increase": round(self.failure_rate_increase, 4),
            "breach_rate_increase": round(self.breach_rate_increase, 4),
            "reasons": self.reasons,
        }


def evaluate(new: Sample, old: Sample, limits: Thresholds) -> Reading:
    """Fail when either rate rose by more than its threshold over a sample of at least
    ``min_runs`` new runs; with fewer, wait. An old version with no runs is a 0 % baseline."""
    failure_up = new.failure_rate - old.failure_rate
    breach_up = new.breach_rate - old.breach_rate
    if new.runs < limits.min_runs:
        reason = f"{new.runs} of the {limits.min_runs} finished runs a verdict needs"
        return Reading(WAITING, new, old, failure_up, breach_up, [reason])
    reasons = []
    if failure_up > limits.max_failure_rate_increase:
        reasons.append(
            f"failure rate {new.failure_rate:.1%} vs {old.failure_rate:.1%} on the old version: "
            f"+{failure_up:.1%} exceeds +{limits.max_failure_rate_increase:.1%}"
        )
    if breach_up > limits.max_breach_rate_increase:
        reasons.append(
            f"SLA breach rate {new.breach_rate:.1%} vs {old.breach_rate:.1%} on the old "
            f"version: +{breach_up:.1%} exceeds +{limits.max_breach_rate_increase:.1%}"
        )
    return Reading(FAIL if reasons else PASS, new, old, failure_up, breach_up, reasons)


async def sample(
    session: AsyncSession,
    *,
    tenant_ids: Collection[UUID],
    template_id: str,
    versions: Collection[str],
    since: datetime,
    until: datetime,
) -> Sample:
    """Counts of finished and failed runs, opened and breached tasks."""
    if not tenant_ids or not versions:
        return Sample()
    kinds = (Kind.RUN_FINISHED.value, Kind.TASK_OPENED.value, Kind.TASK_BREACHED.value)
    stmt = (
        select(events.c.kind, events.c.status, func.count())
        .where(
            events.c.tenant_id.in_(list(tenant_ids)),
            events.c.template_id == template_id,
            events.c.template_version.in_(list(versions)),
            events.c.kind.in_(kinds),
            events.c.at >= since,
            events.c.at < until,
        )
        .group_by(events.c.kind, events.c.status)
    )
    runs = failed = opened = breached = 0
    for kind, status, count in (await session.execute(stmt)).all():
        if kind == Kind.RUN_FINISHED and status in ("succeeded", "failed"):
            runs += count
            failed += count if status == "failed" else 0
        elif kind == Kind.TASK_OPENED:
            opened += count
        elif kind == Kind.TASK_BREACHED:
            breached += count
    return Sample(runs, failed, opened, breached)


async def silent(
    session: AsyncSession, tenant_ids: Collection[UUID], since: datetime, now: datetime, limit: int
) -> list[UUID]:
    """Tenants whose runtime sent no heartbeat for ``limit`` seconds, counted from the later
    of ``since`` (the wave applied) and its last heartbeat."""
    beats = dict(
        (
            await session.execute(
                select(Heartbeat.tenant_id, Heartbeat.at).where(
                    Heartbeat.tenant_id.in_(list(tenant_ids))
                )
            )
        ).all()
    )
    return [
        t for t in tenant_ids if (now - max(since, beats.get(t) or since)).total_seconds() > limit
    ]
