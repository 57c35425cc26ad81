"""The ``insights`` table: one row per pattern a tenant's runtime reported, kept current."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID

from sqlalchemy import ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from control_plane.db import Base, Entity, JSONType, Scoped


class Insight(Entity, Scoped, Base):
    """A category recurring beyond its threshold at a store or in a region of a tenant.

    ``key`` is the runtime's id for the pattern (stable for one pattern and window start):
    a re-sent insight updates its row, never adds one. Written only by telemetry ingest.
    """

    __tablename__ = "insights"
    __table_args__ = (
        UniqueConstraint("tenant_id", "key"),
        # The NOC's latest insights of a tenant; the alert signal's recent ones.
        Index("ix_insights_tenant_id_last_at", "tenant_id", "last_at"),
        Index("ix_insights_updated_at", "updated_at"),
    )
    __scope_columns__: ClassVar[dict[str, str]] = {"partner": "partner_id", "tenant": "tenant_id"}

    partner_id: Mapped[UUID] = mapped_column(ForeignKey("partners.id"), index=True)
    tenant_id: Mapped[UUID] = mapped_column(ForeignKey("tenants.id"))
    key: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    #: "store" or "region"; ``subject`` is the store's or the region's id (as the runtime
    #: knows it: the control plane's id, or a code).
    scope: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str] = mapped_column(String(200))
    #: The store of the telemetry event (set for store-scope insights).
    store: Mapped[str | None] = mapped_column(String(200))
    label: Mapped[str] = mapped_column(String(200))
    count: Mapped[int] = mapped_column(Integer)
    threshold: Mapped[int] = mapped_column(Integer)
    window_days: Mapped[int] = mapped_column(Integer)
    first_at: Mapped[datetime]
    last_at: Mapped[datetime]
    #: The incidents behind it (contract ``Evidence``s as plain data).
    evidence: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    #: Who was told in the tenant: ``regional_manager@region:<id>``.
    notified: Mapped[str | None] = mapped_column(String(200))
    #: The telemetry event that last set this row, and when it happened (runtime clock).
    event_id: Mapped[UUID]
    reported_at: Mapped[datetime]
