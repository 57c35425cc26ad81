"""Wire schemas of the runtime API: bodies refuse unknown fields; responses are plain."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar
from uuid import UUID

import msgspec

T = TypeVar("T")

TemplateId = Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9-]{1,62}[a-z0-9]$")]
StoreName = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class Input(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A request body: a misspelt field is an error, not silently ignored."""


class RunCreate(Input):
    template_id: TemplateId
    input: dict[str, Any] = msgspec.field(default_factory=dict)
    #: The store the run is about: its code or id.
    store: StoreName | None = None


class DecisionCreate(Input):
    #: approved | rejected for an approval; submitted for a checklist.
    decision: Annotated[str, msgspec.Meta(min_length=1, max_length=16)]
    comment: Annotated[str, msgspec.Meta(max_length=4000)] | None = None
    #: Approval: the form's fields. Checklist: {item_id: {"ok": bool, "evidence": ...}}.
    answers: dict[str, Any] = msgspec.field(default_factory=dict)


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
