"""Runtime bootstrap tokens: single use, short lived, stored only as a digest."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar
from uuid import UUID

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from control_plane.db import Base, Entity, Scoped


class BootstrapToken(Entity, Scoped, Base):
    __tablename__ = "bootstrap_tokens"
    __scope_columns__: ClassVar[dict[str, str]] = {"partner": "partner_id", "tenant": "tenant_id"}

    partner_id: Mapped[UUID] = mapped_column(ForeignKey("partners.id"), index=True)
    tenant_id: Mapped[UUID] = mapped_column(ForeignKey("tenants.id"), index=True)
    #: SHA-256 of the token: 256 random bits need no slow hash.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    #: Set when a newer token was issued for the tenant before this one was used.
    revoked_at: Mapped[datetime | None]
    issued_by: Mapped[str] = mapped_column(String(200))
    #: The API client the exchange created.
    client_id: Mapped[UUID | None] = mapped_column(ForeignKey("api_clients.id"))
