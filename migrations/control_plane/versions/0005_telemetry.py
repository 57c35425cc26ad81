"""telemetry: raw events partitioned by day, rollups, heartbeats, retention horizon

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
COUNTS = sa.JSON().with_variant(postgresql.ARRAY(sa.BigInteger()), "postgresql")

#: The rule of every table below a tenant (0001): the partner's scope or the tenant's. The
#: scope functions sit in subqueries so that PostgreSQL evaluates them once per statement,
#: not once per row: a batch of events is checked against one parsed list of ids.
SCOPE = (
    "(SELECT storeops_platform())"
    " OR partner_id = ANY((SELECT storeops_ids('storeops.partner_ids'))::uuid[])"
    " OR tenant_id = ANY((SELECT storeops_ids('storeops.tenant_ids'))::uuid[])"
)
RLS_TABLES = ("telemetry_events", "telemetry_rollups", "telemetry_heartbeats")

#: Rollup counters, all summed on upsert (run_ms_max takes the greatest).
COUNTERS = (
    "events",
    "runs_started",
    "runs_finished",
    "runs_succeeded",
    "runs_failed",
    "runs_cancelled",
    "run_ms_sum",
    "run_ms_count",
    "run_ms_max",
    "steps_finished",
    "tasks_opened",
    "tasks_decided",
    "tasks_escalated",
    "sla_breaches",
)

# The raw events: one partition per UTC day, made on demand by the application role
# through this SECURITY DEFINER function (only the owner may attach partitions). Rows that
# reached the default partition for that day first are moved into the new partition, so an
# (id, at) key always lives in exactly one place. Days before the retention horizon get no
# partition (their events are refused anyway). Direct access to a partition is revoked:
# the application reads and writes through the parent, where the RLS policy applies.
PARTITION_FUNCTION = """
CREATE OR REPLACE FUNCTION storeops_telemetry_partition(day date) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    part text := 'telemetry_events_p' || to_char(day, 'YYYYMMDD');
    lo timestamptz := day::timestamp AT TIME ZONE 'UTC';
    hi timestamptz := (day + 1)::timestamp AT TIME ZONE 'UTC';
BEGIN
    -- Days wholly before the retention horizon get none: their events are refused.
    IF to_regclass(part) IS NOT NULL
        OR (SELECT horizon FROM telemetry_retention WHERE id = 1) >= hi THEN
        RETURN false;
    END IF;
    -- Self-exclusive, so creators queue here; inserts are not blocked. Taking it also
    -- refreshes the catalog this session sees, for the check below.
    LOCK TABLE telemetry_events IN SHARE UPDATE EXCLUSIVE MODE;
    IF to_regclass(part) IS NOT NULL THEN
        RETURN false;
    END IF;
    EXECUTE format('CREATE TABLE %I (LIKE telemetry_events INCLUDING DEFAULTS)', part);
    EXECUTE format(
        'WITH moved AS (DELETE FROM telemetry_events_default WHERE at >= %L AND at < %L '
        'RETURNING *) INSERT INTO %I SELECT * FROM moved', lo, hi, part);
    -- The bound as a constraint lets ATTACH skip scanning the new table.
    EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I CHECK (at >= %L AND at < %L)',
        part, part || '_bounds', lo, hi);
    EXECUTE format('ALTER TABLE telemetry_events ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
        part, lo, hi);
    EXECUTE format('ALTER TABLE %I DROP CONSTRAINT %I', part, part || '_bounds');
    EXECUTE format('REVOKE ALL ON %I FROM PUBLIC, %I', part, '{role}');
    RETURN true;
END
$$
"""

# Upsert helpers: element-wise sum of two histograms, key-wise sum of two counter maps.
ADD_COUNTS = """
CREATE OR REPLACE FUNCTION storeops_add_counts(a bigint[], b bigint[]) RETURNS bigint[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(array_agg(coalesce(x, 0) + coalesce(y, 0) ORDER BY n), '{}')
    FROM unnest(a, b) WITH ORDINALITY AS t(x, y, n)
$$
"""
ADD_COUNTERS = """
CREATE OR REPLACE FUNCTION storeops_add_counters(a jsonb, b jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(jsonb_object_agg(key, total), '{}'::jsonb)
    FROM (
        SELECT key, sum(value::numeric) AS total
        FROM (SELECT * FROM jsonb_each_text(a) UNION ALL SELECT * FROM jsonb_each_text(b)) AS s
        GROUP BY key
    ) AS t
$$
"""


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        _events_postgres()
    else:
        _events_sqlite()
    op.create_table(
        "telemetry_rollups",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("granularity", sa.String(length=3), nullable=False),
        sa.Column("bucket", sa.DateTime(timezone=True), nullable=False),
        sa.Column("template_id", sa.String(length=200), nullable=False),
        sa.Column("partner_id", sa.Uuid(), nullable=False),
        *[
            sa.Column(name, sa.BigInteger(), nullable=False, server_default="0")
            for name in COUNTERS
        ],
        sa.Column("run_ms_hist", COUNTS, nullable=False),
        sa.Column("steps_by_status", JSON, nullable=False),
        sa.Column("usage", JSON, nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_telemetry_rollups_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint(
            "tenant_id", "granularity", "bucket", "template_id", name=op.f("pk_telemetry_rollups")
        ),
    )
    op.create_table(
        "telemetry_heartbeats",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("partner_id", sa.Uuid(), nullable=False),
        sa.Column("runtime", sa.String(length=200), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data", JSON, nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_telemetry_heartbeats_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_telemetry_heartbeats")),
    )
    retention = op.create_table(
        "telemetry_retention",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("horizon", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_telemetry_retention")),
    )
    op.bulk_insert(retention, [{"id": 1, "horizon": None, "updated_at": None}])
    if postgres:
        _postgres_security()


def _events_columns() -> str:
    return """
        id uuid NOT NULL,
        at timestamptz NOT NULL,
        tenant_id uuid NOT NULL,
        partner_id uuid NOT NULL,
        kind varchar(32) NOT NULL,
        template_id varchar(200),
        template_version varchar(200),
        run_id uuid,
        store varchar(200),
        status varchar(200),
        duration_ms bigint,
        data jsonb NOT NULL DEFAULT '{}'::jsonb
    """


def _events_postgres() -> None:
    # The key includes the partition key, as PostgreSQL requires: an event's ``at`` is set
    # once, when the runtime writes it to its outbox, and every retry resends that row,
    # so (id, at) names the event as exactly as id alone.
    op.execute(
        f"""
        CREATE TABLE telemetry_events ({_events_columns()},
            CONSTRAINT pk_telemetry_events PRIMARY KEY (id, at)
        ) PARTITION BY RANGE (at)
        """
    )
    op.execute("CREATE TABLE telemetry_events_default PARTITION OF telemetry_events DEFAULT")


def _events_sqlite() -> None:
    op.create_table(
        "telemetry_events",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("partner_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("template_id", sa.String(length=200), nullable=True),
        sa.Column("template_version", sa.String(length=200), nullable=True),
        sa.Column("run_id", sa.Uuid(), nullable=True),
        sa.Column("store", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=200), nullable=True),
        sa.Column("duration_ms", sa.BigInteger(), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_telemetry_events")),
    )
    op.create_index(op.f("ix_telemetry_events_at"), "telemetry_events", ["at"])


def _postgres_security() -> None:
    role = op.get_context().config.attributes["settings"].db_app_role
    op.execute(PARTITION_FUNCTION.replace("{role}", role.replace("'", "''")))
    op.execute(ADD_COUNTS)
    op.execute(ADD_COUNTERS)
    op.execute("REVOKE ALL ON FUNCTION storeops_telemetry_partition(date) FROM PUBLIC")
    op.execute(f'GRANT EXECUTE ON FUNCTION storeops_telemetry_partition(date) TO "{role}"')
    # Raw events are append-only for the application; partitions only through the parent.
    op.execute(f'REVOKE UPDATE, DELETE, TRUNCATE ON telemetry_events FROM "{role}"')
    op.execute(f'REVOKE ALL ON telemetry_events_default FROM PUBLIC, "{role}"')
    # The horizon is moved by the retention job, which runs as the owner.
    op.execute(f'REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON telemetry_retention FROM "{role}"')
    for table in RLS_TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY scope ON {table} USING ({SCOPE}) WITH CHECK ({SCOPE})")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in RLS_TABLES:
            op.execute(f"DROP POLICY IF EXISTS scope ON {table}")
    op.drop_table("telemetry_retention")
    op.drop_table("telemetry_heartbeats")
    op.drop_table("telemetry_rollups")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TABLE telemetry_events")  # and every partition with it
        op.execute("DROP FUNCTION IF EXISTS storeops_telemetry_partition(date)")
        op.execute("DROP FUNCTION IF EXISTS storeops_add_counters(jsonb, jsonb)")
        op.execute("DROP FUNCTION IF EXISTS storeops_add_counts(bigint[], bigint[])")
    else:
        op.drop_index(op.f("ix_telemetry_events_at"), table_name="telemetry_events")
        op.drop_table("telemetry_events")
