"""The demo's brands: Northwind and Bluepeak each publish a theme and claim a
``<name>.localhost`` portal domain; FreshMart overrides Northwind's theme on its own
domain. Domains are verified through the real challenge, answered by the very app the
demo serves (``*.localhost`` is loopback, so those names do point at it).

Nothing here is used outside the demo.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import msgspec
from litestar import Litestar
from sqlalchemy import select

from control_plane.branding import domains, service
from control_plane.branding.models import Domain, ThemeStatus
from control_plane.branding.theme import ThemeInput
from control_plane.config import Settings
from control_plane.context import Ctx
from control_plane.runner import run_as
from control_plane.tenancy.models import Partner, Tenant


def _logo(colour: str, mark: str, word: str) -> bytes:
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 200 48" width="200" height="48">'
        f'<rect width="48" height="48" rx="10" fill="{colour}"/>'
        f'<path d="{mark}" fill="#ffffff"/>'
        f'<text x="58" y="32" font-family="sans-serif" font-size="20" font-weight="700" '
        f'fill="{colour}">{word}</text></svg>'
    ).encode()


@dataclass(frozen=True)
class DemoBrand:
    kind: str  # "partner" or "tenant"
    slug: str
    host: str
    logo: bytes
    theme: dict[str, Any]


BRANDS = (
    DemoBrand(
        "partner",
        "northwind",
        "northwind.localhost",
        _logo("#0f5c5c", "M24 6 L30 24 L24 42 L18 24 Z", "Northwind"),
        {
            "product_name": "Northwind StoreOps",
            "colors": {
                "background": "#f3f7f7",
                "text": "#102a2a",
                "primary": "#0f5c5c",
                "on_primary": "#ffffff",
                "muted": "#4a6363",
                "danger": "#b3261e",
            },
            "font": "Inter",
            "radius": 10,
            "support_email": "support@northwind.example",
            "support_url": "https://support.northwind.example",
            "legal_links": [
                {"label": "Terms", "url": "https://northwind.example/terms"},
                {"label": "Privacy", "url": "https://northwind.example/privacy"},
            ],
            "email_sender_name": "Northwind StoreOps",
        },
    ),
    DemoBrand(
        "partner",
        "bluepeak",
        "bluepeak.localhost",
        _logo("#5b21b6", "M6 40 L20 14 L28 28 L34 20 L42 40 Z", "Bluepeak"),
        {
            "product_name": "Bluepeak Ops",
            "colors": {
                "background": "#faf7ff",
                "text": "#1e1433",
                "primary": "#5b21b6",
                "on_primary": "#ffffff",
                "muted": "#5f5573",
                "danger": "#b42318",
            },
            "font": "IBM Plex Sans",
            "radius": 2,
            "support_email": "help@bluepeak.example",
            "email_sender_name": "Bluepeak Ops",
            "show_powered_by": False,  # Bluepeak is on the premium plan
        },
    ),
    DemoBrand(
        "tenant",
        "freshmart",
        "freshmart.localhost",
        _logo("#166534", "M24 8 C34 14 36 30 24 40 C12 30 14 14 24 8 Z", "FreshMart"),
        {
            "product_name": "FreshMart Store Hub",
            "colors": {
                "background": "#f4faf5",
                "text": "#12261a",
                "primary": "#166534",
                "on_primary": "#ffffff",
                "muted": "#4b5f52",
                "danger": "#b42318",
            },
            "email_sender_name": "FreshMart Store Hub",
        },
    ),
)


async def _owner(ctx: Ctx, brand: DemoBrand) -> service.Owner:
    model = Partner if brand.kind == "partner" else Tenant
    found = await ctx.session.scalar(select(model.id).where(model.slug == brand.slug))
    assert found is not None, f"demo {brand.kind} {brand.slug} is missing"
    return await service.owner(ctx, brand.kind, found)  # type: ignore[arg-type]


async def publish(ctx: Ctx) -> list[str]:
    """Publish each demo theme once (a second call finds them and changes nothing)."""
    done: list[str] = []
    for brand in BRANDS:
        who = await _owner(ctx, brand)
        if await service.current(ctx, who, ThemeStatus.PUBLISHED) is not None:
            continue
        logo = await service.upload_asset(ctx, who, "logo", brand.logo)
        theme = msgspec.convert({**brand.theme, "logo": logo.sha256}, ThemeInput)
        await service.save_draft(ctx, who, theme)
        await service.publish(ctx, who)
        done.append(brand.slug)
    return done


async def claim(ctx: Ctx, settings: Settings) -> list[Domain]:
    """Claim each demo host (once); the claims still pending come back."""
    pending: list[Domain] = []
    for brand in BRANDS:
        found = await ctx.session.scalar(select(Domain).where(Domain.hostname == brand.host))
        if found is None:
            who = await _owner(ctx, brand)
            target = {"tenant_id": who.tenant.id} if who.tenant else {"partner_id": who.partner.id}
            found = await domains.claim(
                ctx, domains.DomainCreate(hostname=brand.host, **target), settings.public_url
            )
        if found.status != "verified":
            pending.append(found)
    return pending


async def verify(settings: Settings, app: Litestar, pending: list[Domain]) -> None:
    """Verify the claims through the app's own challenge route."""
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport) as http:
        for domain in pending:

            async def check(c: Ctx, domain_id: Any = domain.id) -> None:
                await domains.verify(c, domain_id, scheme="http", port=settings.port, http=http)

            await run_as(settings, check, db=app.state.db)
    # The server runs the app on another event loop: let it open its own connections.
    await app.state.db.dispose()


def urls(settings: Settings) -> list[tuple[str, str]]:
    return [(brand.slug, f"http://{brand.host}:{settings.port}/login") for brand in BRANDS]
