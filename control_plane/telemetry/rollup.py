"""Folding events into rollup counters: one implementation for ingest and for rebuilds."""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable
from typing import Any

from control_plane.contracts.telemetry import Event, Kind

#: Bucket widths, in seconds, by the name the API uses.
GRANULARITIES = {"5m": 300, "1h": 3600}

#: Upper bounds (inclusive) of the run-duration histogram's buckets, in milliseconds; a
#: last bucket counts everything longer. Runs wait on people, so the scale reaches a week.
HISTOGRAM_BOUNDS_MS: tuple[int, ...] = (
    50, 100, 200, 500,
    1_000, 2_000, 5_000, 10_000, 20_000, 30_000,
    60_000, 120_000, 300_000, 600_000, 1_200_000, 1_800_000,
    3_600_000, 7_200_000, 14_400_000, 28_800_000, 43_200_000,
    86_400_000, 172_800_000, 604_800_000,
)  # fmt: skip
HISTOGRAM_SIZE = len(HISTOGRAM_BOUNDS_MS) + 1

#: A rollup's key: (template id or "", bucket start as epoch seconds).
Key = tuple[str, int]


class Counters:
    """What one rollup row adds up; the SQL upsert adds two of them the same way."""

    __slots__ = (
        "events",
        "run_ms_count",
        "run_ms_hist",
        "run_ms_max",
        "run_ms_sum",
        "runs_cancelled",
        "runs_failed",
        "runs_finished",
        "runs_started",
        "runs_succeeded",
        "sla_breaches",
        "steps_by_status",
        "steps_finished",
        "tasks_decided",
        "tasks_escalated",
        "tasks_opened",
        "usage",
    )

    def __init__(self) -> None:
        self.events = 0
        self.runs_started = 0
        self.runs_finished = 0
        self.runs_succeeded = 0
        self.runs_failed = 0
        self.runs_cancelled = 0
        self.run_ms_sum = 0
        self.run_ms_count = 0
        self.run_ms_max = 0
        self.run_ms_hist = [0] * HISTOGRAM_SIZE
        self.steps_finished = 0
        self.steps_by_status: dict[str, int] = {}
        self.tasks_opened = 0
        self.tasks_decided = 0
        self.tasks_escalated = 0
        self.sla_breaches = 0
        self.usage: dict[str, int | float] = {}

    def add(self, events: list[Event]) -> None:
        """Count ``events`` (all of this rollup's template and bucket)."""
        self.events += len(events)
        kinds = Counter(e.kind for e in events)
        self.runs_started += kinds[Kind.RUN_STARTED]
        self.tasks_opened += kinds[Kind.TASK_OPENED]
        self.tasks_decided += kinds[Kind.TASK_DECIDED]
        self.sla_breaches += kinds[Kind.TASK_BREACHED]
        self.tasks_escalated += kinds[Kind.TASK_ESCALATED]
        if kinds[Kind.RUN_FINISHED]:
            self._runs_finished([e for e in events if e.kind is Kind.RUN_FINISHED])
        if kinds[Kind.STEP_FINISHED]:
            self.steps_finished += kinds[Kind.STEP_FINISHED]
            statuses = Counter(
                e.status or "unknown" for e in events if e.kind is Kind.STEP_FINISHED
            )
            _add_into(self.steps_by_status, statuses)
        if kinds[Kind.USAGE]:
            usage = self.usage
            for event in events:
                if event.kind is Kind.USAGE:
                    for name, value in event.data.items():
                        if isinstance(value, int | float) and not isinstance(value, bool):
                            usage[name] = usage.get(name, 0) + value

    def _runs_finished(self, runs: list[Event]) -> None:
        self.runs_finished += len(runs)
        statuses = Counter(e.status for e in runs)
        self.runs_succeeded += statuses["succeeded"]
        self.runs_failed += statuses["failed"]
        self.runs_cancelled += statuses["cancelled"]
        durations = [e.duration_ms for e in runs if e.duration_ms is not None]
        if durations:
            self.run_ms_sum += sum(durations)
            self.run_ms_count += len(durations)
            self.run_ms_max = max(self.run_ms_max, *durations)
            hist = self.run_ms_hist
            for ms in durations:
                hist[bisect_left(HISTOGRAM_BOUNDS_MS, ms)] += 1

    def merge(self, other: Counters) -> None:
        for name in SUMMED_SLOTS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.run_ms_max = max(self.run_ms_max, other.run_ms_max)
        self.run_ms_hist = [a + b for a, b in zip(self.run_ms_hist, other.run_ms_hist, strict=True)]
        _add_into(self.steps_by_status, other.steps_by_status)
        _add_into(self.usage, other.usage)

    @classmethod
    def from_row(cls, row: Any) -> Counters:
        """Counters read back from a stored rollup (an ORM object or a mapping)."""
        get = row.get if isinstance(row, dict) else lambda name: getattr(row, name)
        counters = cls()
        for name in (*SUMMED_SLOTS, "run_ms_max"):
            setattr(counters, name, int(get(name) or 0))
        hist = list(get("run_ms_hist") or [])
        counters.run_ms_hist = (hist + [0] * HISTOGRAM_SIZE)[:HISTOGRAM_SIZE]
        counters.steps_by_status = dict(get("steps_by_status") or {})
        counters.usage = dict(get("usage") or {})
        return counters

    def values(self) -> dict[str, Any]:
        """Column values for a stored rollup."""
        row: dict[str, Any] = {name: getattr(self, name) for name in (*SUMMED_SLOTS, "run_ms_max")}
        row["run_ms_hist"] = list(self.run_ms_hist)
        row["steps_by_status"] = dict(self.steps_by_status)
        row["usage"] = dict(self.usage)
        return row


SUMMED_SLOTS = (
    "events",
    "runs_started",
    "runs_finished",
    "runs_succeeded",
    "runs_failed",
    "runs_cancelled",
    "run_ms_sum",
    "run_ms_count",
    "steps_finished",
    "tasks_opened",
    "tasks_decided",
    "tasks_escalated",
    "sla_breaches",
)


def _add_into(into: dict[str, Any], other: dict[str, Any]) -> None:
    for name, value in other.items():
        into[name] = into.get(name, 0) + value


def fold(
    events: Iterable[Event],
    width: int = GRANULARITIES["5m"],
    into: dict[Key, Counters] | None = None,
) -> dict[Key, Counters]:
    """Counters per (template, bucket) of ``width`` seconds (added to ``into`` if given)."""
    buckets: dict[Key, Counters] = {} if into is None else into
    groups: dict[Key, list[Event]] = {}
    for event in events:
        epoch = int(event.at.timestamp())
        key = (event.template_id or "", epoch - epoch % width)
        group = groups.get(key)
        if group is None:
            groups[key] = [event]
        else:
            group.append(event)
    for key, group in groups.items():
        counters = buckets.get(key)
        if counters is None:
            counters = buckets[key] = Counters()
        counters.add(group)
    return buckets


def coarsen(buckets: dict[Key, Counters], width: int) -> dict[Key, Counters]:
    """The same counters in wider buckets (``width`` a multiple of theirs)."""
    wider: dict[Key, Counters] = {}
    for (template, start), counters in buckets.items():
        key = (template, start - start % width)
        into = wider.get(key)
        if into is None:
            into = wider[key] = Counters()
        into.merge(counters)
    return wider


def by_granularity(events: Iterable[Event]) -> dict[str, dict[Key, Counters]]:
    """Every granularity's buckets for ``events``, folded once at the finest width."""
    finest = fold(events, GRANULARITIES["5m"])
    return {"5m": finest, "1h": coarsen(finest, GRANULARITIES["1h"])}


def latest_heartbeat(events: Iterable[Event]) -> Event | None:
    beats = [e for e in events if e.kind is Kind.HEARTBEAT]
    return max(beats, key=lambda e: e.at) if beats else None


def percentile(hist: list[int], maximum: int, q: float = 0.95) -> float | None:
    """An estimate of the ``q`` quantile from histogram counts, interpolated in its bucket
    and never above the largest value seen."""
    total = sum(hist)
    if total == 0:
        return None
    rank = max(1, math.ceil(q * total))
    seen = 0
    for index, count in enumerate(hist):
        if count and seen + count >= rank:
            lower = HISTOGRAM_BOUNDS_MS[index - 1] if index else 0
            upper = HISTOGRAM_BOUNDS_MS[index] if index < len(HISTOGRAM_BOUNDS_MS) else maximum
            upper = min(upper, maximum) if maximum else upper
            lower = min(lower, upper)
            return round(lower + (upper - lower) * (rank - seen) / count, 1)
        seen += count
    return float(maximum)
