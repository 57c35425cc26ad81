"""The runtime portal in the tenant's brand, as published on the control plane and received
in the desired state: product name, logo, favicon, colours, support and legal links, on the
sign-in shell and the signed-in pages; never another tenant's."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from uuid import uuid4

import httpx
import pytest
from litestar import Litestar

from control_plane.contracts.brand import DEFAULT
from tenant_runtime.config import RuntimeSettings
from tenant_runtime.runtime import Runtime
from tests.conftest import World
from tests.deployments.support import Fleet, fleet
from tests.runtime.api.conftest import bearer, grant, make_app, mint
from tests.runtimelink.brand_support import linked_runtime, palette, png, publish, upload

SVG_FAVICON = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="32" height="32">'
    b'<rect width="32" height="32" fill="#0b5e3c"/></svg>'
)


async def brand_a_and_b(client: httpx.AsyncClient, a: Fleet, b: Fleet) -> dict[str, str]:
    """Tenant A's partner publishes Acme (logo, favicon, links); B's publishes Bravo."""
    token = a.tree.partner_token
    logo = await upload(client, token, "partner", a.tree.partner_id, png((11, 94, 60)))
    favicon = await upload(client, token, "partner", a.tree.partner_id, SVG_FAVICON, role="favicon")
    await publish(
        client, token, "partner", a.tree.partner_id,
        product_name="Acme Store Desk", colors=palette("#0b5e3c"), font="Inter", radius=12,
        logo=logo, favicon=favicon, support_email="help@acme.example",
        support_url="https://help.acme.example/", email_sender_name="Acme Desk",
        legal_links=[{"label": "Privacy", "url": "https://acme.example/privacy"}],
    )  # fmt: skip
    other = await upload(
        client, b.tree.partner_token, "partner", b.tree.partner_id, png((106, 27, 154))
    )
    await publish(
        client, b.tree.partner_token, "partner", b.tree.partner_id,
        product_name="Bravo Retail Hub", colors=palette("#6a1b9a"), logo=other,
    )  # fmt: skip
    return {"logo": logo, "favicon": favicon, "other_logo": other}


@pytest.fixture
async def fleets(world: World) -> tuple[Fleet, Fleet]:
    return await fleet(world), await fleet(world)


@pytest.fixture
async def portal(
    app: Litestar, client: httpx.AsyncClient, fleets: tuple[Fleet, Fleet], tmp_path: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, Fleet, dict[str, str]]]:
    """Tenant A's runtime portal, its brand pulled from the control plane."""
    a, b = fleets
    shas = await brand_a_and_b(client, a, b)
    async with (
        linked_runtime(app, client, a, tmp_path) as runtime,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=make_app(runtime)), base_url="http://runtime.test"
        ) as browser,
    ):
        yield browser, a, shas


def header_brand(page: str) -> str:
    found = re.search(r'<a class="brand"[^>]*data-brand-product>(.*?)</a>', page, re.S)
    assert found, "the page has no brand link"
    return found.group(1)


def assert_branded(page: str, shas: dict[str, str]) -> None:
    brand = header_brand(page)
    assert "Acme Store Desk" in brand
    assert f'<img class="logo" src="/portal/brand/{shas["logo"]}"' in brand
    assert f'<link rel="icon" href="/portal/brand/{shas["favicon"]}"' in page
    assert '<link rel="stylesheet" href="/portal/brand.css">' in page
    assert 'href="mailto:help@acme.example"' in page
    assert 'href="https://help.acme.example/"' in page
    assert '<a href="https://acme.example/privacy" rel="noopener">Privacy</a>' in page
    assert re.search(r"<footer[^>]*data-powered-by>Powered by StoreOps</footer>", page)
    assert "Bravo" not in page and shas["other_logo"] not in page
    # Styling stays in stylesheets: the CSP allows no inline style.
    assert "<style" not in page and " style=" not in page


async def test_the_sign_in_shell_and_the_signed_in_page_show_the_tenants_brand(
    portal: tuple[httpx.AsyncClient, Fleet, dict[str, str]],
) -> None:
    browser, a, shas = portal
    shell = await browser.get("/portal")
    assert shell.status_code == 200
    assert 'id="login-token"' in shell.text, "an unauthenticated browser sees the sign-in shell"
    assert "Acme Store Desk</title>" in shell.text
    assert_branded(shell.text, shas)
    csp = shell.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "unsafe-inline" not in csp

    admin = mint(grant("retailer_admin", partner_id=a.tree.partner_id, tenant_id=a.tenant_id))
    page = await browser.get("/portal", headers=bearer(admin))
    assert page.status_code == 200, page.text
    assert "Inbox · Acme Store Desk" in page.text and "Sign out" in page.text
    assert_branded(page.text, shas)


async def test_the_brand_stylesheet_and_images_are_served_by_the_runtime(
    portal: tuple[httpx.AsyncClient, Fleet, dict[str, str]],
) -> None:
    browser, _, shas = portal
    css = await browser.get("/portal/brand.css")
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")
    assert "--primary: #0b5e3c;" in css.text and "--radius: 12px;" in css.text
    assert '--font: "Inter"' in css.text
    again = await browser.get("/portal/brand.css", headers={"If-None-Match": css.headers["etag"]})
    assert again.status_code == 304

    logo = await browser.get(f"/portal/brand/{shas['logo']}")
    assert logo.status_code == 200 and logo.content == png((11, 94, 60))
    assert logo.headers["content-type"] == "image/png"
    assert logo.headers["x-content-type-options"] == "nosniff"
    favicon = await browser.get(f"/portal/brand/{shas['favicon']}")
    assert favicon.headers["content-type"].startswith("image/svg+xml")
    assert b"<rect" in favicon.content
    assert "sandbox" in favicon.headers["content-security-policy"]
    assert "default-src 'none'" in favicon.headers["content-security-policy"]

    # Another tenant's image is not this portal's to serve.
    assert (await browser.get(f"/portal/brand/{shas['other_logo']}")).status_code == 404
    assert (await browser.get("/portal/brand/" + "0" * 64)).status_code == 404


async def test_before_its_first_desired_state_the_portal_wears_the_platform_look(
    tmp_path: Path,
) -> None:
    settings = RuntimeSettings(tenant_id=uuid4(), home=tmp_path)
    runtime = Runtime(settings)
    try:
        app = make_app(runtime, brand_name="Acme (starting)")
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://runtime.test"
        ) as browser:
            shell = (await browser.get("/portal")).text
            css = (await browser.get("/portal/brand.css")).text
    finally:
        await runtime.close()
    assert "Acme (starting)" in header_brand(shell)
    assert 'class="logo"' not in shell and "data-powered-by" not in shell
    assert 'data-brand-source="platform"' in shell
    assert f"--primary: {DEFAULT.colors.primary};" in css
