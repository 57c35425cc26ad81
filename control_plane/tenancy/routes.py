"""HTTP routes for partners, tenants, regions and stores (thin: one service call each)."""

from __future__ import annotations

from uuid import UUID

from litestar import Controller, Response, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody

from control_plane.api.auth import requires
from control_plane.api.pagination import Page
from control_plane.api.params import CtxDep, Cursor, IfMatch, Limit
from control_plane.api.responses import one, page, to_schema
from control_plane.config import get_settings
from control_plane.runtimelink import bootstrap
from control_plane.secrets.routes import SecretStoreDep
from control_plane.tenancy import lifecycle, schemas, service
from control_plane.tenancy.models import PartnerKind, PartnerStatus, TenantStatus


class PartnerController(Controller):
    path = "/api/v1/partners"
    tags = ["partners"]

    @post(
        "/",
        operation_id="createPartner",
        guards=[requires("partners:create")],
        opt={"idempotent": True},
    )
    async def create(
        self, ctx: CtxDep, data: JSONBody[schemas.PartnerCreate]
    ) -> Response[schemas.Partner]:
        return one(await service.create_partner(ctx, data), schemas.Partner, 201)

    @get("/", operation_id="listPartners", guards=[requires("partners:read")])
    async def list_(
        self,
        ctx: CtxDep,
        kind: FromQuery[PartnerKind | None] = None,
        status: FromQuery[PartnerStatus | None] = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> Page[schemas.Partner]:
        rows, nxt = await service.list_partners(
            ctx, kind=kind, status=status, limit=limit, cursor=cursor
        )
        return page(rows, nxt, schemas.Partner)

    @get("/{partner_id:uuid}", operation_id="getPartner", guards=[requires("partners:read")])
    async def get_(self, ctx: CtxDep, partner_id: FromPath[UUID]) -> Response[schemas.Partner]:
        return one(await service.read_partner(ctx, partner_id), schemas.Partner)

    @patch("/{partner_id:uuid}", operation_id="updatePartner", guards=[requires("partners:write")])
    async def update(
        self,
        ctx: CtxDep,
        partner_id: FromPath[UUID],
        data: JSONBody[schemas.PartnerUpdate],
        if_match: IfMatch = None,
    ) -> Response[schemas.Partner]:
        return one(await service.update_partner(ctx, partner_id, data, if_match), schemas.Partner)

    @post(
        "/{partner_id:uuid}/tenants",
        operation_id="onboardTenant",
        guards=[requires("tenants:lifecycle")],
        opt={"idempotent": True},
    )
    async def onboard(
        self,
        ctx: CtxDep,
        store: SecretStoreDep,
        partner_id: FromPath[UUID],
        data: JSONBody[schemas.TenantCreate],
    ) -> Response[schemas.OnboardedTenant]:
        tenant = await lifecycle.onboard(ctx, store, partner_id, data)
        issued = bootstrap.onboarding_token(tenant)
        runtime_bootstrap = (
            schemas.RuntimeBootstrap(
                token=issued.token,
                expires_at=issued.expires_at,
                exchange_url=f"{get_settings().issuer}/runtime/v1/bootstrap",
            )
            if issued
            else None
        )
        return one(tenant, schemas.OnboardedTenant, 201, runtime_bootstrap=runtime_bootstrap)

    @get(
        "/{partner_id:uuid}/tenants",
        operation_id="listPartnerTenants",
        guards=[requires("tenants:read")],
    )
    async def tenants(
        self,
        ctx: CtxDep,
        partner_id: FromPath[UUID],
        status: FromQuery[TenantStatus | None] = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> Page[schemas.Tenant]:
        rows, nxt = await service.list_tenants(
            ctx, partner_id=partner_id, status=status, limit=limit, cursor=cursor
        )
        return page(rows, nxt, schemas.Tenant)


class TenantController(Controller):
    path = "/api/v1/tenants"
    tags = ["tenants"]
    guards = [requires("tenants:read")]

    @get("/", operation_id="listTenants")
    async def list_(
        self,
        ctx: CtxDep,
        status: FromQuery[TenantStatus | None] = None,
        partner_id: FromQuery[UUID | None] = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> Page[schemas.Tenant]:
        rows, nxt = await service.list_tenants(
            ctx, partner_id=partner_id, status=status, limit=limit, cursor=cursor
        )
        return page(rows, nxt, schemas.Tenant)

    @get("/{tenant_id:uuid}", operation_id="getTenant")
    async def get_(self, ctx: CtxDep, tenant_id: FromPath[UUID]) -> Response[schemas.Tenant]:
        return one(await service.read_tenant(ctx, tenant_id), schemas.Tenant)

    @patch("/{tenant_id:uuid}", operation_id="updateTenant", guards=[requires("tenants:write")])
    async def update(
        self,
        ctx: CtxDep,
        tenant_id: FromPath[UUID],
        data: JSONBody[schemas.TenantUpdate],
        if_match: IfMatch = None,
    ) -> Response[schemas.Tenant]:
        return one(await service.update_tenant(ctx, tenant_id, data, if_match), schemas.Tenant)

    @post(
        "/{tenant_id:uuid}/{action:str}",
        operation_id="transitionTenant",
        guards=[requires("tenants:lifecycle")],
        status_code=200,
        description="Lifecycle: activate, suspend, resume or offboard.",
    )
    async def transition(
        self,
        ctx: CtxDep,
        store: SecretStoreDep,
        tenant_id: FromPath[UUID],
        action: FromPath[str],
        if_match: IfMatch = None,
        data: JSONBody[schemas.TransitionReason | None] = None,
    ) -> Response[schemas.Tenant]:
        reason = data.reason if data else None
        tenant = await lifecycle.transition(
            ctx, store, tenant_id, action, reason=reason, if_match=if_match
        )
        return one(tenant, schemas.Tenant)

    @get("/{tenant_id:uuid}/settings", operation_id="getEffectiveSettings")
    async def settings(self, ctx: CtxDep, tenant_id: FromPath[UUID]) -> schemas.EffectiveSettings:
        effective, sources = await service.effective_settings(ctx, tenant_id)
        return schemas.EffectiveSettings(tenant_id=tenant_id, settings=effective, sources=sources)

    @post(
        "/{tenant_id:uuid}/regions",
        operation_id="createRegion",
        guards=[requires("tenants:write")],
        opt={"idempotent": True},
    )
    async def create_region(
        self, ctx: CtxDep, tenant_id: FromPath[UUID], data: JSONBody[schemas.RegionCreate]
    ) -> Response[schemas.Region]:
        return one(await service.create_region(ctx, tenant_id, data), schemas.Region, 201)

    @get("/{tenant_id:uuid}/regions", operation_id="listRegions")
    async def regions(
        self, ctx: CtxDep, tenant_id: FromPath[UUID], limit: Limit = 50, cursor: Cursor = None
    ) -> Page[schemas.Region]:
        rows, nxt = await service.list_regions(ctx, tenant_id, limit=limit, cursor=cursor)
        return page(rows, nxt, schemas.Region)

    @get("/{tenant_id:uuid}/regions/{region_id:uuid}", operation_id="getRegion")
    async def region(
        self, ctx: CtxDep, tenant_id: FromPath[UUID], region_id: FromPath[UUID]
    ) -> Response[schemas.Region]:
        return one(await service.read_region(ctx, tenant_id, region_id), schemas.Region)

    @patch(
        "/{tenant_id:uuid}/regions/{region_id:uuid}",
        operation_id="updateRegion",
        guards=[requires("tenants:write")],
    )
    async def update_region(
        self,
        ctx: CtxDep,
        tenant_id: FromPath[UUID],
        region_id: FromPath[UUID],
        data: JSONBody[schemas.RegionUpdate],
        if_match: IfMatch = None,
    ) -> Response[schemas.Region]:
        return one(
            await service.update_region(ctx, tenant_id, region_id, data, if_match), schemas.Region
        )

    @post(
        "/{tenant_id:uuid}/stores",
        operation_id="createStore",
        guards=[requires("stores:write")],
        opt={"idempotent": True},
    )
    async def create_store(
        self, ctx: CtxDep, tenant_id: FromPath[UUID], data: JSONBody[schemas.StoreCreate]
    ) -> Response[schemas.Store]:
        return one(await service.create_store(ctx, tenant_id, data), schemas.Store, 201)

    @get("/{tenant_id:uuid}/stores", operation_id="listStores")
    async def stores(
        self,
        ctx: CtxDep,
        tenant_id: FromPath[UUID],
        region_id: FromQuery[UUID | None] = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> Page[schemas.Store]:
        rows, nxt = await service.list_stores(
            ctx, tenant_id, region_id=region_id, limit=limit, cursor=cursor
        )
        return page(rows, nxt, schemas.Store)

    @get("/{tenant_id:uuid}/stores/{store_id:uuid}", operation_id="getStore")
    async def store(
        self, ctx: CtxDep, tenant_id: FromPath[UUID], store_id: FromPath[UUID]
    ) -> Response[schemas.Store]:
        return one(await service.read_store(ctx, tenant_id, store_id), schemas.Store)

    @patch(
        "/{tenant_id:uuid}/stores/{store_id:uuid}",
        operation_id="updateStore",
        guards=[requires("stores:write")],
    )
    async def update_store(
        self,
        ctx: CtxDep,
        tenant_id: FromPath[UUID],
        store_id: FromPath[UUID],
        data: JSONBody[schemas.StoreUpdate],
        if_match: IfMatch = None,
    ) -> Response[schemas.Store]:
        return one(
            await service.update_store(ctx, tenant_id, store_id, data, if_match), schemas.Store
        )


__all__ = ["PartnerController", "TenantController", "to_schema"]
