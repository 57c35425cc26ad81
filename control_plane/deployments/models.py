"""Deployment rows (what a tenant runs, and what its runtime last reported) and the
tenant's desired-state generation counter."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar
from uuid import UUID

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from control_plane.db import Base, Entity, JSONType, Scoped

_TENANT_SCOPE: dict[str, str] = {"partner": "partner_id", "tenant": "tenant_id"}


class DeploymentStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"


class Deployment(Entity, Scoped, Base):
    """One template version running at one tenant; at most one per (tenant, template)."""

    __tablename__ = "deployments"
    __table_args__ = (UniqueConstraint("tenant_id", "template_id"),)
    __scope_columns__: ClassVar[dict[str, str]] = _TENANT_SCOPE

    partner_id: Mapped[UUID] = mapped_column(ForeignKey("partners.id"), index=True)
    tenant_id: Mapped[UUID] = mapped_column(ForeignKey("tenants.id"))
    #: The template's DSL id (its catalog slug), what the runtime keys workflows by.
    template_id: Mapped[str] = mapped_column(String(64))
    catalog_template_id: Mapped[UUID] = mapped_column(ForeignKey("catalog_templates.id"))
    catalog_version_id: Mapped[UUID] = mapped_column(ForeignKey("catalog_versions.id"), index=True)
    semver: Mapped[str] = mapped_column(String(64))
    #: contracts.desired_state.deployment_hash of what the runtime is asked to run.
    content_hash: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict[str, Any]] = mapped_column(JSONType)
    bindings: Mapped[dict[str, Any]] = mapped_column(JSONType)
    triggers: Mapped[dict[str, Any]] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(String(16), default=DeploymentStatus.ACTIVE)
    # What the runtime last said; written without bumping ``version`` (it is not an edit).
    reported_status: Mapped[str | None] = mapped_column(String(16))
    reported_generation: Mapped[int | None] = mapped_column(Integer)
    reported_content_hash: Mapped[str | None] = mapped_column(String(64))
    reported_reason: Mapped[str | None] = mapped_column(Text)
    reported_at: Mapped[datetime | None]


class DesiredStateGeneration(Entity, Scoped, Base):
    """A tenant's desired-state generation: every deployment change bumps it once."""

    __tablename__ = "desired_states"
    __scope_columns__: ClassVar[dict[str, str]] = _TENANT_SCOPE

    partner_id: Mapped[UUID] = mapped_column(ForeignKey("partners.id"), index=True)
    tenant_id: Mapped[UUID] = mapped_column(ForeignKey("tenants.id"), unique=True)
    generation: Mapped[int] = mapped_column(Integer, default=0)
