"""Alert rules, alerts and their notes, silences, maintenance windows, notification
channels, and the notification outbox."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar
from uuid import UUID

from sqlalchemy import (
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from control_plane.contracts import uuid7
from control_plane.db import Base, Entity, JSONType, Scoped, utcnow

_TENANT_SCOPE: dict[str, str] = {"partner": "partner_id", "tenant": "tenant_id"}
_PARTNER_SCOPE: dict[str, str] = {"partner": "partner_id"}


class Severity(StrEnum):
    CRITICAL = "critical"
    WARNING = "warning"
    INFO = "info"


#: Higher is more urgent (a channel's ``min_severity`` compares with this).
SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


class AlertState(StrEnum):
    PENDING = "pending"
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


#: States an episode is still running in (at most one per tenant and rule key).
LIVE_STATES = (AlertState.PENDING, AlertState.OPEN, AlertState.ACKNOWLEDGED)
#: States that count as an open alert for people (the NOC's count, notifications).
FIRING_STATES = (AlertState.OPEN, AlertState.ACKNOWLEDGED)


class ChannelKind(StrEnum):
    WEBHOOK = "webhook"
    EMAIL = "email"


class DeliveryState(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    DEAD = "dead"


class AlertRule(Entity, Scoped, Base):
    """A platform default (``partner_id`` NULL) or a partner's rule; a partner rule with a
    platform rule's key replaces it for that partner's tenants (disabled: switched off)."""

    __tablename__ = "alert_rules"
    __table_args__ = (
        UniqueConstraint("partner_id", "key"),
        # NULLs are distinct in the constraint above: platform keys get their own index.
        Index(
            "uq_alert_rules_platform_key",
            "key",
            unique=True,
            postgresql_where=text("partner_id IS NULL"),
            sqlite_where=text("partner_id IS NULL"),
        ),
    )
    __scope_columns__: ClassVar[dict[str, str]] = _PARTNER_SCOPE
    __public_when_null__: ClassVar[str | None] = "partner_id"

    partner_id: Mapped[UUID | None] = mapped_column(ForeignKey("partners.id"), index=True)
    key: Mapped[str] = mapped_column(String(63))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    metric: Mapped[str] = mapped_column(String(32))
    comparator: Mapped[str] = mapped_column(String(2))
    threshold: Mapped[float] = mapped_column(Float)
    for_seconds: Mapped[int] = mapped_column(Integer, default=0)
    severity: Mapped[str] = mapped_column(String(16))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)


class Alert(Entity, Scoped, Base):
    """One episode of one rule at one tenant: pending -> open -> acknowledged -> resolved."""

    __tablename__ = "alerts"
    __table_args__ = (
        Index(
            "uq_alerts_live_episode",
            "tenant_id",
            "rule_key",
            unique=True,
            postgresql_where=text("state <> 'resolved'"),
            sqlite_where=text("state <> 'resolved'"),
        ),
        Index("ix_alerts_state_severity", "state", "severity"),
    )
    __scope_columns__: ClassVar[dict[str, str]] = _TENANT_SCOPE

    partner_id: Mapped[UUID] = mapped_column(ForeignKey("partners.id"), index=True)
    tenant_id: Mapped[UUID] = mapped_column(ForeignKey("tenants.id"), index=True)
    rule_id: Mapped[UUID | None] = mapped_column(ForeignKey("alert_rules.id", ondelete="SET NULL"))
    rule_key: Mapped[str] = mapped_column(String(63))
    rule_name: Mapped[str] = mapped_column(String(200))
    metric: Mapped[str] = mapped_column(String(32))
    comparator: Mapped[str] = mapped_column(String(2))
    threshold: Mapped[float] = mapped_column(Float)
    severity: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), default=AlertState.PENDING)
    value: Mapped[float | None] = mapped_column(Float)
    reason: Mapped[str] = mapped_column(Text, default="")
    first_seen_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    opened_at: Mapped[datetime | None]
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(String(200))
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(String(200))
    #: "auto" (the condition cleared), "manual", "rule_disabled", "tenant_inactive".
    resolution: Mapped[str | None] = mapped_column(String(32))
    assignee: Mapped[str | None] = mapped_column(String(200))
    silenced: Mapped[bool] = mapped_column(Boolean, default=False)
    silence_id: Mapped[UUID | None] = mapped_column(ForeignKey("silences.id", ondelete="SET NULL"))
    #: When the "opened" notification was queued; a resolve is announced only after one.
    notified_at: Mapped[datetime | None]


class AlertNote(Scoped, Base):
    """An append-only remark on an alert."""

    __tablename__ = "alert_notes"
    __scope_columns__: ClassVar[dict[str, str]] = _TENANT_SCOPE

    id: Mapped[UUID] = mapped_column(primary_key=True, default=uuid7)
    alert_id: Mapped[UUID] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), index=True)
    partner_id: Mapped[UUID] = mapped_column(ForeignKey("partners.id"))
    tenant_id: Mapped[UUID] = mapped_column(ForeignKey("tenants.id"))
    author: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Silence(Entity, Scoped, Base):
    """Mutes notifications of the alerts it matches (every matcher given must match)."""

    __tablename__ = "silences"
    __scope_columns__: ClassVar[dict[str, str]] = _TENANT_SCOPE

    #: NULL: every partner (a platform silence).
    partner_id: Mapped[UUID | None] = mapped_column(ForeignKey("partners.id"), index=True)
    tenant_id: Mapped[UUID | None] = mapped_column(ForeignKey("tenants.id"))
    rule_key: Mapped[str | None] = mapped_column(String(63))
    severity: Mapped[str | None] = mapped_column(String(16))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    reason: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(200))


class MaintenanceWindow(Entity, Scoped, Base):
    """No alert opens for the partner's (or one tenant's) runtimes while it lasts."""

    __tablename__ = "maintenance_windows"
    __scope_columns__: ClassVar[dict[str, str]] = _TENANT_SCOPE

    partner_id: Mapped[UUID] = mapped_column(ForeignKey("partners.id"), index=True)
    #: NULL: all of the partner's tenants.
    tenant_id: Mapped[UUID | None] = mapped_column(ForeignKey("tenants.id"))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    reason: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(200))


class NotificationChannel(Entity, Scoped, Base):
    """Where a partner's (or, with ``partner_id`` NULL, the platform's) alerts are sent."""

    __tablename__ = "notification_channels"
    __scope_columns__: ClassVar[dict[str, str]] = _PARTNER_SCOPE

    partner_id: Mapped[UUID | None] = mapped_column(ForeignKey("partners.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    #: webhook: the URL; email: unused.
    url: Mapped[str | None] = mapped_column(Text)
    #: webhook: the ``whsec_`` signing secret. Write-only: no schema carries it out.
    secret: Mapped[str | None] = mapped_column(Text)
    #: email: the recipients.
    addresses: Mapped[list[str]] = mapped_column(JSONType, default=list)
    min_severity: Mapped[str] = mapped_column(String(16), default=Severity.INFO)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)


class Notification(Scoped, Base):
    """The outbox: one message for one channel about one alert transition, written in the
    transaction that made the transition and sent by the ``alerts.deliver`` job."""

    __tablename__ = "alert_notifications"
    __table_args__ = (UniqueConstraint("alert_id", "channel_id", "event"),)
    __scope_columns__: ClassVar[dict[str, str]] = _TENANT_SCOPE

    id: Mapped[UUID] = mapped_column(primary_key=True, default=uuid7)
    alert_id: Mapped[UUID] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"))
    channel_id: Mapped[UUID] = mapped_column(
        ForeignKey("notification_channels.id", ondelete="CASCADE"), index=True
    )
    partner_id: Mapped[UUID] = mapped_column(ForeignKey("partners.id"))
    tenant_id: Mapped[UUID] = mapped_column(ForeignKey("tenants.id"))
    #: "alert.opened" or "alert.resolved".
    event: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)
    state: Mapped[str] = mapped_column(String(16), default=DeliveryState.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


Index("ix_alert_notifications_due", Notification.state, Notification.next_attempt_at)
