"""Request Host -> verified domain -> partner/tenant -> published themes -> :class:`Brand`.

Only a verified domain names a brand: an unknown host, an unverified (pending) claim, a
bare IP address all get the platform default, never another partner's look. A preview
token (``?preview=``) shows its draft in place of the owner's published version.

Answers are cached per process for a few seconds; publishing, rolling back or changing a
domain here clears the cache at once, and other processes catch up within the TTL.
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from control_plane.branding.models import BrandAsset, Domain, DomainStatus, Theme, ThemeStatus
from control_plane.branding.theme import merge, plan_of
from control_plane.contracts.brand import DEFAULT, Asset, Brand
from control_plane.db import Database, Scope
from control_plane.tenancy.models import Partner, Tenant

TTL_SECONDS = 5.0
_cache: dict[tuple[str, str | None], tuple[float, Brand]] = {}


def invalidate() -> None:
    _cache.clear()


def hostname(raw: str | None) -> str | None:
    """``Host`` header -> lowercase name without port or trailing dot; None for an IP."""
    if not raw:
        return None
    host = raw.strip().lower()
    if host.startswith("["):  # IPv6 literal
        return None
    host = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    host = host.rstrip(".")
    if not host or host.replace(".", "").isdigit():
        return None
    return host


@dataclass(frozen=True)
class HostOwner:
    partner_id: UUID
    tenant_id: UUID | None
    domain_id: UUID


async def owner_of_host(session: AsyncSession, host: str | None) -> HostOwner | None:
    name = hostname(host)
    if name is None:
        return None
    row = (
        await session.execute(
            select(Domain.partner_id, Domain.tenant_id, Domain.id).where(
                Domain.hostname == name, Domain.status == DomainStatus.VERIFIED
            )
        )
    ).first()
    return HostOwner(*row) if row else None


def asset_url(public_url: str, sha256: str) -> str:
    return f"{public_url.rstrip('/')}/brand-assets/{sha256}"


async def brand_of(
    session: AsyncSession,
    partner_id: UUID,
    tenant_id: UUID | None,
    public_url: str,
    *,
    preview: Theme | None = None,
    inline: bool = False,
) -> Brand:
    """The effective brand of a partner (or of one of its tenants): platform default,
    then the partner's published theme, then the tenant's published override. ``inline``
    puts image bytes in the document (for a runtime's desired state)."""
    partner = await session.scalar(select(Partner).where(Partner.id == partner_id))
    if partner is None:
        return DEFAULT
    owners = [f"partner:{partner_id}"] + ([f"tenant:{tenant_id}"] if tenant_id else [])
    published = {
        t.owner: t
        for t in await session.scalars(
            select(Theme).where(Theme.owner.in_(owners), Theme.status == ThemeStatus.PUBLISHED)
        )
    }
    if preview is not None:
        published[preview.owner] = preview
    layers: list[tuple[str, dict[str, Any]]] = []
    versions: dict[str, int] = {}
    for key in owners:
        theme = published.get(key)
        if theme is None:
            continue
        kind = key.partition(":")[0]
        layers.append(("preview" if theme is preview else kind, theme.document))
        versions[kind] = theme.number
    refs = {d[k] for _, d in layers for k in ("logo", "favicon") if d.get(k)}
    assets: dict[str, BrandAsset] = {}
    if refs:
        rows = await session.scalars(
            select(BrandAsset).where(
                BrandAsset.partner_id == partner_id, BrandAsset.sha256.in_(refs)
            )
        )
        assets = {a.sha256: a for a in rows}

    def asset(sha: str) -> Asset | None:
        found = assets.get(sha)
        if found is None:
            return None
        return Asset(
            sha256=sha,
            media_type=found.media_type,
            url=asset_url(public_url, sha),
            width=found.width,
            height=found.height,
            data=base64.b64encode(found.data).decode() if inline else None,
        )

    brand = merge(layers, asset, plan=plan_of(partner.settings))
    brand.partner_id, brand.tenant_id, brand.versions = partner_id, tenant_id, versions
    return brand


async def brand_for_request(
    db: Database, host: str | None, public_url: str, preview_token: str | None = None
) -> Brand:
    """The brand for a request's Host (cached), or a draft's through its preview token."""
    async with db.session(Scope.system()) as session:
        if preview_token:
            draft = await session.scalar(
                select(Theme).where(
                    Theme.preview_token == preview_token, Theme.status == ThemeStatus.DRAFT
                )
            )
            if draft is not None:
                return await brand_of(
                    session, draft.partner_id, draft.tenant_id, public_url, preview=draft
                )
        key = (hostname(host) or "", public_url)
        hit = _cache.get(key)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        found = await owner_of_host(session, host)
        brand = DEFAULT
        if found is not None:
            brand = await brand_of(session, found.partner_id, found.tenant_id, public_url)
        _cache[key] = (time.monotonic() + TTL_SECONDS, brand)
        return brand


async def tenant_partner(session: AsyncSession, tenant_id: UUID) -> UUID | None:
    return await session.scalar(select(Tenant.partner_id).where(Tenant.id == tenant_id))
