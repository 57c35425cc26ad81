"""insights: recurring incident patterns reported by tenant runtimes; their alert rule

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from control_plane.contracts import uuid7

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TS = sa.DateTime(timezone=True)

PARTNER_SCOPE = "storeops_platform() OR partner_id = ANY(storeops_ids('storeops.partner_ids'))"
TENANT_SCOPE = f"{PARTNER_SCOPE} OR tenant_id = ANY(storeops_ids('storeops.tenant_ids'))"
TABLES = ("insights",)
INDEXED = {"insights": ("partner_id",)}

#: The platform default rule raising insights to the NOC (frozen here as data, like 0006's).
RULE = {
    "key": "recurring-incidents",
    "name": "Recurring incidents",
    "description": "The runtime found an incident category recurring at a store or in a"
    " region (reported in the last 24 hours); see the tenant's insights.",
    "metric": "recurring_incidents",
    "comparator": ">",
    "threshold": 0.0,
    "for_seconds": 0,
    "severity": "info",
}


def upgrade() -> None:
    op.create_table(
        "insights",
        sa.Column("partner_id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("store", sa.String(length=200), nullable=True),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("threshold", sa.Integer(), nullable=False),
        sa.Column("window_days", sa.Integer(), nullable=False),
        sa.Column("first_at", TS, nullable=False),
        sa.Column("last_at", TS, nullable=False),
        sa.Column("evidence", JSON, nullable=False),
        sa.Column("notified", sa.String(length=200), nullable=True),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("reported_at", TS, nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["partners.id"], name=op.f("fk_insights_partner_id_partners")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_insights_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_insights")),
        # A re-sent insight is the same insight: one row per tenant and runtime id.
        sa.UniqueConstraint("tenant_id", "key", name=op.f("uq_insights_tenant_id")),
    )
    op.create_index("ix_insights_tenant_id_last_at", "insights", ["tenant_id", "last_at"])
    op.create_index("ix_insights_updated_at", "insights", ["updated_at"])
    for table, columns in INDEXED.items():
        for column in columns:
            op.create_index(op.f(f"ix_{table}_{column}"), table, [column])
    now = datetime.now(UTC)
    rules = sa.table(
        "alert_rules",
        sa.column("id", sa.Uuid()),
        sa.column("created_at", TS),
        sa.column("updated_at", TS),
        sa.column("version", sa.Integer()),
        sa.column("partner_id", sa.Uuid()),
        sa.column("key", sa.String()),
        sa.column("name", sa.String()),
        sa.column("description", sa.Text()),
        sa.column("metric", sa.String()),
        sa.column("comparator", sa.String()),
        sa.column("threshold", sa.Float()),
        sa.column("for_seconds", sa.Integer()),
        sa.column("severity", sa.String()),
        sa.column("enabled", sa.Boolean()),
    )
    op.bulk_insert(
        rules,
        [
            {
                "id": uuid7(),
                "created_at": now,
                "updated_at": now,
                "version": 1,
                "partner_id": None,
                "enabled": True,
                **RULE,
            }
        ],
    )
    if op.get_bind().dialect.name == "postgresql":
        for table in TABLES:
            op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
            op.execute(
                f"CREATE POLICY scope ON {table} USING ({TENANT_SCOPE}) WITH CHECK ({TENANT_SCOPE})"
            )


def downgrade() -> None:
    rules = sa.table("alert_rules", sa.column("partner_id"), sa.column("key"))
    op.execute(rules.delete().where(rules.c.partner_id.is_(None), rules.c.key == RULE["key"]))
    if op.get_bind().dialect.name == "postgresql":
        for table in TABLES:
            op.execute(f"DROP POLICY IF EXISTS scope ON {table}")
    for table, columns in INDEXED.items():
        for column in columns:
            op.drop_index(op.f(f"ix_{table}_{column}"), table_name=table)
    op.drop_index("ix_insights_updated_at", table_name="insights")
    op.drop_index("ix_insights_tenant_id_last_at", table_name="insights")
    for table in reversed(TABLES):
        op.drop_table(table)
