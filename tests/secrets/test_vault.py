"""The Vault backend through hvac: against the Vault simulator always, and against a real
Vault too when VAULT_ADDR and VAULT_TOKEN are set (marker ``vault``)."""

from __future__ import annotations

import os
import secrets as random
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from uuid import UUID, uuid4

import httpx
import hvac
import pytest
from hvac import exceptions as vault_errors

from control_plane.app import create_app
from control_plane.config import Settings
from control_plane.identity.principal import Grant
from control_plane.identity.roles import Role
from control_plane.secrets.local import LocalSecretStore, generate_master_key
from control_plane.secrets.store import (
    CasMismatch,
    SecretNotFound,
    SecretPath,
    SecretStore,
)
from control_plane.secrets.vault import VaultSecretStore
from tenant_runtime.secrets import SecretUnavailable, VaultProvider
from tests.conftest import World, bearer
from tests.vaultsim.fixtures import VaultSimFactory, vault_sim_factory  # noqa: F401
from tests.vaultsim.server import VaultSim

REAL_VAULT = os.environ.get("VAULT_ADDR"), os.environ.get("VAULT_TOKEN")


@pytest.fixture
def sim(vault_sim_factory: VaultSimFactory) -> VaultSim:  # noqa: F811
    """Behaves as real Vault does: deleting a role does not revoke the tokens it issued."""
    return vault_sim_factory(approle_mounts=("approle",), role_delete_revokes_tokens=False)


@pytest.fixture(
    params=[
        "local",
        "vault-sim",
        pytest.param("vault-real", marks=pytest.mark.vault),
    ]
)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SecretStore]:
    kind = request.param
    if kind == "local":
        yield LocalSecretStore(tmp_path / "secrets", generate_master_key(), "k1")
    elif kind == "vault-sim":
        running: VaultSim = request.getfixturevalue("sim")
        yield VaultSecretStore.connect(
            running.url, running.root_token, prefix=f"t{random.token_hex(4)}"
        )
    else:
        addr, token = REAL_VAULT
        if not (addr and token):
            pytest.skip("a real Vault runs only when VAULT_ADDR and VAULT_TOKEN are set")
        yield VaultSecretStore.connect(addr, token, prefix=f"storeops-test-{random.token_hex(4)}")


async def test_store_contract(store: SecretStore) -> None:
    tenant = uuid4()
    path = SecretPath("tenants", tenant, "erp-key")
    first = await store.put(path, "one", actor="user:a", cas=0)
    assert first.version == 1 and first.updated_by == "user:a"
    with pytest.raises(CasMismatch):
        await store.put(path, "again", actor="user:a", cas=0)
    second = await store.put(path, "two", actor="user:b", cas=1)
    assert second.version == 2
    with pytest.raises(CasMismatch):
        await store.put(path, "stale", actor="user:b", cas=1)
    assert (await store.read(path)).value == "two"
    assert (await store.read(path, version=1)).value == "one"
    assert [m.name for m in await store.list_secrets("tenants", tenant)] == ["erp-key"]
    assert await store.list_secrets("tenants", uuid4()) == []
    await store.delete(path)
    assert (await store.metadata(path)).deleted
    with pytest.raises(SecretNotFound):
        await store.read(path)
    await store.undelete(path, [2])
    assert (await store.read(path)).value == "two"
    await store.destroy(path, [1])
    with pytest.raises(SecretNotFound):
        await store.read(path, version=1)
    await store.purge(path)
    with pytest.raises(SecretNotFound):
        await store.metadata(path)


@pytest.fixture
def vault_store(sim: VaultSim) -> VaultSecretStore:
    return VaultSecretStore.connect(sim.url, sim.root_token)


async def test_a_tenant_runtime_reads_its_own_path_only(
    vault_store: VaultSecretStore,
    sim: VaultSim,
) -> None:
    a, b = uuid4(), uuid4()
    for tenant, value in ((a, "value-a"), (b, "value-b")):
        await vault_store.put(SecretPath("tenants", tenant, "pos-key"), value, actor="t")
    role_id = await vault_store.provision_tenant(a)
    wrapped = await vault_store.wrapped_secret_id(a)
    runtime = VaultProvider(sim.url, a, role_id, wrapped["token"])
    assert await runtime.get("pos-key") == "value-a"
    # The same token against B's path: Vault's policy says no (403).
    client = hvac.Client(url=sim.url, token=runtime.client.token)
    with pytest.raises(vault_errors.Forbidden):
        client.secrets.kv.v2.read_secret_version(path=f"storeops/tenants/{b}/pos-key")
    with pytest.raises(vault_errors.Forbidden):
        client.secrets.kv.v2.create_or_update_secret(
            path=f"storeops/tenants/{a}/pos-key", secret={"value": "x"}
        )
    # The wrapped secret_id was single use.
    with pytest.raises(vault_errors.InvalidRequest):
        hvac.Client(url=sim.url).sys.unwrap(token=wrapped["token"])
    # Offboarding: no new logins, and the issued token loses access.
    await vault_store.revoke_tenant(a)
    with pytest.raises(vault_errors.Forbidden):
        client.secrets.kv.v2.read_secret_version(path=f"storeops/tenants/{a}/pos-key")
    fresh = VaultProvider(sim.url, a, role_id, (await _maybe_wrapped(vault_store, a)) or "none")
    with pytest.raises(SecretUnavailable):
        await fresh.get("pos-key")


async def _maybe_wrapped(store: VaultSecretStore, tenant: UUID) -> str | None:
    try:
        return str((await store.wrapped_secret_id(tenant))["token"])
    except Exception:
        return None


async def test_the_runtime_renews_its_token(
    vault_store: VaultSecretStore,
    sim: VaultSim,
) -> None:
    tenant = uuid4()
    await vault_store.put(SecretPath("tenants", tenant, "hr-key"), "v", actor="t")
    role_id = await vault_store.provision_tenant(tenant, token_ttl="60s")
    wrapped = await vault_store.wrapped_secret_id(tenant)
    clock = [0.0]
    runtime = VaultProvider(sim.url, tenant, role_id, wrapped["token"], clock=lambda: clock[0])
    assert await runtime.get("hr-key") == "v"
    token = runtime.client.token
    clock[0] += 45  # two thirds of the lease gone: renew before reading
    sim.advance(45)
    assert await runtime.get("hr-key") == "v"
    assert runtime.client.token == token


@pytest.fixture
async def vault_app(settings: Settings, sim: VaultSim) -> AsyncIterator[httpx.AsyncClient]:
    configured = Settings(
        **{
            **settings.__dict__,
            "secrets_backend": "vault",
            "vault_addr": sim.url,
            "vault_token": sim.root_token,
        },
    )
    app = create_app(configured)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://vault-app"
    ) as c:
        yield c
    for hook in app.on_shutdown:
        await hook()


async def test_onboarding_provisions_and_offboarding_revokes(
    vault_app: httpx.AsyncClient,
    world: World,
    sim: VaultSim,
) -> None:
    tree = await world.tree()
    platform = bearer(await world.token(Grant(Role.PLATFORM_ADMIN)))
    created = await vault_app.post(
        f"/api/v1/partners/{tree.partner_id}/tenants",
        json={"slug": f"v-{random.token_hex(3)}", "name": "Vaulted", "timezone": "UTC"},
        headers=platform,
    )
    assert created.status_code == 201, created.text
    tenant_id = created.json()["id"]
    secret = await vault_app.post(
        f"/api/v1/tenants/{tenant_id}/secrets",
        json={"name": "erp-key", "value": "erp-value"},
        headers=platform,
    )
    assert secret.status_code == 201, secret.text
    access = await vault_app.post(f"/api/v1/tenants/{tenant_id}/runtime-access", headers=platform)
    assert access.status_code == 201, access.text
    body = access.json()
    runtime = VaultProvider(sim.url, UUID(tenant_id), body["role_id"], body["wrapped_secret_id"])
    assert await runtime.get("erp-key") == "erp-value"
    await vault_app.post(f"/api/v1/tenants/{tenant_id}/activate", headers=platform)
    await vault_app.post(f"/api/v1/tenants/{tenant_id}/suspend", headers=platform)
    off = await vault_app.post(f"/api/v1/tenants/{tenant_id}/offboard", headers=platform)
    assert off.status_code == 200, off.text
    client = hvac.Client(url=sim.url, token=runtime.client.token)
    with pytest.raises(vault_errors.Forbidden):
        client.secrets.kv.v2.read_secret_version(path=f"storeops/tenants/{tenant_id}/erp-key")
