"""SLA and business reports: a partial index on the events a report reads, and the
per-tenant, per-day partials of closed days

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
#: The kinds control_plane.reports reads (control_plane.reports.figures.KINDS): the index
#: holds only these, so heartbeats, step and usage events cost it nothing.
KINDS = ("task.opened", "task.decided", "task.breached", "task.escalated", "run.finished")
WHERE = sa.text("kind IN (" + ", ".join(f"'{k}'" for k in KINDS) + ")")
#: The rule of every table below a tenant (0001, 0005).
SCOPE = (
    "(SELECT storeops_platform())"
    " OR partner_id = ANY((SELECT storeops_ids('storeops.partner_ids'))::uuid[])"
    " OR tenant_id = ANY((SELECT storeops_ids('storeops.tenant_ids'))::uuid[])"
)


def upgrade() -> None:
    # On PostgreSQL an index on the partitioned parent is made on every partition, those to
    # come included (attaching a partition builds its copy).
    op.create_index(
        "ix_telemetry_events_report",
        "telemetry_events",
        ["partner_id", "tenant_id", "at"],
        postgresql_where=WHERE,
        sqlite_where=WHERE,
    )
    # A closed UTC day's report partials of one tenant, stamped with the number of events
    # they were computed from: a report recomputes a day whose count has changed since
    # (events that arrived late), so the partials never go stale.
    op.create_table(
        "report_days",
        sa.Column("tenant_id", sa.Uuid(), primary_key=True),
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("partner_id", sa.Uuid(), nullable=False),
        sa.Column("events", sa.BigInteger(), nullable=False),
        sa.Column("counts", JSON, nullable=False),
        sa.Column("durations", JSON, nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_report_days_partner_day", "report_days", ["partner_id", "day"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE report_days ENABLE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY scope ON report_days USING ({SCOPE}) WITH CHECK ({SCOPE})")


def downgrade() -> None:
    op.drop_table("report_days")
    op.drop_index("ix_telemetry_events_report", table_name="telemetry_events")
