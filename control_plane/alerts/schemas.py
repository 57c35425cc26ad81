"""Wire schemas for alerts, rules, silences, maintenance windows and notification channels."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec

from control_plane.alerts.models import ChannelKind, Severity

Key = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$",
        description="lowercase letters, digits and inner hyphens, 1-63 characters",
    ),
]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Text = Annotated[str, msgspec.Meta(max_length=4000)]
Threshold = Annotated[
    float | str,
    msgspec.Meta(
        description="a number in the metric's range; for health_status 'degraded' or 'down'"
    ),
]


class Input(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Request bodies refuse fields they do not know."""


# --- rules ------------------------------------------------------------------------------


class AlertRuleCreate(Input):
    """A rule. With ``partner_id`` it is that partner's; a key the platform already uses
    overrides the platform rule for the partner's tenants, and fields left out are copied
    from it (so ``{"key": ..., "partner_id": ..., "enabled": false}`` switches it off)."""

    key: Key
    partner_id: UUID | None = None
    name: Name | None = None
    description: Text | None = None
    metric: str | None = None
    comparator: str | None = None
    threshold: Threshold | None = None
    for_seconds: int | None = None
    severity: Severity | None = None
    enabled: bool = True


class AlertRuleUpdate(Input):
    name: Name | None = None
    description: Text | None = None
    metric: str | None = None
    comparator: str | None = None
    threshold: Threshold | None = None
    for_seconds: int | None = None
    severity: Severity | None = None
    enabled: bool | None = None


class AlertRule(msgspec.Struct):
    id: UUID
    key: str
    partner_id: UUID | None
    name: str
    description: str
    metric: str
    comparator: str
    threshold: float
    for_seconds: int
    severity: str
    enabled: bool
    created_at: datetime
    updated_at: datetime


# --- alerts -----------------------------------------------------------------------------


class AlertNote(msgspec.Struct):
    id: UUID
    author: str
    body: str
    created_at: datetime


class Alert(msgspec.Struct):
    id: UUID
    partner_id: UUID
    tenant_id: UUID
    rule_id: UUID | None
    rule_key: str
    rule_name: str
    metric: str
    comparator: str
    threshold: float
    severity: str
    state: str
    value: float | None
    reason: str
    first_seen_at: datetime
    last_seen_at: datetime
    opened_at: datetime | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    resolved_at: datetime | None
    resolved_by: str | None
    resolution: str | None
    assignee: str | None
    silenced: bool


class AlertDetail(Alert):
    notes: list[AlertNote] = msgspec.field(default_factory=list)


class AlertAction(Input):
    """An optional remark, kept as a note on the alert."""

    note: Text | None = None


class AlertAssign(Input):
    #: A user's subject or e-mail; null unassigns.
    assignee: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None


class AlertNoteCreate(Input):
    body: Annotated[str, msgspec.Meta(min_length=1, max_length=4000)]


# --- silences and maintenance windows ----------------------------------------------------


class SilenceCreate(Input):
    """Matchers (all given must match): partner, tenant, rule key, severity. Without a
    partner or tenant it silences every partner, which only the platform may do."""

    ends_at: datetime
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=4000)]
    starts_at: datetime | None = None
    partner_id: UUID | None = None
    tenant_id: UUID | None = None
    rule_key: Key | None = None
    severity: Severity | None = None


class Silence(msgspec.Struct):
    id: UUID
    partner_id: UUID | None
    tenant_id: UUID | None
    rule_key: str | None
    severity: str | None
    starts_at: datetime
    ends_at: datetime
    reason: str
    created_by: str
    created_at: datetime


class MaintenanceWindowCreate(Input):
    """A partner's whole fleet (``partner_id``) or one tenant (``tenant_id``)."""

    starts_at: datetime
    ends_at: datetime
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=4000)]
    partner_id: UUID | None = None
    tenant_id: UUID | None = None


class MaintenanceWindow(msgspec.Struct):
    id: UUID
    partner_id: UUID
    tenant_id: UUID | None
    starts_at: datetime
    ends_at: datetime
    reason: str
    created_by: str
    created_at: datetime


# --- notification channels ---------------------------------------------------------------

Email = Annotated[str, msgspec.Meta(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=254)]
Url = Annotated[str, msgspec.Meta(pattern=r"^https?://\S+$", max_length=2000)]


class NotificationChannelCreate(Input):
    """A signed webhook (``url`` + ``secret``, a Standard Webhooks ``whsec_`` secret, never
    returned) or e-mail (``addresses``). Without ``partner_id``: a platform channel."""

    name: Name
    kind: ChannelKind
    partner_id: UUID | None = None
    url: Url | None = None
    secret: str | None = None
    addresses: list[Email] | None = None
    min_severity: Severity = Severity.INFO
    enabled: bool = True


class NotificationChannelUpdate(Input):
    name: Name | None = None
    url: Url | None = None
    #: Replaces the signing secret (write-only).
    secret: str | None = None
    addresses: list[Email] | None = None
    min_severity: Severity | None = None
    enabled: bool | None = None


class NotificationChannel(msgspec.Struct):
    id: UUID
    partner_id: UUID | None
    name: str
    kind: str
    url: str | None
    addresses: list[str]
    min_severity: str
    enabled: bool
    #: Whether a webhook signing secret is set (its value is never returned).
    has_secret: bool
    created_at: datetime
    updated_at: datetime
