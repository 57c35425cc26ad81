"""The partner portal: every page for a partner's staff, in the Host's brand, never showing
another partner's rows; onboarding and the theme's publish and rollback through its forms."""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

import httpx
import pytest
from litestar import Litestar

from control_plane.config import Settings
from control_plane.identity import schemas as ids
from control_plane.identity.principal import Grant
from control_plane.identity.roles import Role
from control_plane.web.session import COOKIE
from tests.branding.conftest import PALETTE
from tests.conftest import Tree, World, bearer
from tests.rollouts.support import Fleet, fleet
from tests.web.support import PASSWORD, create_user

ORIGIN = {"Origin": "http://testserver"}
PAGES = {
    "/portal": "portal-overview",
    "/portal/tenants": "portal-tenants",
    "/portal/rollouts": "portal-rollouts",
    "/portal/brand": "portal-brand",
    "/portal/invoices": "portal-invoices",
}


def cookie(token: str) -> dict[str, str]:
    return {"Cookie": f"{COOKIE}={token}"}


async def operator_token(world: World, partner_id: UUID) -> str:
    return await world.token(Grant(Role.PARTNER_OPERATOR, partner_id=partner_id))


async def start_rollout(client: httpx.AsyncClient, f: Fleet) -> str:
    made = await client.post(
        "/api/v1/rollouts",
        json={
            "template_id": "stock-transfer-approval",
            "version": "1.1.0",
            "partner_id": str(f.partner_id),
            "soak_seconds": 5,
            "gates": {"min_runs": 0},
        },
        headers=bearer(f.admin),
    )
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


async def add_secret(client: httpx.AsyncClient, token: str, tenant_id: UUID, name: str) -> str:
    value = f"value-{secrets.token_hex(8)}"
    made = await client.post(
        f"/api/v1/tenants/{tenant_id}/secrets",
        json={"name": name, "value": value},
        headers=bearer(token),
    )
    assert made.status_code == 201, made.text
    return value


async def save_draft(client: httpx.AsyncClient, tree: Tree, **theme: Any) -> dict[str, Any]:
    draft = await client.put(
        f"/api/v1/partners/{tree.partner_id}/brand/draft",
        json={"colors": PALETTE, **theme},
        headers=bearer(tree.partner_token),
    )
    assert draft.status_code == 201, draft.text
    body: dict[str, Any] = draft.json()
    return body


async def publish_via_api(client: httpx.AsyncClient, tree: Tree, **theme: Any) -> None:
    await save_draft(client, tree, **theme)
    done = await client.post(
        f"/api/v1/partners/{tree.partner_id}/brand/publish", headers=bearer(tree.partner_token)
    )
    assert done.status_code == 200, done.text


async def published_number(client: httpx.AsyncClient, tree: Tree) -> int | None:
    state = await client.get(
        f"/api/v1/partners/{tree.partner_id}/brand", headers=bearer(tree.partner_token)
    )
    published = state.json()["published"]
    return int(published["number"]) if published else None


@pytest.fixture
async def anonymous(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    """A client of its own: no session cookie from other tests, and none left for them."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture
async def self_check(app: Litestar) -> AsyncIterator[None]:
    """Domain checks reach this app itself, which answers a pending claim's challenge."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as http:
        app.state.domain_http = http
        yield
        app.state.domain_http = None


async def test_every_page_renders_for_a_partner_admin(
    client: httpx.AsyncClient, world: World
) -> None:
    label = secrets.token_hex(4)
    tree = await world.tree(label)
    for path, hook in {**PAGES, f"/portal/tenants/{tree.tenant_id}": "portal-tenant"}.items():
        page = await client.get(path, headers=cookie(tree.partner_token))
        assert page.status_code == 200, (path, page.text)
        assert f'data-page="{hook}"' in page.text, path
        assert ">Partner portal<" in page.text and 'href="/portal/brand"' in page.text
    overview = await client.get("/portal", headers=cookie(tree.partner_token))
    assert f"<h1 data-partner-name>Partner {label}</h1>" in overview.text
    assert re.search(r'data-count="active"><strong>1</strong>', overview.text)
    invoices = await client.get("/portal/invoices", headers=cookie(tree.partner_token))
    assert "Invoices appear here after the first billing period closes" in invoices.text
    assert "<table" not in invoices.text
    retailer = await client.get(
        f"/portal/tenants/{tree.tenant_id}", headers=cookie(tree.partner_token)
    )
    assert "Inherits the partner's theme." in retailer.text
    assert f'href="/noc/tenants/{tree.tenant_id}"' in retailer.text


async def test_unauthenticated_portal_redirects_to_login(anonymous: httpx.AsyncClient) -> None:
    page = await anonymous.get("/portal", headers={"Accept": "text/html"})
    assert page.status_code == 302
    assert page.headers["location"] == "/login?next=%2Fportal"


async def test_other_roles_and_platform_staff(client: httpx.AsyncClient, world: World) -> None:
    label = secrets.token_hex(4)
    tree = await world.tree(label)
    retailer = await client.get("/portal", headers=cookie(tree.tenant_token))
    assert retailer.status_code == 403
    admin = await world.token(Grant(Role.PLATFORM_ADMIN))
    chooser = await client.get("/portal/tenants", headers=cookie(admin))
    assert chooser.status_code == 200 and 'data-page="portal-choose"' in chooser.text
    assert 'href="/portal/tenants?partner=' in chooser.text
    chosen = await client.get(f"/portal?partner={tree.partner_id}", headers=cookie(admin))
    assert chosen.status_code == 200 and f"Partner {label}</h1>" in chosen.text
    assert f'href="/portal/tenants?partner={tree.partner_id}"' in chosen.text
    bad = await client.get("/portal?partner=nope", headers=cookie(admin))
    assert bad.status_code == 422 and "is not a partner id" in bad.text


async def test_a_partner_never_sees_another_partners_rows(
    client: httpx.AsyncClient, world: World
) -> None:
    mine, theirs = await fleet(world, size=2), await fleet(world, size=2)
    my_rollout, their_rollout = (
        await start_rollout(client, mine),
        await start_rollout(client, theirs),
    )
    their_secret = f"their-key-{secrets.token_hex(3)}"
    await add_secret(client, theirs.admin, theirs.shops[0].id, their_secret)
    my_value = await add_secret(client, mine.admin, mine.shops[0].id, "erp-api-key")
    seen = ""
    for path in [*PAGES, f"/portal/tenants/{mine.shops[0].id}"]:
        page = await client.get(path, headers=cookie(mine.admin))
        assert page.status_code == 200, (path, page.text)
        seen += page.text
    assert all(str(s.id) in seen for s in mine.shops) and my_rollout in seen
    assert "erp-api-key" in seen and my_value not in seen
    for hidden in [*theirs.ids(), their_rollout, their_secret, theirs.slug]:
        assert hidden not in seen
    other = await client.get(f"/portal/tenants/{theirs.shops[0].id}", headers=cookie(mine.admin))
    assert other.status_code == 404
    chosen = await client.get(f"/portal?partner={theirs.partner_id}", headers=cookie(mine.admin))
    assert chosen.status_code == 404
    rollouts = await client.get("/portal/rollouts", headers=cookie(mine.admin))
    assert f'data-rollout="{my_rollout}"' in rollouts.text and "1 of 2" in rollouts.text
    assert "1: applying (1)</li>" in rollouts.text and "2: waiting (1)</li>" in rollouts.text
    operator = await client.get(f"/portal/tenants/{mine.shops[0].id}", headers=cookie(mine.reader))
    assert operator.status_code == 200 and "erp-api-key" not in operator.text
    assert "secrets:read" in operator.text and "Health not shown" in operator.text
    assert "/noc/tenants/" not in operator.text


async def test_onboarding_through_the_form_shows_the_token_once(
    client: httpx.AsyncClient, world: World
) -> None:
    tree = await world.tree()
    slug = f"fresh-{secrets.token_hex(3)}"
    form = {"slug": slug, "name": "FreshMart Stores", "timezone": "Europe/Paris"}
    answer = await client.post(
        "/portal/tenants", data=form, headers={**cookie(tree.partner_token), **ORIGIN}
    )
    assert answer.status_code == 200, answer.text
    assert 'data-page="portal-onboarded"' in answer.text
    assert answer.headers["cache-control"] == "no-store"
    token = re.search(r"<code data-bootstrap-token>(sobt_[\w-]+)</code>", answer.text)
    assert token, answer.text
    tenant_id = re.search(r"<code>([0-9a-f-]{36})</code>", answer.text)
    assert tenant_id
    listed = await client.get("/portal/tenants", headers=cookie(tree.partner_token))
    assert f'data-tenant-id="{tenant_id.group(1)}"' in listed.text and slug in listed.text
    detail = await client.get(
        f"/portal/tenants/{tenant_id.group(1)}", headers=cookie(tree.partner_token)
    )
    assert detail.status_code == 200 and "onboarding" in detail.text
    for later in (listed, detail):
        assert token.group(1) not in later.text
    exchanged = await client.post("/runtime/v1/bootstrap", json={"token": token.group(1)})
    assert exchanged.status_code == 200, exchanged.text


@pytest.mark.parametrize(
    ("form", "status", "message"),
    [
        (
            {"slug": "t-{label}", "name": "Again", "timezone": "UTC"},
            409,
            "partner p-{label} already has a tenant with slug &#39;t-{label}&#39;",
        ),
        (
            {"slug": "mars-{label}", "name": "Mars", "timezone": "Mars/Olympus"},
            422,
            "timezone: &#39;Mars/Olympus&#39; is not an IANA time zone (for example &#39;Europe/Paris&#39;)",
        ),
        (
            {"slug": "Bad Slug", "name": "Bad", "timezone": "UTC"},
            422,
            "Expected lowercase letters, digits and inner hyphens, 1-63 characters - at `$.slug`",
        ),
    ],
)
async def test_a_bad_onboarding_shows_the_precise_error(
    client: httpx.AsyncClient, world: World, form: dict[str, str], status: int, message: str
) -> None:
    label = secrets.token_hex(3)
    tree = await world.tree(label)
    filled = {k: v.format(label=label) for k, v in form.items()}
    answer = await client.post(
        "/portal/tenants", data=filled, headers={**cookie(tree.partner_token), **ORIGIN}
    )
    assert answer.status_code == status, answer.text
    assert 'data-page="portal-tenants"' in answer.text
    assert message.format(label=label) in answer.text
    assert "Traceback" not in answer.text and "sobt_" not in answer.text
    assert f'value="{filled["name"]}"' in answer.text
    listed = await client.get("/portal/tenants", headers=cookie(tree.partner_token))
    assert listed.text.count("data-tenant-id=") == 1


async def test_cross_origin_posts_are_refused(client: httpx.AsyncClient, world: World) -> None:
    tree = await world.tree()
    form = {"slug": f"x-{secrets.token_hex(3)}", "name": "X", "timezone": "UTC"}
    for path in ("/portal/tenants", "/portal/brand/publish", "/portal/brand/rollback"):
        refused = await client.post(
            path,
            data=form,
            headers={**cookie(tree.partner_token), "Origin": "https://evil.example"},
        )
        assert refused.status_code == 403, path
        assert "cross-origin" in refused.json()["type"]
    listed = await client.get("/portal/tenants", headers=cookie(tree.partner_token))
    assert form["slug"] not in listed.text


async def test_publish_and_rollback_through_the_brand_page(
    client: httpx.AsyncClient, world: World
) -> None:
    tree = await world.tree()
    await publish_via_api(client, tree, product_name="First Look")
    draft = await save_draft(client, tree, product_name="Second Look")
    page = await client.get("/portal/brand", headers=cookie(tree.partner_token))
    assert 'data-published-version="1"' in page.text and 'data-draft-version="2"' in page.text
    token = draft["preview_url"].split("preview=")[1]
    assert f'href="/login?preview={token}"' in page.text
    assert 'data-action="publish"' in page.text and 'data-action="rollback"' in page.text

    reader = await operator_token(world, tree.partner_id)
    view = await client.get("/portal/brand", headers=cookie(reader))
    assert view.status_code == 200 and 'data-action="publish"' not in view.text
    for path in ("/portal/brand/publish", "/portal/brand/rollback"):
        refused = await client.post(
            path, data={"version": "2"}, headers={**cookie(reader), **ORIGIN}
        )
        assert refused.status_code == 403 and "brand:write" in refused.text
    assert await published_number(client, tree) == 1

    done = await client.post(
        "/portal/brand/publish",
        data={"version": "2"},
        headers={**cookie(tree.partner_token), **ORIGIN},
    )
    assert done.status_code == 303 and done.headers["location"] == "/portal/brand?done=published"
    assert await published_number(client, tree) == 2
    after = await client.get(done.headers["location"], headers=cookie(tree.partner_token))
    assert "The draft is published" in after.text and "data-draft-version" not in after.text

    again = await client.post(
        "/portal/brand/publish",
        data={"version": "2"},
        headers={**cookie(tree.partner_token), **ORIGIN},
    )
    assert again.status_code == 409 and "no draft theme to publish" in again.text

    back = await client.post(
        "/portal/brand/rollback", data={}, headers={**cookie(tree.partner_token), **ORIGIN}
    )
    assert back.status_code == 303 and back.headers["location"] == "/portal/brand?done=rolled-back"
    assert await published_number(client, tree) == 1


async def test_the_portal_wears_the_brand_of_the_partners_host(
    client: httpx.AsyncClient,
    anonymous: httpx.AsyncClient,
    world: World,
    app: Litestar,
    settings: Settings,
    self_check: None,
) -> None:
    mine, theirs = await world.tree(), await world.tree()
    product = f"Northwind Ops {secrets.token_hex(3)}"
    other = f"Southwind Desk {secrets.token_hex(3)}"
    await publish_via_api(client, mine, product_name=product)
    await publish_via_api(client, theirs, product_name=other)
    host = f"portal-{secrets.token_hex(4)}.example.com"
    claimed = await client.post(
        "/api/v1/domains",
        json={"hostname": host, "partner_id": str(mine.partner_id)},
        headers=bearer(mine.partner_token),
    )
    assert claimed.status_code == 201, claimed.text
    verified = await client.post(
        f"/api/v1/domains/{claimed.json()['id']}/verify", headers=bearer(mine.partner_token)
    )
    assert verified.status_code == 200, verified.text

    page = await client.get("/portal", headers={**cookie(mine.partner_token), "Host": host})
    assert page.status_code == 200, page.text
    assert f'<span class="product">{product}</span>' in page.text
    assert 'data-brand-source="partner"' in page.text and other not in page.text
    brand = await client.get("/portal/brand", headers={**cookie(mine.partner_token), "Host": host})
    assert f'data-domain="{host}"' in brand.text and "verified" in brand.text

    email = f"admin-{secrets.token_hex(3)}@example.com"
    await create_user(
        settings,
        app.state.db,
        email,
        ids.GrantSpec(role=Role.PARTNER_ADMIN, partner_id=mine.partner_id),
    )
    login = await anonymous.post(
        "/login", data={"email": email, "password": PASSWORD}, headers={"Host": host}
    )
    assert login.status_code == 303 and login.headers["location"] == "/portal"
    platform = await anonymous.post("/login", data={"email": email, "password": PASSWORD})
    assert platform.headers["location"] == "/noc"
