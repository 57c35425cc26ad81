"""Wire schemas of the telemetry API (the runtime's batch format is in contracts)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

import msgspec

Granularity = Literal["5m", "1h"]


class IngestResult(msgspec.Struct, omit_defaults=True):
    """What a batch changed: events stored now, and events already stored before."""

    accepted: int
    duplicates: int
    #: Events older than the retention horizon, refused (absent when none).
    expired: int = 0


class RunDurations(msgspec.Struct):
    count: int
    sum_ms: int
    max_ms: int
    mean_ms: float | None
    #: Estimated from the histogram, interpolated within its bucket.
    p95_ms: float | None
    #: Runs per histogram bucket (bounds in ``Rollups.histogram_bounds_ms``).
    histogram: list[int]


class RollupBucket(msgspec.Struct):
    bucket: datetime
    #: The workflow template's id; null for events of no template (heartbeats, usage).
    template_id: str | None
    events: int
    runs_started: int
    runs_finished: int
    runs_succeeded: int
    runs_failed: int
    runs_cancelled: int
    run_duration: RunDurations
    steps_finished: int
    steps_by_status: dict[str, int]
    tasks_opened: int
    tasks_decided: int
    tasks_escalated: int
    #: Approval tasks whose SLA deadline passed (``task.breached`` events).
    sla_breaches: int
    usage: dict[str, Any]


class Rollups(msgspec.Struct):
    tenant_id: UUID
    granularity: Granularity
    from_: datetime = msgspec.field(name="from")
    to: datetime
    #: Upper bounds (inclusive, ms) of the duration histogram's buckets; one more bucket
    #: counts longer runs.
    histogram_bounds_ms: list[int] = msgspec.field(default_factory=list)
    buckets: list[RollupBucket] = msgspec.field(default_factory=list)


class Heartbeat(msgspec.Struct):
    """The tenant runtime's latest heartbeat; every field but tenant_id is null before the
    first one arrives."""

    tenant_id: UUID
    runtime: str | None = None
    at: datetime | None = None
    received_at: datetime | None = None
    age_seconds: float | None = None
    data: dict[str, Any] = msgspec.field(default_factory=dict)


class RetentionResult(msgspec.Struct):
    horizon: datetime
    dropped_partitions: list[str]
    deleted_rows: int
    created_partitions: list[str]


class RebuildResult(msgspec.Struct):
    since: datetime
    until: datetime
    events: int
    rollups: int
