"""Theme versions over the API: draft -> preview -> publish -> rollback, audited; tenant
overrides on top of the partner's theme; bad input refused with a precise message."""

from __future__ import annotations

import httpx
import pytest

from tests.branding.conftest import PALETTE, png, publish_theme, upload
from tests.conftest import World, bearer


def base(kind: str, owner_id: object) -> str:
    return f"/api/v1/{kind}s/{owner_id}/brand"


async def test_draft_preview_publish_rollback(client: httpx.AsyncClient, world: World) -> None:
    tree = await world.tree()
    path, token = base("partner", tree.partner_id), tree.partner_token
    logo = await upload(client, token, path, png())
    assert logo.status_code == 201, logo.text
    sha = logo.json()["sha256"]
    assert logo.json()["media_type"] == "image/png"
    assets = await client.get(f"/brand-assets/{sha}")
    assert assets.content == png() and assets.headers["content-type"] == "image/png"

    v1 = await publish_theme(
        client, token, path, product_name="Northwind Ops", colors=PALETTE, logo=sha, font="Inter"
    )
    assert (v1["number"], v1["status"], v1["preview_url"]) == (1, "published", None)

    draft = await client.put(
        f"{path}/draft", json={"product_name": "Northwind Next"}, headers=bearer(token)
    )
    assert draft.status_code == 201, draft.text
    preview_url = draft.json()["preview_url"]
    assert draft.json()["number"] == 2 and "/login?preview=" in preview_url
    preview = await client.get(preview_url.replace("http://testserver", ""))
    assert "Northwind Next" in preview.text
    token_q = preview_url.split("preview=")[1]
    assert (await client.get("/api/v1/brand", params={"preview": token_q})).json()[
        "product_name"
    ] == "Northwind Next"

    state = (await client.get(path, headers=bearer(token))).json()
    assert state["published"]["number"] == 1 and state["draft"]["number"] == 2
    assert state["effective"]["product_name"] == "Northwind Ops"
    assert state["effective"]["logo"]["url"].endswith(f"/brand-assets/{sha}")

    stale = await client.post(f"{path}/publish", params={"version": 1}, headers=bearer(token))
    assert stale.status_code == 409 and "the draft is version 2" in stale.json()["detail"]
    v2 = await client.post(f"{path}/publish", params={"version": 2}, headers=bearer(token))
    assert v2.status_code == 200 and v2.json()["status"] == "published"
    # Once published, the preview link shows nothing special any more.
    gone = await client.get("/api/v1/brand", params={"preview": token_q})
    assert gone.json()["product_name"] == "StoreOps"
    assert (await client.get(path, headers=bearer(token))).json()["effective"][
        "product_name"
    ] == "Northwind Next"

    back = await client.post(f"{path}/rollback", headers=bearer(token))
    assert back.status_code == 200 and back.json()["number"] == 1
    state = (await client.get(path, headers=bearer(token))).json()
    assert state["effective"]["product_name"] == "Northwind Ops" and state["draft"] is None
    nothing = await client.post(f"{path}/rollback", headers=bearer(token))
    assert nothing.status_code == 409 and "first published theme" in nothing.json()["detail"]

    versions = (await client.get(f"{path}/versions", headers=bearer(token))).json()["items"]
    assert [(v["number"], v["status"]) for v in versions] == [(1, "published"), (2, "superseded")]
    audit = await client.get(
        "/api/v1/audit", params={"partner_id": str(tree.partner_id)}, headers=bearer(token)
    )
    actions = [e["action"] for e in audit.json()["items"]]
    for action in ("theme.draft", "theme.publish", "theme.supersede", "theme.rollback"):
        assert action in actions


async def test_tenant_override_inherits_the_rest(client: httpx.AsyncClient, world: World) -> None:
    tree = await world.tree()
    await publish_theme(
        client,
        tree.partner_token,
        base("partner", tree.partner_id),
        product_name="Partner Suite",
        colors=PALETTE,
        support_email="help@partner.example",
    )
    dark = {**PALETTE, "background": "#101418", "text": "#f5f7fa", "muted": "#aab4bf"}
    await publish_theme(
        client, tree.tenant_token, base("tenant", tree.tenant_id), product_name="Fresh Ops",
        colors=dark,
    )  # fmt: skip
    state = await client.get(base("tenant", tree.tenant_id), headers=bearer(tree.tenant_token))
    effective = state.json()["effective"]
    assert effective["product_name"] == "Fresh Ops"
    assert effective["colors"]["background"] == "#101418"
    assert effective["support_email"] == "help@partner.example"
    assert (effective["source"], effective["versions"]) == ("tenant", {"partner": 1, "tenant": 1})


async def test_another_partners_brand_is_invisible(client: httpx.AsyncClient, world: World) -> None:
    mine, theirs = await world.tree(), await world.tree()
    path = base("partner", theirs.partner_id)
    for method, url in (("GET", path), ("PUT", f"{path}/draft"), ("POST", f"{path}/publish")):
        answer = await client.request(method, url, json={}, headers=bearer(mine.partner_token))
        assert answer.status_code == 404, (method, url, answer.text)
    # A retailer does not even see its partner's theme (it sees its own override).
    own = await client.put(
        f"{base('partner', mine.partner_id)}/draft", json={}, headers=bearer(mine.tenant_token)
    )
    assert own.status_code == 404


async def test_the_login_page_wears_a_preview(client: httpx.AsyncClient, world: World) -> None:
    tree = await world.tree()
    path = base("partner", tree.partner_id)
    draft = await client.put(
        f"{path}/draft",
        json={"product_name": "Preview Mart", "colors": {**PALETTE, "primary": "#6b21a8"}},
        headers=bearer(tree.partner_token),
    )
    link = draft.json()["preview_url"].replace("http://testserver", "")
    page = await client.get(link)
    assert page.status_code == 200
    assert "Preview Mart" in page.text and "--primary: #6b21a8" in page.text
    plain = await client.get("/login")
    assert "Preview Mart" not in plain.text and "--primary: #1f5f8b" in plain.text


SVG_SCRIPT = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
SVG_HANDLER = b'<svg xmlns="http://www.w3.org/2000/svg"><rect onload="alert(1)"/></svg>'
SVG_EXTERNAL = (
    b'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink">'
    b'<use xlink:href="https://evil.example/x.svg#a"/></svg>'
)
SVG_ENTITY = (
    b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    b'<svg xmlns="http://www.w3.org/2000/svg"><text>&x;</text></svg>'
)

#: (what, role, body, the status, words the message must hold)
BAD_UPLOADS = [
    ("script-bearing SVG", "logo", SVG_SCRIPT, "SVG element <script> is not allowed"),
    ("SVG event handler", "logo", SVG_HANDLER, "onload= on <rect> is an event handler"),
    ("SVG external link", "logo", SVG_EXTERNAL, "leaves the document"),
    ("SVG with an entity", "logo", SVG_ENTITY, "plain SVG only"),
    ("a 'PNG' that is HTML", "logo", b"<!doctype html><html><script>x</script></html>",
     "is HTML"),
    ("oversized image", "logo", b"\x89PNG" + b"\0" * (600 * 1024), "may be at most 524,288 bytes"),
    ("too wide", "logo", png((3000, 100)), "may be at most 2048x1024"),
    ("favicon not square", "favicon", png((64, 32)), "must be square"),
    ("tiny", "logo", png((8, 8)), "must be at least 16"),
    ("empty", "logo", b"", "is empty"),
    ("GIF", "logo", b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", "no PNG, JPEG, WebP or SVG"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("what", "role", "body", "message"), BAD_UPLOADS, ids=[b[0] for b in BAD_UPLOADS]
)
async def test_bad_images_are_refused(
    client: httpx.AsyncClient, world: World, what: str, role: str, body: bytes, message: str
) -> None:
    tree = await world.tree()
    answer = await upload(client, tree.partner_token, base("partner", tree.partner_id), body, role)
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert message in answer.json()["detail"], answer.json()["detail"]


BAD_THEMES = [
    ("low contrast text", {"colors": {**PALETTE, "text": "#999999"}},
     "colors.text: text #999999 on background #ffffff has contrast 2.84:1; WCAG 2.1 AA needs"),
    ("low contrast button", {"colors": {**PALETTE, "on_primary": "#7fa7d1"}},
     "on_primary #7fa7d1 on primary #0b5cad has contrast"),
    ("colour not hex", {"colors": {**PALETTE, "primary": "blue"}},
     "colors.primary: 'blue' is not a colour; write #rrggbb"),
    ("palette incomplete", {"colors": {"text": "#000000"}}, "colors.background: is required"),
    ("unknown font", {"font": "Comic Sans MS"}, "font: 'Comic Sans MS' is not an allowed font"),
    ("markup in a name", {"product_name": "<b>Mart</b>"},
     "product_name: contains '<': names are plain text"),
    ("CSS in a name", {"email_sender_name": "Mart url(https://x)"}, "contains 'url('"),
    ("template in a name", {"product_name": "Mart {{ 7*7 }}"}, "contains '{'"),
    ("blank name", {"product_name": "   "}, "product_name: must not be blank"),
    ("radius too large", {"radius": 99}, "Expected `int` <= 24"),
    ("unknown field", {"css": "body{}"}, "Object contains unknown field `css`"),
    ("logo not uploaded", {"logo": "0" * 64}, "no uploaded image has SHA-256"),
    ("support url javascript", {"support_url": "javascript:alert(1)"}, "is not an https:// URL"),
    ("support email", {"support_email": "not-an-address"}, "'not-an-address' is no address"),
    ("legal link url", {"legal_links": [{"label": "Terms", "url": "ftp://x.example"}]},
     "legal_links[0].url"),
    ("powered-by on standard plan", {"show_powered_by": False},
     "needs the premium or enterprise plan; this partner is on the standard plan"),
]  # fmt: skip


@pytest.mark.parametrize(("what", "theme", "message"), BAD_THEMES, ids=[b[0] for b in BAD_THEMES])
async def test_bad_themes_are_refused(
    client: httpx.AsyncClient, world: World, what: str, theme: dict[str, object], message: str
) -> None:
    tree = await world.tree()
    path = base("partner", tree.partner_id)
    answer = await client.put(f"{path}/draft", json=theme, headers=bearer(tree.partner_token))
    assert answer.status_code in (400, 422), answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert message in answer.json()["detail"], answer.json()["detail"]
    # Nothing was kept: there is still no draft.
    state = await client.get(path, headers=bearer(tree.partner_token))
    assert state.json()["draft"] is None
