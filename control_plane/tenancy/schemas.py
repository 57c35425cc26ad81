"""Wire schemas for partners, tenants, regions and stores."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec

from control_plane.contracts.triage import ModelKind, RegionThreshold, StoreThreshold, WindowDays
from control_plane.tenancy.models import IsolationTier, PartnerKind, PartnerStatus, TenantStatus

Slug = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$",
        description="lowercase letters, digits and inner hyphens, 1-63 characters",
    ),
]
Code = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
TimeZone = Annotated[str, msgspec.Meta(min_length=1, max_length=64, examples=["Europe/Paris"])]
HHMM = Annotated[str, msgspec.Meta(pattern=r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")]
LabelKey = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[a-z0-9]([a-z0-9._/-]{0,61}[a-z0-9])?$",
        description="lower-case letters, digits and . _ / - (1-63 characters)",
        examples=["tier"],
    ),
]
LabelValue = Annotated[
    str, msgspec.Meta(pattern=r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$")
]
#: Free-form tags for selecting tenants (e.g. a rollout's ``match``): ``{"tier": "gold"}``.
Labels = Annotated[dict[LabelKey, LabelValue], msgspec.Meta(max_length=32)]
IsoDate = Annotated[str, msgspec.Meta(pattern=r"^\d{4}-\d{2}-\d{2}$")]
OpeningHours = dict[str, list[tuple[HHMM, HHMM]]]


class Input(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Request bodies refuse fields they do not know."""


class SlaCalendar(Input):
    timezone: TimeZone | None = None
    opening_hours: OpeningHours | None = None
    holidays: list[IsoDate] | None = None


class TriageOverride(Input):
    """Incident triage settings at one level of the tree: the contract's
    :class:`~control_plane.contracts.triage.TriageSettings` (same names and bounds) with
    every field optional, and only the model kinds the platform has. Only the fields given
    override the level above, so a tenant may change one threshold and keep its partner's
    model, or restore a default its partner changed."""

    model: ModelKind | None = None
    store_threshold: StoreThreshold | None = None
    region_threshold: RegionThreshold | None = None
    window_days: WindowDays | None = None


class PolicySettings(Input):
    """Settings inherited down the tree: partner defaults, tenant overrides."""

    allowed_templates: list[str] | None = None
    quotas: dict[str, Annotated[int, msgspec.Meta(ge=0)]] | None = None
    plan: Literal["standard", "premium", "enterprise"] | None = None
    sla_calendar: SlaCalendar | None = None
    #: Which triage model the tenant's runtime uses and when a recurring incident category
    #: becomes an insight; unset at both levels, the runtime keeps its defaults.
    triage: TriageOverride | None = None


class PartnerCreate(Input):
    slug: Slug
    name: Name
    kind: PartnerKind
    settings: PolicySettings = msgspec.field(default_factory=PolicySettings)


class PartnerUpdate(Input):
    name: Name | None = None
    status: PartnerStatus | None = None
    settings: PolicySettings | None = None


class Partner(msgspec.Struct):
    id: UUID
    slug: str
    name: str
    kind: str
    status: str
    settings: dict[str, Any]
    version: int
    created_at: datetime
    updated_at: datetime


class TenantCreate(Input):
    slug: Slug
    name: Name
    timezone: TimeZone
    isolation_tier: IsolationTier = IsolationTier.SHARED_CLUSTER
    settings: PolicySettings = msgspec.field(default_factory=PolicySettings)
    labels: Labels = msgspec.field(default_factory=dict)


class TenantUpdate(Input):
    name: Name | None = None
    timezone: TimeZone | None = None
    isolation_tier: IsolationTier | None = None
    settings: PolicySettings | None = None
    #: Replaces the tenant's labels as a whole.
    labels: Labels | None = None


class Tenant(msgspec.Struct):
    id: UUID
    partner_id: UUID
    slug: str
    name: str
    status: TenantStatus
    timezone: str
    isolation_tier: str
    settings: dict[str, Any]
    labels: dict[str, str]
    version: int
    created_at: datetime
    updated_at: datetime


class RuntimeBootstrap(msgspec.Struct):
    """The one-time token the tenant's runtime exchanges for its own credentials
    (``storeops runtime serve --bootstrap-token``); shown only in the onboarding answer."""

    token: str
    expires_at: datetime
    exchange_url: str


class OnboardedTenant(Tenant, kw_only=True):
    runtime_bootstrap: RuntimeBootstrap | None = None


class TransitionReason(Input):
    reason: Annotated[str, msgspec.Meta(max_length=500)] | None = None


class EffectiveSettings(msgspec.Struct):
    tenant_id: UUID
    settings: dict[str, Any]
    #: For each top-level key, where its value came from: platform, partner or tenant.
    sources: dict[str, str]


class RegionCreate(Input):
    code: Code
    name: Name


class RegionUpdate(Input):
    name: Name | None = None


class Region(msgspec.Struct):
    id: UUID
    tenant_id: UUID
    code: str
    name: str
    version: int
    created_at: datetime
    updated_at: datetime


class StoreCreate(Input):
    code: Code
    name: Name
    timezone: TimeZone | None = None
    region_id: UUID | None = None
    opening_hours: OpeningHours = msgspec.field(default_factory=dict)
    holidays: list[IsoDate] = msgspec.field(default_factory=list)


class StoreUpdate(Input):
    name: Name | None = None
    timezone: TimeZone | None = None
    region_id: UUID | None = None
    opening_hours: OpeningHours | None = None
    holidays: list[IsoDate] | None = None


class Store(msgspec.Struct):
    id: UUID
    tenant_id: UUID
    region_id: UUID | None
    code: str
    name: str
    timezone: str
    opening_hours: dict[str, list[list[str]]]
    holidays: list[str]
    version: int
    created_at: datetime
    updated_at: datetime
