"""The cache of closed days' report partials (migration 0008), read and written with Core."""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Column, Date, DateTime, MetaData, Table, Uuid
from sqlalchemy.dialects.postgresql import JSONB

#: Its own metadata: only this package touches the table, and only on PostgreSQL.
metadata = MetaData()

report_days = Table(
    "report_days",
    metadata,
    Column("tenant_id", Uuid(), primary_key=True),
    Column("day", Date(), primary_key=True),
    Column("partner_id", Uuid(), nullable=False),
    #: How many of the report's events the partials were computed from.
    Column("events", BigInteger(), nullable=False),
    Column("counts", JSON().with_variant(JSONB(), "postgresql"), nullable=False),
    Column("durations", JSON().with_variant(JSONB(), "postgresql"), nullable=False),
    Column("computed_at", DateTime(timezone=True), nullable=False),
)
