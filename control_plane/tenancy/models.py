"""Partners, tenants (retailers), regions and stores: the tree everything hangs on."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, ClassVar
from uuid import UUID

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from control_plane.db import Base, Entity, JSONType, Scoped


class PartnerKind(StrEnum):
    MSP = "msp"
    ERP_PARTNER = "erp_partner"
    SYSTEM_INTEGRATOR = "system_integrator"


class PartnerStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"


class TenantStatus(StrEnum):
    ONBOARDING = "onboarding"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    OFFBOARDED = "offboarded"


class IsolationTier(StrEnum):
    """How a retailer's runtime is isolated: its own schema, database or cluster."""

    SHARED_CLUSTER = "shared_cluster"
    DEDICATED_DATABASE = "dedicated_database"
    DEDICATED_CLUSTER = "dedicated_cluster"


class Partner(Entity, Scoped, Base):
    __tablename__ = "partners"
    __scope_columns__: ClassVar[dict[str, str]] = {"partner": "id"}

    slug: Mapped[str] = mapped_column(String(63), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default=PartnerStatus.ACTIVE)
    settings: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class Tenant(Entity, Scoped, Base):
    __tablename__ = "tenants"
    __table_args__ = (UniqueConstraint("partner_id", "slug"),)
    __scope_columns__: ClassVar[dict[str, str]] = {"partner": "partner_id", "visible_tenant": "id"}

    partner_id: Mapped[UUID] = mapped_column(ForeignKey("partners.id"), index=True)
    slug: Mapped[str] = mapped_column(String(63))
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default=TenantStatus.ONBOARDING)
    timezone: Mapped[str] = mapped_column(String(64))
    isolation_tier: Mapped[str] = mapped_column(String(32), default=IsolationTier.SHARED_CLUSTER)
    settings: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    #: Free-form tags for selecting tenants (a rollout's ``match``).
    labels: Mapped[dict[str, str]] = mapped_column(JSONType, default=dict)


class Region(Entity, Scoped, Base):
    __tablename__ = "regions"
    __table_args__ = (UniqueConstraint("tenant_id", "code"),)
    __scope_columns__: ClassVar[dict[str, str]] = {
        "partner": "partner_id",
        "tenant": "tenant_id",
        "region": "id",
    }

    partner_id: Mapped[UUID] = mapped_column(ForeignKey("partners.id"), index=True)
    tenant_id: Mapped[UUID] = mapped_column(ForeignKey("tenants.id"), index=True)
    code: Mapped[str] = mapped_column(String(63))
    name: Mapped[str] = mapped_column(String(200))


class Store(Entity, Scoped, Base):
    __tablename__ = "stores"
    __table_args__ = (UniqueConstraint("tenant_id", "code"),)
    __scope_columns__: ClassVar[dict[str, str]] = {
        "partner": "partner_id",
        "tenant": "tenant_id",
        "region": "region_id",
        "store": "id",
    }

    partner_id: Mapped[UUID] = mapped_column(ForeignKey("partners.id"), index=True)
    tenant_id: Mapped[UUID] = mapped_column(ForeignKey("tenants.id"), index=True)
    region_id: Mapped[UUID | None] = mapped_column(ForeignKey("regions.id"), index=True)
    code: Mapped[str] = mapped_column(String(63))
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64))
    #: {"mon": [["08:00", "20:00"]], ...}; a missing day is closed.
    opening_hours: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    #: ISO dates the store is closed.
    holidays: Mapped[list[str]] = mapped_column(JSONType, default=list)
