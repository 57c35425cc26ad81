"""JSON routes: runs, the task inbox, dead letters. Each parses, calls one function, answers."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from litestar import Controller, Response, get, post
from litestar.params import FromPath, FromQuery, HeaderParameter, JSONBody, QueryParameter

from tenant_runtime.api import queries, schemas, service
from tenant_runtime.api.auth import requires_actor, requires_admin, requires_tenant_wide
from tenant_runtime.api.deps import AuthedRequest, runtime_of, scope_for
from tenant_runtime.api.scope import store_names

Limit = Annotated[
    int,
    QueryParameter(
        ge=1, le=queries.MAX_LIMIT, description=f"page size (default {queries.DEFAULT_LIMIT})"
    ),
]
Cursor = Annotated[str | None, QueryParameter(description="next_cursor from the previous page")]
IdempotencyKey = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key",
        description="retrying with the same key and body returns the same run",
    ),
]


class RunController(Controller):
    path = "/api/v1/runs"
    tags = ["runs"]

    @post("/", operation_id="startRun", guards=[requires_actor])
    async def start(
        self,
        request: AuthedRequest,
        data: JSONBody[schemas.RunCreate],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[schemas.Run]:
        run, created = await service.start_run(
            runtime_of(request), request.user, scope_for(request), data, idempotency_key
        )
        if created:
            return Response(run, status_code=201, headers={"Location": f"{self.path}/{run.id}"})
        return Response(run, status_code=200, headers={"Idempotent-Replayed": "true"})

    @get("/", operation_id="listRuns")
    async def list_(
        self,
        request: AuthedRequest,
        status: Annotated[
            str | None, QueryParameter(description=", ".join(queries.RUN_STATUSES))
        ] = None,
        template_id: FromQuery[str | None] = None,
        store: Annotated[str | None, QueryParameter(description="a store's code or id")] = None,
        limit: Limit = queries.DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> schemas.Page[schemas.Run]:
        return await queries.list_runs(
            runtime_of(request).engine.db,
            scope_for(request),
            status=status,
            template_id=template_id,
            stores=store_names(runtime_of(request).stores, store) if store else None,
            limit=limit,
            cursor=cursor,
        )

    @get("/{run_id:uuid}", operation_id="getRun")
    async def get_(self, request: AuthedRequest, run_id: FromPath[UUID]) -> schemas.RunDetail:
        return await queries.run_detail(runtime_of(request).engine.db, scope_for(request), run_id)

    @post(
        "/{run_id:uuid}/cancel", operation_id="cancelRun", guards=[requires_admin], status_code=200
    )
    async def cancel(self, request: AuthedRequest, run_id: FromPath[UUID]) -> schemas.Cancelled:
        return await service.cancel_run(
            runtime_of(request), request.user, scope_for(request), run_id
        )


class TaskController(Controller):
    path = "/api/v1/tasks"
    tags = ["tasks"]

    @get("/", operation_id="listTasks", description="The caller's inbox, newest first.")
    async def list_(
        self,
        request: AuthedRequest,
        status: Annotated[
            str, QueryParameter(description="open (default), done, cancelled or any")
        ] = "open",
        kind: Annotated[str | None, QueryParameter(description="approval or checklist")] = None,
        limit: Limit = queries.DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> schemas.Page[schemas.Task]:
        return await queries.list_tasks(
            runtime_of(request).engine.db,
            scope_for(request),
            status=status,
            kind=kind,
            limit=limit,
            cursor=cursor,
        )

    @get("/{task_id:uuid}", operation_id="getTask")
    async def get_(self, request: AuthedRequest, task_id: FromPath[UUID]) -> schemas.Task:
        return await queries.get_task(runtime_of(request).engine.db, scope_for(request), task_id)

    @post(
        "/{task_id:uuid}/decision",
        operation_id="decideTask",
        guards=[requires_actor],
        status_code=200,
    )
    async def decide(
        self,
        request: AuthedRequest,
        task_id: FromPath[UUID],
        data: JSONBody[schemas.DecisionCreate],
    ) -> schemas.Task:
        return await service.decide(
            runtime_of(request), request.user, scope_for(request), task_id, data
        )


class DeadLetterController(Controller):
    path = "/api/v1/dead-letters"
    tags = ["dead-letters"]
    guards = [requires_tenant_wide]

    @get("/", operation_id="listDeadLetters")
    async def list_(
        self,
        request: AuthedRequest,
        replayed: Annotated[
            bool | None, QueryParameter(description="true: replayed only; false: pending only")
        ] = None,
        limit: Limit = queries.DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> schemas.Page[schemas.DeadLetter]:
        return await queries.list_dead_letters(
            runtime_of(request).engine.db, replayed=replayed, limit=limit, cursor=cursor
        )

    @get("/{dead_letter_id:uuid}", operation_id="getDeadLetter")
    async def get_(
        self, request: AuthedRequest, dead_letter_id: FromPath[UUID]
    ) -> schemas.DeadLetter:
        return await queries.get_dead_letter(runtime_of(request).engine.db, dead_letter_id)

    @post(
        "/{dead_letter_id:uuid}/replay",
        operation_id="replayDeadLetter",
        guards=[requires_admin],
        status_code=202,
    )
    async def replay(
        self, request: AuthedRequest, dead_letter_id: FromPath[UUID]
    ) -> schemas.Replayed:
        return await service.replay(runtime_of(request), dead_letter_id)
