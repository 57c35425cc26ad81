"""``/api/v1/rollouts``: start a fleet rollout, watch it, promote or abort it."""

from __future__ import annotations

from uuid import UUID

from litestar import Controller, Response, get, post
from litestar.params import FromPath, JSONBody, Parameter

from control_plane.api.auth import requires
from control_plane.api.pagination import Page
from control_plane.api.params import CtxDep, Cursor, Limit
from control_plane.rollouts import schemas, service, views


class RolloutController(Controller):
    path = "/api/v1/rollouts"
    tags = ["rollouts"]
    guards = [requires(service.READ)]

    @get("/", operation_id="listRollouts")
    async def list_(
        self,
        ctx: CtxDep,
        limit: Limit = 50,
        cursor: Cursor = None,
        status: str | None = Parameter(default=None, description="only rollouts in this state"),
    ) -> Page[schemas.RolloutSummary]:
        rows, nxt = await service.list_rollouts(ctx, status=status, limit=limit, cursor=cursor)
        counts = await views.tenant_counts(ctx, [r.id for r in rows])
        return Page(items=[views.summary(r, counts.get(r.id, 0)) for r in rows], next_cursor=nxt)

    @post(
        "/",
        operation_id="createRollout",
        guards=[requires(service.WRITE)],
        opt={"idempotent": True},
        description="Start moving a template version across a fleet in gated waves. Every "
        "check runs first: a refusal changes nothing.",
    )
    async def create(
        self, ctx: CtxDep, data: JSONBody[schemas.RolloutCreate]
    ) -> Response[schemas.Rollout]:
        rollout = await service.create(ctx, data)
        return Response(await views.detail(ctx, rollout), status_code=201)

    @get("/{rollout_id:uuid}", operation_id="getRollout")
    async def get_(self, ctx: CtxDep, rollout_id: FromPath[UUID]) -> schemas.Rollout:
        return await views.detail(ctx, await service.get(ctx, rollout_id))

    @post(
        "/{rollout_id:uuid}/promote",
        operation_id="promoteRollout",
        guards=[requires(service.WRITE)],
        status_code=200,
        description="Skip the rest of the current wave's soak, or resume a paused rollout.",
    )
    async def promote(
        self, ctx: CtxDep, rollout_id: FromPath[UUID], data: JSONBody[schemas.Action | None] = None
    ) -> schemas.Rollout:
        rollout = await service.promote(ctx, rollout_id, data.reason if data else None)
        return await views.detail(ctx, rollout)

    @post(
        "/{rollout_id:uuid}/abort",
        operation_id="abortRollout",
        guards=[requires(service.WRITE)],
        status_code=200,
        description="Stop and roll back every tenant already moved to the previous version.",
    )
    async def abort(
        self, ctx: CtxDep, rollout_id: FromPath[UUID], data: JSONBody[schemas.Action | None] = None
    ) -> schemas.Rollout:
        rollout = await service.abort(ctx, rollout_id, data.reason if data else None)
        return await views.detail(ctx, rollout)
