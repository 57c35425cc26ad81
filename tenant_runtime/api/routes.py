"""JSON routes: runs, the task inbox, dead letters, the AI decision audit, the tenant's
triage examples and insights. Each parses, calls one function, answers."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from litestar import Controller, Response, delete, get, post
from litestar.params import FromPath, FromQuery, HeaderParameter, JSONBody, QueryParameter

from tenant_runtime.api import queries, schemas, service, triage
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
        kind: Annotated[
            str | None,
            QueryParameter(
                description="approval, checklist or review (an unsure AI classification)"
            ),
        ] = None,
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
        description="approval: approved | rejected with the form's answers; checklist: "
        'submitted with {item_id: {"ok": bool, "evidence": ...}}; review: reviewed with '
        '{"label": one of the form\'s options} (confirmed and corrected must fit the label).',
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


#: An import of 1000 examples of up to 2000 characters exceeds the API's usual body limit.
IMPORT_MAX_BODY_BYTES = 4 * 1024 * 1024


class AiDecisionController(Controller):
    path = "/api/v1/ai/decisions"
    tags = ["ai"]

    @get(
        "/",
        operation_id="listAiDecisions",
        description="The audit of the AI decisions in runs the caller may see, newest first.",
    )
    async def list_(
        self,
        request: AuthedRequest,
        run_id: FromQuery[UUID | None] = None,
        kind: Annotated[
            str | None, QueryParameter(description=", ".join(triage.DECISION_KINDS))
        ] = None,
        routed: Annotated[str | None, QueryParameter(description=", ".join(triage.ROUTES))] = None,
        since: Annotated[
            datetime | None,
            QueryParameter(description="made at or after this ISO 8601 moment (UTC if no zone)"),
        ] = None,
        limit: Limit = queries.DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> schemas.Page[schemas.AiDecision]:
        return await triage.list_decisions(
            runtime_of(request).engine.db,
            scope_for(request),
            run_id=run_id,
            kind=kind,
            routed=routed,
            since=since,
            limit=limit,
            cursor=cursor,
        )

    @get("/{decision_id:uuid}", operation_id="getAiDecision")
    async def get_(self, request: AuthedRequest, decision_id: FromPath[UUID]) -> schemas.AiDecision:
        return await triage.get_decision(
            runtime_of(request).engine.db, scope_for(request), decision_id
        )


class TriageExampleController(Controller):
    path = "/api/v1/triage/examples"
    tags = ["triage"]
    guards = [requires_tenant_wide]

    @get("/", operation_id="listTriageExamples", description="The tenant's own labelled texts.")
    async def list_(
        self,
        request: AuthedRequest,
        target: Annotated[str | None, QueryParameter(description="category or priority")] = None,
        source: Annotated[str | None, QueryParameter(description="review or import")] = None,
        label: FromQuery[str | None] = None,
        limit: Limit = queries.DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> schemas.Page[schemas.TriageExample]:
        return await triage.list_examples(
            runtime_of(request).engine.db,
            target=target,
            source=source,
            label=label,
            limit=limit,
            cursor=cursor,
        )

    @post(
        "/",
        operation_id="importTriageExamples",
        guards=[requires_admin],
        status_code=200,
        request_max_body_size=IMPORT_MAX_BODY_BYTES,
        description="Teach the tenant's model 1-1000 labelled texts; the latest label for a "
        "text wins. Answers what changed, and any label the model did not know before.",
    )
    async def import_(
        self, request: AuthedRequest, data: JSONBody[schemas.ExamplesImport]
    ) -> schemas.ExamplesImported:
        return await triage.import_examples(runtime_of(request).engine, request.user, data)

    @delete("/{example_id:uuid}", operation_id="deleteTriageExample", guards=[requires_admin])
    async def delete_(self, request: AuthedRequest, example_id: FromPath[UUID]) -> None:
        await triage.delete_example(runtime_of(request).engine.db, example_id)


class InsightController(Controller):
    path = "/api/v1/insights"
    tags = ["triage"]
    guards = [requires_tenant_wide]

    @get(
        "/",
        operation_id="listInsights",
        description="Recurring incident patterns at a store or across a region, newest first.",
    )
    async def list_(
        self,
        request: AuthedRequest,
        # Not ``scope``: Litestar reserves that name for the ASGI scope.
        insight_scope: Annotated[
            str | None, QueryParameter(name="scope", description="store or region")
        ] = None,
        label: FromQuery[str | None] = None,
        since: Annotated[
            datetime | None,
            QueryParameter(description="latest incident at or after this ISO 8601 moment"),
        ] = None,
        limit: Limit = queries.DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> schemas.Page[schemas.Insight]:
        return await triage.list_insights(
            runtime_of(request).engine.db,
            scope=insight_scope,
            label=label,
            since=since,
            limit=limit,
            cursor=cursor,
        )
