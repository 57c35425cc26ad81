"""alert rules, alerts, silences, maintenance windows, notification outbox

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from control_plane.contracts import uuid7

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TS = sa.DateTime(timezone=True)

#: The rule of every table below a tenant (0001, 0005): the partner's scope or the tenant's.
SCOPE = (
    "(SELECT storeops_platform())"
    " OR partner_id = ANY((SELECT storeops_ids('storeops.partner_ids'))::uuid[])"
    " OR tenant_id = ANY((SELECT storeops_ids('storeops.tenant_ids'))::uuid[])"
)
PARTNER_SCOPE = (
    "(SELECT storeops_platform())"
    " OR partner_id = ANY((SELECT storeops_ids('storeops.partner_ids'))::uuid[])"
)
#: One policy per table; platform channels and silences (partner_id NULL) are the
#: platform's alone. Platform rules are read by everyone (a second, SELECT-only policy)
#: and written, changed or deleted by the platform only.
POLICIES = {
    "alert_rules": PARTNER_SCOPE,
    "alerts": SCOPE,
    "alert_notes": SCOPE,
    "silences": SCOPE,
    "maintenance_windows": SCOPE,
    "notification_channels": PARTNER_SCOPE,
    "alert_notifications": SCOPE,
}

#: Platform defaults (the same list as control_plane.alerts.rules.DEFAULT_RULES, frozen
#: here as data so that later edits there never rewrite history).
DEFAULT_RULES = (
    ("runtime-down", "Runtime down", "health_status", "==", 2.0, 60, "critical",
     "The runtime stopped sending heartbeats."),
    ("runtime-degraded", "Runtime degraded", "health_status", "==", 1.0, 120, "warning",
     "Failure rate, backlog or SLA breaches over the health limits."),
    ("failure-rate-high", "Half the runs fail", "failure_rate", ">", 0.5, 300, "critical",
     "More than half of the runs finished in the last 15 minutes failed."),
    ("sla-breach-rate-high", "SLA breaches", "sla_breach_rate", ">", 0.2, 900, "warning",
     "More than a fifth of human tasks breach their SLA."),
    ("queue-deep", "Deep backlog", "queue_depth", ">", 1000.0, 300, "warning",
     "More than 1000 steps are waiting to start."),
    ("oldest-pending-old", "Stuck backlog", "oldest_pending_s", ">", 900.0, 300, "warning",
     "A step has waited more than 15 minutes to start."),
    ("dead-letters", "Dead letters", "dead_letters", ">", 0.0, 0, "warning",
     "Steps ran out of retries; replay or discard them."),
)  # fmt: skip


def _entity() -> list[sa.Column[object]]:
    return [
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
    ]


def _fk(
    table: str, column: str, target: str, ondelete: str | None = None
) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column],
        [f"{target}.id"],
        name=op.f(f"fk_{table}_{column}_{target}"),
        ondelete=ondelete,
    )


def upgrade() -> None:
    rules = op.create_table(
        "alert_rules",
        *_entity(),
        sa.Column("partner_id", sa.Uuid(), nullable=True),
        sa.Column("key", sa.String(length=63), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("metric", sa.String(length=32), nullable=False),
        sa.Column("comparator", sa.String(length=2), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("for_seconds", sa.Integer(), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        _fk("alert_rules", "partner_id", "partners"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_rules")),
        sa.UniqueConstraint("partner_id", "key", name=op.f("uq_alert_rules_partner_id")),
    )
    op.create_index(op.f("ix_alert_rules_partner_id"), "alert_rules", ["partner_id"])
    op.create_index(
        "uq_alert_rules_platform_key",
        "alert_rules",
        ["key"],
        unique=True,
        postgresql_where=sa.text("partner_id IS NULL"),
        sqlite_where=sa.text("partner_id IS NULL"),
    )
    op.create_table(
        "silences",
        *_entity(),
        sa.Column("partner_id", sa.Uuid(), nullable=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=True),
        sa.Column("rule_key", sa.String(length=63), nullable=True),
        sa.Column("severity", sa.String(length=16), nullable=True),
        sa.Column("starts_at", TS, nullable=False),
        sa.Column("ends_at", TS, nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        _fk("silences", "partner_id", "partners"),
        _fk("silences", "tenant_id", "tenants"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_silences")),
    )
    op.create_index(op.f("ix_silences_partner_id"), "silences", ["partner_id"])
    op.create_table(
        "alerts",
        *_entity(),
        sa.Column("partner_id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("rule_id", sa.Uuid(), nullable=True),
        sa.Column("rule_key", sa.String(length=63), nullable=False),
        sa.Column("rule_name", sa.String(length=200), nullable=False),
        sa.Column("metric", sa.String(length=32), nullable=False),
        sa.Column("comparator", sa.String(length=2), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("first_seen_at", TS, nullable=False),
        sa.Column("last_seen_at", TS, nullable=False),
        sa.Column("opened_at", TS, nullable=True),
        sa.Column("acknowledged_at", TS, nullable=True),
        sa.Column("acknowledged_by", sa.String(length=200), nullable=True),
        sa.Column("resolved_at", TS, nullable=True),
        sa.Column("resolved_by", sa.String(length=200), nullable=True),
        sa.Column("resolution", sa.String(length=32), nullable=True),
        sa.Column("assignee", sa.String(length=200), nullable=True),
        sa.Column("silenced", sa.Boolean(), nullable=False),
        sa.Column("silence_id", sa.Uuid(), nullable=True),
        sa.Column("notified_at", TS, nullable=True),
        _fk("alerts", "partner_id", "partners"),
        _fk("alerts", "tenant_id", "tenants"),
        _fk("alerts", "rule_id", "alert_rules", "SET NULL"),
        _fk("alerts", "silence_id", "silences", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
    )
    op.create_index(op.f("ix_alerts_partner_id"), "alerts", ["partner_id"])
    op.create_index(op.f("ix_alerts_tenant_id"), "alerts", ["tenant_id"])
    op.create_index("ix_alerts_state_severity", "alerts", ["state", "severity"])
    op.create_index(
        "uq_alerts_live_episode",
        "alerts",
        ["tenant_id", "rule_key"],
        unique=True,
        postgresql_where=sa.text("state <> 'resolved'"),
        sqlite_where=sa.text("state <> 'resolved'"),
    )
    op.create_table(
        "alert_notes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("alert_id", sa.Uuid(), nullable=False),
        sa.Column("partner_id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("author", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        _fk("alert_notes", "alert_id", "alerts", "CASCADE"),
        _fk("alert_notes", "partner_id", "partners"),
        _fk("alert_notes", "tenant_id", "tenants"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_notes")),
    )
    op.create_index(op.f("ix_alert_notes_alert_id"), "alert_notes", ["alert_id"])
    op.create_table(
        "maintenance_windows",
        *_entity(),
        sa.Column("partner_id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=True),
        sa.Column("starts_at", TS, nullable=False),
        sa.Column("ends_at", TS, nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        _fk("maintenance_windows", "partner_id", "partners"),
        _fk("maintenance_windows", "tenant_id", "tenants"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_maintenance_windows")),
    )
    op.create_index(
        op.f("ix_maintenance_windows_partner_id"), "maintenance_windows", ["partner_id"]
    )
    op.create_table(
        "notification_channels",
        *_entity(),
        sa.Column("partner_id", sa.Uuid(), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("secret", sa.Text(), nullable=True),
        sa.Column("addresses", JSON, nullable=False),
        sa.Column("min_severity", sa.String(length=16), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        _fk("notification_channels", "partner_id", "partners"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_channels")),
    )
    op.create_index(
        op.f("ix_notification_channels_partner_id"), "notification_channels", ["partner_id"]
    )
    op.create_table(
        "alert_notifications",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("alert_id", sa.Uuid(), nullable=False),
        sa.Column("channel_id", sa.Uuid(), nullable=False),
        sa.Column("partner_id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TS, nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("sent_at", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        _fk("alert_notifications", "alert_id", "alerts", "CASCADE"),
        _fk("alert_notifications", "channel_id", "notification_channels", "CASCADE"),
        _fk("alert_notifications", "partner_id", "partners"),
        _fk("alert_notifications", "tenant_id", "tenants"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_notifications")),
        sa.UniqueConstraint(
            "alert_id", "channel_id", "event", name=op.f("uq_alert_notifications_alert_id")
        ),
    )
    op.create_index(
        op.f("ix_alert_notifications_channel_id"), "alert_notifications", ["channel_id"]
    )
    op.create_index(
        "ix_alert_notifications_due", "alert_notifications", ["state", "next_attempt_at"]
    )
    now = datetime.now(UTC)
    op.bulk_insert(
        rules,
        [
            {
                "id": uuid7(),
                "created_at": now,
                "updated_at": now,
                "version": 1,
                "partner_id": None,
                "key": key,
                "name": name,
                "description": description,
                "metric": metric,
                "comparator": comparator,
                "threshold": threshold,
                "for_seconds": for_seconds,
                "severity": severity,
                "enabled": True,
            }
            for key, name, metric, comparator, threshold, for_seconds, severity, description in (
                DEFAULT_RULES
            )
        ],
    )
    if op.get_bind().dialect.name == "postgresql":
        _postgres_security()


def _postgres_security() -> None:
    role = op.get_context().config.attributes["settings"].db_app_role
    # Notes are an append-only record.
    op.execute(f'REVOKE UPDATE, DELETE, TRUNCATE ON alert_notes FROM "{role}"')
    for table, condition in POLICIES.items():
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY scope ON {table} USING ({condition}) WITH CHECK ({condition})")
    op.execute("CREATE POLICY platform_read ON alert_rules FOR SELECT USING (partner_id IS NULL)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP POLICY IF EXISTS platform_read ON alert_rules")
        for table in POLICIES:
            op.execute(f"DROP POLICY IF EXISTS scope ON {table}")
    op.drop_index("ix_alert_notifications_due", table_name="alert_notifications")
    op.drop_index(op.f("ix_alert_notifications_channel_id"), table_name="alert_notifications")
    op.drop_table("alert_notifications")
    op.drop_index(op.f("ix_notification_channels_partner_id"), table_name="notification_channels")
    op.drop_table("notification_channels")
    op.drop_index(op.f("ix_maintenance_windows_partner_id"), table_name="maintenance_windows")
    op.drop_table("maintenance_windows")
    op.drop_index(op.f("ix_alert_notes_alert_id"), table_name="alert_notes")
    op.drop_table("alert_notes")
    op.drop_index("uq_alerts_live_episode", table_name="alerts")
    op.drop_index("ix_alerts_state_severity", table_name="alerts")
    op.drop_index(op.f("ix_alerts_tenant_id"), table_name="alerts")
    op.drop_index(op.f("ix_alerts_partner_id"), table_name="alerts")
    op.drop_table("alerts")
    op.drop_index(op.f("ix_silences_partner_id"), table_name="silences")
    op.drop_table("silences")
    op.drop_index("uq_alert_rules_platform_key", table_name="alert_rules")
    op.drop_index(op.f("ix_alert_rules_partner_id"), table_name="alert_rules")
    op.drop_table("alert_rules")
