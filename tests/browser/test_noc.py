"""Acceptance: the NOC console in a real browser over 200 seeded tenants: the grid, a
filter, a live update over SSE, a tenant's charts, the alert queue; with screenshots."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime

import httpx
import pytest
from litestar import Litestar
from playwright.async_api import Browser, Page, expect

from control_plane.config import Settings
from control_plane.contracts.telemetry import Kind
from control_plane.health import recent
from control_plane.identity import schemas as ids
from control_plane.identity.roles import Role
from control_plane.web import stream
from tests.browser.conftest import SCREENSHOTS
from tests.web.support import PASSWORD, create_user, ev, open_alert, seed_fleet, send

TENANTS, PARTNERS = 200, 4


@pytest.fixture(autouse=True)
def quick_updates(monkeypatch: pytest.MonkeyPatch) -> None:
    """Poll and refresh every second, so the live update shows within the test's patience."""
    monkeypatch.setattr(stream, "POLL_SECONDS", 1.0)
    monkeypatch.setattr(recent, "SNAPSHOT_SECONDS", 0.5)
    monkeypatch.setattr(recent, "TOTALS_SECONDS", 0.0)


async def _sign_in(page: Page, base: str, email: str) -> None:
    await page.goto(f"{base}/noc?limit=500")
    assert "/login" in page.url
    await page.screenshot(path=str(SCREENSHOTS / "00-login.png"))
    await page.fill("input[name=email]", email)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{base}/noc?limit=500")


async def test_noc_console_in_a_browser(
    app: Litestar, settings: Settings, live_server: str, browser: Browser
) -> None:
    fleet = await seed_fleet(settings, app.state.db, tenants=TENANTS, partners=PARTNERS)
    email = f"noc-{secrets.token_hex(3)}@example.com"
    await create_user(settings, app.state.db, email, ids.GrantSpec(role=Role.NOC_OPERATOR))
    down = next(t for t in fleet.tenants if t.expected == "down")
    await open_alert(settings, app.state.db, down)
    context = await browser.new_context(viewport={"width": 1440, "height": 1000})
    page = await context.new_page()
    errors: list[str] = []
    foreign: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on(
        "request",
        lambda request: (
            None if request.url.startswith(live_server) else foreign.append(request.url)
        ),
    )
    await _sign_in(page, live_server, email)

    # The grid: every tenant the platform NOC sees, worst first.
    expected = await _visible_total(live_server, page)
    assert expected >= TENANTS
    rows = page.locator("#rows tr[data-tenant-id]")
    await expect(rows).to_have_count(expected)
    await expect(page.locator("#live")).to_contain_text("live")
    await expect(rows.first.locator(".status")).to_have_text("down")
    await page.screenshot(path=str(SCREENSHOTS / "01-fleet.png"))

    # A filter: one partner's fleet.
    _, slug = fleet.partners[1]
    await page.select_option("select[name=partner]", slug)
    await page.click(".filters button[type=submit]")
    await page.wait_for_url(f"**/noc?partner={slug}*")
    mine = fleet.of_partner(slug)
    await expect(rows).to_have_count(len(mine))
    names = set(await page.locator("#rows td.name a").all_inner_texts())
    assert names == {t.name for t in mine}
    await expect(page.locator("#live")).to_contain_text("updated")

    # A live update: the runtime of a healthy tenant reports a deep backlog; its row turns
    # degraded over the stream, without the page reloading.
    target = next(t for t in mine if t.expected == "healthy")
    row = page.locator(f'#rows tr[data-tenant-id="{target.id}"]')
    await expect(row.locator(".status")).to_have_text("healthy")
    await page.evaluate("window.__noReload = true")
    beat = ev(Kind.HEARTBEAT, datetime.now(UTC), data={"queue_depth": 640, "dead_letters": 3})
    await send(app.state.db, target.id, target.partner_id, [beat])
    await expect(row.locator(".status")).to_have_text("degraded", timeout=15_000)
    await expect(row.locator(".reason")).to_contain_text("640 steps waiting")
    await expect(row.locator('[data-field="dead_letters"]')).to_have_text("3")
    assert await page.evaluate("window.__noReload === true")
    await row.screenshot(path=str(SCREENSHOTS / "02-live-row.png"))
    await page.screenshot(path=str(SCREENSHOTS / "03-filtered-live.png"))

    # The drill-down: five charts drawn by the vendored uPlot.
    await row.locator("td.name a").click()
    await page.wait_for_url(f"**/noc/tenants/{target.id}")
    await expect(page.locator("#charts")).to_have_attribute("data-ready", "true")
    charts = page.locator("#charts figure[data-drawn=true]")
    await expect(charts).to_have_count(5)
    await expect(page.locator("#charts canvas")).to_have_count(5)
    painted = await page.evaluate(
        """() => [...document.querySelectorAll('#charts canvas')].map(c => {
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let ink = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) ink++;
            return ink; })"""
    )
    assert all(ink > 500 for ink in painted), painted
    await page.screenshot(path=str(SCREENSHOTS / "04-tenant.png"), full_page=True)

    # The alert queue, acknowledged from the page.
    await page.goto(f"{live_server}/noc/alerts")
    alert_row = page.locator("tr[data-alert-id]", has_text=down.name)
    await expect(alert_row).to_have_count(1)
    await page.screenshot(path=str(SCREENSHOTS / "05-alerts.png"))
    await alert_row.get_by_role("button", name="Acknowledge").click()
    await expect(alert_row.locator(".state")).to_have_text("acknowledged")
    await page.screenshot(path=str(SCREENSHOTS / "06-alerts-acknowledged.png"))

    # No script errors, and every request stayed on this origin (nothing from a CDN).
    assert not errors, errors
    assert not foreign, foreign
    await context.close()


async def _visible_total(base: str, page: Page) -> int:
    cookies = {c["name"]: c["value"] for c in await page.context.cookies()}
    async with httpx.AsyncClient(base_url=base, cookies=cookies) as client:
        html = (await client.get("/noc?limit=500")).text
    return html.count('<tr data-tenant-id="')


async def test_a_stream_ends_when_its_client_goes_away(
    app: Litestar, settings: Settings, live_server: str
) -> None:
    email = f"noc-{secrets.token_hex(3)}@example.com"
    await create_user(settings, app.state.db, email, ids.GrantSpec(role=Role.NOC_OPERATOR))
    async with httpx.AsyncClient(base_url=live_server, timeout=10) as client:
        signed = await client.post("/login", data={"email": email, "password": PASSWORD})
        assert signed.status_code == 303
        before = stream.OPEN_STREAMS
        async with client.stream("GET", "/noc/stream?limit=5") as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            lines = response.aiter_lines()
            while "event: page" not in await anext(lines):
                pass
            assert before + 1 == stream.OPEN_STREAMS
    for _ in range(50):
        if before == stream.OPEN_STREAMS:
            break
        await asyncio.sleep(0.1)
    assert before == stream.OPEN_STREAMS
