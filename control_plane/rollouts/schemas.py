"""Wire schemas of rollouts: what a caller asks for, and what it reads back."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec

from control_plane.contracts.dsl import SemVer, TemplateId
from control_plane.tenancy.schemas import Input

Fraction = Annotated[float, msgspec.Meta(ge=0, le=1)]
WaveSize = int | str

#: Selector keys that name an attribute every tenant has; any other key is one of the
#: tenant's own labels (``labels`` on the tenant).
ATTRIBUTES = ("timezone", "isolation_tier", "region", "status")


class Gates(Input):
    """Thresholds of the health gate after each wave's soak."""

    max_failure_rate_increase: Fraction = 0.05
    max_breach_rate_increase: Fraction = 0.05
    min_runs: Annotated[int, msgspec.Meta(ge=0, le=1_000_000)] = 20
    baseline_seconds: Annotated[int, msgspec.Meta(ge=60, le=30 * 86400)] = 3600
    max_silence_seconds: Annotated[int, msgspec.Meta(ge=5, le=86400)] = 120


class RolloutCreate(Input):
    """Move ``template_id`` to ``version`` on a fleet: a partner's tenants
    (``partner_id``), a list (``tenant_ids``) and/or a label selector (``match``: the
    tenant's labels, or timezone, isolation_tier, region (a region code the tenant has)
    or status), each narrowing the others. ``waves`` items are counts, shares ('10%') or 'rest'."""

    template_id: TemplateId
    version: SemVer
    partner_id: UUID | None = None
    tenant_ids: Annotated[list[UUID], msgspec.Meta(max_length=10_000)] | None = None
    match: dict[str, str] | None = None
    #: The first tenant moved (the canary); it must be in the target set.
    canary: UUID | None = None
    waves: Annotated[list[WaveSize], msgspec.Meta(max_length=50)] = msgspec.field(
        default_factory=lambda: [1, "10%", "rest"]
    )
    soak_seconds: Annotated[int, msgspec.Meta(ge=0, le=7 * 86400)] = 600
    #: How long a wave's runtimes have to confirm the new version before it counts as failed.
    apply_timeout_seconds: Annotated[int, msgspec.Meta(ge=5, le=86400)] = 300
    gates: Gates = msgspec.field(default_factory=Gates)
    auto_rollback: bool = True


class Action(Input):
    reason: Annotated[str, msgspec.Meta(max_length=500)] | None = None


class TenantProgress(msgspec.Struct):
    tenant_id: UUID
    slug: str
    from_version: str
    state: str
    applied_at: datetime | None
    reason: str | None


class Wave(msgspec.Struct):
    index: int
    size: int
    state: str
    started_at: str | None
    applied_at: str | None
    soak_until: str | None
    finished_at: str | None
    #: The last gate reading: verdict, samples of the new and old version, reasons.
    gate: dict[str, Any] | None
    tenants: list[TenantProgress]


class Event(msgspec.Struct):
    at: datetime
    kind: str
    wave: int | None
    actor: str
    data: dict[str, Any]


class RolloutSummary(msgspec.Struct):
    id: UUID
    template_id: str
    version: str
    status: str
    partner_id: UUID | None
    current_wave: int
    wave_count: int
    tenant_count: int
    reason: str | None
    created_by: str
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None


class Rollout(RolloutSummary, kw_only=True):
    selector: dict[str, Any]
    wave_spec: list[Any]
    soak_seconds: int
    apply_timeout_seconds: int
    gates: dict[str, Any]
    auto_rollback: bool
    waves: list[Wave]
    events: list[Event]
