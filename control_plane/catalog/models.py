"""Catalog rows: templates (platform-owned or a partner's private ones) and their versions."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from control_plane.db import Base, Entity, JSONType, Scoped


class CatalogTemplate(Entity, Scoped, Base):
    """A workflow template line. Platform-owned rows (no partner) are visible to all."""

    __tablename__ = "catalog_templates"
    __table_args__ = (UniqueConstraint("owner_key", "slug"),)
    __scope_columns__: ClassVar[dict[str, str]] = {"member_partner": "owner_partner_id"}
    __public_when_null__: ClassVar[str | None] = "owner_partner_id"

    slug: Mapped[str] = mapped_column(String(64))
    #: "platform" or the owning partner's id: unique together with the slug.
    owner_key: Mapped[str] = mapped_column(String(40))
    owner_partner_id: Mapped[UUID | None] = mapped_column(ForeignKey("partners.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(32))
    summary: Mapped[str] = mapped_column(Text)
    #: The template this one was forked from (a platform template, usually).
    forked_from_id: Mapped[UUID | None] = mapped_column(ForeignKey("catalog_templates.id"))
    forked_from_version: Mapped[str | None] = mapped_column(String(64))


class CatalogVersion(Entity, Scoped, Base):
    """One immutable, content-hashed version of a template."""

    __tablename__ = "catalog_versions"
    __table_args__ = (UniqueConstraint("template_id", "semver"),)
    __scope_columns__: ClassVar[dict[str, str]] = {"member_partner": "owner_partner_id"}
    __public_when_null__: ClassVar[str | None] = "owner_partner_id"

    template_id: Mapped[UUID] = mapped_column(ForeignKey("catalog_templates.id"), index=True)
    owner_partner_id: Mapped[UUID | None] = mapped_column(ForeignKey("partners.id"), index=True)
    #: The template's semantic version ("version" is the row's ETag counter).
    semver: Mapped[str] = mapped_column(String(64))
    major: Mapped[int] = mapped_column(Integer)
    minor: Mapped[int] = mapped_column(Integer)
    patch: Mapped[int] = mapped_column(Integer)
    #: SHA-256 of the parsed template's canonical JSON: comments and layout do not count.
    content_hash: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(Text)
    spec: Mapped[dict[str, Any]] = mapped_column(JSONType)
    #: published | deprecated | yanked
    status: Mapped[str] = mapped_column(String(16), default="published")
    status_note: Mapped[str | None] = mapped_column(Text)
    published_by: Mapped[str] = mapped_column(String(200))
    published_at: Mapped[datetime]
