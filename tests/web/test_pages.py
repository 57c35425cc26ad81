"""The NOC pages: sign-in by cookie, the grid, the drill-down, the alert queue, the stream."""

from __future__ import annotations

import json
import re
import secrets
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from litestar import Litestar

from control_plane.config import Settings
from control_plane.contracts.telemetry import Kind
from control_plane.health import noc
from control_plane.identity import schemas as ids
from control_plane.identity.principal import Grant, Principal
from control_plane.identity.roles import Role
from control_plane.web import stream
from control_plane.web.session import COOKIE
from tests.conftest import World
from tests.web.support import PASSWORD, SeededFleet, create_user, ev, open_alert, send


@pytest.fixture(scope="module")
async def noc_user(app: Litestar, settings: Settings) -> str:
    email = f"noc-{secrets.token_hex(3)}@example.com"
    await create_user(settings, app.state.db, email, ids.GrantSpec(role=Role.NOC_OPERATOR))
    return email


async def _signed_in(client: httpx.AsyncClient, email: str) -> dict[str, str]:
    response = await client.post(
        "/login", data={"email": email, "password": PASSWORD, "next": "/noc?sort=name"}
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/noc?sort=name"
    cookie = response.headers["set-cookie"]
    assert f"{COOKIE}=" in cookie and "HttpOnly" in cookie and "samesite=lax" in cookie.lower()
    token = re.search(rf"{COOKIE}=([^;]+)", cookie)
    assert token
    return {"Cookie": f"{COOKIE}={token.group(1)}"}


async def test_pages_need_a_session_and_the_login_form_gives_one(
    client: httpx.AsyncClient, noc_user: str
) -> None:
    page = await client.get("/noc?status=down", headers={"Accept": "text/html"})
    assert page.status_code == 302
    assert page.headers["location"] == "/login?next=%2Fnoc%3Fstatus%3Ddown"
    assert (await client.get("/noc/stream")).status_code == 401
    form = await client.get("/login?next=/noc")
    assert form.status_code == 200 and 'name="password"' in form.text
    wrong = await client.post("/login", data={"email": noc_user, "password": "nope"})
    assert wrong.status_code == 401 and "email or password is wrong" in wrong.text
    # Only a path on this site is a redirect target.
    away = await client.post(
        "/login", data={"email": noc_user, "password": PASSWORD, "next": "//evil.example/x"}
    )
    assert away.headers["location"] == "/noc"
    await _signed_in(client, noc_user)


async def test_the_grid_page_lists_filters_and_links(
    client: httpx.AsyncClient, fleet: SeededFleet, noc_user: str
) -> None:
    cookie = await _signed_in(client, noc_user)
    _, slug = fleet.partners[2]
    page = await client.get(f"/noc?partner={slug}&sort=name", headers=cookie)
    assert page.status_code == 200, page.text
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    rows = re.findall(r'<tr data-tenant-id="([0-9a-f-]+)"', page.text)
    assert rows == [str(t.id) for t in sorted(fleet.of_partner(slug), key=lambda t: t.name)]
    assert "/static/noc/fleet.js" in page.text and "https://" not in page.text
    assert f'data-stream="/noc/stream?partner={slug}&amp;sort=name"' in page.text
    bad = await client.get("/noc?status=sick", headers={**cookie, "Accept": "text/html"})
    assert bad.status_code == 422 and "is not a health status" in bad.text


async def test_the_drill_down_page_and_its_series(
    client: httpx.AsyncClient, fleet: SeededFleet, noc_user: str, world: World
) -> None:
    cookie = await _signed_in(client, noc_user)
    tenant = next(t for t in fleet.tenants if t.expected == "degraded")
    page = await client.get(f"/noc/tenants/{tenant.id}", headers=cookie)
    assert page.status_code == 200, page.text
    assert tenant.name in page.text and "of runs failed" in page.text
    assert page.text.count('data-chart="') == 5
    assert "/static/vendor/uplot/uPlot.iife.min.js" in page.text
    series = await client.get(f"/noc/tenants/{tenant.id}/series.json?range=6h", headers=cookie)
    assert series.status_code == 200 and len(series.json()["series"]["t"]) == 72
    # A partner's NOC staff cannot open another partner's tenant.
    other_partner = next(p for p, _ in fleet.partners if p != tenant.partner_id)
    token = await world.token(Grant(Role.NOC_OPERATOR, partner_id=other_partner))
    hidden = await client.get(
        f"/noc/tenants/{tenant.id}", headers={"Authorization": f"Bearer {token}"}
    )
    assert hidden.status_code == 404


async def test_static_files_are_served_locally(client: httpx.AsyncClient) -> None:
    script = await client.get("/static/vendor/uplot/uPlot.iife.min.js")
    assert script.status_code == 200 and "uPlot" in script.text[:200]
    assert (await client.get("/static/vendor/uplot/LICENSE")).status_code == 200
    assert (await client.get("/static/noc/noc.css")).status_code == 200


async def test_cross_site_form_posts_are_refused(client: httpx.AsyncClient, noc_user: str) -> None:
    cookie = await _signed_in(client, noc_user)
    response = await client.post(
        "/noc/alerts/01900000-0000-7000-8000-000000000000/acknowledge",
        headers={**cookie, "Origin": "https://evil.example"},
        data={},
    )
    assert response.status_code == 403
    assert "cross-origin" in response.json()["type"]


async def test_the_stream_sends_the_page_then_only_changed_rows(
    app: Litestar, fleet: SeededFleet
) -> None:
    tenant = next(t for t in fleet.tenants if t.expected == "healthy")
    principal = Principal(
        subject="user:noc", kind="user", name="noc", grants=(Grant(Role.NOC_OPERATOR),)
    )
    query = noc.parse_filter(partner=tenant.partner_slug, sort="name")
    events = stream.updates(app.state.db, principal, query, poll_seconds=0.01)
    first = await anext(events)
    assert first.comment == "fleet stream"
    page = await anext(events)
    assert page.event == "page"
    body = json.loads(str(page.data))
    assert body["html"].count("<tr ") == len(fleet.of_partner(tenant.partner_slug))
    quiet = await anext(events)
    assert quiet.comment is not None and quiet.comment.startswith("unchanged")
    # The runtime reports a deep backlog: that one row changes, nothing else is sent.
    beat = ev(Kind.HEARTBEAT, datetime.now(UTC), data={"queue_depth": 999, "dead_letters": 7})
    await send(app.state.db, tenant.id, tenant.partner_id, [beat])
    changed = await anext(events)
    assert changed.event == "rows", changed
    rows = json.loads(str(changed.data))["rows"]
    assert [r["id"] for r in rows] == [str(tenant.id)]
    assert "degraded" in rows[0]["html"] and "999 steps waiting" in rows[0]["html"]
    await events.aclose()


async def test_an_expired_session_ends_the_stream(app: Litestar) -> None:
    principal = Principal(
        subject="user:noc",
        kind="user",
        name="noc",
        grants=(Grant(Role.NOC_OPERATOR),),
        claims={"exp": int((datetime.now(UTC) - timedelta(seconds=1)).timestamp())},
    )
    events = stream.updates(app.state.db, principal, noc.FleetFilter(), poll_seconds=0.01)
    await anext(events)
    assert (await anext(events)).event == "expired"
    with pytest.raises(StopAsyncIteration):
        await anext(events)


async def test_the_alert_queue_acknowledges_and_resolves(
    app: Litestar,
    settings: Settings,
    client: httpx.AsyncClient,
    fleet: SeededFleet,
    noc_user: str,
    world: World,
) -> None:
    tenant = next(t for t in fleet.tenants if t.expected == "down")
    alert_id = await open_alert(settings, app.state.db, tenant)
    cookie = await _signed_in(client, noc_user)
    queue = await client.get("/noc/alerts", headers=cookie)
    assert f'data-alert-id="{alert_id}"' in queue.text and tenant.name in queue.text
    grid = await client.get(f"/noc?partner={tenant.partner_slug}", headers=cookie)
    assert f'href="/noc/tenants/{tenant.id}#alerts">1</a>' in grid.text
    same_site = {**cookie, "Origin": "http://testserver", "Referer": "http://testserver/noc/alerts"}
    # Another partner's NOC staff do not find it.
    other = next(p for p, _ in fleet.partners if p != tenant.partner_id)
    token = await world.token(Grant(Role.NOC_OPERATOR, partner_id=other))
    hidden = await client.post(
        f"/noc/alerts/{alert_id}/acknowledge",
        headers={"Authorization": f"Bearer {token}", "Origin": "http://testserver"},
        data={},
    )
    assert hidden.status_code == 404
    ack = await client.post(f"/noc/alerts/{alert_id}/acknowledge", headers=same_site, data={})
    assert ack.status_code == 303 and ack.headers["location"] == "/noc/alerts"
    queue = await client.get("/noc/alerts", headers=cookie)
    assert (
        "state-acknowledged" in queue.text
        and f"/noc/alerts/{alert_id}/acknowledge" not in queue.text
    )
    done = await client.post(
        f"/noc/alerts/{alert_id}/resolve", headers=same_site, data={"note": "restarted"}
    )
    assert done.status_code == 303
    assert (
        f'data-alert-id="{alert_id}"' not in (await client.get("/noc/alerts", headers=cookie)).text
    )
    unknown = await client.post(f"/noc/alerts/{alert_id}/snooze", headers=same_site, data={})
    assert unknown.status_code == 404
