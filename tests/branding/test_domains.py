"""Custom domains and Host resolution: a claim proves itself through its challenge; only a
verified domain brands requests; an unknown, pending or IP host gets the platform default,
never another partner's brand; a hostname serves one claim at a time."""

from __future__ import annotations

import httpx
import pytest

from control_plane.branding import resolve
from control_plane.branding.domains import fetch_challenge
from tests.branding.conftest import PALETTE, hostname, publish_theme, verified_domain
from tests.conftest import World, bearer

pytestmark = pytest.mark.usefixtures("self_check")


async def brand_name(client: httpx.AsyncClient, host: str) -> str:
    answer = await client.get("/api/v1/brand", headers={"Host": host})
    assert answer.status_code == 200, answer.text
    name: str = answer.json()["product_name"]
    return name


async def branded_partner(client: httpx.AsyncClient, world: World, name: str) -> tuple[object, str]:
    tree = await world.tree()
    path = f"/api/v1/partners/{tree.partner_id}/brand"
    await publish_theme(client, tree.partner_token, path, product_name=name, colors=PALETTE)
    return tree, tree.partner_token


async def test_host_resolution(client: httpx.AsyncClient, world: World) -> None:
    a = await world.tree()
    b = await world.tree()
    for tree, name in ((a, "Alpha Retail Cloud"), (b, "Beta Store Ops")):
        await publish_theme(
            client,
            tree.partner_token,
            f"/api/v1/partners/{tree.partner_id}/brand",
            product_name=name,
            colors=PALETTE,
        )
    host_a, host_b, pending = hostname("alpha"), hostname("beta"), hostname("pending")
    await verified_domain(client, a.partner_token, host_a, partner_id=a.partner_id)
    await verified_domain(client, b.partner_token, host_b, partner_id=b.partner_id)
    claim = await client.post(
        "/api/v1/domains",
        json={"hostname": pending, "partner_id": str(a.partner_id)},
        headers=bearer(a.partner_token),
    )
    assert claim.status_code == 201 and claim.json()["status"] == "pending"

    assert await brand_name(client, host_a) == "Alpha Retail Cloud"
    assert await brand_name(client, host_b) == "Beta Store Ops"
    # Case, port and a trailing dot do not matter.
    assert await brand_name(client, f"{host_a.upper()}.:8443") == "Alpha Retail Cloud"
    # Unknown, unverified, IP and missing hosts: the platform, never a partner.
    for host in ("unknown.example.org", pending, "203.0.113.7"):
        assert await brand_name(client, host) == "StoreOps", host
    # The login page follows the same resolution.
    page_a = (await client.get("/login", headers={"Host": host_a})).text
    assert "Alpha Retail Cloud" in page_a and "Beta Store Ops" not in page_a
    page_pending = (await client.get("/login", headers={"Host": pending})).text
    assert "Alpha Retail Cloud" not in page_pending


async def test_a_tenant_domain_wears_the_tenant_override(
    client: httpx.AsyncClient, world: World
) -> None:
    tree = await world.tree()
    await publish_theme(
        client, tree.partner_token, f"/api/v1/partners/{tree.partner_id}/brand",
        product_name="Partner Suite", colors=PALETTE,
    )  # fmt: skip
    await publish_theme(
        client, tree.tenant_token, f"/api/v1/tenants/{tree.tenant_id}/brand",
        product_name="FreshMart Ops",
    )  # fmt: skip
    portal, shop = hostname("portal"), hostname("shop")
    await verified_domain(client, tree.partner_token, portal, partner_id=tree.partner_id)
    domain = await verified_domain(client, tree.tenant_token, shop, tenant_id=tree.tenant_id)
    assert (domain["purpose"], domain["status"]) == ("tenant", "verified")
    assert await brand_name(client, portal) == "Partner Suite"
    assert await brand_name(client, shop) == "FreshMart Ops"


async def test_publishing_shows_at_once(client: httpx.AsyncClient, world: World) -> None:
    tree = await world.tree()
    host = hostname()
    await verified_domain(client, tree.partner_token, host, partner_id=tree.partner_id)
    assert await brand_name(client, host) == "StoreOps"  # nothing published yet: default
    path = f"/api/v1/partners/{tree.partner_id}/brand"
    await publish_theme(client, tree.partner_token, path, product_name="First Look")
    assert await brand_name(client, host) == "First Look"
    deleted = await client.get("/api/v1/domains", headers=bearer(tree.partner_token))
    domain_id = deleted.json()["items"][0]["id"]
    assert (
        await client.delete(f"/api/v1/domains/{domain_id}", headers=bearer(tree.partner_token))
    ).status_code == 204
    assert await brand_name(client, host) == "StoreOps"


async def test_a_hostname_serves_one_claim(client: httpx.AsyncClient, world: World) -> None:
    a, b = await world.tree(), await world.tree()
    host = hostname("taken")
    await verified_domain(client, a.partner_token, host, partner_id=a.partner_id)
    again = await client.post(
        "/api/v1/domains",
        json={"hostname": host.upper(), "partner_id": str(b.partner_id)},
        headers=bearer(b.partner_token),
    )
    assert again.status_code == 409
    assert again.json()["detail"].startswith(f"hostname '{host}' is already claimed (verified)")
    # B cannot see A's domain at all.
    listed = await client.get("/api/v1/domains", headers=bearer(b.partner_token))
    assert host not in listed.text
    mine = await client.post(
        "/api/v1/domains",
        json={"hostname": host, "partner_id": str(a.partner_id)},
        headers=bearer(a.partner_token),
    )
    assert "already claimed by this partner" in mine.json()["detail"]


async def test_a_wrong_challenge_is_kept_and_refused(
    client: httpx.AsyncClient, world: World
) -> None:
    tree = await world.tree()
    host = hostname("wrong")
    claim = await client.post(
        "/api/v1/domains",
        json={"hostname": host, "partner_id": str(tree.partner_id)},
        headers=bearer(tree.partner_token),
    )
    domain = claim.json()
    assert (
        domain["challenge_path"] == f"/.well-known/storeops-challenge/{domain['challenge_token']}"
    )
    original = world.app.state.domain_http
    world.app.state.domain_http = httpx.AsyncClient(
        transport=httpx.MockTransport(lambda r: httpx.Response(200, text="something else"))
    )
    try:
        answer = await client.post(
            f"/api/v1/domains/{domain['id']}/verify", headers=bearer(tree.partner_token)
        )
    finally:
        world.app.state.domain_http = original
    assert answer.status_code == 422
    body = answer.json()
    assert body["type"].endswith("domain-unverified")
    assert "answered 'something else', not the challenge token" in body["detail"]
    kept = await client.get(f"/api/v1/domains/{domain['id']}", headers=bearer(tree.partner_token))
    assert kept.json()["status"] == "pending" and "something else" in kept.json()["check_error"]
    assert await brand_name(client, host) == "StoreOps"


async def test_the_challenge_is_answered_only_for_its_host(
    client: httpx.AsyncClient, world: World
) -> None:
    tree = await world.tree()
    host = hostname("chal")
    claim = await client.post(
        "/api/v1/domains",
        json={"hostname": host, "partner_id": str(tree.partner_id)},
        headers=bearer(tree.partner_token),
    )
    token = claim.json()["challenge_token"]
    path = f"/.well-known/storeops-challenge/{token}"
    assert (await client.get(path, headers={"Host": host})).text == token
    assert (await client.get(path, headers={"Host": "other.example.com"})).status_code == 404


BAD_HOSTNAMES = [
    ("https://shop.example.com", "is a URL or has a port"),
    ("shop.example.com:8443", "is a URL or has a port"),
    ("192.0.2.10", "is an IP address"),
    ("localhost", "is not a hostname"),
    ("-bad-.example.com", "is not a hostname"),
    ("under_score.example.com", "is not a hostname"),
    ("a" * 64 + ".example.com", "is not a hostname"),
    ("shop.123", "ends in a numeric label"),
    ("<script>.example.com", "is not a hostname"),
    ("bücher..example", "is not a valid internationalised domain name"),
]


@pytest.mark.parametrize(("raw", "message"), BAD_HOSTNAMES)
async def test_bad_hostnames_are_refused(
    client: httpx.AsyncClient, world: World, raw: str, message: str
) -> None:
    tree = await world.tree()
    answer = await client.post(
        "/api/v1/domains",
        json={"hostname": raw, "partner_id": str(tree.partner_id)},
        headers=bearer(tree.partner_token),
    )
    assert answer.status_code == 422, answer.text
    assert message in answer.json()["detail"]


def test_host_header_normalisation() -> None:
    assert resolve.hostname("Shop.Example.COM.:443") == "shop.example.com"
    assert resolve.hostname("shop.example.com") == "shop.example.com"
    assert resolve.hostname("10.0.0.1:80") is None
    assert resolve.hostname("[::1]:8000") is None
    assert resolve.hostname(None) is None


async def test_a_localhost_challenge_goes_to_loopback() -> None:
    seen: list[tuple[str, str]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append((str(request.url), request.headers["host"]))
        return httpx.Response(200, text="tok\n")

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        body = await fetch_challenge(
            "http://northstar.localhost:8000/.well-known/storeops-challenge/tok", http
        )
    assert body == "tok"
    assert seen == [
        (
            "http://127.0.0.1:8000/.well-known/storeops-challenge/tok",
            "northstar.localhost:8000",
        )
    ]
