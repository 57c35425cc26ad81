"""Judging a tenant runtime's health from what its telemetry says: heartbeat age, failure
rate, backlog and SLA breach rate. Pure: the signals in, a verdict with reasons out."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Status(StrEnum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    DOWN = "down"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Thresholds:
    #: No heartbeat for this long: the runtime is down.
    heartbeat_down_s: float = 120.0
    #: The recent window the rates are computed over (minutes; whole 5-minute buckets).
    window_minutes: int = 15
    #: Failed runs / finished runs above this, with at least ``min_runs`` finished.
    failure_rate: float = 0.10
    min_runs: int = 5
    #: Steps due but not started, and the age of the oldest of them.
    queue_depth: int = 200
    oldest_pending_s: float = 300.0
    #: Tasks breaching their SLA / tasks opened above this, with at least ``min_tasks``.
    breach_rate: float = 0.20
    min_tasks: int = 5


@dataclass(frozen=True)
class Signals:
    heartbeat_age_s: float | None
    queue_depth: int = 0
    oldest_pending_s: float = 0.0
    runs_finished: int = 0
    runs_failed: int = 0
    tasks_opened: int = 0
    sla_breaches: int = 0
    #: Dead-lettered steps the latest heartbeat counted (None: not reported). Alerts read
    #: it; it does not change the verdict.
    dead_letters: int | None = None


@dataclass(frozen=True)
class Verdict:
    status: Status
    reasons: list[str] = field(default_factory=list)


def assess(signals: Signals, limits: Thresholds | None = None) -> Verdict:
    """The verdict; every status but healthy says why, and healthy says what was checked."""
    t = limits or Thresholds()
    if signals.heartbeat_age_s is None:
        return Verdict(Status.UNKNOWN, ["no heartbeat has ever arrived from this runtime"])
    if signals.heartbeat_age_s > t.heartbeat_down_s:
        return Verdict(
            Status.DOWN,
            [
                f"last heartbeat {signals.heartbeat_age_s:.0f}s ago "
                f"(down after {t.heartbeat_down_s:.0f}s)"
            ],
        )
    reasons = []
    if signals.runs_finished >= t.min_runs:
        rate = signals.runs_failed / signals.runs_finished
        if rate > t.failure_rate:
            reasons.append(
                f"{rate:.0%} of runs failed in the last {t.window_minutes} min "
                f"({signals.runs_failed} of {signals.runs_finished}; limit {t.failure_rate:.0%})"
            )
    if signals.queue_depth > t.queue_depth:
        reasons.append(f"{signals.queue_depth} steps waiting to start (limit {t.queue_depth})")
    if signals.oldest_pending_s > t.oldest_pending_s:
        reasons.append(
            f"the oldest waiting step has waited {signals.oldest_pending_s:.0f}s "
            f"(limit {t.oldest_pending_s:.0f}s)"
        )
    if signals.tasks_opened >= t.min_tasks:
        rate = signals.sla_breaches / signals.tasks_opened
        if rate > t.breach_rate:
            reasons.append(
                f"{rate:.0%} of tasks breached their SLA in the last {t.window_minutes} min "
                f"({signals.sla_breaches} of {signals.tasks_opened}; limit {t.breach_rate:.0%})"
            )
    if reasons:
        return Verdict(Status.DEGRADED, reasons)
    return Verdict(
        Status.HEALTHY,
        [
            f"heartbeat {signals.heartbeat_age_s:.0f}s ago; {signals.runs_failed} of "
            f"{signals.runs_finished} runs failed and {signals.queue_depth} steps waiting"
        ],
    )
