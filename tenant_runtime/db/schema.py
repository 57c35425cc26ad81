"""Tables of one tenant runtime's database. The engine's hot path uses Core, not the ORM."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    Uuid,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)
Json = JSON().with_variant(JSONB(), "postgresql")
Time = DateTime(timezone=True)

runs = Table(
    "runs",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("template_id", String(64), nullable=False),
    #: The version a run started on; it finishes on it whatever is deployed meanwhile.
    Column("template_version", String(64), nullable=False),
    Column("spec", Json, nullable=False),
    Column("params", Json, nullable=False),
    Column("input", Json, nullable=False),
    Column("vars", Json, nullable=False),
    #: pending | running | succeeded | failed | cancelled
    Column("status", String(16), nullable=False),
    Column("store_id", Uuid),
    Column("idempotency_key", String(255), unique=True),
    Column("error", Text),
    Column("created_at", Time, nullable=False),
    Column("updated_at", Time, nullable=False),
    Column("finished_at", Time),
)

steps = Table(
    "steps",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("run_id", Uuid, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("step_id", String(64), nullable=False),
    #: Visits of the same step in one run (loops): 1, 2, ...
    Column("visit", Integer, nullable=False),
    #: ready | running | succeeded | failed | cancelled | dead
    Column("status", String(16), nullable=False),
    #: The fencing token: a worker completes a step only while its attempt is current.
    Column("attempt", Integer, nullable=False),
    Column("lease_owner", String(128)),
    Column("lease_expires_at", Time),
    #: When the step may run (now, or after a retry's backoff).
    Column("due_at", Time, nullable=False),
    #: When a doorbell was last rung for it; the sweeper rings again if nothing happened.
    Column("dispatched_at", Time),
    Column("output", Json),
    Column("error", Text),
    Column("created_at", Time, nullable=False),
    Column("finished_at", Time),
)
Index("ix_steps_due", steps.c.status, steps.c.due_at)
Index("uq_steps_visit", steps.c.run_id, steps.c.step_id, steps.c.visit, unique=True)

outbox = Table(
    "outbox",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    #: dispatch (a step's doorbell) | event | telemetry | webhook
    Column("topic", String(32), nullable=False),
    Column("payload", Json, nullable=False),
    Column("created_at", Time, nullable=False),
    Column("sent_at", Time),
)
Index("ix_outbox_unsent", outbox.c.sent_at, outbox.c.id)

dead_letters = Table(
    "dead_letters",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("run_id", Uuid, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("step_row_id", Uuid, ForeignKey("steps.id", ondelete="CASCADE"), nullable=False),
    Column("reason", Text, nullable=False),
    Column("created_at", Time, nullable=False),
    Column("replayed_at", Time),
)
