"""The portal's retailers: the partner's tenants with their health, the onboarding form
(whose answer shows the runtime's bootstrap token, once), and one retailer's page."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

import msgspec
from litestar import Request, Response, get, post
from litestar.params import FromPath

from control_plane.api.params import CtxDep, Form, Text
from control_plane.api.responses import to_schema
from control_plane.branding import domains
from control_plane.branding import service as branding
from control_plane.branding.models import ThemeStatus
from control_plane.branding.routes import DomainView, domain_view
from control_plane.config import Settings
from control_plane.context import Ctx
from control_plane.deployments import schemas as deployment_schemas
from control_plane.deployments import service as deployments
from control_plane.deployments.state import to_wire
from control_plane.errors import (
    Forbidden,
    InvalidInput,
    NotFound,
    StoreOpsError,
    describe_validation,
)
from control_plane.health import noc
from control_plane.health.noc_filter import MAX_LIMIT as FLEET_MAX
from control_plane.health.service import TenantHealth, tenant_health
from control_plane.runtimelink import bootstrap
from control_plane.secrets import service as secrets
from control_plane.secrets.routes import SecretStoreDep
from control_plane.secrets.store import SecretMeta, SecretStore
from control_plane.tenancy import lifecycle, schemas
from control_plane.tenancy import service as tenancy
from control_plane.web.portal import (
    Portal,
    choose_partner,
    portal_page,
    require,
    requires_portal,
    resolve,
)

PAGE_SIZE = 25
#: What the onboarding form asks for; the rest of ``TenantCreate`` keeps its defaults.
FORM_FIELDS = ("slug", "name", "timezone")
LISTED = 200


@dataclass(frozen=True)
class TenantRow:
    tenant: schemas.Tenant
    #: From the NOC's fleet snapshot (its first ``FLEET_MAX`` tenants, worst first); None
    #: for an offboarded tenant, which the NOC no longer watches.
    health: str | None


async def tenant_rows(
    ctx: Ctx, partner_id: UUID, cursor: str | None
) -> tuple[list[TenantRow], str | None]:
    rows, nxt = await tenancy.list_tenants(
        ctx, partner_id=partner_id, limit=PAGE_SIZE, cursor=cursor
    )
    fleet = await noc.fleet(ctx, noc.FleetFilter(partners=(str(partner_id),), limit=FLEET_MAX))
    health = {r.tenant_id: r.status for r in fleet.items}
    return [TenantRow(to_schema(t, schemas.Tenant), health.get(t.id)) for t in rows], nxt


async def _tenants_page(
    ctx: Ctx,
    portal: Portal,
    cursor: str | None,
    *,
    form: dict[str, str] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response[str]:
    rows, nxt = await tenant_rows(ctx, portal.partner.id, cursor)
    return portal_page(
        "portal/tenants.html",
        ctx,
        portal,
        status_code=status_code,
        active="tenants",
        rows=rows,
        next_cursor=nxt,
        first_page=cursor is None,
        form=form or {},
        error=error,
    )


@get("/portal/tenants", guards=[requires_portal], include_in_schema=False)
async def tenants_page(ctx: CtxDep, partner: Text = None, cursor: Text = None) -> Response[str]:
    portal = await resolve(ctx, partner)
    if portal is None:
        return await choose_partner(ctx, "/portal/tenants")
    return await _tenants_page(ctx, portal, cursor)


# --- onboarding -----------------------------------------------------------------------------


def _tenant_create(form: dict[str, str]) -> schemas.TenantCreate:
    try:
        return msgspec.convert(form, schemas.TenantCreate)
    except msgspec.ValidationError as exc:
        raise InvalidInput(describe_validation(str(exc))) from None


async def _onboard(
    ctx: Ctx, store: SecretStore, partner_id: UUID, form: dict[str, str], issuer: str
) -> schemas.OnboardedTenant:
    """As ``POST /api/v1/partners/{id}/tenants`` answers: the tenant and its runtime's
    one-time bootstrap token."""
    tenant = await lifecycle.onboard(ctx, store, partner_id, _tenant_create(form))
    issued = bootstrap.onboarding_token(tenant)
    runtime = (
        schemas.RuntimeBootstrap(
            token=issued.token,
            expires_at=issued.expires_at,
            exchange_url=f"{issuer}/runtime/v1/bootstrap",
        )
        if issued
        else None
    )
    return to_schema(tenant, schemas.OnboardedTenant, runtime_bootstrap=runtime)


@post("/portal/tenants", guards=[requires_portal], include_in_schema=False, status_code=200)
async def onboard_form(
    request: Request[Any, Any, Any],
    ctx: CtxDep,
    store: SecretStoreDep,
    data: Form,
    partner: Text = None,
) -> Response[str]:
    """Errors come back on the form with the service's own message; the answer page is the
    only place the bootstrap token is ever shown (it is not stored in clear)."""
    portal = await require(ctx, partner)
    settings: Settings = request.app.state.settings
    form = {k: (data.get(k) or "").strip() for k in FORM_FIELDS}
    try:
        onboarded = await _onboard(ctx, store, portal.partner.id, form, settings.issuer)
    except StoreOpsError as exc:
        if ctx.opened is not None:
            await ctx.opened.rollback()
        return await _tenants_page(
            ctx, portal, None, form=form, error=exc.detail, status_code=exc.status
        )
    return portal_page("portal/onboarded.html", ctx, portal, active="tenants", tenant=onboarded)


# --- one retailer ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Secrets:
    """A tenant's secrets' metadata, or why it cannot be listed here."""

    items: list[SecretMeta]
    unavailable: str | None = None


@dataclass(frozen=True)
class TenantDetail:
    tenant: schemas.Tenant
    deployments: list[deployment_schemas.Deployment]
    secrets: Secrets
    domains: list[DomainView]
    #: None when the caller's role does not read telemetry; ``health_note`` says so.
    health: TenantHealth | None
    health_note: str | None
    #: The published override's version number; None: the tenant inherits the partner's.
    brand_version: int | None
    brand_draft: int | None


async def _secrets(ctx: Ctx, store: SecretStore, tenant: schemas.Tenant) -> Secrets:
    if not ctx.principal.can("secrets:read", partner_id=tenant.partner_id, tenant_id=tenant.id):
        return Secrets([], "your role does not include reading secret metadata (secrets:read)")
    try:
        return Secrets(await secrets.list_metadata(ctx, store, "tenants", tenant.id))
    except secrets.SecretStoreUnavailable as exc:
        return Secrets([], f"the secret store did not answer: {exc.detail}")


async def _health(ctx: Ctx, tenant_id: UUID) -> tuple[TenantHealth | None, str | None]:
    try:
        return await tenant_health(ctx, tenant_id), None
    except Forbidden as exc:
        return None, exc.detail


async def tenant_detail(
    ctx: Ctx, store: SecretStore, portal: Portal, tenant_id: UUID
) -> TenantDetail:
    found = await tenancy.get_tenant(ctx, tenant_id)
    if found.partner_id != portal.partner.id:
        raise NotFound(f"tenant {tenant_id} does not exist")
    tenant = to_schema(found, schemas.Tenant)
    rows, _, generation = await deployments.list_deployments(ctx, tenant_id, limit=LISTED)
    claimed, _ = await domains.list_(ctx, tenant_id=tenant_id, limit=LISTED, cursor=None)
    who = await branding.owner(ctx, "tenant", tenant_id)
    published = await branding.current(ctx, who, ThemeStatus.PUBLISHED)
    draft = await branding.current(ctx, who, ThemeStatus.DRAFT)
    health, health_note = await _health(ctx, tenant_id)
    return TenantDetail(
        tenant=tenant,
        deployments=[to_wire(d, generation) for d in rows],
        secrets=await _secrets(ctx, store, tenant),
        domains=[domain_view(d) for d in claimed],
        health=health,
        health_note=health_note,
        brand_version=published.number if published else None,
        brand_draft=draft.number if draft else None,
    )


@get("/portal/tenants/{tenant_id:uuid}", guards=[requires_portal], include_in_schema=False)
async def tenant_page(
    ctx: CtxDep, store: SecretStoreDep, tenant_id: FromPath[UUID], partner: Text = None
) -> Response[str]:
    portal = await resolve(ctx, partner)
    if portal is None:
        return await choose_partner(ctx, f"/portal/tenants/{tenant_id}")
    detail = await tenant_detail(ctx, store, portal, tenant_id)
    return portal_page("portal/tenant.html", ctx, portal, active="tenants", detail=detail)


HANDLERS = [tenants_page, onboard_form, tenant_page]
