"""The partner portal's frame: who may open it, which partner a page shows, the overview,
the partner chooser (platform staff) and the invoices page.

Section pages live beside it (``portal_tenants``, ``portal_rollouts``, ``portal_brand``);
they all resolve the partner with :func:`resolve` and render with :func:`portal_page`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode
from uuid import UUID

from litestar import Request, Response, get
from litestar.connection import ASGIConnection
from litestar.params import FromPath, QueryParameter

from control_plane.alerts.service import open_alert_counts
from control_plane.api.pagination import MAX_LIMIT
from control_plane.api.params import CtxDep, Text
from control_plane.api.responses import to_schema
from control_plane.billing import routes as billing_routes
from control_plane.billing import views as billing
from control_plane.billing.invoicing import describe
from control_plane.billing.money import money
from control_plane.billing.routes import Format
from control_plane.context import Ctx
from control_plane.errors import Forbidden, InvalidInput
from control_plane.health import noc
from control_plane.health.noc_routes import is_noc
from control_plane.identity.principal import Principal
from control_plane.identity.roles import Role
from control_plane.rollouts.views import open_rollouts
from control_plane.tenancy import schemas
from control_plane.tenancy import service as tenancy
from control_plane.tenancy.models import TenantStatus
from control_plane.web.brand import CURRENT
from control_plane.web.render import page
from control_plane.web.session import PORTAL_ROLES

STAFF_ROLES = frozenset({Role.PARTNER_ADMIN, Role.PARTNER_OPERATOR})


async def requires_portal(connection: ASGIConnection[Any, Principal, Any, Any], _: Any) -> None:
    if not any(g.role in PORTAL_ROLES for g in connection.user.grants):
        raise Forbidden(
            "the partner portal is for partner_admin, partner_operator and platform_admin roles"
        )


@dataclass(frozen=True)
class Portal:
    """The partner a page shows. ``named`` when the request chose it with ``?partner=``:
    its links then keep naming it, so a platform admin stays on the partner they picked."""

    partner: schemas.Partner
    named: bool

    def link(self, path: str, **params: Any) -> str:
        query = {"partner": str(self.partner.id)} if self.named else {}
        query.update({k: str(v) for k, v in params.items() if v not in (None, "")})
        return path + ("?" + urlencode(query) if query else "")


def _own_partners(principal: Principal) -> list[UUID]:
    """Partners the caller works for, its home partner first."""
    found = [g.partner_id for g in principal.grants if g.role in STAFF_ROLES and g.partner_id]
    return sorted(set(found), key=lambda p: (p != principal.home_partner_id, str(p)))


def _partner_id(raw: str) -> UUID:
    try:
        return UUID(raw)
    except ValueError:
        raise InvalidInput(f"partner {raw!r} is not a partner id (a UUID)") from None


async def resolve(ctx: Ctx, requested: str | None) -> Portal | None:
    """The partner named by ``?partner=``, else the caller's own, else the partner whose
    host serves the page; None when only a platform-wide caller could say. Another
    partner's id is a 404: row-level security hides it."""
    own = _own_partners(ctx.principal)
    if requested:
        chosen: UUID | None = _partner_id(requested)
    elif own:
        chosen = own[0]
    else:
        chosen = CURRENT.get().partner_id
    if chosen is None:
        return None
    partner = to_schema(await tenancy.get_partner(ctx, chosen), schemas.Partner)
    return Portal(partner=partner, named=bool(requested))


async def require(ctx: Ctx, requested: str | None) -> Portal:
    """:func:`resolve` for forms, which act on one partner and so need one named."""
    portal = await resolve(ctx, requested)
    if portal is None:
        raise InvalidInput("choose a partner first: add ?partner=<partner id> to the address")
    return portal


def portal_page(
    name: str, ctx: Ctx, portal: Portal, *, status_code: int = 200, **context: Any
) -> Response[str]:
    """A portal page: the partner, its links and the caller, in the Host's brand."""
    return page(
        name,
        status_code=status_code,
        partner=portal.partner,
        link=portal.link,
        principal=ctx.principal,
        noc_link=is_noc(ctx.principal),
        can=lambda permission: ctx.principal.can(permission, partner_id=portal.partner.id),
        **context,
    )


async def choose_partner(ctx: Ctx, path: str) -> Response[str]:
    """Platform staff on the platform's own host: which partner's portal to open."""
    rows, more = await tenancy.list_partners(ctx, limit=MAX_LIMIT)
    partners = [to_schema(r, schemas.Partner) for r in rows]
    return page(
        "portal/choose.html",
        partners=partners,
        more=more is not None,
        path=path,
        principal=ctx.principal,
    )


# --- overview ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Overview:
    tenants: dict[str, int]
    health: dict[str, int]
    open_alerts: int
    active_rollouts: int


async def _tenant_statuses(ctx: Ctx, partner_id: UUID) -> tuple[Counter[str], list[UUID]]:
    """Every tenant's lifecycle status, page by page through the tenancy service."""
    statuses: Counter[str] = Counter()
    ids: list[UUID] = []
    cursor: str | None = None
    while True:
        rows, cursor = await tenancy.list_tenants(
            ctx, partner_id=partner_id, limit=MAX_LIMIT, cursor=cursor
        )
        statuses.update(str(t.status) for t in rows)
        ids.extend(t.id for t in rows)
        if cursor is None:
            return statuses, ids


async def overview(ctx: Ctx, partner_id: UUID) -> Overview:
    statuses, ids = await _tenant_statuses(ctx, partner_id)
    health = await noc.fleet(ctx, noc.FleetFilter(partners=(str(partner_id),), limit=1))
    alerts = await open_alert_counts(ctx, tenant_ids=ids) if ids else {}
    rollouts = await open_rollouts(ctx, limit=MAX_LIMIT)
    return Overview(
        tenants={s.value: statuses.get(s.value, 0) for s in TenantStatus},
        health=health.counts,
        open_alerts=sum(alerts.values()),
        active_rollouts=sum(1 for r in rollouts if r.partner_id == partner_id),
    )


@get("/portal", guards=[requires_portal], include_in_schema=False)
async def overview_page(ctx: CtxDep, partner: Text = None) -> Response[str]:
    portal = await resolve(ctx, partner)
    if portal is None:
        return await choose_partner(ctx, "/portal")
    summary = await overview(ctx, portal.partner.id)
    return portal_page("portal/overview.html", ctx, portal, active="overview", summary=summary)


@get("/portal/invoices", guards=[requires_portal], include_in_schema=False)
async def invoices_page(ctx: CtxDep, partner: Text = None, cursor: Text = None) -> Response[str]:
    """This period's usage and draft, and the invoices the partner pays and issued."""
    portal = await resolve(ctx, partner)
    if portal is None:
        return await choose_partner(ctx, "/portal/invoices")
    summary = await billing.partner_billing(
        ctx, portal.partner.id, limit=MAX_LIMIT, cursor=cursor or None
    )
    return portal_page(
        "portal/invoices.html",
        ctx,
        portal,
        active="invoices",
        billing=summary,
        meters=billing.by_meter(summary.usage.rows),
        describe=describe,
        money=money,
        first_page=not cursor,
    )


@get("/portal/invoices/{invoice_id:uuid}", guards=[requires_portal], include_in_schema=False)
async def invoice_file(
    ctx: CtxDep,
    request: Request[Any, Any, Any],
    invoice_id: FromPath[UUID],
    fmt: Annotated[Format, QueryParameter(name="format")] = Format.HTML,
) -> Response[Any]:
    """An invoice's document, CSV or JSON for the portal's links (signed in by cookie: the
    API takes bearer tokens only)."""
    return await billing_routes.invoice_file(ctx, invoice_id, fmt, str(request.base_url))


HANDLERS = [overview_page, invoices_page, invoice_file]
