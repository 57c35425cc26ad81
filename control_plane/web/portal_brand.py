"""The portal's brand page: the partner's published theme, its draft with the preview link,
every version, publish and roll back (forms), and the partner's domains read-only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Response, get, post
from litestar.response import Redirect

from control_plane.api.pagination import MAX_LIMIT
from control_plane.api.params import CtxDep, Form, Text
from control_plane.branding import domains
from control_plane.branding import service as branding
from control_plane.branding.models import Theme, ThemeStatus
from control_plane.branding.routes import DomainView, ThemeVersion, domain_view, version_view
from control_plane.context import Ctx
from control_plane.errors import StoreOpsError
from control_plane.web.portal import (
    Portal,
    choose_partner,
    portal_page,
    require,
    requires_portal,
    resolve,
)
from control_plane.web.render import SECURITY_HEADERS

#: What a successful form says on the page it returns to (never echoed from the request).
NOTICES = {
    "published": "The draft is published: every page on the partner's hosts shows it now.",
    "rolled-back": "Rolled back: the previously published version is live again.",
}


@dataclass(frozen=True)
class BrandPage:
    published: ThemeVersion | None
    draft: ThemeVersion | None
    #: Newest first.
    versions: list[ThemeVersion]
    domains: list[DomainView]


async def _all_versions(ctx: Ctx, who: branding.Owner) -> list[Theme]:
    found: list[Theme] = []
    cursor: str | None = None
    while True:
        rows, cursor = await branding.list_versions(ctx, who, limit=MAX_LIMIT, cursor=cursor)
        found.extend(rows)
        if cursor is None:
            return found


async def brand_state(ctx: Ctx, portal: Portal) -> BrandPage:
    """Preview links are relative (``/login?preview=...``): they open on whichever of the
    partner's hosts the page was read from."""
    who = await branding.owner(ctx, "partner", portal.partner.id)
    published = await branding.current(ctx, who, ThemeStatus.PUBLISHED)
    draft = await branding.current(ctx, who, ThemeStatus.DRAFT)
    versions = await _all_versions(ctx, who)
    claimed, _ = await domains.list_(
        ctx, partner_id=portal.partner.id, limit=MAX_LIMIT, cursor=None
    )
    return BrandPage(
        published=version_view(published, "") if published else None,
        draft=version_view(draft, "") if draft else None,
        versions=[version_view(v, "") for v in reversed(versions)],
        domains=[domain_view(d) for d in claimed],
    )


async def _brand_page(
    ctx: Ctx,
    portal: Portal,
    *,
    notice: str | None = None,
    error: str | None = None,
    status: int = 200,
) -> Response[str]:
    return portal_page(
        "portal/brand.html",
        ctx,
        portal,
        status_code=status,
        active="brand",
        state=await brand_state(ctx, portal),
        notice=NOTICES.get(notice or ""),
        error=error,
    )


@get("/portal/brand", guards=[requires_portal], include_in_schema=False)
async def brand_page(ctx: CtxDep, partner: Text = None, done: Text = None) -> Response[str]:
    portal = await resolve(ctx, partner)
    if portal is None:
        return await choose_partner(ctx, "/portal/brand")
    return await _brand_page(ctx, portal, notice=done)


async def _act(ctx: Ctx, portal: Portal, action: str, number: int | None) -> Response[Any]:
    """Publish or roll back; a refusal (no draft, nothing to roll back to, no brand:write)
    comes back on the brand page with the service's message and status."""
    try:
        who = await branding.owner(ctx, "partner", portal.partner.id)
        if action == "published":
            await branding.publish(ctx, who, number)
        else:
            await branding.rollback(ctx, who)
    except StoreOpsError as exc:
        if ctx.opened is not None:
            await ctx.opened.rollback()
        return await _brand_page(ctx, portal, error=exc.detail, status=exc.status)
    target = portal.link("/portal/brand", done=action)
    return Redirect(target, status_code=303, headers=SECURITY_HEADERS)


def _version(raw: str | None) -> int | None:
    return int(raw) if raw and raw.isdigit() else None


@post("/portal/brand/publish", guards=[requires_portal], include_in_schema=False, status_code=303)
async def publish_form(ctx: CtxDep, data: Form, partner: Text = None) -> Response[Any]:
    """The form names the draft it showed: a draft replaced since is not published blind."""
    portal = await require(ctx, partner)
    return await _act(ctx, portal, "published", _version(data.get("version")))


@post("/portal/brand/rollback", guards=[requires_portal], include_in_schema=False, status_code=303)
async def rollback_form(ctx: CtxDep, partner: Text = None) -> Response[Any]:
    portal = await require(ctx, partner)
    return await _act(ctx, portal, "rolled-back", None)


HANDLERS = [brand_page, publish_form, rollback_form]
