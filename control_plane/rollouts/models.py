"""Rollout rows: the rollout (its waves as data), each tenant's place in it, and the
append-only record of every transition."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar
from uuid import UUID

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from control_plane.contracts import uuid7
from control_plane.db import Base, Entity, JSONType, Scoped, utcnow


class RolloutStatus(StrEnum):
    PENDING = "pending"
    APPLYING = "applying"
    SOAKING = "soaking"
    PAUSED = "paused"
    COMPLETED = "completed"
    ROLLED_BACK = "rolled_back"
    ABORTED = "aborted"


#: States the periodic job moves forward; paused waits for a person.
MOVING = (RolloutStatus.PENDING, RolloutStatus.APPLYING, RolloutStatus.SOAKING)
OPEN = (*MOVING, RolloutStatus.PAUSED)
FINAL = (RolloutStatus.COMPLETED, RolloutStatus.ROLLED_BACK, RolloutStatus.ABORTED)


class TenantState(StrEnum):
    WAITING = "waiting"
    APPLYING = "applying"
    APPLIED = "applied"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"


class Rollout(Entity, Scoped, Base):
    """One version moving across a fleet. ``partner_id`` is the fleet's partner; a
    platform rollout spanning partners has none and only platform staff see it."""

    __tablename__ = "rollouts"
    __scope_columns__: ClassVar[dict[str, str]] = {"partner": "partner_id"}

    partner_id: Mapped[UUID | None] = mapped_column(ForeignKey("partners.id"), index=True)
    #: The template's DSL id (catalog slug), as deployments key it.
    template_id: Mapped[str] = mapped_column(String(64))
    target_version: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default=RolloutStatus.PENDING)
    selector: Mapped[dict[str, Any]] = mapped_column(JSONType)
    wave_spec: Mapped[list[Any]] = mapped_column(JSONType)
    soak_seconds: Mapped[int] = mapped_column(Integer)
    apply_timeout_seconds: Mapped[int] = mapped_column(Integer)
    gates: Mapped[dict[str, Any]] = mapped_column(JSONType)
    auto_rollback: Mapped[bool] = mapped_column(Boolean)
    #: -1 before the first wave starts.
    current_wave: Mapped[int] = mapped_column(Integer, default=-1)
    #: One entry per wave: size, state, times (ISO strings) and the last gate reading.
    waves: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    reason: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(200))
    finished_at: Mapped[datetime | None]


class RolloutTenant(Entity, Scoped, Base):
    """A tenant's place in a rollout: its wave, the version it came from, its state."""

    __tablename__ = "rollout_tenants"
    __scope_columns__: ClassVar[dict[str, str]] = {"partner": "partner_id", "tenant": "tenant_id"}

    rollout_id: Mapped[UUID] = mapped_column(ForeignKey("rollouts.id"), index=True)
    partner_id: Mapped[UUID] = mapped_column(ForeignKey("partners.id"), index=True)
    tenant_id: Mapped[UUID] = mapped_column(ForeignKey("tenants.id"), index=True)
    tenant_slug: Mapped[str] = mapped_column(String(63))
    #: Copied from the rollout so overlap checks need no join to a row the caller may
    #: not see (a platform rollout over a partner's tenants).
    template_id: Mapped[str] = mapped_column(String(64))
    #: True until the rollout ends: one open rollout per (tenant, template).
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    wave: Mapped[int] = mapped_column(Integer)
    position: Mapped[int] = mapped_column(Integer)
    deployment_id: Mapped[UUID] = mapped_column(ForeignKey("deployments.id"))
    from_version: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), default=TenantState.WAITING)
    #: The desired content hash once moved (what the runtime must confirm).
    content_hash: Mapped[str | None] = mapped_column(String(64))
    moved_generation: Mapped[int | None] = mapped_column(Integer)
    applied_at: Mapped[datetime | None]
    reason: Mapped[str | None] = mapped_column(Text)


class RolloutEvent(Scoped, Base):
    """A transition of a rollout; never changed once written."""

    __tablename__ = "rollout_events"
    __scope_columns__: ClassVar[dict[str, str]] = {"partner": "partner_id"}

    id: Mapped[UUID] = mapped_column(primary_key=True, default=uuid7)
    rollout_id: Mapped[UUID] = mapped_column(ForeignKey("rollouts.id"), index=True)
    partner_id: Mapped[UUID | None] = mapped_column(ForeignKey("partners.id"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(32))
    wave: Mapped[int | None] = mapped_column(Integer)
    actor: Mapped[str] = mapped_column(String(200))
    data: Mapped[dict[str, Any]] = mapped_column(JSONType)
