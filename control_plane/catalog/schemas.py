"""Wire schemas for the template catalog."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec

from control_plane.tenancy.schemas import Input, Slug


class Template(msgspec.Struct):
    id: UUID
    slug: str
    #: "platform" or the owning partner's id.
    owner: str
    name: str
    category: str
    summary: str
    forked_from_id: UUID | None
    forked_from_version: str | None
    #: Upstream versions newer than the fork's base (forks only).
    upstream_updates: list[str]
    versions: list[str]
    version: int
    created_at: datetime
    updated_at: datetime


class Version(msgspec.Struct):
    id: UUID
    template_id: UUID
    semver: str
    status: str
    status_note: str | None
    content_hash: str
    published_by: str
    published_at: datetime
    spec: dict[str, Any]
    source: str
    #: Mermaid flowchart source of the steps.
    diagram: str


class PublishRequest(Input):
    #: The template's YAML text.
    source: Annotated[str, msgspec.Meta(min_length=1, max_length=512_000)]


class Published(msgspec.Struct):
    created: bool
    template: Template
    version: Version


class StatusChange(Input):
    note: Annotated[str, msgspec.Meta(max_length=500)] | None = None


class ForkRequest(Input):
    version: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    partner_id: UUID
    slug: Slug | None = None


class Diff(msgspec.Struct):
    from_version: str
    to_version: str
    breaking_changes: list[str]
    unified_diff: str
