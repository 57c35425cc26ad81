"""The portal: a sign-in shell without a token; with one, the caller's inbox and runs and a
run's timeline, rendered on the server; sign-in relayed to the control plane."""

from __future__ import annotations

import json
import secrets
from typing import Any

import httpx

from tenant_runtime.runtime import Runtime
from tests.runtime.api.conftest import (
    ISSUER,
    Tokens,
    assert_problem,
    bearer,
    make_app,
    start,
)


async def test_without_a_token_the_portal_is_the_sign_in_page(client: httpx.AsyncClient) -> None:
    res = await client.get("/portal")
    assert res.status_code == 200
    assert res.headers["content-type"].startswith("text/html")
    assert 'id="login-token"' in res.text and "/portal/static/portal.js" in res.text
    assert "script-src" not in res.headers["content-security-policy"]  # default-src 'self'
    assert "default-src 'self'" in res.headers["content-security-policy"]
    assert res.headers["cache-control"] == "no-store"
    assert "login-password" not in res.text  # no control plane to relay a sign-in to


async def test_the_inbox_shows_the_callers_tasks_with_their_forms(
    client: httpx.AsyncClient, runtime: Runtime, tokens: Tokens
) -> None:
    mine = f"A-{secrets.token_hex(4)}"
    theirs = f"B-{secrets.token_hex(4)}"
    run = await start(client, runtime, "markdown-approval", tokens.admin, store="S-A", sku=mine)
    await start(client, runtime, "markdown-approval", tokens.admin, store="S-B", sku=theirs)
    await start(client, runtime, "opening-checklist", tokens.admin, store="S-A", day=mine)

    res = await client.get("/portal", headers=bearer(tokens.manager_a))
    assert res.status_code == 200, res.text
    page = res.text
    assert f"Approve markdown of {mine}" in page
    assert theirs not in page
    assert 'value="approved"' in page and 'value="rejected"' in page
    assert 'data-field="reason"' in page and 'name="comment"' in page
    assert "Fridge temperature" in page and "data-ok" in page and "data-evidence-input" in page
    assert f'href="/portal/runs/{run["id"]}"' in page
    assert "Sign out" in page and "store_manager" in page


async def test_a_run_has_a_timeline_page(
    client: httpx.AsyncClient, runtime: Runtime, tokens: Tokens
) -> None:
    run = await start(client, runtime, "markdown-approval", tokens.admin, store="S-A", sku="T-1")
    res = await client.get(f"/portal/runs/{run['id']}", headers=bearer(tokens.manager_a))
    assert res.status_code == 200, res.text
    assert "Timeline" in res.text and "Approve markdown" in res.text and "waiting" in res.text
    other = await client.get(f"/portal/runs/{run['id']}", headers=bearer(tokens.manager_b))
    assert_problem(other, 404)
    shell = await client.get(f"/portal/runs/{run['id']}")
    assert shell.status_code == 200 and 'id="login-token"' in shell.text


async def test_a_bad_token_on_a_page_is_a_401_for_the_script_to_handle(
    client: httpx.AsyncClient,
) -> None:
    assert_problem(await client.get("/portal", headers=bearer("not.a.token")), 401)


async def test_static_files_are_served(client: httpx.AsyncClient) -> None:
    script = await client.get("/portal/static/portal.js")
    assert script.status_code == 200 and "sessionStorage" in script.text
    css = await client.get("/portal/static/portal.css")
    assert css.status_code == 200 and "var(--primary)" in css.text


async def test_sign_in_is_relayed_to_the_control_plane(runtime: Runtime, tokens: Tokens) -> None:
    calls: list[dict[str, Any]] = []

    def control_plane(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/.well-known/jwks.json":
            return httpx.Response(200, json={"keys": []})
        body = json.loads(request.content)
        calls.append({"url": str(request.url), **body})
        if body["password"] != "right":
            return httpx.Response(401, json={"detail": "invalid credentials"})
        return httpx.Response(
            200,
            json={
                "access_token": tokens.manager_a,
                "token_type": "Bearer",
                "expires_in": 900,
                "scope": "",
            },
        )

    http = httpx.AsyncClient(transport=httpx.MockTransport(control_plane))
    app = make_app(runtime, control_plane_url=ISSUER + "/", http=http)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://runtime.test") as c:
        assert 'id="login-password"' in (await c.get("/portal")).text
        res = await c.post("/portal/login", json={"email": "a@shop.test", "password": "right"})
        assert res.status_code == 200, res.text
        assert res.json() == {"access_token": tokens.manager_a, "expires_in": 900}
        assert res.headers["cache-control"] == "no-store"
        assert calls[0]["url"] == f"{ISSUER}/api/v1/auth/login"
        wrong = await c.post("/portal/login", json={"email": "a@shop.test", "password": "wrong"})
        assert_problem(wrong, 401)
        assert_problem(await c.post("/portal/login", json={"email": "a@shop.test"}), 400)


async def test_sign_in_without_a_control_plane_is_a_404(client: httpx.AsyncClient) -> None:
    res = await client.post("/portal/login", json={"email": "a@shop.test", "password": "x"})
    assert "paste an access token" in assert_problem(res, 404)["detail"]
