"""Themes (versioned per partner and per tenant), their images, and custom domains."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar
from uuid import UUID

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from control_plane.db import Base, Entity, JSONType, Scoped

_TENANT_SCOPE: dict[str, str] = {"partner": "partner_id", "tenant": "tenant_id"}


class ThemeStatus(StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    #: Published once, replaced by a later publish or a rollback.
    SUPERSEDED = "superseded"
    #: A draft replaced by a newer draft before it was published.
    DISCARDED = "discarded"


class DomainStatus(StrEnum):
    PENDING = "pending"
    VERIFIED = "verified"


class DomainPurpose(StrEnum):
    #: The partner's portal and login (``portal.northstar.example``).
    PORTAL = "portal"
    #: A retailer's endpoints and portal (``ops.freshmart.example``).
    TENANT = "tenant"


class Theme(Entity, Scoped, Base):
    """One version of a partner's theme, or of a tenant's override of it. ``document`` is
    the validated input (asset references by SHA-256); at most one version per owner is
    published and at most one is a draft."""

    __tablename__ = "themes"
    __scope_columns__: ClassVar[dict[str, str]] = _TENANT_SCOPE
    __table_args__ = (
        UniqueConstraint("owner", "number"),
        Index(
            "uq_themes_one_published",
            "owner",
            unique=True,
            postgresql_where=text("status = 'published'"),
            sqlite_where=text("status = 'published'"),
        ),
        Index(
            "uq_themes_one_draft",
            "owner",
            unique=True,
            postgresql_where=text("status = 'draft'"),
            sqlite_where=text("status = 'draft'"),
        ),
    )

    #: ``partner:<id>`` or ``tenant:<id>``: one sequence of versions per owner.
    owner: Mapped[str] = mapped_column(String(80))
    partner_id: Mapped[UUID] = mapped_column(ForeignKey("partners.id"), index=True)
    tenant_id: Mapped[UUID | None] = mapped_column(ForeignKey("tenants.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    document: Mapped[dict[str, Any]] = mapped_column(JSONType)
    #: Opens the draft in any page (``?preview=<token>``) until it is published.
    preview_token: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_by: Mapped[str] = mapped_column(String(200))
    published_at: Mapped[datetime | None]
    published_by: Mapped[str | None] = mapped_column(String(200))


class BrandAsset(Entity, Scoped, Base):
    """A logo or favicon, checked by content; served by its SHA-256 at ``/brand-assets``."""

    __tablename__ = "brand_assets"
    __scope_columns__: ClassVar[dict[str, str]] = {"partner": "partner_id"}
    __table_args__ = (UniqueConstraint("partner_id", "sha256"),)

    partner_id: Mapped[UUID] = mapped_column(ForeignKey("partners.id"), index=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    media_type: Mapped[str] = mapped_column(String(32))
    width: Mapped[int | None]
    height: Mapped[int | None]
    size: Mapped[int]
    data: Mapped[bytes] = mapped_column(LargeBinary)


class Domain(Entity, Scoped, Base):
    """A hostname claimed by a partner (portal) or for one of its tenants; it brands
    requests only once verified through its challenge token."""

    __tablename__ = "domains"
    __scope_columns__: ClassVar[dict[str, str]] = _TENANT_SCOPE

    hostname: Mapped[str] = mapped_column(String(253), unique=True)
    purpose: Mapped[str] = mapped_column(String(16))
    partner_id: Mapped[UUID] = mapped_column(ForeignKey("partners.id"), index=True)
    tenant_id: Mapped[UUID | None] = mapped_column(ForeignKey("tenants.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default=DomainStatus.PENDING)
    challenge_token: Mapped[str] = mapped_column(String(64), unique=True)
    #: A pending claim lapses then, and the hostname is free to claim again.
    expires_at: Mapped[datetime | None]
    verified_at: Mapped[datetime | None]
    checked_at: Mapped[datetime | None]
    check_error: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(200))
