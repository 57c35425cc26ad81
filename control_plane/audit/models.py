"""The append-only, hash-chained audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID

from sqlalchemy import BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from control_plane.contracts import uuid7
from control_plane.db import Base, JSONType, Scoped, utcnow


class AuditEntry(Scoped, Base):
    __tablename__ = "audit_entries"
    __scope_columns__: ClassVar[dict[str, str]] = {"partner": "partner_id", "tenant": "tenant_id"}

    #: Position in the chain, 1-based and gapless.
    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
    )
    id: Mapped[UUID] = mapped_column(unique=True, default=uuid7)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(200))
    actor_kind: Mapped[str] = mapped_column(String(16))
    partner_id: Mapped[UUID | None] = mapped_column(index=True)
    tenant_id: Mapped[UUID | None] = mapped_column(index=True)
    action: Mapped[str] = mapped_column(String(64), index=True)
    target_type: Mapped[str] = mapped_column(String(32))
    target_id: Mapped[str] = mapped_column(String(64))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    request_id: Mapped[str | None] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
