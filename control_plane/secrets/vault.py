"""``VaultSecretStore``: KV v2 through hvac, plus the per-tenant policy and AppRole.

hvac is synchronous; every call runs in a worker thread. Paths live under
``<mount>/data/<prefix>/{partners,tenants}/<id>/<name>``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import UUID

import hvac
from hvac import exceptions as vault_errors

from control_plane.secrets.store import (
    CasMismatch,
    OwnerKind,
    Secret,
    SecretMeta,
    SecretNotFound,
    SecretPath,
    SecretStoreError,
)

T = TypeVar("T")


def _time(value: str | None) -> datetime:
    if not value:
        return datetime.fromtimestamp(0, tz=UTC)
    # Vault prints nanoseconds; Python keeps microseconds.
    head, _, tail = value.rstrip("Z").partition(".")
    fraction = (tail + "000000")[:6]
    return datetime.fromisoformat(f"{head}.{fraction}+00:00")


class VaultSecretStore:
    def __init__(
        self, client: hvac.Client, *, mount: str = "secret", prefix: str = "storeops"
    ) -> None:
        self.client = client
        self.mount = mount
        self.prefix = prefix.strip("/")

    @classmethod
    def connect(
        cls,
        url: str,
        token: str,
        *,
        mount: str = "secret",
        prefix: str = "storeops",
        timeout: float = 10.0,
    ) -> VaultSecretStore:
        return cls(hvac.Client(url=url, token=token, timeout=timeout), mount=mount, prefix=prefix)

    def _path(self, path: SecretPath) -> str:
        return f"{self.prefix}/{path}"

    async def _call(self, fn: Callable[[], T]) -> T:
        try:
            return await asyncio.to_thread(fn)
        except vault_errors.InvalidPath as exc:
            raise SecretNotFound("no such secret") from exc
        except vault_errors.InvalidRequest as exc:
            if "check-and-set" in str(exc):
                raise CasMismatch("the secret changed since the version given") from exc
            raise SecretStoreError(f"Vault refused the request: {_errors(exc)}") from exc
        except vault_errors.Forbidden as exc:
            raise SecretStoreError("Vault denied the request (permission denied)") from exc
        except vault_errors.VaultError as exc:
            raise SecretStoreError(f"Vault error: {_errors(exc)}") from exc
        except OSError as exc:
            raise SecretStoreError(f"Vault is unreachable: {type(exc).__name__}") from exc

    @property
    def _kv(self) -> Any:
        return self.client.secrets.kv.v2

    async def put(
        self, path: SecretPath, value: str, *, actor: str, cas: int | None = None
    ) -> SecretMeta:
        target = self._path(path)
        await self._call(
            lambda: self._kv.create_or_update_secret(
                path=target, secret={"value": value}, cas=cas, mount_point=self.mount
            )
        )
        await self._call(
            lambda: self._kv.update_metadata(
                path=target, custom_metadata={"updated_by": actor}, mount_point=self.mount
            )
        )
        return await self.metadata(path)

    async def read(self, path: SecretPath, version: int | None = None) -> Secret:
        target = self._path(path)
        response = await self._call(
            lambda: self._kv.read_secret_version(
                path=target, version=version, mount_point=self.mount, raise_on_deleted_version=True
            )
        )
        data = response["data"]
        meta = await self.metadata(path)
        return Secret(str(data["data"]["value"]), meta)

    async def metadata(self, path: SecretPath) -> SecretMeta:
        target = self._path(path)
        response = await self._call(
            lambda: self._kv.read_secret_metadata(path=target, mount_point=self.mount)
        )
        return _meta(path.name, response["data"])

    async def list_secrets(self, owner: OwnerKind, owner_id: UUID) -> list[SecretMeta]:
        base = f"{self.prefix}/{owner}/{owner_id}"
        try:
            response = await self._call(
                lambda: self._kv.list_secrets(path=base, mount_point=self.mount)
            )
        except SecretNotFound:
            return []
        names = [k for k in response["data"]["keys"] if not k.endswith("/")]
        metas = []
        for name in sorted(names):
            try:
                metas.append(await self.metadata(SecretPath(owner, owner_id, name)))
            except SecretNotFound:
                continue
        return metas

    async def delete(self, path: SecretPath) -> None:
        target = self._path(path)
        await self.metadata(path)
        await self._call(
            lambda: self._kv.delete_latest_version_of_secret(path=target, mount_point=self.mount)
        )

    async def undelete(self, path: SecretPath, versions: list[int]) -> None:
        target = self._path(path)
        await self._call(
            lambda: self._kv.undelete_secret_versions(
                path=target, versions=versions, mount_point=self.mount
            )
        )

    async def destroy(self, path: SecretPath, versions: list[int]) -> None:
        target = self._path(path)
        await self._call(
            lambda: self._kv.destroy_secret_versions(
                path=target, versions=versions, mount_point=self.mount
            )
        )

    async def purge(self, path: SecretPath) -> None:
        target = self._path(path)
        await self._call(
            lambda: self._kv.delete_metadata_and_all_versions(path=target, mount_point=self.mount)
        )

    # --- per-tenant access for runtimes -----------------------------------------------------

    def tenant_role(self, tenant_id: UUID) -> str:
        return f"storeops-tenant-{tenant_id}"

    def tenant_policy(self, tenant_id: UUID) -> str:
        """Read-only access to this tenant's secrets, and nothing else."""
        base = f"{self.prefix}/tenants/{tenant_id}"
        return (
            f'path "{self.mount}/data/{base}/*" {{\n  capabilities = ["read"]\n}}\n'
            f'path "{self.mount}/metadata/{base}/*" {{\n  capabilities = ["read", "list"]\n}}\n'
        )

    async def provision_tenant(self, tenant_id: UUID, *, token_ttl: str = "1h") -> str:  # noqa: S107
        """Create the tenant's policy and AppRole; returns the role_id."""
        name = self.tenant_role(tenant_id)
        policy = self.tenant_policy(tenant_id)
        await self._call(
            lambda: self.client.sys.create_or_update_acl_policy(name=name, policy=policy)
        )
        await self._call(
            lambda: self.client.auth.approle.create_or_update_approle(
                role_name=name,
                token_policies=[name],
                token_ttl=token_ttl,
                token_max_ttl="24h",  # noqa: S106
                secret_id_ttl="10m",  # noqa: S106
                secret_id_num_uses=1,
            )
        )
        response = await self._call(lambda: self.client.auth.approle.read_role_id(role_name=name))
        return str(response["data"]["role_id"])

    async def wrapped_secret_id(self, tenant_id: UUID, *, wrap_ttl: str = "5m") -> dict[str, Any]:
        """A response-wrapped secret_id: one unwrap, then gone."""
        name = self.tenant_role(tenant_id)
        response = await self._call(
            lambda: self.client.auth.approle.generate_secret_id(role_name=name, wrap_ttl=wrap_ttl)
        )
        wrap = response["wrap_info"]
        return {"token": wrap["token"], "ttl": wrap["ttl"], "accessor": wrap.get("accessor")}

    async def revoke_tenant(self, tenant_id: UUID) -> None:
        """Delete the role (no new logins) and the policy (issued tokens lose all access)."""
        name = self.tenant_role(tenant_id)
        for call in (
            lambda: self.client.auth.approle.delete_role(role_name=name),
            lambda: self.client.sys.delete_acl_policy(name=name),
        ):
            try:
                await self._call(call)
            except SecretNotFound:
                continue


def _meta(name: str, data: dict[str, Any]) -> SecretMeta:
    current = int(data.get("current_version") or 0)
    version = (data.get("versions") or {}).get(str(current), {})
    custom = data.get("custom_metadata") or {}
    return SecretMeta(
        name=name,
        version=current,
        created_at=_time(data.get("created_time")),
        updated_at=_time(data.get("updated_time")),
        updated_by=str(custom.get("updated_by", "")),
        deleted=bool(version.get("deletion_time")),
        destroyed=bool(version.get("destroyed")),
    )


def _errors(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    return "; ".join(str(e) for e in errors) if errors else type(exc).__name__
