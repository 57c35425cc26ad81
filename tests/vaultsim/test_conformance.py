"""The simulator through hvac only: what StoreOps' Vault backend will see."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import hvac
import hvac.exceptions as hx
import pytest

from .fixtures import VaultClientFactory, VaultSimFactory
from .server import VaultSim

TENANT_A_POLICY = """
# Tenant A's secrets, and nothing else.
path "secret/data/tenants/A/*" {
  capabilities = ["create", "read", "update", "delete", "list"]
}
path "secret/metadata/tenants/A/*" {
  capabilities = ["read", "list", "delete"]
}
"""


@pytest.fixture(autouse=True)
def approle_enabled(request: pytest.FixtureRequest) -> None:
    """AppRole at ``approle`` for every test here that uses the default simulator."""
    if "vault_sim" in request.fixturenames:
        root: hvac.Client = request.getfixturevalue("vault_root")
        root.sys.enable_auth_method("approle")


def kv(client: hvac.Client) -> hvac.api.secrets_engines.KvV2:
    return client.secrets.kv.v2


def read(client: hvac.Client, path: str, version: int | None = None) -> dict[str, Any]:
    response: dict[str, Any] = kv(client).read_secret_version(
        path, version=version, raise_on_deleted_version=True
    )
    return response


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def app_login(
    root: hvac.Client,
    make: VaultClientFactory,
    role: str = "app",
    policies: tuple[str, ...] = ("tenant-a",),
    **role_options: object,
) -> hvac.Client:
    """A role with these policies, a secret-id, and a client logged in with them."""
    root.auth.approle.create_or_update_approle(role, token_policies=list(policies), **role_options)
    role_id = root.auth.approle.read_role_id(role)["data"]["role_id"]
    secret_id = root.auth.approle.generate_secret_id(role)["data"]["secret_id"]
    client = make(None)
    client.auth.approle.login(role_id, secret_id)
    return client


# --- KV version 2 ----------------------------------------------------------------------


def test_kv_write_read_and_versions(vault_root: hvac.Client) -> None:
    first = kv(vault_root).create_or_update_secret("tenants/A/db", {"password": "one"})
    assert first["data"]["version"] == 1
    assert first["data"]["deletion_time"] == ""
    assert first["data"]["destroyed"] is False
    kv(vault_root).create_or_update_secret("tenants/A/db", {"password": "two"})

    latest = read(vault_root, "tenants/A/db")
    assert latest["data"]["data"] == {"password": "two"}
    assert latest["data"]["metadata"]["version"] == 2
    parse_time(latest["data"]["metadata"]["created_time"])
    assert read(vault_root, "tenants/A/db", version=1)["data"]["data"] == {"password": "one"}

    with pytest.raises(hx.InvalidPath) as missing:
        read(vault_root, "tenants/A/db", version=7)
    assert missing.value.errors == []
    with pytest.raises(hx.InvalidPath):
        read(vault_root, "tenants/A/nothing")


def test_kv_check_and_set(vault_root: hvac.Client) -> None:
    kv(vault_root).create_or_update_secret("cas/key", {"v": "1"}, cas=0)
    second = kv(vault_root).create_or_update_secret("cas/key", {"v": "2"}, cas=1)
    assert second["data"]["version"] == 2

    with pytest.raises(hx.InvalidRequest) as stale:
        kv(vault_root).create_or_update_secret("cas/key", {"v": "3"}, cas=1)
    assert stale.value.errors == ["check-and-set parameter did not match the current version"]
    with pytest.raises(hx.InvalidRequest):
        kv(vault_root).create_or_update_secret("cas/key", {"v": "3"}, cas=0)
    assert read(vault_root, "cas/key")["data"]["data"] == {"v": "2"}

    kv(vault_root).update_metadata("cas/key", cas_required=True)
    with pytest.raises(hx.InvalidRequest) as required:
        kv(vault_root).create_or_update_secret("cas/key", {"v": "3"})
    assert required.value.errors == ["check-and-set parameter required for this call"]
    kv(vault_root).create_or_update_secret("cas/key", {"v": "3"}, cas=2)


def test_kv_soft_delete_undelete_destroy(vault_root: hvac.Client) -> None:
    for value in ("a", "b", "c"):
        kv(vault_root).create_or_update_secret("life/key", {"v": value})

    kv(vault_root).delete_latest_version_of_secret("life/key")
    with pytest.raises(hx.InvalidPath) as deleted:
        read(vault_root, "life/key")
    body = deleted.value.json
    assert body["data"]["data"] is None
    assert body["data"]["metadata"]["version"] == 3
    parse_time(body["data"]["metadata"]["deletion_time"])
    # hvac's own handling of Vault's 404-with-metadata for a deleted version:
    soft = kv(vault_root).read_secret_version("life/key", raise_on_deleted_version=False)
    assert soft["data"]["data"] is None

    kv(vault_root).undelete_secret_versions("life/key", versions=[3])
    assert read(vault_root, "life/key")["data"]["data"] == {"v": "c"}

    kv(vault_root).delete_secret_versions("life/key", versions=[1])
    kv(vault_root).destroy_secret_versions("life/key", versions=[2])
    with pytest.raises(hx.InvalidPath) as destroyed:
        read(vault_root, "life/key", version=2)
    assert destroyed.value.json["data"]["metadata"]["destroyed"] is True
    kv(vault_root).undelete_secret_versions("life/key", versions=[1, 2])
    assert read(vault_root, "life/key", version=1)["data"]["data"] == {"v": "a"}
    with pytest.raises(hx.InvalidPath):
        read(vault_root, "life/key", version=2)

    versions = kv(vault_root).read_secret_metadata("life/key")["data"]["versions"]
    assert versions["2"]["destroyed"] is True
    assert versions["1"]["deletion_time"] == ""
    assert versions["3"]["destroyed"] is False


def test_kv_metadata_and_purge(vault_root: hvac.Client) -> None:
    kv(vault_root).create_or_update_secret("meta/key", {"v": "1"})
    kv(vault_root).update_metadata(
        "meta/key", max_versions=2, custom_metadata={"owner": "tenant-a"}
    )
    for value in ("2", "3"):
        written = kv(vault_root).create_or_update_secret("meta/key", {"v": value})
    assert written["data"]["custom_metadata"] == {"owner": "tenant-a"}

    meta = kv(vault_root).read_secret_metadata("meta/key")["data"]
    assert meta["current_version"] == 3
    assert meta["max_versions"] == 2
    assert meta["oldest_version"] == 2
    assert meta["cas_required"] is False
    assert meta["custom_metadata"] == {"owner": "tenant-a"}
    assert sorted(meta["versions"]) == ["2", "3"]
    assert set(meta["versions"]["3"]) == {"created_time", "deletion_time", "destroyed"}
    assert parse_time(meta["updated_time"]) >= parse_time(meta["created_time"])

    kv(vault_root).delete_metadata_and_all_versions("meta/key")
    with pytest.raises(hx.InvalidPath):
        kv(vault_root).read_secret_metadata("meta/key")
    with pytest.raises(hx.InvalidPath):
        read(vault_root, "meta/key")


def test_kv_list(vault_root: hvac.Client) -> None:
    for path in ("tenants/A/db", "tenants/A/api/key", "tenants/B/db", "top"):
        kv(vault_root).create_or_update_secret(path, {"v": "x"})
    kv(vault_root).delete_latest_version_of_secret("tenants/A/db")

    assert kv(vault_root).list_secrets("tenants/A")["data"]["keys"] == ["api/", "db"]
    assert kv(vault_root).list_secrets("")["data"]["keys"] == ["tenants/", "top"]
    # GET with ?list=true is the same operation.
    listed = vault_root.adapter.get("/v1/secret/metadata/tenants", params={"list": "true"})
    assert listed["data"]["keys"] == ["A/", "B/"]

    with pytest.raises(hx.InvalidPath) as empty:
        kv(vault_root).list_secrets("tenants/C")
    assert empty.value.errors == []
    kv(vault_root).delete_metadata_and_all_versions("tenants/B/db")
    assert kv(vault_root).list_secrets("tenants")["data"]["keys"] == ["A/"]


# --- policies and their enforcement ----------------------------------------------------


def test_policy_crud(vault_root: hvac.Client) -> None:
    vault_root.sys.create_or_update_acl_policy("tenant-a", TENANT_A_POLICY)
    assert vault_root.sys.read_acl_policy("tenant-a")["data"]["policy"] == TENANT_A_POLICY
    keys = vault_root.sys.list_acl_policies()["data"]["keys"]
    assert {"default", "root", "tenant-a"} <= set(keys)

    vault_root.sys.delete_acl_policy("tenant-a")
    with pytest.raises(hx.InvalidPath):
        vault_root.sys.read_acl_policy("tenant-a")
    with pytest.raises(hx.InvalidRequest):
        vault_root.sys.create_or_update_acl_policy("broken", 'path "x" { capabilities = [')
    with pytest.raises(hx.InvalidRequest):
        vault_root.sys.create_or_update_acl_policy("bad-cap", 'path "x" { capabilities = ["own"] }')


def test_policy_confines_token_to_its_tenant(
    vault_root: hvac.Client, vault_client: VaultClientFactory
) -> None:
    kv(vault_root).create_or_update_secret("tenants/A/db", {"password": "a"})
    kv(vault_root).create_or_update_secret("tenants/B/db", {"password": "b"})
    vault_root.sys.create_or_update_acl_policy("tenant-a", TENANT_A_POLICY)
    app = app_login(vault_root, vault_client)

    assert read(app, "tenants/A/db")["data"]["data"] == {"password": "a"}
    kv(app).create_or_update_secret("tenants/A/new", {"v": "1"})
    assert kv(app).list_secrets("tenants/A")["data"]["keys"] == ["db", "new"]
    assert kv(app).read_secret_metadata("tenants/A/db")["data"]["current_version"] == 1

    forbidden: list[Callable[[], object]] = [
        lambda: read(app, "tenants/B/db"),
        lambda: kv(app).create_or_update_secret("tenants/B/db", {"password": "mine"}),
        lambda: kv(app).list_secrets("tenants/B"),
        lambda: kv(app).list_secrets("tenants"),
        lambda: kv(app).read_secret_metadata("tenants/B/db"),
        lambda: kv(app).delete_metadata_and_all_versions("tenants/B/db"),
        lambda: kv(app).destroy_secret_versions("tenants/A/db", versions=[1]),
        lambda: app.sys.read_acl_policy("tenant-a"),
        lambda: app.sys.create_or_update_acl_policy("mine", TENANT_A_POLICY),
    ]
    for attempt in forbidden:
        with pytest.raises(hx.Forbidden) as denied:
            attempt()
        assert denied.value.errors == ["permission denied"]
    assert read(vault_root, "tenants/B/db")["data"]["data"] == {"password": "b"}

    # Policy changes apply to live tokens at once.
    vault_root.sys.delete_acl_policy("tenant-a")
    with pytest.raises(hx.Forbidden):
        read(app, "tenants/A/db")


def test_create_versus_update_and_wildcards(
    vault_root: hvac.Client, vault_client: VaultClientFactory
) -> None:
    vault_root.sys.create_or_update_acl_policy(
        "narrow",
        """
        path "secret/data/create-only/*" { capabilities = ["create"] }
        path "secret/data/update-only/*" { capabilities = ["update", "read"] }
        path "secret/data/tenants/+/shared" { capabilities = ["read"] }
        path "secret/data/tenants/*" { capabilities = ["read"] }
        path "secret/data/tenants/A/sealed" { capabilities = ["deny"] }
        """,
    )
    for path in ("update-only/k", "create-only/k", "tenants/A/shared", "tenants/A/sealed"):
        kv(vault_root).create_or_update_secret(path, {"v": "root"})
    app = app_login(vault_root, vault_client, policies=("narrow",))

    kv(app).create_or_update_secret("create-only/new", {"v": "1"})
    with pytest.raises(hx.Forbidden):
        kv(app).create_or_update_secret("create-only/k", {"v": "overwrite"})
    kv(app).create_or_update_secret("update-only/k", {"v": "2"})
    with pytest.raises(hx.Forbidden):
        kv(app).create_or_update_secret("update-only/new", {"v": "1"})

    assert read(app, "tenants/A/shared")["data"]["data"] == {"v": "root"}
    with pytest.raises(hx.Forbidden):
        read(app, "tenants/A/sealed")


def test_requests_without_a_valid_token(
    vault_sim: VaultSim, vault_client: VaultClientFactory
) -> None:
    for token in (None, "hvs.not-a-token"):
        client = vault_client(token)
        assert client.is_authenticated() is False
        with pytest.raises(hx.Forbidden) as denied:
            read(client, "anything")
        assert denied.value.errors == ["permission denied"]
    root = vault_client(vault_sim.root_token)
    with pytest.raises(hx.InvalidPath) as unknown:
        root.adapter.get("/v1/nowhere/at/all")
    assert unknown.value.errors == []


# --- AppRole, response wrapping and tokens ---------------------------------------------


def test_enable_approle(vault_sim_factory: VaultSimFactory) -> None:
    sim = vault_sim_factory()
    root = hvac.Client(url=sim.url, token=sim.root_token)
    with pytest.raises(hx.InvalidPath):
        root.auth.approle.read_role_id("app")
    assert root.sys.enable_auth_method("approle").status_code == 204
    with pytest.raises(hx.InvalidRequest) as again:
        root.sys.enable_auth_method("approle")
    assert again.value.errors == ["path is already in use at approle/"]
    created = root.auth.approle.create_or_update_approle("app", token_policies=["default"])
    assert created.status_code == 204
    assert root.auth.approle.read_role_id("app")["data"]["role_id"]
    assert root.auth.approle.delete_role("app").status_code == 204


def test_approle_wrapped_secret_id_login_and_token_lifecycle(
    vault_sim: VaultSim, vault_root: hvac.Client, vault_client: VaultClientFactory
) -> None:
    vault_root.sys.create_or_update_acl_policy("tenant-a", TENANT_A_POLICY)
    vault_root.auth.approle.create_or_update_approle(
        "tenant-a-app",
        token_policies=["tenant-a"],
        token_ttl="20m",
        token_max_ttl="2h",
        secret_id_ttl="10m",
        secret_id_num_uses=1,
    )
    role_id = vault_root.auth.approle.read_role_id("tenant-a-app")["data"]["role_id"]

    wrapped = vault_root.auth.approle.generate_secret_id("tenant-a-app", wrap_ttl="60s")
    assert wrapped["data"] is None
    info = wrapped["wrap_info"]
    assert info["ttl"] == 60
    assert info["creation_path"] == "auth/approle/role/tenant-a-app/secret-id"
    assert info["token"] and info["accessor"]
    parse_time(info["creation_time"])

    # The wrapping token is good for nothing but unwrapping, once.
    holder = vault_client(info["token"])
    with pytest.raises(hx.Forbidden):
        holder.auth.token.lookup_self()
    unwrapped = holder.sys.unwrap()["data"]
    assert unwrapped["secret_id_ttl"] == 600
    assert unwrapped["secret_id_num_uses"] == 1
    assert unwrapped["secret_id_accessor"] == info["wrapped_accessor"]
    with pytest.raises(hx.InvalidRequest) as twice:
        holder.sys.unwrap()
    assert twice.value.errors == ["wrapping token is not valid or does not exist"]
    with pytest.raises(hx.InvalidRequest):
        vault_root.sys.unwrap(info["token"])

    app = vault_client(None)
    auth = app.auth.approle.login(role_id, unwrapped["secret_id"])["auth"]
    assert auth["policies"] == ["default", "tenant-a"]
    assert auth["token_policies"] == ["default", "tenant-a"]
    assert auth["lease_duration"] == 1200
    assert auth["renewable"] is True
    assert auth["client_token"] and auth["accessor"]
    assert app.is_authenticated()

    me = app.auth.token.lookup_self()["data"]
    assert me["id"] == auth["client_token"]
    assert me["accessor"] == auth["accessor"]
    assert me["policies"] == ["default", "tenant-a"]
    assert me["meta"] == {"role_name": "tenant-a-app"}
    assert me["path"] == "auth/approle/login"
    assert 1190 <= me["ttl"] <= 1200

    vault_sim.advance(600)
    renewed = app.auth.token.renew_self()["auth"]
    assert renewed["client_token"] == auth["client_token"]
    assert renewed["lease_duration"] == 1200
    assert app.auth.token.renew_self(increment="3h")["auth"]["lease_duration"] <= 7200 - 600

    # secret_id_num_uses=1: the secret-id is spent.
    with pytest.raises(hx.InvalidRequest) as spent:
        vault_client(None).auth.approle.login(role_id, unwrapped["secret_id"])
    assert spent.value.errors == ["invalid role or secret ID"]

    app.auth.token.revoke_self()
    with pytest.raises(hx.Forbidden):
        app.auth.token.lookup_self()


def test_third_party_unwrap_and_wrap_expiry(
    vault_sim: VaultSim, vault_root: hvac.Client, vault_client: VaultClientFactory
) -> None:
    vault_root.auth.approle.create_or_update_approle("app", token_policies=["default"])

    def wrapped_secret_id() -> str:
        wrap = vault_root.auth.approle.generate_secret_id("app", wrap_ttl=30)
        token: str = wrap["wrap_info"]["token"]
        return token

    first = wrapped_secret_id()
    # In the body, the wrapping token needs a caller whose own token may unwrap...
    with pytest.raises(hx.Forbidden):
        vault_client(None).sys.unwrap(first)
    # ... as the default policy allows; a refused caller does not spend it.
    app = app_login(vault_root, vault_client, role="other", policies=())
    assert app.sys.unwrap(first)["data"]["secret_id"]
    assert vault_root.sys.unwrap(wrapped_secret_id())["data"]["secret_id"]

    second = wrapped_secret_id()
    vault_sim.advance(31)
    with pytest.raises(hx.InvalidRequest) as expired:
        vault_root.sys.unwrap(second)
    assert expired.value.errors == ["wrapping token is not valid or does not exist"]


def test_secret_id_and_token_expiry(
    vault_sim: VaultSim, vault_root: hvac.Client, vault_client: VaultClientFactory
) -> None:
    vault_root.auth.approle.create_or_update_approle(
        "short", token_policies=["default"], token_ttl=60, token_max_ttl=120, secret_id_ttl=300
    )
    role_id = vault_root.auth.approle.read_role_id("short")["data"]["role_id"]
    secret_id = vault_root.auth.approle.generate_secret_id("short")["data"]["secret_id"]

    app = vault_client(None)
    app.auth.approle.login(role_id, secret_id)
    vault_sim.advance(50)
    # Renewal is capped by what is left of the max TTL.
    assert app.auth.token.renew_self(increment=3600)["auth"]["lease_duration"] == 70
    vault_sim.advance(71)
    with pytest.raises(hx.Forbidden) as expired:
        app.auth.token.lookup_self()
    assert expired.value.errors == ["permission denied"]

    vault_sim.advance(300)
    with pytest.raises(hx.InvalidRequest):
        vault_client(None).auth.approle.login(role_id, secret_id)


def test_deleting_the_role_stops_logins_and_its_tokens(
    vault_root: hvac.Client, vault_client: VaultClientFactory
) -> None:
    vault_root.sys.create_or_update_acl_policy("tenant-a", TENANT_A_POLICY)
    kv(vault_root).create_or_update_secret("tenants/A/db", {"password": "a"})
    app = app_login(vault_root, vault_client)
    role_id = vault_root.auth.approle.read_role_id("app")["data"]["role_id"]
    secret_id = vault_root.auth.approle.generate_secret_id("app")["data"]["secret_id"]
    assert read(app, "tenants/A/db")

    vault_root.auth.approle.delete_role("app")
    with pytest.raises(hx.InvalidRequest) as refused:
        vault_client(None).auth.approle.login(role_id, secret_id)
    assert refused.value.errors == ["invalid role or secret ID"]
    with pytest.raises(hx.Forbidden):
        read(app, "tenants/A/db")
    with pytest.raises(hx.InvalidRequest):
        vault_root.auth.approle.generate_secret_id("app")
    with pytest.raises(hx.InvalidPath):
        vault_root.auth.approle.read_role_id("app")


def test_deleting_the_role_as_real_vault_does(vault_sim_factory: VaultSimFactory) -> None:
    """Vault itself leaves issued tokens alive until their TTL; only renewal fails."""
    sim = vault_sim_factory(approle_mounts=("approle",), role_delete_revokes_tokens=False)
    root = hvac.Client(url=sim.url, token=sim.root_token)
    app = app_login(root, lambda token: hvac.Client(url=sim.url, token=token), policies=())
    root.auth.approle.delete_role("app")
    assert app.auth.token.lookup_self()["data"]["meta"] == {"role_name": "app"}
    with pytest.raises(hx.InternalServerError):
        app.auth.token.renew_self()


def test_revoke_accessor(vault_root: hvac.Client, vault_client: VaultClientFactory) -> None:
    app = app_login(vault_root, vault_client, policies=())
    other = app_login(vault_root, vault_client, role="other", policies=())
    accessor = app.auth.token.lookup_self()["data"]["accessor"]

    with pytest.raises(hx.Forbidden):
        other.auth.token.revoke_accessor(accessor)
    vault_root.auth.token.revoke_accessor(accessor)
    with pytest.raises(hx.Forbidden):
        app.auth.token.lookup_self()
    assert other.auth.token.lookup_self()["data"]["meta"] == {"role_name": "other"}
    with pytest.raises(hx.InvalidRequest):
        vault_root.auth.token.revoke_accessor(accessor)


def test_root_token(vault_root: hvac.Client) -> None:
    me = vault_root.auth.token.lookup_self()["data"]
    assert me["policies"] == ["root"]
    assert me["ttl"] == 0
    assert me["expire_time"] is None
