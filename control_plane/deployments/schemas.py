"""Wire schemas for deployments, desired-state plans and desired-vs-reported views."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec

from control_plane.contracts.dsl import SemVer, TemplateId
from control_plane.tenancy.schemas import Input

Status = Literal["active", "paused"]
Action = Literal["create", "update", "delete", "unchanged"]


class DeploymentCreate(Input):
    """A template version at a tenant. ``bindings`` maps each connector the template
    declares to ``{"base_url", "auth"?, "timeout"?, "attempts"?}``; credentials in
    ``auth`` are ``secret://<name>`` references. ``triggers`` is
    ``{"enabled": {"api": true, "webhook": false, ...}}`` (every declared kind defaults on)."""

    template_id: TemplateId
    version: SemVer
    params: dict[str, Any] = msgspec.field(default_factory=dict)
    bindings: dict[str, Any] = msgspec.field(default_factory=dict)
    triggers: dict[str, Any] | None = None
    status: Status = "active"


class DeploymentUpdate(Input):
    """Fields to change; the result is validated again as a whole."""

    version: SemVer | None = None
    params: dict[str, Any] | None = None
    bindings: dict[str, Any] | None = None
    triggers: dict[str, Any] | None = None
    status: Status | None = None


class DesiredDeployments(Input):
    """A tenant's complete desired list (a ``deploy apply`` file has the same shape):
    deployments not in it are deleted."""

    deployments: Annotated[list[DeploymentCreate], msgspec.Meta(max_length=500)]


class Reported(msgspec.Struct):
    status: str
    generation: int | None
    content_hash: str | None
    reason: str | None
    reported_at: datetime | None


class Deployment(msgspec.Struct):
    id: UUID
    tenant_id: UUID
    template_id: str
    version: str
    catalog_template_id: UUID
    content_hash: str
    params: dict[str, Any]
    bindings: dict[str, Any]
    triggers: dict[str, Any]
    status: str
    #: The tenant's current desired-state generation.
    desired_generation: int
    reported: Reported | None
    drift: bool
    drift_reason: str | None
    created_at: datetime
    updated_at: datetime


class Change(msgspec.Struct, omit_defaults=True):
    template_id: str
    action: Action
    deployment_id: UUID | None = None
    #: The fields that change (for an update).
    fields: list[str] = msgspec.field(default_factory=list)
    from_version: str | None = None
    to_version: str | None = None


class Plan(msgspec.Struct):
    tenant_id: UUID
    #: The generation the plan was made against; pass ``etag`` as If-Match to apply it.
    generation: int
    etag: str
    changes: list[Change]
    summary: dict[str, int]


class Applied(msgspec.Struct):
    tenant_id: UUID
    #: The generation after the apply (unchanged when nothing changed).
    generation: int
    etag: str
    changes: list[Change]
    summary: dict[str, int]


class DriftEntry(msgspec.Struct):
    id: UUID
    template_id: str
    version: str
    status: str
    content_hash: str
    reported: Reported | None
    drift: bool
    drift_reason: str | None


class DesiredVsReported(msgspec.Struct):
    tenant_id: UUID
    generation: int
    #: True when any deployment drifts.
    drift: bool
    deployments: list[DriftEntry]
