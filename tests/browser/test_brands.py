"""Acceptance: the same pages under two partners' hosts render each partner's own colours
(computed styles), logo and product name, and never the other's; an unknown host gets the
platform's. Screenshots are saved for review."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import pytest
from litestar import Litestar
from playwright.async_api import Browser, Page

from control_plane.config import Settings
from control_plane.identity import schemas as ids
from control_plane.identity.roles import Role
from tests.branding.conftest import png, publish_theme, upload, verified_domain
from tests.browser.conftest import SCREENSHOTS
from tests.conftest import World
from tests.web.support import PASSWORD, create_user

pytestmark = pytest.mark.usefixtures("self_check")


@dataclass
class Brand:
    label: str
    product: str
    primary: str  # as the browser computes it: rgb(r, g, b)
    primary_hex: str
    logo_colour: tuple[int, int, int]
    host: str = ""
    logo_sha: str = ""
    email: str = ""


def rgb(hex_colour: str) -> str:
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgb({r}, {g}, {b})"


async def make_brand(
    client: httpx.AsyncClient, world: World, settings: Settings, app: Litestar, brand: Brand
) -> None:
    tree = await world.tree()
    path = f"/api/v1/partners/{tree.partner_id}/brand"
    logo = await upload(client, tree.partner_token, path, png((200, 50), brand.logo_colour))
    brand.logo_sha = logo.json()["sha256"]
    colours = {
        "background": "#ffffff",
        "text": "#1f2933",
        "primary": brand.primary_hex,
        "on_primary": "#ffffff",
        "muted": "#5f6b7a",
        "danger": "#b42318",
    }
    await publish_theme(
        client, tree.partner_token, path, product_name=brand.product, colors=colours,
        logo=brand.logo_sha, font="Inter", radius=12,
    )  # fmt: skip
    brand.host = f"{brand.label}-{secrets.token_hex(3)}.localhost"
    await verified_domain(client, tree.partner_token, brand.host, partner_id=tree.partner_id)
    brand.email = f"admin-{secrets.token_hex(3)}@{brand.label}.example"
    await create_user(
        settings,
        app.state.db,
        brand.email,
        ids.GrantSpec(role=Role.PARTNER_ADMIN, partner_id=tree.partner_id),
    )


async def looks(page: Page) -> dict[str, object]:
    """What the visitor sees: the top bar's colour, the product name, the logo."""
    result: dict[str, object] = await page.evaluate(
        """() => {
            const bar = document.querySelector('.topbar');
            const logo = document.querySelector('[data-brand-product] img.logo');
            return {
                bar: bar ? getComputedStyle(bar).backgroundColor : null,
                button: getComputedStyle(document.querySelector('button')).backgroundColor,
                product: document.querySelector('[data-brand-product] .product').textContent,
                logo: logo ? logo.getAttribute('src') : null,
                logoLoaded: logo ? logo.complete && logo.naturalWidth > 0 : false,
                text: document.body.innerText,
                title: document.title,
            };
        }"""
    )
    return result


async def test_two_brands_on_their_own_hosts(
    app: Litestar,
    settings: Settings,
    client: httpx.AsyncClient,
    world: World,
    live_server: str,
    browser: Browser,
) -> None:
    port = urlsplit(live_server).port
    alpha = Brand("alpha", "Alpha Retail Cloud", rgb("#0f5c5c"), "#0f5c5c", (15, 92, 92))
    beta = Brand("beta", "Beta Store Ops", rgb("#5b21b6"), "#5b21b6", (91, 33, 182))
    for brand in (alpha, beta):
        await make_brand(client, world, settings, app, brand)

    context = await browser.new_context(viewport={"width": 1280, "height": 860})
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    for brand, other in ((alpha, beta), (beta, alpha)):
        base = f"http://{brand.host}:{port}"
        await page.goto(f"{base}/login")
        seen = await looks(page)
        await page.screenshot(path=str(SCREENSHOTS / f"brand-{brand.label}-login.png"))
        assert seen["product"] == brand.product
        assert seen["bar"] == brand.primary and seen["button"] == brand.primary
        assert seen["logo"] == f"/brand-assets/{brand.logo_sha}" and seen["logoLoaded"]
        assert brand.product in str(seen["title"])
        assert other.product not in str(seen["text"]) and "StoreOps" not in str(seen["title"])

        # Signed in, the partner's pages (portal, then its scoped NOC) wear the same brand.
        await page.fill("input[name=email]", brand.email)
        await page.fill("input[name=password]", PASSWORD)
        await page.click("button[type=submit]")
        await page.wait_for_load_state()
        for path in ("/portal", "/noc"):
            await page.goto(f"{base}{path}")
            seen = await looks(page)
            name = path.strip("/")
            await page.screenshot(path=str(SCREENSHOTS / f"brand-{brand.label}-{name}.png"))
            assert seen["product"] == brand.product, path
            assert seen["bar"] == brand.primary, path
            assert seen["logo"] == f"/brand-assets/{brand.logo_sha}" and seen["logoLoaded"]
            assert other.product not in str(seen["text"]), path
        await page.click(".signout button")
        await page.wait_for_url("**/login")

    # A host nobody verified: the platform's own look, neither partner's.
    await page.goto(f"http://unknown-{secrets.token_hex(3)}.localhost:{port}/login")
    seen = await looks(page)
    await page.screenshot(path=str(SCREENSHOTS / "brand-unknown-login.png"))
    assert seen["product"] == "StoreOps" and seen["logo"] is None
    assert seen["bar"] == rgb("#1f5f8b")
    for brand in (alpha, beta):
        assert brand.product not in str(seen["text"])
    assert errors == []
    await context.close()
