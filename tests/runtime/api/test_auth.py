"""Who gets in: tokens checked against the control plane's keys, this tenant only, the
roles the runtime serves; the JWKS is fetched, cached by kid and refetched on rotation."""

from __future__ import annotations

import base64
import json
import time
from typing import Any
from uuid import uuid4

import httpx
import pytest
from joserfc.jwk import OKPKey
from litestar import Litestar

from tenant_runtime.api.auth import TokenVerifier
from tenant_runtime.api.problems import Forbidden, Unauthorized
from tenant_runtime.config import RuntimeSettings
from tenant_runtime.runtime import Runtime
from tests.conftest import World
from tests.runtime.api.conftest import (
    AUDIENCE,
    ISSUER,
    JWKS,
    KID,
    NORTH,
    OTHER_TENANT,
    PARTNER,
    STORE_A,
    TENANT,
    Tokens,
    assert_problem,
    bearer,
    directory,
    grant,
    make_app,
    mint,
    public_jwk,
)

TASKS = "/api/v1/tasks"
ADMIN = grant("retailer_admin", partner_id=PARTNER, tenant_id=TENANT)


def b64(obj: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


async def refused(client: httpx.AsyncClient, token: str | None, status: int = 401) -> str:
    headers = bearer(token) if token is not None else {}
    res = await client.get(TASKS, headers=headers)
    detail: str = assert_problem(res, status)["detail"]
    if status == 401:
        assert res.headers["www-authenticate"].startswith("Bearer")
    return detail


async def test_no_token_is_a_401(client: httpx.AsyncClient) -> None:
    assert "Bearer" in await refused(client, None)
    res = await client.get(TASKS, headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert_problem(res, 401, "unauthorized")


async def test_a_valid_token_gets_in(client: httpx.AsyncClient, tokens: Tokens) -> None:
    res = await client.get(TASKS, headers=bearer(tokens.admin))
    assert res.status_code == 200, res.text
    assert res.json()["items"] is not None


async def test_a_bad_signature_is_a_401(client: httpx.AsyncClient) -> None:
    forged = mint(ADMIN, key=OKPKey.generate_key("Ed25519"))  # same kid, another key
    assert "invalid token" in await refused(client, forged)
    header, claims, signature = mint(ADMIN).split(".")
    tampered = json.loads(base64.urlsafe_b64decode(claims + "=="))
    tampered["grants"] = [grant("retailer_admin", tenant_id=TENANT), *tampered["grants"]]
    assert "invalid token" in await refused(client, f"{header}.{b64(tampered)}.{signature}")


async def test_an_unknown_key_is_a_401(client: httpx.AsyncClient) -> None:
    detail = await refused(client, mint(ADMIN, kid="some-other-kid"))
    assert "does not publish" in detail


async def test_unsigned_or_hmac_tokens_are_refused(client: httpx.AsyncClient) -> None:
    claims = b64({"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "grants": [ADMIN]})
    for alg in ("none", "HS256"):
        header = b64({"alg": alg, "kid": KID, "typ": "at+jwt"})
        assert alg in await refused(client, f"{header}.{claims}.")
    assert "compact JWS" in await refused(client, "not-a-jwt")


async def test_expired_wrong_issuer_or_audience_is_a_401(client: httpx.AsyncClient) -> None:
    past = int(time.time()) - 3600
    assert "exp" in await refused(client, mint(ADMIN, iat=past - 600, nbf=past - 600, exp=past))
    assert "iss" in await refused(client, mint(ADMIN, iss="https://someone-else.example"))
    assert "aud" in await refused(client, mint(ADMIN, aud="another-api"))


async def test_only_access_tokens_are_accepted(client: httpx.AsyncClient) -> None:
    assert "at+jwt" in await refused(client, mint(ADMIN, typ="JWT"))


async def test_another_tenants_token_is_a_401(client: httpx.AsyncClient) -> None:
    other = mint(grant("retailer_admin", partner_id=PARTNER, tenant_id=OTHER_TENANT))
    assert str(TENANT) in await refused(client, other)
    other_store = mint(
        grant("store_manager", tenant_id=OTHER_TENANT, region_id=NORTH, store_id=STORE_A)
    )
    await refused(client, other_store)
    # A partner-wide grant says nothing about this tenant either.
    await refused(client, mint(grant("partner_admin", partner_id=PARTNER)))


async def test_a_role_the_runtime_does_not_serve_is_a_403(client: httpx.AsyncClient) -> None:
    own_runtime = mint(grant("tenant_runtime", partner_id=PARTNER, tenant_id=TENANT))
    detail = await refused(client, own_runtime, 403)
    assert "tenant_runtime" in detail and "store_manager" in detail


async def test_store_manager_grant_without_a_store_admits_nothing(
    client: httpx.AsyncClient,
) -> None:
    await refused(client, mint(grant("store_manager", tenant_id=TENANT)), 403)


async def test_noc_reads_but_does_not_act(client: httpx.AsyncClient, tokens: Tokens) -> None:
    assert (await client.get(TASKS, headers=bearer(tokens.noc))).status_code == 200
    res = await client.post(
        "/api/v1/runs",
        json={"template_id": "markdown-approval", "input": {"sku": "N-1"}},
        headers=bearer(tokens.noc),
    )
    assert_problem(res, 403)


async def test_public_paths_need_no_token(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["database"] == "ok"
    assert (await client.get("/metrics")).status_code == 200
    schema = await client.get("/schema/openapi.json")
    assert schema.status_code == 200
    assert "/api/v1/tasks/{task_id}/decision" in schema.json()["paths"]


async def test_a_token_the_control_plane_issues_is_accepted(
    runtime: Runtime, world: World, app: Litestar
) -> None:
    """Interoperability with the real issuer: its claims, its kid, its published JWKS."""
    tree = await world.tree()
    settings = RuntimeSettings(tenant_id=tree.tenant_id, database_url=runtime.settings.database_url)
    theirs = Runtime(settings, directory=directory())
    runtime_app = make_app(
        theirs, jwks=await app.state.tokens.keyring.jwks(), issuer=app.state.settings.issuer
    )
    transport = httpx.ASGITransport(app=runtime_app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://runtime.test") as c:
            res = await c.get(TASKS, headers=bearer(tree.tenant_token))
            assert res.status_code == 200, res.text
            assert_problem(await c.get(TASKS, headers=bearer(tree.partner_token)), 401)
    finally:
        await theirs.close()


# --- the key cache -------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def control_plane(keys: list[dict[str, Any]], calls: list[str]) -> httpx.AsyncClient:
    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url))
        return httpx.Response(200, json={"keys": list(keys)})

    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


async def test_keys_are_fetched_once_and_refetched_on_an_unknown_kid() -> None:
    published = [public_jwk(OKPKey.generate_key("Ed25519"), "old")]
    calls: list[str] = []
    clock = Clock()
    verifier = TokenVerifier(
        issuer=ISSUER,
        audience=AUDIENCE,
        tenant_id=TENANT,
        jwks_url=f"{ISSUER}/.well-known/jwks.json",
        http=control_plane(published, calls),
        clock=clock,
    )
    new_key = OKPKey.generate_key("Ed25519")
    token = mint(ADMIN, key=new_key, kid="new")
    with pytest.raises(Unauthorized, match="does not publish"):
        await verifier.verify(token)
    assert calls == [f"{ISSUER}/.well-known/jwks.json"]

    published.append(public_jwk(new_key, "new"))  # the control plane rotates
    clock.now += 5
    with pytest.raises(Unauthorized):  # within 30 s of the last fetch: no new request
        await verifier.verify(token)
    assert len(calls) == 1
    clock.now += 30
    caller = await verifier.verify(token)
    assert caller.admin and len(calls) == 2
    for _ in range(3):  # known kid: served from the cache
        await verifier.verify(token)
    assert len(calls) == 2
    clock.now += 301  # the set is refreshed now and then, so retired keys go away
    await verifier.verify(token)
    assert len(calls) == 3


async def test_keys_held_keep_working_while_the_control_plane_is_away() -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    clock = Clock()
    verifier = TokenVerifier(
        issuer=ISSUER,
        audience=AUDIENCE,
        tenant_id=TENANT,
        jwks=JWKS,
        jwks_url=f"{ISSUER}/.well-known/jwks.json",
        http=httpx.AsyncClient(transport=httpx.MockTransport(down)),
        clock=clock,
    )
    assert (await verifier.verify(mint(ADMIN))).admin
    clock.now += 3600
    assert (await verifier.verify(mint(ADMIN))).admin


async def test_roles_outside_this_tenant_are_refused_in_the_verifier() -> None:
    verifier = TokenVerifier(issuer=ISSUER, audience=AUDIENCE, tenant_id=TENANT, jwks=JWKS)
    with pytest.raises(Forbidden):
        await verifier.verify(mint(grant("partner_operator", tenant_id=TENANT)))
    caller = await verifier.verify(
        mint(ADMIN, grant("store_manager", tenant_id=uuid4(), store_id=uuid4()))
    )
    assert caller.roles == {"retailer_admin"} and not caller.store_ids
