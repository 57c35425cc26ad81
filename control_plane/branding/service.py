"""Themes and their versions: draft -> preview -> publish -> rollback, each audited; and the
images themes reference. A partner's theme is whole; a tenant's is an override of it."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID

import msgspec
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from control_plane.api.pagination import fetch_page
from control_plane.audit.service import record_change, snapshot
from control_plane.branding import resolve
from control_plane.branding.models import BrandAsset, Theme, ThemeStatus
from control_plane.branding.theme import ThemeInput, check, plan_of
from control_plane.branding.validate import BrandingError, ImageRole, check_image
from control_plane.context import Ctx
from control_plane.contracts.brand import Brand
from control_plane.db.session import system_session
from control_plane.errors import IllegalTransition, InvalidInput, NotFound
from control_plane.tenancy.models import Partner, Tenant

READ = "brand:read"
WRITE = "brand:write"
OwnerKind = Literal["partner", "tenant"]


@dataclass(frozen=True)
class Owner:
    """Whose themes: a partner, or one tenant (whose partner's theme it overrides)."""

    kind: OwnerKind
    partner: Partner
    tenant: Tenant | None

    @property
    def key(self) -> str:
        return f"tenant:{self.tenant.id}" if self.tenant else f"partner:{self.partner.id}"

    @property
    def node(self) -> dict[str, UUID]:
        if self.tenant is not None:
            return {"partner_id": self.partner.id, "tenant_id": self.tenant.id}
        return {"partner_id": self.partner.id}


def refuse(problems: Sequence[BrandingError], what: str = "the theme") -> InvalidInput:
    detail = "; ".join(f"{p.field}: {p.message}" for p in problems)
    return InvalidInput(
        f"{what} is refused: {detail}",
        errors=[{"field": p.field, "message": p.message} for p in problems],
    )


async def owner(ctx: Ctx, kind: OwnerKind, owner_id: UUID) -> Owner:
    """The partner or tenant, visible to the caller (404 otherwise)."""
    if kind == "tenant":
        tenant = await ctx.session.scalar(select(Tenant).where(Tenant.id == owner_id))
        if tenant is None:
            raise NotFound(f"tenant {owner_id} does not exist")
        # A retailer sees its tenant, not its partner's row: read that (plan, id) unscoped.
        async with system_session(ctx.session) as unscoped:
            partner = await unscoped.get_one(Partner, tenant.partner_id)
        return Owner("tenant", partner, tenant)
    found = await ctx.session.scalar(select(Partner).where(Partner.id == owner_id))
    if found is None:
        raise NotFound(f"partner {owner_id} does not exist")
    return Owner("partner", found, None)


# --- assets ---------------------------------------------------------------------------------


async def upload_asset(ctx: Ctx, who: Owner, role: ImageRole, data: bytes) -> BrandAsset:
    """Check the image by its content and keep it (once per partner and content)."""
    ctx.principal.require(WRITE, **who.node)
    try:
        image = check_image(role, data)
    except BrandingError as exc:
        raise refuse([exc], f"the {role}") from None
    digest = hashlib.sha256(image.data).hexdigest()
    found = await ctx.session.scalar(
        select(BrandAsset).where(
            BrandAsset.partner_id == who.partner.id, BrandAsset.sha256 == digest
        )
    )
    if found is not None:
        return found
    asset = BrandAsset(
        partner_id=who.partner.id,
        sha256=digest,
        media_type=image.media_type,
        width=image.width,
        height=image.height,
        size=len(image.data),
        data=image.data,
    )
    ctx.session.add(asset)
    await ctx.session.flush()
    await record_change(ctx, "brand_asset.upload", asset, after=_asset_record(asset))
    return asset


def _asset_record(asset: BrandAsset) -> dict[str, Any]:
    record = snapshot(asset)
    record.pop("data", None)
    return record


async def _asset_bytes(session: AsyncSession, partner_id: UUID) -> dict[str, bytes]:
    rows = await session.execute(
        select(BrandAsset.sha256, BrandAsset.data).where(BrandAsset.partner_id == partner_id)
    )
    return {sha: data for sha, data in rows}


# --- versions -------------------------------------------------------------------------------


async def versions(ctx: Ctx, who: Owner, *statuses: str) -> Sequence[Theme]:
    """The owner's versions (of these statuses), newest first."""
    stmt = select(Theme).where(Theme.owner == who.key)
    if statuses:
        stmt = stmt.where(Theme.status.in_(statuses))
    return (await ctx.session.scalars(stmt.order_by(Theme.number.desc()))).all()


async def current(ctx: Ctx, who: Owner, status: ThemeStatus) -> Theme | None:
    found = await versions(ctx, who, status)
    return found[0] if found else None


async def list_versions(
    ctx: Ctx, who: Owner, *, limit: int, cursor: str | None
) -> tuple[Sequence[Theme], str | None]:
    ctx.principal.require(READ, **who.node)
    stmt = select(Theme).where(Theme.owner == who.key)
    return await fetch_page(ctx.session, stmt, Theme.id, limit=limit, cursor=cursor)


async def save_draft(ctx: Ctx, who: Owner, data: ThemeInput) -> Theme:
    """The owner's draft, replacing any earlier draft (which is kept, as discarded)."""
    ctx.principal.require(WRITE, **who.node)
    assets = await _asset_bytes(ctx.session, who.partner.id)
    problems = check(data, plan=plan_of(who.partner.settings), asset_exists=assets.get)
    if problems:
        raise refuse(problems)
    previous = await current(ctx, who, ThemeStatus.DRAFT)
    if previous is not None:
        before = snapshot(previous)
        previous.status = ThemeStatus.DISCARDED
        previous.preview_token = None
        await ctx.session.flush()
        await record_change(ctx, "theme.discard", previous, before=before)
    number = await ctx.session.scalar(
        select(func.coalesce(func.max(Theme.number), 0)).where(Theme.owner == who.key)
    )
    theme = Theme(
        owner=who.key,
        partner_id=who.partner.id,
        tenant_id=who.tenant.id if who.tenant else None,
        number=int(number or 0) + 1,
        status=ThemeStatus.DRAFT,
        document=msgspec.to_builtins(data),
        preview_token=secrets.token_urlsafe(24),
        created_by=ctx.principal.subject,
    )
    ctx.session.add(theme)
    await ctx.session.flush()
    await record_change(ctx, "theme.draft", theme)
    return theme


async def discard_draft(ctx: Ctx, who: Owner) -> None:
    ctx.principal.require(WRITE, **who.node)
    draft = await current(ctx, who, ThemeStatus.DRAFT)
    if draft is None:
        raise NotFound(f"{who.kind} {who.node[who.kind + '_id']} has no draft theme")
    before = snapshot(draft)
    draft.status, draft.preview_token = ThemeStatus.DISCARDED, None
    await ctx.session.flush()
    await record_change(ctx, "theme.discard", draft, before=before)


async def _swap(ctx: Ctx, who: Owner, new: Theme, action: str) -> Theme:
    """Make ``new`` the published version; the one it replaces becomes superseded."""
    live = await current(ctx, who, ThemeStatus.PUBLISHED)
    if live is not None:
        before = snapshot(live)
        live.status = ThemeStatus.SUPERSEDED
        await ctx.session.flush()
        await record_change(ctx, "theme.supersede", live, before=before)
    before = snapshot(new)
    new.status = ThemeStatus.PUBLISHED
    new.preview_token = None
    new.published_at = datetime.now(UTC)
    new.published_by = ctx.principal.subject
    await ctx.session.flush()
    await record_change(ctx, action, new, before=before)
    resolve.invalidate()
    return new


async def publish(ctx: Ctx, who: Owner, number: int | None = None) -> Theme:
    """Publish the draft (``number``, when given, must be the draft's: a guard against
    publishing a draft someone replaced after you previewed it)."""
    ctx.principal.require(WRITE, **who.node)
    draft = await current(ctx, who, ThemeStatus.DRAFT)
    if draft is None:
        raise IllegalTransition(f"{who.kind} has no draft theme to publish; save a draft first")
    if number is not None and number != draft.number:
        raise IllegalTransition(
            f"the draft is version {draft.number}, not {number}; preview it before publishing"
        )
    # Re-check: an image or the partner's plan may have changed since the draft was saved.
    assets = await _asset_bytes(ctx.session, who.partner.id)
    problems = check(
        msgspec.convert(draft.document, ThemeInput),
        plan=plan_of(who.partner.settings),
        asset_exists=assets.get,
    )
    if problems:
        raise refuse(problems, f"draft version {draft.number}")
    return await _swap(ctx, who, draft, "theme.publish")


async def rollback(ctx: Ctx, who: Owner) -> Theme:
    """Publish again the version published before the current one."""
    ctx.principal.require(WRITE, **who.node)
    live = await current(ctx, who, ThemeStatus.PUBLISHED)
    if live is None:
        raise IllegalTransition(f"{who.kind} has no published theme to roll back")
    earlier = await ctx.session.scalar(
        select(Theme)
        .where(
            Theme.owner == who.key,
            Theme.status == ThemeStatus.SUPERSEDED,
            Theme.published_at.is_not(None),
            Theme.number < live.number,
        )
        .order_by(Theme.number.desc())
        .limit(1)
    )
    if earlier is None:
        raise IllegalTransition(
            f"version {live.number} is the first published theme; there is nothing to roll back to"
        )
    return await _swap(ctx, who, earlier, "theme.rollback")


async def effective(ctx: Ctx, who: Owner, public_url: str) -> Brand:
    """What the owner's pages show now (published versions only)."""
    ctx.principal.require(READ, **who.node)
    async with system_session(ctx.session) as unscoped:  # the partner's layer, for a retailer
        return await resolve.brand_of(
            unscoped, who.partner.id, who.tenant.id if who.tenant else None, public_url
        )
