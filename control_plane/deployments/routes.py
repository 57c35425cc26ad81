"""``/api/v1/tenants/{tenant_id}/deployments``: what a tenant's runtime should run."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Controller, Response, delete, get, patch, post
from litestar.connection import ASGIConnection
from litestar.params import FromPath, JSONBody
from sqlalchemy import select

from control_plane.api.auth import requires
from control_plane.api.pagination import Page
from control_plane.api.params import CtxDep, Cursor, IfMatch, Limit
from control_plane.db import Database
from control_plane.deployments import plan, schemas, service
from control_plane.deployments.models import Deployment, DeploymentStatus
from control_plane.deployments.state import generation_etag, to_wire
from control_plane.errors import NotFound
from control_plane.identity.principal import Principal


def requires_on_deployment(permission: str) -> Any:
    """:func:`requires`, and a deployment the caller cannot see is a 404 rather than a 403."""
    base = requires(permission)

    async def guard(connection: ASGIConnection[Any, Principal, Any, Any], handler: Any) -> None:
        deployment_id = connection.path_params.get("deployment_id")
        if deployment_id is not None and not connection.user.has(permission):
            db: Database = connection.app.state.db
            async with db.session(connection.user.scope()) as session:
                found = await session.scalar(
                    select(Deployment.id).where(Deployment.id == deployment_id)
                )
            if found is None:
                raise NotFound(f"deployment {deployment_id} does not exist")
        await base(connection, handler)

    guard.__name__ = base.__name__
    return guard


def _one(
    deployment: Deployment, generation: int, status_code: int = 200
) -> Response[schemas.Deployment]:
    return Response(
        to_wire(deployment, generation), status_code=status_code, headers={"ETag": deployment.etag}
    )


class DeploymentController(Controller):
    path = "/api/v1/tenants/{tenant_id:uuid}"
    tags = ["deployments"]
    guards = [requires_on_deployment(service.READ)]

    @get("/deployments", operation_id="listDeployments")
    async def list_(
        self, ctx: CtxDep, tenant_id: FromPath[UUID], limit: Limit = 50, cursor: Cursor = None
    ) -> Page[schemas.Deployment]:
        rows, nxt, generation = await service.list_deployments(
            ctx, tenant_id, limit=limit, cursor=cursor
        )
        return Page(items=[to_wire(r, generation) for r in rows], next_cursor=nxt)

    @post(
        "/deployments",
        operation_id="createDeployment",
        guards=[requires(service.WRITE)],
        opt={"idempotent": True},
    )
    async def create(
        self, ctx: CtxDep, tenant_id: FromPath[UUID], data: JSONBody[schemas.DeploymentCreate]
    ) -> Response[schemas.Deployment]:
        return _one(*await service.create_deployment(ctx, tenant_id, data), status_code=201)

    @get("/deployments/{deployment_id:uuid}", operation_id="getDeployment")
    async def get_(
        self, ctx: CtxDep, tenant_id: FromPath[UUID], deployment_id: FromPath[UUID]
    ) -> Response[schemas.Deployment]:
        return _one(*await service.get_deployment(ctx, tenant_id, deployment_id))

    @patch(
        "/deployments/{deployment_id:uuid}",
        operation_id="updateDeployment",
        guards=[requires_on_deployment(service.WRITE)],
    )
    async def update(
        self,
        ctx: CtxDep,
        tenant_id: FromPath[UUID],
        deployment_id: FromPath[UUID],
        data: JSONBody[schemas.DeploymentUpdate],
        if_match: IfMatch = None,
    ) -> Response[schemas.Deployment]:
        return _one(*await service.update_deployment(ctx, tenant_id, deployment_id, data, if_match))

    @post(
        "/deployments/{deployment_id:uuid}/pause",
        operation_id="pauseDeployment",
        guards=[requires_on_deployment(service.WRITE)],
        status_code=200,
    )
    async def pause(
        self,
        ctx: CtxDep,
        tenant_id: FromPath[UUID],
        deployment_id: FromPath[UUID],
        if_match: IfMatch = None,
    ) -> Response[schemas.Deployment]:
        return _one(
            *await service.set_status(
                ctx, tenant_id, deployment_id, DeploymentStatus.PAUSED, if_match
            )
        )

    @post(
        "/deployments/{deployment_id:uuid}/resume",
        operation_id="resumeDeployment",
        guards=[requires_on_deployment(service.WRITE)],
        status_code=200,
    )
    async def resume(
        self,
        ctx: CtxDep,
        tenant_id: FromPath[UUID],
        deployment_id: FromPath[UUID],
        if_match: IfMatch = None,
    ) -> Response[schemas.Deployment]:
        return _one(
            *await service.set_status(
                ctx, tenant_id, deployment_id, DeploymentStatus.ACTIVE, if_match
            )
        )

    @delete(
        "/deployments/{deployment_id:uuid}",
        operation_id="deleteDeployment",
        guards=[requires_on_deployment(service.WRITE)],
    )
    async def delete_(
        self,
        ctx: CtxDep,
        tenant_id: FromPath[UUID],
        deployment_id: FromPath[UUID],
        if_match: IfMatch = None,
    ) -> None:
        await service.delete_deployment(ctx, tenant_id, deployment_id, if_match)

    @post(
        "/deployments/plan",
        operation_id="planDeployments",
        guards=[requires(service.WRITE)],
        status_code=200,
        description="What applying this complete desired list would change, per template.",
    )
    async def plan_(
        self, ctx: CtxDep, tenant_id: FromPath[UUID], data: JSONBody[schemas.DesiredDeployments]
    ) -> Response[schemas.Plan]:
        result = await plan.plan(ctx, tenant_id, data)
        return Response(result, headers={"ETag": result.etag})

    @post(
        "/deployments/apply",
        operation_id="applyDeployments",
        guards=[requires(service.WRITE)],
        status_code=200,
        description="Make the complete desired list true, atomically, as one new generation. "
        "If-Match takes the plan's etag (the tenant's deployments generation).",
    )
    async def apply_(
        self,
        ctx: CtxDep,
        tenant_id: FromPath[UUID],
        data: JSONBody[schemas.DesiredDeployments],
        if_match: IfMatch = None,
    ) -> Response[schemas.Applied]:
        result = await plan.apply(ctx, tenant_id, data, if_match)
        return Response(result, headers={"ETag": generation_etag(result.generation)})

    @get("/desired-vs-reported", operation_id="getDesiredVsReported")
    async def desired_vs_reported(
        self, ctx: CtxDep, tenant_id: FromPath[UUID]
    ) -> schemas.DesiredVsReported:
        return await service.desired_vs_reported(ctx, tenant_id)
