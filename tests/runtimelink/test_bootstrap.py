"""Runtime bootstrap: one token, one use, one hour; only its digest is kept."""

from __future__ import annotations

import hashlib
import shlex
from collections.abc import Iterator
from datetime import UTC, datetime

import asyncpg
import httpx
import pytest
from click.testing import CliRunner

from control_plane.cli import main
from control_plane.config import Settings, get_settings
from control_plane.context import Ctx
from control_plane.identity.principal import Grant
from control_plane.identity.roles import Role
from control_plane.runtimelink import bootstrap
from control_plane.secrets.factory import make_store
from control_plane.tenancy import lifecycle
from control_plane.tenancy import schemas as ts
from tests.api.test_conventions import assert_problem
from tests.conftest import World, bearer
from tests.deployments.support import Fleet, fleet
from tests.runtimelink.support import access_token, exchange, issue


@pytest.fixture
async def f(world: World) -> Fleet:
    return await fleet(world)


async def admin_fetch(settings: Settings, sql: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(settings.admin_database_url.replace("+asyncpg", ""))
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


async def test_issue_and_exchange(client: httpx.AsyncClient, f: Fleet, settings: Settings) -> None:
    issued = await issue(client, f)
    token = issued["token"]
    assert token.startswith("sobt_") and len(token) >= 45
    assert issued["tenant_id"] == str(f.tenant_id)
    assert issued["exchange_url"] == "http://testserver/runtime/v1/bootstrap"
    lifetime = datetime.fromisoformat(issued["expires_at"]) - datetime.now(UTC)
    assert 3500 < lifetime.total_seconds() <= 3600

    rows = await admin_fetch(
        settings, "SELECT * FROM bootstrap_tokens WHERE tenant_id = $1", f.tenant_id
    )
    assert len(rows) == 1
    assert rows[0]["token_hash"] == hashlib.sha256(token.encode()).hexdigest()
    assert token not in str(dict(rows[0])), "only the digest is stored"

    res = await exchange(client, token)
    assert res.status_code == 200, res.text
    assert res.headers["cache-control"] == "no-store"
    creds = res.json()
    assert set(creds) == {"tenant_id", "client_id", "client_secret", "token_url"}
    assert creds["tenant_id"] == str(f.tenant_id)
    assert creds["token_url"] == "http://testserver/oauth/token"

    got = await access_token(client, creds["client_id"], creds["client_secret"])
    assert got.status_code == 200, got.text
    assert got.json()["scope"] == "tenant_runtime"
    state = await client.get(
        "/runtime/v1/desired-state", headers=bearer(got.json()["access_token"])
    )
    assert state.status_code == 200, state.text
    assert state.json()["tenant_id"] == str(f.tenant_id)

    clients = await client.get(
        f"/api/v1/clients/{await _client_uuid(settings, creds['client_id'])}",
        headers=bearer(f.tree.partner_token),
    )
    assert clients.status_code == 200, clients.text
    assert [g["role"] for g in clients.json()["grants"]] == ["tenant_runtime"]
    assert clients.json()["grants"][0]["tenant_id"] == str(f.tenant_id)


async def _client_uuid(settings: Settings, client_id: str) -> str:
    rows = await admin_fetch(settings, "SELECT id FROM api_clients WHERE client_id = $1", client_id)
    return str(rows[0]["id"])


async def test_a_token_is_single_use(client: httpx.AsyncClient, f: Fleet) -> None:
    token = (await issue(client, f))["token"]
    assert (await exchange(client, token)).status_code == 200
    again = await exchange(client, token)
    problem = assert_problem(again, 409, "bootstrap-token-used")
    assert "already used" in problem["detail"]


async def test_an_expired_token_is_410(
    client: httpx.AsyncClient, f: Fleet, settings: Settings
) -> None:
    token = (await issue(client, f))["token"]
    await admin_fetch(
        settings,
        "UPDATE bootstrap_tokens SET expires_at = now() - interval '1 second' "
        "WHERE token_hash = $1",
        hashlib.sha256(token.encode()).hexdigest(),
    )
    problem = assert_problem(await exchange(client, token), 410, "bootstrap-token-expired")
    assert "expired" in problem["detail"]


@pytest.mark.parametrize(
    "token",
    ["garbage", "sobt_" + "A" * 43, "sobt_", "x" * 150, "sobt_' OR 1=1 --"],
    ids=["garbage", "unknown", "empty", "long", "injection"],
)
async def test_unknown_tokens_are_401(client: httpx.AsyncClient, token: str) -> None:
    problem = assert_problem(await exchange(client, token), 401, "unauthorized")
    assert problem["detail"] == "the bootstrap token is not valid"


async def test_malformed_exchange_requests(client: httpx.AsyncClient) -> None:
    assert_problem(await client.post("/runtime/v1/bootstrap", json={}), 400)
    assert_problem(await client.post("/runtime/v1/bootstrap", json={"token": ""}), 400)
    assert_problem(await client.post("/runtime/v1/bootstrap", json={"token": "a" * 201}), 400)


async def test_a_new_token_revokes_earlier_unused_ones(client: httpx.AsyncClient, f: Fleet) -> None:
    first = (await issue(client, f))["token"]
    second = (await issue(client, f))["token"]
    problem = assert_problem(await exchange(client, first), 410, "bootstrap-token-revoked")
    assert "newer one" in problem["detail"]
    assert (await exchange(client, second)).status_code == 200


async def test_rebootstrap_retires_the_previous_runtime_client(
    client: httpx.AsyncClient, f: Fleet
) -> None:
    old = (await exchange(client, (await issue(client, f))["token"])).json()
    new = (await exchange(client, (await issue(client, f))["token"])).json()
    assert old["client_id"] != new["client_id"]
    assert (await access_token(client, old["client_id"], old["client_secret"])).status_code == 401
    assert (await access_token(client, new["client_id"], new["client_secret"])).status_code == 200


async def test_who_may_issue(client: httpx.AsyncClient, f: Fleet, world: World) -> None:
    res = await client.post(f"{f.base}/runtime-bootstrap", headers=bearer(f.tree.tenant_token))
    assert "tenants:lifecycle" in assert_problem(res, 403, "forbidden")["detail"]
    other = await fleet(world)
    res = await client.post(f"{other.base}/runtime-bootstrap", headers=bearer(f.tree.partner_token))
    assert_problem(res, 404, "not-found")
    assert_problem(await client.post(f"{f.base}/runtime-bootstrap"), 401)


async def test_issue_and_exchange_are_audited(client: httpx.AsyncClient, f: Fleet) -> None:
    token = (await issue(client, f))["token"]
    await issue(client, f)
    await exchange(client, token)
    res = await client.get(
        "/api/v1/audit",
        params={"tenant_id": str(f.tenant_id), "action": "bootstrap_token.*"},
        headers=bearer(f.tree.partner_token),
    )
    entries = res.json()["items"]
    assert [e["action"] for e in entries] == ["bootstrap_token.issue", "bootstrap_token.issue"]
    assert entries[0]["after"]["revoked_earlier"] == 1
    assert token not in res.text
    token = (await issue(client, f))["token"]
    await exchange(client, token)
    res = await client.get(
        "/api/v1/audit",
        params={"tenant_id": str(f.tenant_id), "action": "bootstrap_token.exchange"},
        headers=bearer(f.tree.partner_token),
    )
    assert len(res.json()["items"]) == 1


async def test_onboarding_issues_a_token(
    client: httpx.AsyncClient, world: World, settings: Settings
) -> None:
    f = await fleet(world)
    store = make_store(settings)

    async def onboard(c: Ctx) -> tuple[str, str]:
        tenant = await lifecycle.onboard(
            c,
            store,
            f.tree.partner_id,
            ts.TenantCreate(slug="onboarded", name="Onboarded", timezone="Europe/Paris"),
        )
        issued = bootstrap.onboarding_token(tenant)
        assert issued is not None
        return str(tenant.id), issued.token

    tenant_id, token = await world.run(onboard)
    res = await exchange(client, token)
    assert res.status_code == 200, res.text
    assert res.json()["tenant_id"] == tenant_id
    # Through the API too: the onboarding leaves one unused token behind.
    res = await client.post(
        f"/api/v1/partners/{f.tree.partner_id}/tenants",
        json={"slug": "via-api", "name": "Via API", "timezone": "UTC"},
        headers=bearer(f.tree.partner_token),
    )
    assert res.status_code == 201, res.text
    rows = await admin_fetch(
        settings,
        "SELECT used_at, revoked_at FROM bootstrap_tokens WHERE tenant_id = $1",
        res.json()["id"],
    )
    assert [(r["used_at"], r["revoked_at"]) for r in rows] == [(None, None)]


@pytest.fixture
def cli(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.setenv("STOREOPS_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("STOREOPS_HOME", str(settings.home))
    monkeypatch.setenv("STOREOPS_PUBLIC_URL", "http://testserver")
    monkeypatch.setenv("STOREOPS_BOOTSTRAP_TOKEN_TTL_SECONDS", "600")
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def test_cli_bootstrap_token(f: Fleet, cli: CliRunner) -> None:
    result = cli.invoke(main, shlex.split(f"tenant bootstrap-token {f.tenant_id}"))
    assert result.exit_code == 0, result.output
    token = next(w for w in result.output.split() if w.startswith("sobt_"))
    assert "exchange at     http://testserver/runtime/v1/bootstrap" in result.output
    expires = datetime.fromisoformat(result.output.split("expires")[1].split()[0])
    assert 500 < (expires - datetime.now(UTC)).total_seconds() <= 600
    assert "not shown again" in result.output
    assert len(token) >= 45
    refused = cli.invoke(main, shlex.split("tenant bootstrap-token no-such-tenant"))
    assert refused.exit_code == 1 and "no tenant" in refused.output


async def test_onboarding_answers_with_the_runtimes_first_token(
    client: httpx.AsyncClient, world: World
) -> None:
    tree = await world.tree()
    admin = await world.token(Grant(role=Role.PARTNER_ADMIN, partner_id=tree.partner_id))
    res = await client.post(
        f"/api/v1/partners/{tree.partner_id}/tenants",
        json={"slug": "onboarded-now", "name": "Onboarded Now", "timezone": "Europe/Paris"},
        headers=bearer(admin),
    )
    assert res.status_code == 201, res.text
    shown = res.json()["runtime_bootstrap"]
    assert shown["exchange_url"].endswith("/runtime/v1/bootstrap")
    first = await exchange(client, shown["token"])
    assert first.status_code == 200 and first.json()["tenant_id"] == res.json()["id"]
    again = await exchange(client, shown["token"])
    assert again.status_code == 409
    # Reading the tenant later never shows a token.
    read = await client.get(f"/api/v1/tenants/{res.json()['id']}", headers=bearer(admin))
    assert "runtime_bootstrap" not in read.json()
