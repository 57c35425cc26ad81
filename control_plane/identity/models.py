"""Users, role grants, API clients and JWT signing keys."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar
from uuid import UUID

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from control_plane.db import Base, Entity, Scoped

_HOME_SCOPE: dict[str, str] = {"partner": "partner_id", "tenant": "tenant_id"}


class User(Entity, Scoped, Base):
    """A person. ``partner_id``/``tenant_id`` is the home node that administers them."""

    __tablename__ = "users"
    __scope_columns__: ClassVar[dict[str, str]] = _HOME_SCOPE

    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(default=True)
    partner_id: Mapped[UUID | None] = mapped_column(ForeignKey("partners.id"), index=True)
    tenant_id: Mapped[UUID | None] = mapped_column(ForeignKey("tenants.id"), index=True)


class ApiClient(Entity, Scoped, Base):
    """An OAuth2 confidential client (client-credentials grant)."""

    __tablename__ = "api_clients"
    __scope_columns__: ClassVar[dict[str, str]] = _HOME_SCOPE

    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    #: SHA-256 of a 256-bit random secret: high entropy needs no slow hash.
    secret_hash: Mapped[str] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(default=True)
    partner_id: Mapped[UUID | None] = mapped_column(ForeignKey("partners.id"), index=True)
    tenant_id: Mapped[UUID | None] = mapped_column(ForeignKey("tenants.id"), index=True)


class RoleGrant(Entity, Scoped, Base):
    """A role held by a user or client at one node; it covers the subtree below."""

    __tablename__ = "role_grants"
    __scope_columns__: ClassVar[dict[str, str]] = {
        "partner": "partner_id",
        "tenant": "tenant_id",
        "region": "region_id",
        "store": "store_id",
    }

    user_id: Mapped[UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    client_id: Mapped[UUID | None] = mapped_column(
        ForeignKey("api_clients.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[str] = mapped_column(String(32))
    partner_id: Mapped[UUID | None] = mapped_column(ForeignKey("partners.id"))
    tenant_id: Mapped[UUID | None] = mapped_column(ForeignKey("tenants.id"))
    region_id: Mapped[UUID | None] = mapped_column(ForeignKey("regions.id"))
    store_id: Mapped[UUID | None] = mapped_column(ForeignKey("stores.id"))


class SigningKey(Entity, Base):
    """A JWT signing key. The newest active key signs; retired keys stop verifying."""

    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(64), unique=True)
    algorithm: Mapped[str] = mapped_column(String(16))
    private_jwk: Mapped[str] = mapped_column(Text)
    public_jwk: Mapped[str] = mapped_column(Text)
    #: signing | verifying | retired
    status: Mapped[str] = mapped_column(String(16), default="signing")
    retires_at: Mapped[datetime | None] = mapped_column(default=None)
