"""``/api/v1/{tenants,partners}/{id}/secrets``: values go in, never out."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Controller, Request, Response, delete, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from control_plane.api.auth import requires
from control_plane.api.pagination import Page
from control_plane.api.params import CtxDep
from control_plane.secrets import service
from control_plane.secrets.store import SecretMeta, SecretStore
from control_plane.tenancy.schemas import Input

SecretName = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$",
        description="lowercase letters, digits, '.', '_' or '-'",
    ),
]
SecretValue = Annotated[str, msgspec.Meta(min_length=1, max_length=65_536)]


class SecretCreate(Input):
    name: SecretName
    value: SecretValue


class SecretRotate(Input):
    value: SecretValue
    #: The version you last saw: the write is refused (412) if it is no longer current.
    cas: Annotated[int, msgspec.Meta(ge=1)] | None = None


class Secret(msgspec.Struct):
    """A secret's metadata. There is no way to read a value through this API."""

    name: str
    version: int
    created_at: datetime
    updated_at: datetime
    updated_by: str
    deleted: bool
    destroyed: bool


def _out(meta: SecretMeta) -> Secret:
    return Secret(**{f: getattr(meta, f) for f in Secret.__struct_fields__})


def provide_secret_store(request: Request[Any, Any, Any]) -> SecretStore:
    store: SecretStore = request.app.state.secrets
    return store


SecretStoreDep = NamedDependency[SecretStore]
Store = SecretStoreDep


class RuntimeCredentials(msgspec.Struct):
    role_id: str
    #: Unwrap once at sys/wrapping/unwrap to get the secret_id; a second unwrap fails.
    wrapped_secret_id: str
    wrap_ttl: int


@post(
    "/api/v1/tenants/{tenant_id:uuid}/runtime-access",
    operation_id="issueRuntimeSecretId",
    tags=["secrets"],
    guards=[requires("tenants:lifecycle")],
    status_code=201,
    description="Vault only: the tenant runtime's AppRole role_id and a response-wrapped, "
    "single-use secret_id.",
)
async def issue_runtime_access(
    ctx: CtxDep, store: Store, tenant_id: FromPath[UUID]
) -> RuntimeCredentials:
    issued = await service.issue_secret_id(ctx, store, tenant_id)
    return RuntimeCredentials(**issued)


class TenantSecretController(Controller):
    path = "/api/v1/tenants/{tenant_id:uuid}/secrets"
    tags = ["secrets"]
    guards = [requires("secrets:read")]

    @post("/", operation_id="createTenantSecret", guards=[requires("secrets:write")])
    async def create(
        self, ctx: CtxDep, store: Store, tenant_id: FromPath[UUID], data: JSONBody[SecretCreate]
    ) -> Response[Secret]:
        meta = await service.create(ctx, store, "tenants", tenant_id, data.name, data.value)
        return Response(_out(meta), status_code=201)

    @get("/", operation_id="listTenantSecrets")
    async def list_(self, ctx: CtxDep, store: Store, tenant_id: FromPath[UUID]) -> Page[Secret]:
        metas = await service.list_metadata(ctx, store, "tenants", tenant_id)
        return Page(items=[_out(m) for m in metas])

    @get("/{name:str}", operation_id="getTenantSecret")
    async def get_(
        self, ctx: CtxDep, store: Store, tenant_id: FromPath[UUID], name: FromPath[str]
    ) -> Secret:
        return _out(await service.metadata(ctx, store, "tenants", tenant_id, name))

    @put("/{name:str}", operation_id="rotateTenantSecret", guards=[requires("secrets:write")])
    async def rotate(
        self,
        ctx: CtxDep,
        store: Store,
        tenant_id: FromPath[UUID],
        name: FromPath[str],
        data: JSONBody[SecretRotate],
    ) -> Secret:
        return _out(
            await service.rotate(ctx, store, "tenants", tenant_id, name, data.value, data.cas)
        )

    @delete("/{name:str}", operation_id="deleteTenantSecret", guards=[requires("secrets:write")])
    async def delete_(
        self, ctx: CtxDep, store: Store, tenant_id: FromPath[UUID], name: FromPath[str]
    ) -> None:
        await service.delete(ctx, store, "tenants", tenant_id, name)


class PartnerSecretController(Controller):
    path = "/api/v1/partners/{partner_id:uuid}/secrets"
    tags = ["secrets"]
    guards = [requires("secrets:read")]

    @post("/", operation_id="createPartnerSecret", guards=[requires("secrets:write")])
    async def create(
        self, ctx: CtxDep, store: Store, partner_id: FromPath[UUID], data: JSONBody[SecretCreate]
    ) -> Response[Secret]:
        meta = await service.create(ctx, store, "partners", partner_id, data.name, data.value)
        return Response(_out(meta), status_code=201)

    @get("/", operation_id="listPartnerSecrets")
    async def list_(self, ctx: CtxDep, store: Store, partner_id: FromPath[UUID]) -> Page[Secret]:
        metas = await service.list_metadata(ctx, store, "partners", partner_id)
        return Page(items=[_out(m) for m in metas])

    @get("/{name:str}", operation_id="getPartnerSecret")
    async def get_(
        self, ctx: CtxDep, store: Store, partner_id: FromPath[UUID], name: FromPath[str]
    ) -> Secret:
        return _out(await service.metadata(ctx, store, "partners", partner_id, name))

    @put("/{name:str}", operation_id="rotatePartnerSecret", guards=[requires("secrets:write")])
    async def rotate(
        self,
        ctx: CtxDep,
        store: Store,
        partner_id: FromPath[UUID],
        name: FromPath[str],
        data: JSONBody[SecretRotate],
    ) -> Secret:
        return _out(
            await service.rotate(ctx, store, "partners", partner_id, name, data.value, data.cas)
        )

    @delete("/{name:str}", operation_id="deletePartnerSecret", guards=[requires("secrets:write")])
    async def delete_(
        self, ctx: CtxDep, store: Store, partner_id: FromPath[UUID], name: FromPath[str]
    ) -> None:
        await service.delete(ctx, store, "partners", partner_id, name)


class ResolvedSecret(msgspec.Struct):
    name: str
    value: str


@get(
    "/runtime/v1/secrets/{name:str}",
    operation_id="resolveRuntimeSecret",
    tags=["runtime"],
    guards=[requires("secrets:resolve")],
    description="The secret broker for embedded runtimes: a runtime token reads its own "
    "tenant's secret values, and nothing else.",
)
async def resolve_secret(
    ctx: CtxDep, store: Store, name: FromPath[str]
) -> Response[ResolvedSecret]:
    value = await service.resolve(ctx, store, name)
    return Response(ResolvedSecret(name=name, value=value), headers={"Cache-Control": "no-store"})
