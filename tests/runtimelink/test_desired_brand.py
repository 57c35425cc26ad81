"""The desired state carries the tenant's effective brand, images inline: publishing or
rolling back a theme (the partner's or the tenant's own) changes the document and its ETag,
and wakes the runtime's long poll."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Awaitable, Callable

import asyncpg
import httpx
import msgspec
import pytest

from control_plane.config import Settings
from control_plane.contracts.desired_state import DesiredState
from tests.conftest import World, bearer
from tests.deployments.support import Fleet, fleet
from tests.runtimelink.brand_support import palette, png, publish, rollback, upload
from tests.runtimelink.support import runtime_token

URL = "/runtime/v1/desired-state"


@pytest.fixture
async def f(world: World) -> Fleet:
    return await fleet(world)


async def pull(client: httpx.AsyncClient, token: str, **headers: str) -> httpx.Response:
    res = await client.get(URL, headers={**bearer(token), **headers})
    assert res.status_code in (200, 304), res.text
    return res


async def test_the_document_carries_the_effective_brand_and_its_etag_follows_it(
    client: httpx.AsyncClient, f: Fleet, world: World
) -> None:
    token = await runtime_token(client, f)
    partner = f.tree.partner_token
    first = await pull(client, token)
    assert first.json()["brand"]["source"] == "platform"
    assert first.json()["brand"]["product_name"] == "StoreOps"

    logo = png((12, 90, 60))
    sha = await upload(client, partner, "partner", f.tree.partner_id, logo)
    await publish(
        client, partner, "partner", f.tree.partner_id,
        product_name="Northstar Ops", colors=palette("#0b5e3c"), logo=sha,
        email_sender_name="Northstar", support_email="help@northstar.example",
    )  # fmt: skip
    partner_wide = await pull(client, token)
    assert partner_wide.headers["etag"] != first.headers["etag"]
    brand = partner_wide.json()["brand"]
    assert (brand["source"], brand["product_name"]) == ("partner", "Northstar Ops")
    assert brand["colors"]["primary"] == "#0b5e3c"
    assert brand["versions"] == {"partner": 1}
    assert base64.b64decode(brand["logo"]["data"]) == logo, "the image travels inline"
    assert brand["logo"]["url"] == f"http://testserver/brand-assets/{sha}"
    decoded = msgspec.json.decode(partner_wide.content, type=DesiredState)
    assert decoded.brand is not None and decoded.brand.logo is not None
    assert decoded.brand.logo.content() == logo
    # Unchanged: the same bytes, a 304.
    same = await pull(client, token, **{"If-None-Match": partner_wide.headers["etag"]})
    assert same.status_code == 304

    await publish(client, partner, "tenant", f.tenant_id, product_name="FreshMart Stores")
    overridden = await pull(client, token)
    assert overridden.headers["etag"] != partner_wide.headers["etag"]
    brand = overridden.json()["brand"]
    assert (brand["source"], brand["product_name"]) == ("tenant", "FreshMart Stores")
    assert brand["colors"]["primary"] == "#0b5e3c", "the rest is inherited from the partner"

    await publish(client, partner, "partner", f.tree.partner_id, colors=palette("#6a1b9a"))
    recoloured = await pull(client, token)
    assert recoloured.json()["brand"]["colors"]["primary"] == "#6a1b9a"
    await rollback(client, partner, "partner", f.tree.partner_id)
    rolled_back = await pull(client, token)
    assert rolled_back.headers["etag"] == overridden.headers["etag"]
    assert rolled_back.content == overridden.content

    # Another partner's tenant keeps its own (platform) look.
    other = await fleet(world)
    theirs = (await pull(client, await runtime_token(client, other))).json()["brand"]
    assert theirs["source"] == "platform" and "Northstar" not in str(theirs)


async def _poll_then(
    client: httpx.AsyncClient, token: str, change: Callable[[], Awaitable[None]]
) -> tuple[httpx.Response, float]:
    """Start a long poll, make ``change`` once it waits; the answer and its delay."""
    etag = (await pull(client, token)).headers["etag"]
    poll = asyncio.create_task(
        client.get(URL, params={"wait": 10}, headers={**bearer(token), "If-None-Match": etag})
    )
    await asyncio.sleep(0.3)
    assert not poll.done(), "the poll answered before anything changed"
    await change()
    changed_at = time.monotonic()
    res = await poll
    assert res.status_code == 200, res.text
    assert res.headers["etag"] != etag
    return res, time.monotonic() - changed_at


async def test_a_partner_theme_publish_wakes_the_long_poll(
    client: httpx.AsyncClient, f: Fleet
) -> None:
    token = await runtime_token(client, f)

    async def change() -> None:
        await publish(
            client, f.tree.partner_token, "partner", f.tree.partner_id, product_name="Woken"
        )

    res, elapsed = await _poll_then(client, token, change)
    assert elapsed < 1.5, f"answered {elapsed:.2f}s after the publish"
    assert res.json()["brand"]["product_name"] == "Woken"


async def test_a_theme_published_by_another_process_is_seen(
    client: httpx.AsyncClient, f: Fleet, settings: Settings
) -> None:
    token = await runtime_token(client, f)
    draft = await client.put(
        f"/api/v1/tenants/{f.tenant_id}/brand/draft",
        json={"product_name": "Elsewhere"},
        headers=bearer(f.tree.partner_token),
    )
    assert draft.status_code == 201, draft.text

    async def change() -> None:
        # Straight into the database, as another control-plane process would commit it.
        conn = await asyncpg.connect(settings.admin_database_url.replace("+asyncpg", ""))
        try:
            await conn.execute(
                "UPDATE themes SET status = 'published', published_at = now(), "
                "preview_token = NULL WHERE owner = $1 AND status = 'draft'",
                f"tenant:{f.tenant_id}",
            )
        finally:
            await conn.close()

    res, elapsed = await _poll_then(client, token, change)
    assert elapsed < 1.5, f"answered {elapsed:.2f}s after the publish"
    assert res.json()["brand"]["product_name"] == "Elsewhere"
