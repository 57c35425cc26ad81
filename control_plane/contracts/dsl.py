"""The workflow DSL: what a template file (``templates/<id>/<semver>.yaml``) may say.

Pure data (msgspec); validation beyond the shape lives in
:mod:`control_plane.contracts.validate`. String values named ``when``, ``over``, the
values of ``input``/``values``/``payload`` mappings and ``correlation`` are CEL
expressions; ``message`` is text with ``${expr}`` placeholders.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

import msgspec

TemplateId = Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9-]{1,62}[a-z0-9]$")]
StepId = Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_]{0,62}$")]
SemVer = Annotated[
    str,
    msgspec.Meta(pattern=r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?$"),
]
#: "30s", "15m", "4h", "2d", or combined: "1h30m".
Duration = Annotated[str, msgspec.Meta(pattern=r"^(\d+d)?(\d+h)?(\d+m)?(\d+s)?$", min_length=2)]
Expr = Annotated[str, msgspec.Meta(min_length=1)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Operation = Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_]{0,62}$")]
MetricName = Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_]{0,62}$")]


class Strict(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True, kw_only=True):
    """Every DSL object refuses keys it does not know: a typo is an error, not a no-op."""


class System(StrEnum):
    ERP = "erp"
    POS = "pos"
    WMS = "wms"
    CRM = "crm"
    ITSM = "itsm"
    HR = "hr"
    ECOMMERCE = "ecommerce"
    PAYMENTS = "payments"


class Connector(Strict, kw_only=True):
    """A logical system the template talks to; bound to an endpoint at deployment."""

    system: System
    operations: list[Operation]
    description: str | None = None


# --- triggers --------------------------------------------------------------------------


class ApiTrigger(Strict, tag="api", tag_field="kind", kw_only=True):
    """Started by ``POST /api/v1/runs``."""


class WebhookTrigger(Strict, tag="webhook", tag_field="kind", kw_only=True):
    """A signed webhook from a retailer system (``/hooks/{source}``) of one event type."""

    source: System
    event: Name


class EventTrigger(Strict, tag="event", tag_field="kind", kw_only=True):
    """An internal domain event emitted by another run."""

    event: Name


class ScheduleTrigger(Strict, tag="schedule", tag_field="kind", kw_only=True):
    cron: Name
    timezone: Name = "UTC"


Trigger = ApiTrigger | WebhookTrigger | EventTrigger | ScheduleTrigger


# --- shared step parts -----------------------------------------------------------------


class Retry(Strict, kw_only=True):
    attempts: Annotated[int, msgspec.Meta(ge=1, le=50)] = 3
    backoff: Literal["fixed", "exponential"] = "exponential"
    initial: Duration = "2s"
    max: Duration = "5m"
    #: Error classes that retry: timeout, connection, 5xx, 429, 409 (numbers may go unquoted).
    retry_on: list[Literal["timeout", "connection", "5xx", "429", "409", 429, 409]] = msgspec.field(
        default_factory=lambda: ["timeout", "connection", "5xx", "429"]
    )


class Assignee(Strict, kw_only=True):
    role: Literal["retailer_admin", "regional_manager", "store_manager"]
    #: Whose holder of the role: the run's store, its region, or the tenant.
    scope: Literal["store", "region", "tenant"] = "store"


class Loop(Strict, kw_only=True):
    """Marks a step a cycle may pass through, and bounds how often."""

    max_iterations: Annotated[int, msgspec.Meta(ge=1, le=1000)]


class StepBase(Strict, kw_only=True):
    id: StepId
    name: str | None = None
    retry: Retry | None = None
    timeout: Duration | None = None
    #: A step to continue with when this one fails for good; "fail" ends the run failed.
    on_error: str = "fail"
    loop: Loop | None = None


# --- step kinds ------------------------------------------------------------------------


class Compensation(Strict, kw_only=True):
    operation: Operation
    input: dict[str, Expr] = msgspec.field(default_factory=dict)


class CallStep(StepBase, tag="call", tag_field="kind", kw_only=True):
    connector: Name
    operation: Operation
    input: dict[str, Expr] = msgspec.field(default_factory=dict)
    #: The call that undoes this one, run by a ``compensate`` step.
    compensation: Compensation | None = None
    next: str | None = None


class FormField(Strict, kw_only=True):
    name: StepId
    type: Literal["boolean", "text", "number", "choice", "photo"]
    label: str | None = None
    required: bool = False
    options: list[str] | None = None
    min: float | None = None
    max: float | None = None


class Sla(Strict, kw_only=True):
    duration: Duration
    #: business: counted in the store's opening hours (holidays skipped); wall: clock time.
    calendar: Literal["business", "wall"] = "business"


class Escalation(Strict, kw_only=True):
    after: Duration
    to: Assignee
    notify: bool = True


class AutoDecision(Strict, kw_only=True):
    when: Expr
    decision: Literal["approved", "rejected"]


class ApprovalStep(StepBase, tag="approval", tag_field="kind", kw_only=True):
    assignee: Assignee
    title: Expr | None = None
    form: list[FormField] = msgspec.field(default_factory=list)
    sla: Sla | None = None
    escalation: list[Escalation] = msgspec.field(default_factory=list)
    auto_decision: AutoDecision | None = None
    #: Decision -> next step.
    outcomes: dict[Literal["approved", "rejected"], str]


class ChecklistItem(Strict, kw_only=True):
    id: StepId
    label: Name
    evidence: Literal["none", "photo", "text", "number"] = "none"
    required: bool = True
    min: float | None = None
    max: float | None = None


class ChecklistStep(StepBase, tag="checklist", tag_field="kind", kw_only=True):
    assignee: Assignee
    items: Annotated[list[ChecklistItem], msgspec.Meta(min_length=1)]
    sla: Sla | None = None
    escalation: list[Escalation] = msgspec.field(default_factory=list)
    #: Where a submission with failed items goes (exception routing); else ``next``.
    on_exception: str | None = None
    next: str | None = None


class Branch(Strict, kw_only=True):
    when: Expr
    next: str


class DecideStep(StepBase, tag="decide", tag_field="kind", kw_only=True):
    branches: Annotated[list[Branch], msgspec.Meta(min_length=1)]
    default: str


class SetStep(StepBase, tag="set", tag_field="kind", kw_only=True):
    values: Annotated[dict[StepId, Expr], msgspec.Meta(min_length=1)]
    next: str | None = None


class AwaitEvent(Strict, kw_only=True):
    type: Name
    correlation: Expr


class WaitStep(StepBase, tag="wait", tag_field="kind", kw_only=True):
    event: AwaitEvent | None = None
    timer: Duration | None = None
    on_timeout: str | None = None
    next: str | None = None


class NotifyStep(StepBase, tag="notify", tag_field="kind", kw_only=True):
    channel: Literal["email", "sms", "chat", "push", "webhook"]
    to: Assignee | None = None
    address: Expr | None = None
    message: Annotated[str, msgspec.Meta(min_length=1)]
    next: str | None = None


class EmitStep(StepBase, tag="emit", tag_field="kind", kw_only=True):
    event: Name
    payload: dict[str, Expr] = msgspec.field(default_factory=dict)
    next: str | None = None


class ClassifyStep(StepBase, tag="classify", tag_field="kind", kw_only=True):
    """Text -> a label and a confidence, from the tenant's triage model (trained in the
    runtime, nothing downloaded, on the platform's labelled incidents and the tenant's own
    labelled examples). At or above
    ``threshold`` the label routes the run on its own; below it a review task asks
    ``assignee`` to confirm or correct the model's suggestion. Either way the decision is
    audited. The output (``label``, ``confidence``, ``routed``: auto | review, ...) only
    routes work: it never approves, pays or changes a system of record."""

    #: The text to classify (a CEL expression).
    text: Expr
    #: What is predicted: the incident's category or its priority (high | medium | low).
    target: Literal["category", "priority"]
    #: The confidence from which the model's label is taken without a person.
    threshold: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
    #: Who reviews an unsure prediction, and how fast.
    assignee: Assignee
    title: Expr | None = None
    sla: Sla | None = None
    escalation: list[Escalation] = msgspec.field(default_factory=list)
    next: str | None = None


class RecommendStep(StepBase, tag="recommend", tag_field="kind", kw_only=True):
    """An action package for a person: the tenant's most similar resolved cases (across its
    stores), what resolved them and how often, and the context earlier steps gathered. It
    fills the tasks the run opens after it; it decides nothing.

    The run becomes a resolved case itself when it succeeds: ``outcome`` is evaluated then
    and stored with the text and label for later runs to find."""

    text: Expr
    #: Only cases with this label (e.g. the classified category); all cases when absent.
    label: Expr | None = None
    #: ERP/POS/service-desk facts from earlier steps, shown as they are.
    context: dict[StepId, Expr] = msgspec.field(default_factory=dict)
    #: What resolved this case, evaluated when the run succeeds (e.g. vendor, cost).
    outcome: dict[StepId, Expr] = msgspec.field(default_factory=dict)
    #: The resolution summary (one line, e.g. "vendor FAC-COLD replaced the compressor").
    resolution: Expr | None = None
    limit: Annotated[int, msgspec.Meta(ge=1, le=20)] = 5
    next: str | None = None


class Join(Strict, kw_only=True):
    policy: Literal["all", "any", "quorum", "collect_failures"] = "all"
    quorum: Annotated[int, msgspec.Meta(ge=1)] | None = None


class CompensateStep(StepBase, tag="compensate", tag_field="kind", kw_only=True):
    """Runs the compensations of completed call steps, newest first."""

    #: Limit to these call steps; all completed ones with a compensation when empty.
    steps: list[str] = msgspec.field(default_factory=list)
    next: str | None = None


class ParallelStep(StepBase, tag="parallel", tag_field="kind", kw_only=True):
    """Runs ``steps`` (a sub-flow starting at its first step) once per item of ``over``."""

    over: Expr
    alias: StepId = msgspec.field(default="item", name="as")
    steps: Annotated[list[Step], msgspec.Meta(min_length=1)]
    join: Join = msgspec.field(default_factory=Join)
    next: str | None = None


Step = (
    CallStep
    | ApprovalStep
    | ChecklistStep
    | DecideStep
    | SetStep
    | WaitStep
    | NotifyStep
    | EmitStep
    | ParallelStep
    | CompensateStep
    | ClassifyStep
    | RecommendStep
)


class Template(Strict, kw_only=True):
    id: TemplateId
    name: Name
    version: SemVer
    category: Literal[
        "inventory",
        "pricing",
        "compliance",
        "returns",
        "maintenance",
        "customer",
        "workforce",
        "procurement",
    ]
    summary: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
    #: "platform" or "partner:<slug>".
    owner: Annotated[str, msgspec.Meta(pattern=r"^(platform|partner:[a-z0-9][a-z0-9-]*)$")]
    description: str | None = None
    #: JSON Schema of the values a deployment supplies (an object schema).
    parameters: dict[str, Any] = msgspec.field(
        default_factory=lambda: {"type": "object", "properties": {}}
    )
    connectors: dict[Operation, Connector] = msgspec.field(default_factory=dict)
    triggers: Annotated[list[Trigger], msgspec.Meta(min_length=1)]
    #: The first step; defaults to the first in ``steps``.
    start: str | None = None
    steps: Annotated[list[Step], msgspec.Meta(min_length=1)]
    #: Business figures of a run: name -> CEL expression, evaluated once when the run
    #: finishes (succeeded or failed) over what its steps saw, and sent home in the
    #: ``run.finished`` event's ``data.metrics``. A figure whose expression fails (a step
    #: that never ran) is left out. Names the SLA reports read: see :data:`REPORTED_METRICS`.
    metrics: dict[MetricName, Expr] = msgspec.field(default_factory=dict)


#: Metric names the control plane's SLA and business reports read, and what they mean.
REPORTED_METRICS = {
    "stores_targeted": "stores a price change or promotion was meant to reach (number)",
    "stores_synced_before_launch": "of those, stores in sync before launch (number)",
    "stock_adjusted": "the run adjusted stock in the system of record (boolean); the run's"
    " duration is the stock-adjustment cycle time",
    "adjusted_value": "absolute value of the stock adjustment (number)",
    "incident_resolved": "a store incident was resolved (boolean)",
    "resolved_within_sla": "it was resolved within its resolution SLA (boolean)",
}


#: Targets a step may name instead of a step id.
END, FAIL = "end", "fail"


def parse(data: Any) -> Template:
    """Convert plain data (from YAML) into a Template; raises msgspec.ValidationError."""
    return msgspec.convert(data, Template)


def json_schema() -> dict[str, Any]:
    """The DSL as JSON Schema (served by the catalog API, used by editors)."""
    schema: dict[str, Any] = msgspec.json.schema(Template)
    return schema
