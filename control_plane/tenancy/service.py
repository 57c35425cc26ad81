"""Partners, tenants, regions and stores: every rule, used by the API and the CLI alike."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar
from uuid import UUID

import msgspec
from sqlalchemy import Select, select
from sqlalchemy.exc import IntegrityError

from control_plane.api.etag import check_if_match
from control_plane.api.pagination import fetch_page
from control_plane.audit.service import record_change, snapshot
from control_plane.context import Ctx
from control_plane.db.session import system_session
from control_plane.errors import Duplicate, IllegalTransition, InvalidInput, NotFound
from control_plane.tenancy import schemas
from control_plane.tenancy.models import Partner, Region, Store, Tenant, TenantStatus
from control_plane.tenancy.policy import (
    check_holidays,
    check_opening_hours,
    check_timezone,
    resolve_settings,
    settings_to_dict,
)

M = TypeVar("M", Partner, Tenant, Region, Store)

#: action -> (states it may start from, state it leads to)
TRANSITIONS: dict[str, tuple[frozenset[TenantStatus], TenantStatus]] = {
    "activate": (frozenset({TenantStatus.ONBOARDING}), TenantStatus.ACTIVE),
    "suspend": (frozenset({TenantStatus.ACTIVE}), TenantStatus.SUSPENDED),
    "resume": (frozenset({TenantStatus.SUSPENDED}), TenantStatus.ACTIVE),
    "offboard": (
        frozenset({TenantStatus.ONBOARDING, TenantStatus.SUSPENDED}),
        TenantStatus.OFFBOARDED,
    ),
}


async def _get(ctx: Ctx, model: type[M], obj_id: UUID, label: str) -> M:
    """Load by id through the scoped session: another tenant's object is simply absent."""
    obj = await ctx.session.scalar(select(model).where(model.id == obj_id))
    if obj is None:
        raise NotFound(f"{label} {obj_id} does not exist")
    return obj


async def _read(ctx: Ctx, model: type[M], obj_id: UUID, label: str) -> dict[str, Any]:
    """A row's plain values by id through the scoped fast read path (for GET handlers)."""
    row = await ctx.read(model, obj_id)
    if row is None:
        raise NotFound(f"{label} {obj_id} does not exist")
    return row


def _in_tenant(row: dict[str, Any], tenant_id: UUID, label: str) -> dict[str, Any]:
    if row["tenant_id"] != tenant_id:
        raise NotFound(f"{label} {row['id']} does not exist")
    return row


async def read_partner(ctx: Ctx, partner_id: UUID) -> dict[str, Any]:
    return await _read(ctx, Partner, partner_id, "partner")


async def read_tenant(ctx: Ctx, tenant_id: UUID) -> dict[str, Any]:
    return await _read(ctx, Tenant, tenant_id, "tenant")


async def read_region(ctx: Ctx, tenant_id: UUID, region_id: UUID) -> dict[str, Any]:
    return _in_tenant(await _read(ctx, Region, region_id, "region"), tenant_id, "region")


async def read_store(ctx: Ctx, tenant_id: UUID, store_id: UUID) -> dict[str, Any]:
    return _in_tenant(await _read(ctx, Store, store_id, "store"), tenant_id, "store")


async def _flush_unique(ctx: Ctx, message: str) -> None:
    try:
        await ctx.session.flush()
    except IntegrityError:
        raise Duplicate(message) from None


def _apply(obj: Any, changes: dict[str, Any]) -> None:
    for key, value in changes.items():
        setattr(obj, key, value)


def _changes(update: Any) -> dict[str, Any]:
    """Only the fields the client sent (``omit_defaults`` drops the rest)."""
    return {k: v for k, v in msgspec.structs.asdict(update).items() if v is not None}


# --- partners -------------------------------------------------------------------------


async def create_partner(ctx: Ctx, data: schemas.PartnerCreate) -> Partner:
    ctx.principal.require("partners:create")
    partner = Partner(
        slug=data.slug, name=data.name, kind=data.kind, settings=settings_to_dict(data.settings)
    )
    ctx.session.add(partner)
    await _flush_unique(ctx, f"a partner with slug {data.slug!r} already exists")
    await record_change(ctx, "partner.create", partner)
    return partner


async def get_partner(ctx: Ctx, partner_id: UUID) -> Partner:
    return await _get(ctx, Partner, partner_id, "partner")


async def list_partners(
    ctx: Ctx,
    *,
    kind: str | None = None,
    status: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[Sequence[Partner], str | None]:
    stmt: Select[Any] = select(Partner)
    if kind:
        stmt = stmt.where(Partner.kind == kind)
    if status:
        stmt = stmt.where(Partner.status == status)
    return await fetch_page(ctx.session, stmt, Partner.id, limit=limit, cursor=cursor)


async def update_partner(
    ctx: Ctx, partner_id: UUID, data: schemas.PartnerUpdate, if_match: str | None
) -> Partner:
    partner = await get_partner(ctx, partner_id)
    ctx.principal.require("partners:write", partner_id=partner.id)
    check_if_match(partner, if_match)
    before = snapshot(partner)
    changes = _changes(data)
    if "status" in changes:
        ctx.principal.require("partners:create")  # suspending a partner is the platform's call
    if data.settings is not None:
        changes["settings"] = settings_to_dict(data.settings)
    _apply(partner, changes)
    await ctx.session.flush()
    await record_change(ctx, "partner.update", partner, before=before)
    return partner


# --- tenants --------------------------------------------------------------------------


async def onboard_tenant(ctx: Ctx, partner_id: UUID, data: schemas.TenantCreate) -> Tenant:
    partner = await get_partner(ctx, partner_id)
    ctx.principal.require("tenants:lifecycle", partner_id=partner.id)
    if partner.status != "active":
        raise IllegalTransition(
            f"partner {partner.slug} is {partner.status}; it cannot onboard retailers"
        )
    tenant = Tenant(
        partner_id=partner.id,
        slug=data.slug,
        name=data.name,
        timezone=check_timezone(data.timezone),
        isolation_tier=data.isolation_tier,
        status=TenantStatus.ONBOARDING,
        settings=settings_to_dict(data.settings),
        labels=dict(data.labels),
    )
    ctx.session.add(tenant)
    await _flush_unique(ctx, f"partner {partner.slug} already has a tenant with slug {data.slug!r}")
    await record_change(ctx, "tenant.onboard", tenant)
    return tenant


async def get_tenant(ctx: Ctx, tenant_id: UUID) -> Tenant:
    return await _get(ctx, Tenant, tenant_id, "tenant")


async def list_tenants(
    ctx: Ctx,
    *,
    partner_id: UUID | None = None,
    status: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[Sequence[Tenant], str | None]:
    stmt: Select[Any] = select(Tenant)
    if partner_id is not None:
        await get_partner(ctx, partner_id)
        stmt = stmt.where(Tenant.partner_id == partner_id)
    if status:
        stmt = stmt.where(Tenant.status == status)
    return await fetch_page(ctx.session, stmt, Tenant.id, limit=limit, cursor=cursor)


def _writable(tenant: Tenant) -> None:
    if tenant.status == TenantStatus.OFFBOARDED:
        raise IllegalTransition(f"tenant {tenant.slug} is offboarded; it can no longer change")


async def update_tenant(
    ctx: Ctx, tenant_id: UUID, data: schemas.TenantUpdate, if_match: str | None
) -> Tenant:
    tenant = await get_tenant(ctx, tenant_id)
    ctx.principal.require("tenants:write", partner_id=tenant.partner_id, tenant_id=tenant.id)
    check_if_match(tenant, if_match)
    _writable(tenant)
    before = snapshot(tenant)
    changes = _changes(data)
    if data.timezone is not None:
        check_timezone(data.timezone)
    if data.settings is not None:
        changes["settings"] = settings_to_dict(data.settings)
    _apply(tenant, changes)
    await ctx.session.flush()
    await record_change(ctx, "tenant.update", tenant, before=before)
    return tenant


async def transition_tenant(
    ctx: Ctx,
    tenant_id: UUID,
    action: str,
    *,
    reason: str | None = None,
    if_match: str | None = None,
) -> Tenant:
    if action not in TRANSITIONS:
        raise InvalidInput(
            f"unknown lifecycle action {action!r}; use one of {', '.join(TRANSITIONS)}"
        )
    tenant = await get_tenant(ctx, tenant_id)
    ctx.principal.require("tenants:lifecycle", partner_id=tenant.partner_id, tenant_id=tenant.id)
    check_if_match(tenant, if_match)
    sources, target = TRANSITIONS[action]
    if tenant.status not in sources:
        allowed = ", ".join(sorted(s.value for s in sources))
        raise IllegalTransition(
            f"cannot {action} tenant {tenant.slug}: it is {tenant.status}, "
            f"and {action} applies only to a tenant that is {allowed}",
            current_status=tenant.status,
        )
    before = {"status": tenant.status}
    tenant.status = target
    await ctx.session.flush()
    after = {"status": target.value, "reason": reason}
    await record_change(ctx, f"tenant.{action}", tenant, before=before, after=after)
    return tenant


async def effective_settings(ctx: Ctx, tenant_id: UUID) -> tuple[dict[str, Any], dict[str, str]]:
    tenant = await get_tenant(ctx, tenant_id)
    # The partner row is outside a retailer's scope, yet its defaults still apply to it.
    async with system_session(ctx.session) as session:
        partner_settings = await session.scalar(
            select(Partner.settings).where(Partner.id == tenant.partner_id)
        )
    return resolve_settings(partner_settings, tenant.settings)


# --- regions and stores ---------------------------------------------------------------


async def create_region(ctx: Ctx, tenant_id: UUID, data: schemas.RegionCreate) -> Region:
    tenant = await get_tenant(ctx, tenant_id)
    ctx.principal.require("tenants:write", partner_id=tenant.partner_id, tenant_id=tenant.id)
    _writable(tenant)
    region = Region(
        partner_id=tenant.partner_id, tenant_id=tenant.id, code=data.code, name=data.name
    )
    ctx.session.add(region)
    await _flush_unique(ctx, f"tenant {tenant.slug} already has a region with code {data.code!r}")
    await record_change(ctx, "region.create", region)
    return region


async def get_region(ctx: Ctx, tenant_id: UUID, region_id: UUID) -> Region:
    region = await _get(ctx, Region, region_id, "region")
    _in_tenant({"id": region.id, "tenant_id": region.tenant_id}, tenant_id, "region")
    return region


async def list_regions(
    ctx: Ctx, tenant_id: UUID, *, limit: int = 50, cursor: str | None = None
) -> tuple[Sequence[Region], str | None]:
    await get_tenant(ctx, tenant_id)
    stmt: Select[Any] = select(Region).where(Region.tenant_id == tenant_id)
    return await fetch_page(ctx.session, stmt, Region.id, limit=limit, cursor=cursor)


async def update_region(
    ctx: Ctx, tenant_id: UUID, region_id: UUID, data: schemas.RegionUpdate, if_match: str | None
) -> Region:
    region = await get_region(ctx, tenant_id, region_id)
    ctx.principal.require("tenants:write", partner_id=region.partner_id, tenant_id=region.tenant_id)
    check_if_match(region, if_match)
    before = snapshot(region)
    _apply(region, _changes(data))
    await ctx.session.flush()
    await record_change(ctx, "region.update", region, before=before)
    return region


def _store_fields(data: schemas.StoreCreate | schemas.StoreUpdate) -> dict[str, Any]:
    changes = _changes(data)
    if "timezone" in changes:
        check_timezone(changes["timezone"])
    if "opening_hours" in changes:
        changes["opening_hours"] = {
            day: [list(iv) for iv in ivs]
            for day, ivs in check_opening_hours(changes["opening_hours"]).items()
        }
    if "holidays" in changes:
        changes["holidays"] = check_holidays(changes["holidays"])
    return changes


async def create_store(ctx: Ctx, tenant_id: UUID, data: schemas.StoreCreate) -> Store:
    tenant = await get_tenant(ctx, tenant_id)
    _writable(tenant)
    fields = _store_fields(data)
    if data.region_id is not None:
        await get_region(ctx, tenant.id, data.region_id)
    ctx.principal.require(
        "stores:write", partner_id=tenant.partner_id, tenant_id=tenant.id, region_id=data.region_id
    )
    fields.setdefault("timezone", tenant.timezone)
    store = Store(partner_id=tenant.partner_id, tenant_id=tenant.id, **fields)
    ctx.session.add(store)
    await _flush_unique(ctx, f"tenant {tenant.slug} already has a store with code {data.code!r}")
    await record_change(ctx, "store.create", store)
    return store


async def get_store(ctx: Ctx, tenant_id: UUID, store_id: UUID) -> Store:
    store = await _get(ctx, Store, store_id, "store")
    _in_tenant({"id": store.id, "tenant_id": store.tenant_id}, tenant_id, "store")
    return store


async def list_stores(
    ctx: Ctx,
    tenant_id: UUID,
    *,
    region_id: UUID | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[Sequence[Store], str | None]:
    await get_tenant(ctx, tenant_id)
    stmt: Select[Any] = select(Store).where(Store.tenant_id == tenant_id)
    if region_id is not None:
        stmt = stmt.where(Store.region_id == region_id)
    return await fetch_page(ctx.session, stmt, Store.id, limit=limit, cursor=cursor)


async def update_store(
    ctx: Ctx, tenant_id: UUID, store_id: UUID, data: schemas.StoreUpdate, if_match: str | None
) -> Store:
    store = await get_store(ctx, tenant_id, store_id)
    ctx.principal.require(
        "stores:write",
        partner_id=store.partner_id,
        tenant_id=store.tenant_id,
        region_id=store.region_id,
        store_id=store.id,
    )
    check_if_match(store, if_match)
    fields = _store_fields(data)
    if data.region_id is not None:
        await get_region(ctx, tenant_id, data.region_id)
    before = snapshot(store)
    _apply(store, fields)
    await ctx.session.flush()
    await record_change(ctx, "store.update", store, before=before)
    return store
