"""Secrets of a partner or a tenant: write-only values, readable metadata, every change
audited without its value."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, Protocol, TypeVar, runtime_checkable
from uuid import UUID

from control_plane.audit.service import record
from control_plane.context import Ctx
from control_plane.errors import (
    Duplicate,
    Forbidden,
    InvalidInput,
    NotFound,
    PreconditionFailed,
    StoreOpsError,
)
from control_plane.secrets.store import (
    CasMismatch,
    OwnerKind,
    SecretMeta,
    SecretNotFound,
    SecretPath,
    SecretStore,
    SecretStoreError,
)
from control_plane.tenancy import service as tenancy

T = TypeVar("T")


class SecretStoreUnavailable(StoreOpsError):
    status, type_, title = 503, "secret-store-unavailable", "The secret store is unavailable"


async def _owner(ctx: Ctx, kind: OwnerKind, owner_id: UUID, permission: str) -> UUID | None:
    """Check the owner is visible (404 otherwise) and the caller may act; its tenant id."""
    if kind == "tenants":
        tenant = await tenancy.get_tenant(ctx, owner_id)
        ctx.principal.require(permission, partner_id=tenant.partner_id, tenant_id=tenant.id)
        return tenant.id
    partner = await tenancy.get_partner(ctx, owner_id)
    ctx.principal.require(permission, partner_id=partner.id)
    return None


async def _store(call: Awaitable[T], name: str) -> T:
    try:
        return await call
    except SecretNotFound:
        raise NotFound(f"secret {name!r} does not exist") from None
    except CasMismatch:
        raise PreconditionFailed(
            f"secret {name!r} has a newer version than the one given; list it and retry"
        ) from None
    except SecretStoreError as exc:
        raise SecretStoreUnavailable(str(exc)) from None


async def _audit(
    ctx: Ctx,
    action: str,
    kind: OwnerKind,
    owner_id: UUID,
    tenant_id: UUID | None,
    meta: SecretMeta | None,
    name: str,
) -> None:
    await record(
        ctx,
        action,
        target_type="secret",
        target_id=f"{kind}/{owner_id}/{name}",
        partner_id=owner_id if kind == "partners" else None,
        tenant_id=tenant_id,
        after={"name": name, "version": meta.version if meta else None},
    )


def _path(kind: OwnerKind, owner_id: UUID, name: str) -> SecretPath:
    try:
        return SecretPath(kind, owner_id, name)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None


async def create(
    ctx: Ctx, store: SecretStore, kind: OwnerKind, owner_id: UUID, name: str, value: str
) -> SecretMeta:
    tenant_id = await _owner(ctx, kind, owner_id, "secrets:write")
    path = _path(kind, owner_id, name)
    try:
        meta = await _store(store.put(path, value, actor=ctx.principal.subject, cas=0), name)
    except PreconditionFailed:
        raise Duplicate(f"secret {name!r} already exists; rotate it instead") from None
    await _audit(ctx, "secret.create", kind, owner_id, tenant_id, meta, name)
    return meta


async def rotate(
    ctx: Ctx,
    store: SecretStore,
    kind: OwnerKind,
    owner_id: UUID,
    name: str,
    value: str,
    cas: int | None = None,
) -> SecretMeta:
    tenant_id = await _owner(ctx, kind, owner_id, "secrets:write")
    path = _path(kind, owner_id, name)
    current = await _store(store.metadata(path), name)
    expected = current.version if cas is None else cas
    meta = await _store(store.put(path, value, actor=ctx.principal.subject, cas=expected), name)
    await _audit(ctx, "secret.rotate", kind, owner_id, tenant_id, meta, name)
    return meta


async def list_metadata(
    ctx: Ctx, store: SecretStore, kind: OwnerKind, owner_id: UUID
) -> list[SecretMeta]:
    await _owner(ctx, kind, owner_id, "secrets:read")
    return await _store(store.list_secrets(kind, owner_id), "*")


async def metadata(
    ctx: Ctx, store: SecretStore, kind: OwnerKind, owner_id: UUID, name: str
) -> SecretMeta:
    await _owner(ctx, kind, owner_id, "secrets:read")
    return await _store(store.metadata(_path(kind, owner_id, name)), name)


async def delete(ctx: Ctx, store: SecretStore, kind: OwnerKind, owner_id: UUID, name: str) -> None:
    """Soft-delete the current version (Vault semantics: recoverable until destroyed)."""
    tenant_id = await _owner(ctx, kind, owner_id, "secrets:write")
    await _store(store.delete(_path(kind, owner_id, name)), name)
    await _audit(ctx, "secret.delete", kind, owner_id, tenant_id, None, name)


# --- runtime access (Vault AppRole per tenant; the broker serves embedded runtimes) ---------


@runtime_checkable
class RuntimeAccess(Protocol):
    """A store that can give one tenant's runtime its own credentials (Vault)."""

    async def provision_tenant(self, tenant_id: UUID) -> str: ...

    async def wrapped_secret_id(self, tenant_id: UUID) -> dict[str, Any]: ...

    async def revoke_tenant(self, tenant_id: UUID) -> None: ...


async def provision_runtime_access(ctx: Ctx, store: SecretStore, tenant_id: UUID) -> str | None:
    """The tenant's policy and AppRole (Vault); None where runtimes use the broker."""
    if not isinstance(store, RuntimeAccess):
        return None
    role_id = await _store(store.provision_tenant(tenant_id), "approle")
    await record(
        ctx,
        "secret.runtime_access.provision",
        target_type="tenant",
        target_id=tenant_id,
        tenant_id=tenant_id,
        after={"role_id": role_id},
    )
    return role_id


async def issue_secret_id(ctx: Ctx, store: SecretStore, tenant_id: UUID) -> dict[str, Any]:
    """A single-use, short-lived, response-wrapped secret_id for the tenant's runtime."""
    tenant = await tenancy.get_tenant(ctx, tenant_id)
    ctx.principal.require("tenants:lifecycle", partner_id=tenant.partner_id, tenant_id=tenant.id)
    if not isinstance(store, RuntimeAccess):
        raise InvalidInput(
            "this installation's runtimes read secrets through the broker, not Vault"
        )
    role_id = await _store(store.provision_tenant(tenant.id), "approle")
    wrapped = await _store(store.wrapped_secret_id(tenant.id), "approle")
    await record(
        ctx,
        "secret.runtime_access.secret_id",
        target_type="tenant",
        target_id=tenant.id,
        tenant_id=tenant.id,
        after={"role_id": role_id, "wrap_accessor": wrapped.get("accessor")},
    )
    return {"role_id": role_id, "wrapped_secret_id": wrapped["token"], "wrap_ttl": wrapped["ttl"]}


async def revoke_runtime_access(ctx: Ctx, store: SecretStore, tenant_id: UUID) -> None:
    if not isinstance(store, RuntimeAccess):
        return
    await _store(store.revoke_tenant(tenant_id), "approle")
    await record(
        ctx,
        "secret.runtime_access.revoke",
        target_type="tenant",
        target_id=tenant_id,
        tenant_id=tenant_id,
    )


async def resolve(ctx: Ctx, store: SecretStore, name: str) -> str:
    """The broker: a runtime reads one of its own tenant's secrets (embedded mode)."""
    grants = [
        g
        for g in ctx.principal.grants
        if g.tenant_id
        and ctx.principal.can("secrets:resolve", partner_id=g.partner_id, tenant_id=g.tenant_id)
    ]
    if len(grants) != 1 or grants[0].tenant_id is None:
        raise Forbidden("only a tenant runtime's own token resolves secrets")
    tenant_id = grants[0].tenant_id
    secret = await _store(store.read(_path("tenants", tenant_id, name)), name)
    await record(
        ctx,
        "secret.resolve",
        target_type="secret",
        target_id=f"tenants/{tenant_id}/{name}",
        tenant_id=tenant_id,
        after={"name": name, "version": secret.meta.version},
    )
    return secret.value
