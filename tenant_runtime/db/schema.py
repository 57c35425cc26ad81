"""Tables of one tenant runtime's database. The engine's hot path uses Core, not the ORM."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Float,
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

template_specs = Table(
    "template_specs",
    metadata,
    #: The template's content hash: a version's text can never change under a run.
    Column("hash", String(64), primary_key=True),
    Column("template_id", String(64), nullable=False),
    Column("version", String(64), nullable=False),
    Column("spec", Json, nullable=False),
    Column("created_at", Time, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("template_id", String(64), nullable=False),
    #: The version a run started on; it finishes on it whatever is deployed meanwhile.
    Column("template_version", String(64), nullable=False),
    #: Superseded by ``template_hash`` (r0002): the spec is stored once per version.
    Column("spec", Json),
    #: The content hash of the template version the run executes (``template_specs``).
    Column("template_hash", String(64)),
    Column("params", Json, nullable=False),
    Column("input", Json, nullable=False),
    Column("vars", Json, nullable=False),
    #: pending | running | succeeded | failed | cancelled
    Column("status", String(16), nullable=False),
    Column("store_id", Uuid),
    #: The store a run is about (its id or code, as the trigger named it): task scope, SLA
    #: calendar, ``run.store`` in expressions.
    Column("store", String(64)),
    #: The payload of the event the run last waited for (``event`` in expressions).
    Column("last_event", Json),
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
    #: '' for the main flow; a branch id for the sub-flow of a parallel step.
    Column("branch", String(36), nullable=False, server_default=""),
    #: Visits of the same step in one run (loops): 1, 2, ...
    Column("visit", Integer, nullable=False),
    #: ready | running | waiting (a task or an event) | succeeded | cancelled | dead
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
Index(
    "uq_steps_branch_visit",
    steps.c.run_id,
    steps.c.branch,
    steps.c.step_id,
    steps.c.visit,
    unique=True,
)

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

branches = Table(
    "branches",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("run_id", Uuid, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    #: The parallel step's row: it completes when its join policy is satisfied.
    Column("parent_id", Uuid, ForeignKey("steps.id", ondelete="CASCADE"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("item", Json, nullable=False),
    #: running | succeeded | failed
    Column("status", String(16), nullable=False),
    Column("error", Text),
    Column("created_at", Time, nullable=False),
    Column("finished_at", Time),
)
Index("uq_branches_position", branches.c.parent_id, branches.c.position, unique=True)

tasks = Table(
    "tasks",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("run_id", Uuid, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("step_row_id", Uuid, ForeignKey("steps.id", ondelete="CASCADE"), nullable=False),
    Column("template_id", String(64), nullable=False),
    #: approval | checklist
    Column("kind", String(16), nullable=False),
    Column("title", Text, nullable=False),
    #: The form fields or checklist items the assignee fills in.
    Column("form", Json, nullable=False),
    #: Context for the decider: what the run knew when the task opened.
    Column("context", Json, nullable=False),
    Column("assignee_role", String(32), nullable=False),
    #: store | region | tenant: whose holder of the role.
    Column("assignee_scope", String(16), nullable=False),
    Column("store", String(64)),
    Column("region", String(64)),
    #: open | done | cancelled
    Column("status", String(16), nullable=False),
    #: approved | rejected (approval); completed | exception (checklist)
    Column("decision", String(16)),
    Column("decided_by", String(255)),
    #: auto | human
    Column("decided_via", String(8)),
    Column("comment", Text),
    Column("answers", Json),
    Column("due_at", Time),
    Column("breached_at", Time),
    #: How many escalation rungs have fired; the next fires at ``escalate_at``.
    Column("escalation_level", Integer, nullable=False, server_default="0"),
    Column("escalate_at", Time),
    Column("created_at", Time, nullable=False),
    Column("decided_at", Time),
)
Index("ix_tasks_open", tasks.c.status, tasks.c.assignee_role)
Index("uq_tasks_step", tasks.c.step_row_id, unique=True)

waits = Table(
    "waits",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("run_id", Uuid, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("step_row_id", Uuid, ForeignKey("steps.id", ondelete="CASCADE"), nullable=False),
    #: NULL for a plain timer.
    Column("event_type", String(200)),
    Column("correlation", String(255)),
    Column("timeout_at", Time),
    #: waiting | fired | timed_out | cancelled
    Column("status", String(16), nullable=False),
    Column("event_id", Uuid),
    Column("created_at", Time, nullable=False),
    Column("finished_at", Time),
)
Index("ix_waits_match", waits.c.event_type, waits.c.correlation, waits.c.status)
Index("ix_waits_timeout", waits.c.status, waits.c.timeout_at)
Index("uq_waits_step", waits.c.step_row_id, unique=True)

events = Table(
    "events",
    metadata,
    Column("id", Uuid, primary_key=True),
    #: internal | erp | pos | ...: where it came from.
    Column("source", String(32), nullable=False),
    #: The sender's id (the webhook-id, or run:step:visit for internal events): a
    #: duplicate delivery is recognised and ignored.
    Column("external_id", String(255), nullable=False),
    Column("type", String(200), nullable=False),
    Column("correlation", String(255)),
    Column("payload", Json, nullable=False),
    Column("received_at", Time, nullable=False),
)
Index("uq_events_external", events.c.source, events.c.external_id, unique=True)
Index("ix_events_match", events.c.type, events.c.correlation)

notifications = Table(
    "notifications",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("run_id", Uuid, ForeignKey("runs.id", ondelete="CASCADE")),
    Column("task_id", Uuid, ForeignKey("tasks.id", ondelete="CASCADE")),
    #: email | sms | chat | push | webhook
    Column("channel", String(16), nullable=False),
    #: A role@scope (store_manager@store:S001) or an address.
    Column("recipient", String(320), nullable=False),
    #: step | task_assigned | escalation | sla_breach
    Column("reason", String(32), nullable=False),
    Column("message", Text, nullable=False),
    Column("created_at", Time, nullable=False),
    #: Delivery (email of a task, an escalation, an SLA breach): when to try next; NULL
    #: once sent, given up, or for a row nothing delivers.
    Column("next_attempt_at", Time),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("sent_at", Time),
    #: Why the last attempt failed (or why delivery was given up).
    Column("error", Text),
)
Index("ix_notifications_run", notifications.c.run_id)
Index("ix_notifications_due", notifications.c.next_attempt_at)

# --- incident triage (r0004) -------------------------------------------------------------

ai_decisions = Table(
    "ai_decisions",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("run_id", Uuid, nullable=False),
    #: One decision per step visit: a redelivered step finds its decision already made.
    Column("step_row_id", Uuid, nullable=False, unique=True),
    Column("step_id", String(64), nullable=False),
    Column("template_id", String(64), nullable=False),
    Column("template_version", String(64), nullable=False),
    Column("store", String(64)),
    #: classify | recommend
    Column("kind", String(16), nullable=False),
    #: category | priority (classify)
    Column("target", String(16)),
    #: SHA-256 of the text the model was given, and the text itself.
    Column("input_hash", String(64), nullable=False),
    Column("text", Text, nullable=False),
    Column("model", String(64), nullable=False),
    #: The trained model: its version and a digest of the examples it learnt from.
    Column("model_version", String(64), nullable=False),
    #: The model's label and confidence (classify); the label filter (recommend).
    Column("label", String(64)),
    Column("confidence", Float),
    Column("threshold", Float),
    #: auto (at or above the threshold) | review (a person decides) | advice (recommend)
    Column("routed", String(8), nullable=False),
    Column("task_id", Uuid),
    #: The person's decision on a review: confirmed | corrected, the label they chose.
    Column("decision", String(16)),
    Column("final_label", String(64)),
    Column("decided_by", String(255)),
    Column("decided_at", Time),
    #: What else the model produced (a recommendation's cases and their similarity).
    Column("detail", Json, nullable=False),
    Column("created_at", Time, nullable=False),
)
Index("ix_ai_decisions_created", ai_decisions.c.created_at)
Index("ix_ai_decisions_pattern", ai_decisions.c.kind, ai_decisions.c.target, ai_decisions.c.store)

triage_examples = Table(
    "triage_examples",
    metadata,
    Column("id", Uuid, primary_key=True),
    #: category | priority
    Column("target", String(16), nullable=False),
    Column("input_hash", String(64), nullable=False),
    Column("text", Text, nullable=False),
    Column("label", String(64), nullable=False),
    #: review (a person's decision on a review task) | import (uploaded)
    Column("source", String(16), nullable=False),
    Column("decision_id", Uuid),
    Column("created_by", String(255), nullable=False),
    Column("created_at", Time, nullable=False),
)
#: The latest label for a text wins: one example per target and text.
Index(
    "uq_triage_examples_text", triage_examples.c.target, triage_examples.c.input_hash, unique=True
)

triage_cases = Table(
    "triage_cases",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("run_id", Uuid, nullable=False, unique=True),
    Column("template_id", String(64), nullable=False),
    Column("store", String(64)),
    Column("text", Text, nullable=False),
    Column("label", String(64)),
    #: open (its run goes on) | resolved (the run succeeded) | unresolved
    Column("status", String(16), nullable=False),
    #: The step's ``outcome`` values and ``resolution`` line, as the run ended.
    Column("outcome", Json, nullable=False),
    Column("resolution", Text),
    Column("created_at", Time, nullable=False),
    Column("resolved_at", Time),
)
Index("ix_triage_cases_resolved", triage_cases.c.status, triage_cases.c.label)

insights = Table(
    "insights",
    metadata,
    #: scope:subject:label:<first incident's run id>: one insight per pattern and window.
    Column("id", String(200), primary_key=True),
    #: store | region
    Column("scope", String(8), nullable=False),
    Column("subject", String(64), nullable=False),
    Column("label", String(64), nullable=False),
    Column("count", Integer, nullable=False),
    Column("threshold", Integer, nullable=False),
    Column("window_days", Integer, nullable=False),
    Column("first_at", Time, nullable=False),
    Column("last_at", Time, nullable=False),
    Column("evidence", Json, nullable=False),
    Column("notified", String(320)),
    Column("raised_at", Time, nullable=False),
    Column("updated_at", Time, nullable=False),
)
