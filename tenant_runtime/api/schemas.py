"""Wire schemas of the runtime API: bodies refuse unknown fields; responses are plain."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar
from uuid import UUID

import msgspec

T = TypeVar("T")

TemplateId = Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9-]{1,62}[a-z0-9]$")]
StoreName = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
#: What a triage model predicts.
Target = Literal["category", "priority"]
TriageLabel = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[a-z][a-z0-9_]{1,62}$",
        description="a lower-case letter, then 1-62 lower-case letters, digits or "
        "underscores: refrigeration, building_plumbing",
    ),
]
ExampleText = Annotated[str, msgspec.Meta(min_length=3, max_length=2000)]
#: How many examples one import may carry.
MAX_EXAMPLES = 1000


class Input(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A request body: a misspelt field is an error, not silently ignored."""


class RunCreate(Input):
    template_id: TemplateId
    input: dict[str, Any] = msgspec.field(default_factory=dict)
    #: The store the run is about: its code or id.
    store: StoreName | None = None


class DecisionCreate(Input):
    #: approved | rejected for an approval; submitted for a checklist; reviewed (or
    #: confirmed | corrected, which must fit the label) for a review.
    decision: Annotated[str, msgspec.Meta(min_length=1, max_length=16)]
    comment: Annotated[str, msgspec.Meta(max_length=4000)] | None = None
    #: Approval: the form's fields. Checklist: {item_id: {"ok": bool, "evidence": ...}}.
    #: Review: {"label": one of the task's labels} (the suggestion when left out).
    answers: dict[str, Any] = msgspec.field(default_factory=dict)


class ExampleCreate(Input):
    text: ExampleText
    label: TriageLabel


class ExamplesImport(Input):
    """Labelled texts that teach the tenant's model; the latest label for a text wins."""

    target: Target
    examples: Annotated[list[ExampleCreate], msgspec.Meta(min_length=1, max_length=MAX_EXAMPLES)]


class Page(msgspec.Struct, Generic[T]):
    items: list[T]
    #: Pass as ``?cursor=`` for the next (older) page; null on the last page.
    next_cursor: str | None = None


class Run(msgspec.Struct, kw_only=True):
    id: UUID
    template_id: str
    template_version: str
    status: str
    store: str | None
    input: dict[str, Any]
    error: str | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None


class Step(msgspec.Struct, kw_only=True):
    id: UUID
    step_id: str
    name: str | None
    kind: str | None
    #: '' on the main flow; a branch id inside a parallel step.
    branch: str
    visit: int
    status: str
    attempt: int
    created_at: datetime
    due_at: datetime
    finished_at: datetime | None
    error: str | None
    output: dict[str, Any] | None


class Task(msgspec.Struct, kw_only=True):
    id: UUID
    run_id: UUID
    template_id: str
    kind: str
    title: str
    form: Any
    context: Any
    assignee_role: str
    assignee_scope: str
    store: str | None
    region: str | None
    status: str
    decision: str | None
    decided_by: str | None
    decided_via: str | None
    comment: str | None
    answers: Any
    due_at: datetime | None
    breached_at: datetime | None
    escalation_level: int
    created_at: datetime
    decided_at: datetime | None


class Wait(msgspec.Struct, kw_only=True):
    id: UUID
    step_row_id: UUID
    event_type: str | None
    correlation: str | None
    timeout_at: datetime | None
    status: str
    created_at: datetime
    finished_at: datetime | None


class Notification(msgspec.Struct, kw_only=True):
    id: UUID
    task_id: UUID | None
    channel: str
    recipient: str
    reason: str
    message: str
    created_at: datetime


class DeadLetter(msgspec.Struct, kw_only=True):
    id: UUID
    run_id: UUID
    step_row_id: UUID
    step_id: str
    template_id: str
    reason: str
    created_at: datetime
    replayed_at: datetime | None


class RunDetail(Run, kw_only=True):
    params: dict[str, Any]
    vars: dict[str, Any]
    #: The timeline: every step visit in the order it was created.
    steps: list[Step]
    tasks: list[Task]
    waits: list[Wait]
    notifications: list[Notification]
    dead_letters: list[DeadLetter]


class Cancelled(msgspec.Struct):
    run_id: UUID
    status: str


class Replayed(msgspec.Struct):
    dead_letter_id: UUID
    step_row_id: UUID


class HookAccepted(msgspec.Struct):
    id: str
    accepted: bool = True
    duplicate: bool = False


class AiDecision(msgspec.Struct, kw_only=True):
    """One audited AI decision: what the model was given, what it said, where it routed
    the run and, for a review, what the person decided."""

    id: UUID
    run_id: UUID
    step_row_id: UUID
    step_id: str
    template_id: str
    template_version: str
    store: str | None
    #: classify | recommend
    kind: str
    #: category | priority (classify)
    target: str | None
    #: SHA-256 of ``text``, the text the model was given.
    input_hash: str
    text: str
    model: str
    model_version: str
    #: The model's label (classify); the label the cases were filtered by (recommend).
    label: str | None
    confidence: float | None
    threshold: float | None
    #: auto | review | advice
    routed: str
    #: The review task (routed review).
    task_id: UUID | None
    #: confirmed | corrected once a person reviewed it; null before (and when not asked).
    decision: str | None
    final_label: str | None
    decided_by: str | None
    decided_at: datetime | None
    #: What else the model produced (a recommendation's cases and their similarity).
    detail: dict[str, Any]
    created_at: datetime


class TriageExample(msgspec.Struct, kw_only=True):
    id: UUID
    target: str
    input_hash: str
    text: str
    label: str
    #: review (a person's answer to a review task) | import
    source: str
    #: The AI decision a review example came from.
    decision_id: UUID | None
    created_by: str
    created_at: datetime


class ExamplesImported(msgspec.Struct, kw_only=True):
    target: str
    received: int
    #: Texts the tenant had no example of.
    created: int
    #: Texts it had with another label: the new one replaces it.
    relabelled: int
    #: Texts it had with this label already: left as they were.
    unchanged: int
    #: Texts given more than once in this import: the last label given counts.
    repeated: int
    #: Labels neither the platform's examples nor the tenant's had before: a typo?
    new_labels: list[str]


class Insight(msgspec.Struct, kw_only=True):
    """A recurring pattern: ``count`` incidents labelled ``label`` at one store (or across
    one region) within ``window_days``."""

    id: str
    #: store | region
    scope: str
    #: The store or region, as the runtime names it.
    subject: str
    label: str
    count: int
    threshold: int
    window_days: int
    first_at: datetime
    last_at: datetime
    #: The newest incidents: run_id, store, at, text, routed.
    evidence: list[dict[str, Any]]
    #: Who was told (an address), when anyone was.
    notified: str | None
    raised_at: datetime
    updated_at: datetime
