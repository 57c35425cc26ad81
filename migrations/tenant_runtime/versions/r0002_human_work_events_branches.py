"""human work, waits, events, parallel branches

Revision ID: r0002
Revises: r0001
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "r0002"
down_revision: str | None = "r0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "template_specs",
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("template_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("spec", JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("hash", name=op.f("pk_template_specs")),
    )
    op.create_table(
        "events",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=False),
        sa.Column("type", sa.String(length=200), nullable=False),
        sa.Column("correlation", sa.String(length=255), nullable=True),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index("ix_events_match", ["type", "correlation"], unique=False)
        batch_op.create_index("uq_events_external", ["source", "external_id"], unique=True)

    op.create_table(
        "branches",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("parent_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("item", JSON, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["steps.id"],
            name=op.f("fk_branches_parent_id_steps"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_branches_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_branches")),
    )
    with op.batch_alter_table("branches", schema=None) as batch_op:
        batch_op.create_index("uq_branches_position", ["parent_id", "position"], unique=True)

    op.create_table(
        "tasks",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("step_row_id", sa.Uuid(), nullable=False),
        sa.Column("template_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("form", JSON, nullable=False),
        sa.Column("context", JSON, nullable=False),
        sa.Column("assignee_role", sa.String(length=32), nullable=False),
        sa.Column("assignee_scope", sa.String(length=16), nullable=False),
        sa.Column("store", sa.String(length=64), nullable=True),
        sa.Column("region", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=True),
        sa.Column("decided_by", sa.String(length=255), nullable=True),
        sa.Column("decided_via", sa.String(length=8), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("answers", JSON, nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("breached_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("escalation_level", sa.Integer(), server_default="0", nullable=False),
        sa.Column("escalate_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_tasks_run_id_runs"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["step_row_id"],
            ["steps.id"],
            name=op.f("fk_tasks_step_row_id_steps"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tasks")),
    )
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.create_index("ix_tasks_open", ["status", "assignee_role"], unique=False)
        batch_op.create_index("uq_tasks_step", ["step_row_id"], unique=True)

    op.create_table(
        "waits",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("step_row_id", sa.Uuid(), nullable=False),
        sa.Column("event_type", sa.String(length=200), nullable=True),
        sa.Column("correlation", sa.String(length=255), nullable=True),
        sa.Column("timeout_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_waits_run_id_runs"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["step_row_id"],
            ["steps.id"],
            name=op.f("fk_waits_step_row_id_steps"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_waits")),
    )
    with op.batch_alter_table("waits", schema=None) as batch_op:
        batch_op.create_index(
            "ix_waits_match", ["event_type", "correlation", "status"], unique=False
        )
        batch_op.create_index("ix_waits_timeout", ["status", "timeout_at"], unique=False)
        batch_op.create_index("uq_waits_step", ["step_row_id"], unique=True)

    op.create_table(
        "notifications",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("run_id", sa.Uuid(), nullable=True),
        sa.Column("task_id", sa.Uuid(), nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("recipient", sa.String(length=320), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_notifications_run_id_runs"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["tasks.id"],
            name=op.f("fk_notifications_task_id_tasks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
    )
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.create_index("ix_notifications_run", ["run_id"], unique=False)

    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("store", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("template_hash", sa.String(length=64), nullable=True))
        batch_op.alter_column("spec", existing_type=JSON, nullable=True)
        batch_op.add_column(sa.Column("last_event", JSON, nullable=True))

    with op.batch_alter_table("steps", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("branch", sa.String(length=36), server_default="", nullable=False)
        )
        batch_op.drop_index(batch_op.f("uq_steps_visit"))
        batch_op.create_index(
            "uq_steps_branch_visit", ["run_id", "branch", "step_id", "visit"], unique=True
        )


def downgrade() -> None:
    with op.batch_alter_table("steps", schema=None) as batch_op:
        batch_op.drop_index("uq_steps_branch_visit")
        batch_op.create_index(
            batch_op.f("uq_steps_visit"), ["run_id", "step_id", "visit"], unique=True
        )
        batch_op.drop_column("branch")

    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_column("last_event")
        batch_op.drop_column("store")
        batch_op.drop_column("template_hash")
        batch_op.alter_column("spec", existing_type=JSON, nullable=False)

    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_index("ix_notifications_run")

    op.drop_table("notifications")
    with op.batch_alter_table("waits", schema=None) as batch_op:
        batch_op.drop_index("uq_waits_step")
        batch_op.drop_index("ix_waits_timeout")
        batch_op.drop_index("ix_waits_match")

    op.drop_table("waits")
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_index("uq_tasks_step")
        batch_op.drop_index("ix_tasks_open")

    op.drop_table("tasks")
    with op.batch_alter_table("branches", schema=None) as batch_op:
        batch_op.drop_index("uq_branches_position")

    op.drop_table("branches")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index("uq_events_external")
        batch_op.drop_index("ix_events_match")

    op.drop_table("events")
    op.drop_table("template_specs")
