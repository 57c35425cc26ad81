"""Telemetry tables: raw events (partitioned by day on PostgreSQL), rollups, heartbeats."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    ForeignKey,
    Integer,
    String,
    Table,
    Uuid,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from control_plane.db import Base, JSONType, Scoped
from control_plane.db.base import UTCDateTime

#: A histogram's counts: an int array on PostgreSQL (summed in place), JSON elsewhere.
CountsType = JSON().with_variant(ARRAY(BigInteger()), "postgresql")

#: Every event as received. Only the ingest path writes it and only maintenance reads it,
#: both through SQLAlchemy Core or asyncpg: no ORM objects per event.
events = Table(
    "telemetry_events",
    Base.metadata,
    Column("id", Uuid(), primary_key=True),
    # Part of the key on PostgreSQL, where it is also the partition key.
    Column("at", UTCDateTime(), primary_key=True),
    Column("tenant_id", Uuid(), nullable=False),
    Column("partner_id", Uuid(), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("template_id", String(200)),
    Column("template_version", String(200)),
    Column("run_id", Uuid()),
    Column("store", String(200)),
    Column("status", String(200)),
    Column("duration_ms", BigInteger()),
    Column("data", JSONType, nullable=False),
)

#: The single row (id 1) holding the retention horizon: events older are refused.
retention = Table(
    "telemetry_retention",
    Base.metadata,
    Column("id", Integer(), primary_key=True, autoincrement=False),
    Column("horizon", UTCDateTime()),
    Column("updated_at", UTCDateTime()),
)


class Rollup(Scoped, Base):
    """One tenant's events of one template in one 5-minute or 1-hour bucket.

    Events without a template (heartbeats, usage) roll up under ``template_id`` "".
    """

    __tablename__ = "telemetry_rollups"
    __scope_columns__: ClassVar[dict[str, str]] = {"partner": "partner_id", "tenant": "tenant_id"}

    tenant_id: Mapped[UUID] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    #: "5m" or "1h".
    granularity: Mapped[str] = mapped_column(String(3), primary_key=True)
    #: The bucket's start (UTC).
    bucket: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    template_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    partner_id: Mapped[UUID] = mapped_column(Uuid())
    events: Mapped[int] = mapped_column(BigInteger(), default=0)
    runs_started: Mapped[int] = mapped_column(BigInteger(), default=0)
    runs_finished: Mapped[int] = mapped_column(BigInteger(), default=0)
    runs_succeeded: Mapped[int] = mapped_column(BigInteger(), default=0)
    runs_failed: Mapped[int] = mapped_column(BigInteger(), default=0)
    runs_cancelled: Mapped[int] = mapped_column(BigInteger(), default=0)
    run_ms_sum: Mapped[int] = mapped_column(BigInteger(), default=0)
    run_ms_count: Mapped[int] = mapped_column(BigInteger(), default=0)
    run_ms_max: Mapped[int] = mapped_column(BigInteger(), default=0)
    #: Run durations counted per bucket of :data:`rollup.HISTOGRAM_BOUNDS_MS`.
    run_ms_hist: Mapped[list[int]] = mapped_column(CountsType)
    steps_finished: Mapped[int] = mapped_column(BigInteger(), default=0)
    steps_by_status: Mapped[dict[str, int]] = mapped_column(JSONType)
    tasks_opened: Mapped[int] = mapped_column(BigInteger(), default=0)
    tasks_decided: Mapped[int] = mapped_column(BigInteger(), default=0)
    tasks_escalated: Mapped[int] = mapped_column(BigInteger(), default=0)
    sla_breaches: Mapped[int] = mapped_column(BigInteger(), default=0)
    #: Usage counters summed by name.
    usage: Mapped[dict[str, Any]] = mapped_column(JSONType)


class Heartbeat(Scoped, Base):
    """The latest heartbeat a tenant's runtime sent."""

    __tablename__ = "telemetry_heartbeats"
    __scope_columns__: ClassVar[dict[str, str]] = {"partner": "partner_id", "tenant": "tenant_id"}

    tenant_id: Mapped[UUID] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    partner_id: Mapped[UUID] = mapped_column(Uuid())
    runtime: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    data: Mapped[dict[str, Any]] = mapped_column(JSONType)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
