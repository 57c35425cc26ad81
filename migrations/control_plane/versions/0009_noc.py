"""NOC fleet grid: a covering index over recent workflow rollups

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The fleet grid sums every tenant's recent buckets at once; the primary key leads with
# the tenant, so without this each read scans the whole table. Covering (index-only
# scans) because the rows are wide; partial because runs and tasks always belong to a
# workflow template, and the "" rows (heartbeats, usage) would double the index.
INDEX = "ix_telemetry_rollups_recent_work"
COLUMNS = ("granularity", "bucket")
INCLUDE = (
    "tenant_id",
    "partner_id",
    "runs_finished",
    "runs_failed",
    "tasks_opened",
    "sla_breaches",
)


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.create_index(
        INDEX,
        "telemetry_rollups",
        list(COLUMNS),
        postgresql_include=list(INCLUDE) if postgres else None,
        postgresql_where=sa.text("template_id <> ''"),
        sqlite_where=sa.text("template_id <> ''"),
    )


def downgrade() -> None:
    op.drop_index(INDEX, table_name="telemetry_rollups")
