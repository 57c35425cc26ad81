"""fleet rollouts in waves with health gates

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

#: A rollout belongs to its partner (none: platform-wide, platform staff only).
PARTNER_SCOPE = "storeops_platform() OR partner_id = ANY(storeops_ids('storeops.partner_ids'))"
#: A tenant's row in a rollout: its partner's scope or its own (as in 0004).
TENANT_SCOPE = f"{PARTNER_SCOPE} OR tenant_id = ANY(storeops_ids('storeops.tenant_ids'))"
RLS = {"rollouts": PARTNER_SCOPE, "rollout_tenants": TENANT_SCOPE, "rollout_events": PARTNER_SCOPE}


def _entity_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
    ]


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}")
    )


def upgrade() -> None:
    op.create_table(
        "rollouts",
        sa.Column("partner_id", sa.Uuid(), nullable=True),
        sa.Column("template_id", sa.String(length=64), nullable=False),
        sa.Column("target_version", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("selector", JSON, nullable=False),
        sa.Column("wave_spec", JSON, nullable=False),
        sa.Column("soak_seconds", sa.Integer(), nullable=False),
        sa.Column("apply_timeout_seconds", sa.Integer(), nullable=False),
        sa.Column("gates", JSON, nullable=False),
        sa.Column("auto_rollback", sa.Boolean(), nullable=False),
        sa.Column("current_wave", sa.Integer(), nullable=False),
        sa.Column("waves", JSON, nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        *_entity_columns(),
        _fk("rollouts", "partner_id", "partners"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rollouts")),
    )
    op.create_index(op.f("ix_rollouts_partner_id"), "rollouts", ["partner_id"])

    op.create_table(
        "rollout_tenants",
        sa.Column("rollout_id", sa.Uuid(), nullable=False),
        sa.Column("partner_id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("tenant_slug", sa.String(length=63), nullable=False),
        sa.Column("template_id", sa.String(length=64), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("wave", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("deployment_id", sa.Uuid(), nullable=False),
        sa.Column("from_version", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=True),
        sa.Column("moved_generation", sa.Integer(), nullable=True),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        *_entity_columns(),
        _fk("rollout_tenants", "rollout_id", "rollouts"),
        _fk("rollout_tenants", "partner_id", "partners"),
        _fk("rollout_tenants", "tenant_id", "tenants"),
        _fk("rollout_tenants", "deployment_id", "deployments"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rollout_tenants")),
    )
    for column in ("rollout_id", "partner_id", "tenant_id"):
        op.create_index(op.f(f"ix_rollout_tenants_{column}"), "rollout_tenants", [column])

    op.create_table(
        "rollout_events",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("rollout_id", sa.Uuid(), nullable=False),
        sa.Column("partner_id", sa.Uuid(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("wave", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("data", JSON, nullable=False),
        _fk("rollout_events", "rollout_id", "rollouts"),
        _fk("rollout_events", "partner_id", "partners"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rollout_events")),
    )
    for column in ("rollout_id", "partner_id"):
        op.create_index(op.f(f"ix_rollout_events_{column}"), "rollout_events", [column])

    if op.get_bind().dialect.name == "postgresql":
        for table, rule in RLS.items():
            op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
            op.execute(f"CREATE POLICY scope ON {table} USING ({rule}) WITH CHECK ({rule})")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in RLS:
            op.execute(f"DROP POLICY IF EXISTS scope ON {table}")
    for column in ("rollout_id", "partner_id"):
        op.drop_index(op.f(f"ix_rollout_events_{column}"), table_name="rollout_events")
    op.drop_table("rollout_events")
    for column in ("rollout_id", "partner_id", "tenant_id"):
        op.drop_index(op.f(f"ix_rollout_tenants_{column}"), table_name="rollout_tenants")
    op.drop_table("rollout_tenants")
    op.drop_index(op.f("ix_rollouts_partner_id"), table_name="rollouts")
    op.drop_table("rollouts")
