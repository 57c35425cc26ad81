"""Executing steps: claim (committed before any side effect), act, then complete under the
fence, writing what comes next in the same transaction and ringing for it after commit.

Automatic kinds (call, set, decide, emit, notify, compensate, recommend) finish in one
go. Human kinds (approval, checklist), waits and parallel steps *park*: the step waits,
and a decision (:meth:`Engine.decide`), an event (:meth:`Engine.ingest`), a timer
(:meth:`Engine.tick`) or the last branch to finish resumes it. A classify step finishes
in one go when its model is confident enough, and parks on a review task when not.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

import jsonschema
import msgspec
from cel_expr_python import cel
from sqlalchemy import bindparam, cast, func, insert, select, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from control_plane.contracts import compat, dsl, expressions, uuid7
from control_plane.contracts.validate import seconds
from tenant_runtime.db.dialect import aware, insert_ignore, iso
from tenant_runtime.db.schema import (
    ai_decisions,
    branches,
    dead_letters,
    events,
    notifications,
    outbox,
    runs,
    steps,
    tasks,
    template_specs,
    triage_cases,
    waits,
)
from tenant_runtime.engine import human, state
from tenant_runtime.engine.directory import Directory
from tenant_runtime.mailer import mailed
from tenant_runtime.triage.service import Triage


class CallFailed(Exception):
    """A step failed; ``kind`` is what a step's ``retry_on`` matches: timeout, connection,
    5xx, 429, 409 (retryable when listed), or 4xx, expression, unbound, model (never
    retried)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class Connectors(Protocol):
    async def call(
        self, connector: str, operation: str, payload: dict[str, Any], *, idempotency_key: str
    ) -> dict[str, Any]: ...


class InvalidStart(ValueError):
    """The parameters or the input cannot start a run."""


class UnknownTemplate(LookupError):
    """No deployment of that template in this runtime."""


TaskNotFound, TaskClosed, InvalidDecision = (
    human.TaskNotFound,
    human.TaskClosed,
    human.InvalidDecision,
)


def _utcnow() -> datetime:
    return datetime.now(UTC)


_PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")


@dataclass(frozen=True)
class Started:
    run_id: UUID
    created: bool


@dataclass
class Plan:
    """A template version made ready to execute: steps by id (sub-flow steps included),
    the parallel step each sub-flow step belongs to, the aliases its expressions see."""

    template: dsl.Template
    steps: dict[str, dsl.Step] = field(default_factory=dict)
    parent: dict[str, dsl.ParallelStep] = field(default_factory=dict)
    #: The main flow's recommend steps: their cases close when the run ends.
    recommends: list[dsl.RecommendStep] = field(default_factory=list)

    @classmethod
    def of(cls, template: dsl.Template) -> Plan:
        plan = cls(template)

        def index(items: Iterable[dsl.Step], parent: dsl.ParallelStep | None) -> None:
            for step in items:
                plan.steps[step.id] = step
                if parent is not None:
                    plan.parent[step.id] = parent
                if isinstance(step, dsl.ParallelStep):
                    index(step.steps, step)

        index(template.steps, None)
        plan.recommends = [s for s in template.steps if isinstance(s, dsl.RecommendStep)]
        return plan


#: How often a call to a connector with no binding (yet) is tried before it is a failure.
UNBOUND_ATTEMPTS = 30

#: Database-only steps one worker executes in one transaction before ringing for the rest.
INLINE_STEPS = 64
#: Kinds whose work happens outside a transaction, after their claim has committed: calls
#: to other systems, and models that take a while to train or to search.
OUTSIDE_TRANSACTION = (dsl.CallStep, dsl.CompensateStep, dsl.ClassifyStep, dsl.RecommendStep)

# Statements of the hot path, built once (SQLAlchemy reuses their compiled forms).
_RUN_STEPS = (
    select(steps.c.step_id, steps.c.branch, steps.c.visit, steps.c.status, steps.c.output)
    .where(steps.c.run_id == bindparam("run_id"))
    .order_by(steps.c.visit)
)
_MERGE_VARS = (
    update(runs)
    .where(runs.c.id == bindparam("run_id"))
    .values(
        vars=runs.c.vars.op("||")(cast(bindparam("patch", type_=JSONB), JSONB)),
        updated_at=bindparam("now"),
    )
)
_INSERT_OUTBOX = insert(outbox)
_SET_VARS = (
    update(runs)
    .where(runs.c.id == bindparam("run_id"))
    .values(vars=bindparam("merged", type_=runs.c.vars.type), updated_at=bindparam("now"))
)


@dataclass
class RunContext:
    """A run as a worker going through it in a straight line sees it: loaded once, kept up
    to date as its steps complete (nothing else moves the run meanwhile but a cancel)."""

    run_id: UUID
    plan: Plan
    status: str
    params: dict[str, Any]
    input: dict[str, Any]
    vars: dict[str, Any]
    store: str
    last_event: dict[str, Any]
    #: branch -> step id -> {"output": ...} of succeeded steps ('' is the main flow).
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    visits: dict[tuple[str, str], int] = field(default_factory=dict)
    items: dict[str, Any] = field(default_factory=dict)

    def next_visit(self, branch: str, step_id: str) -> int:
        visit = self.visits.get((branch, step_id), 0) + 1
        self.visits[(branch, step_id)] = visit
        return visit

    def done(self, claim: state.Claim, output: dict[str, Any] | None) -> None:
        self.outputs.setdefault(claim.branch, {})[claim.step_id] = {"output": output or {}}


@dataclass
class Unit:
    """One transaction's work: the steps it wrote are rung for after it commits."""

    conn: AsyncConnection
    now: datetime
    bells: list[UUID] = field(default_factory=list)
    #: Variables set per run, written once before commit.
    vars: dict[UUID, dict[str, Any]] = field(default_factory=dict)
    #: Telemetry events about this transaction's changes, written to the outbox with them.
    events: list[dict[str, Any]] = field(default_factory=list)
    #: Rows of database-only steps done in this transaction, inserted together.
    done: list[dict[str, Any]] = field(default_factory=list)

    def event(self, kind: str, plan: Plan | None = None, **fields: Any) -> None:
        """A telemetry event, written to the outbox when the transaction commits."""
        self.events.append(self.make_event(kind, plan, **fields))

    def make_event(self, kind: str, plan: Plan | None = None, **fields: Any) -> dict[str, Any]:
        """A telemetry event (``control_plane.contracts.telemetry.Event`` as JSON)."""
        item = {"id": str(uuid7()), "at": iso(self.now), "kind": kind}
        if plan is not None:
            item["template_id"] = plan.template.id
            item["template_version"] = plan.template.version
        item.update(
            {k: str(v) if isinstance(v, UUID) else v for k, v in fields.items() if v is not None}
        )
        return item

    def step_event(
        self, plan: Plan, claim: state.Claim, status: str, duration_ms: int | None = None
    ) -> None:
        kind = type(plan.steps[claim.step_id]).__struct_config__.tag
        data = {"step_id": claim.step_id, "step_kind": kind}
        self.event(
            "step.finished",
            plan,
            run_id=claim.run_id,
            status=status,
            duration_ms=duration_ms,
            data=data,
        )

    async def flush(self) -> None:
        if self.done:
            await state.insert_steps(self.conn, self.done)
            self.done = []
        for run_id, values in self.vars.items():
            params = {"run_id": run_id, "now": self.now}
            if self.conn.dialect.name == "postgresql":  # merged in place: branches may race
                await self.conn.execute(_MERGE_VARS, {**params, "patch": values})
            else:  # SQLite serialises writers: read, merge, write
                current = await self.conn.scalar(select(runs.c.vars).where(runs.c.id == run_id))
                await self.conn.execute(
                    _SET_VARS, {**params, "merged": {**(current or {}), **values}}
                )
        self.vars.clear()
        if self.events:
            await self.conn.execute(
                _INSERT_OUTBOX,
                {"topic": "telemetry", "payload": self.events, "created_at": self.now},
            )
            self.events = []


@dataclass
class Outcome:
    output: dict[str, Any] | None = None
    next: str | None = None
    vars: dict[str, Any] | None = None
    event: dict[str, Any] | None = None
    notification: dict[str, Any] | None = None
    #: Set for kinds that wait: a task to open, a wait to register, items to fan out over.
    task: dict[str, Any] | None = None
    #: An approval's automatic decision, when its condition holds: the task closes at once.
    decided: str | None = None
    wait: dict[str, Any] | None = None
    items: list[Any] | None = None
    #: An AI decision to audit (classify, recommend), written with the step's outcome.
    decision: dict[str, Any] | None = None
    #: A case a recommend step opens; it is resolved when the run succeeds.
    case: dict[str, Any] | None = None


class Engine:
    def __init__(
        self,
        db: AsyncEngine,
        connectors: Connectors,
        *,
        directory: Directory | None = None,
        worker: str = "worker-1",
        lease: timedelta = timedelta(seconds=60),
        clock: Callable[[], datetime] | None = None,
        rng: random.Random | None = None,
        ring: Callable[[list[UUID]], None] | None = None,
        triage: Triage | None = None,
    ) -> None:
        self.db = db
        #: The tenant's triage models and the cases they recommend from.
        self.triage = triage or Triage(db, settings=lambda: self.directory.triage)
        self.connectors = connectors
        self.directory = directory or Directory()
        self.worker = worker
        self.lease = lease
        self.clock = clock or _utcnow
        self.rng = rng or random.Random()
        self.bells: deque[UUID] = deque()
        #: Rings the doorbells of committed steps: Dramatiq in a worker, the local queue
        #: that :meth:`pump` drains in embedded mode.
        self.ring = ring or self.bells.extend
        self._plans: dict[str, Plan] = {}
        self._compiled_templates: dict[int, tuple[dsl.Template, str, Any]] = {}
        #: Set when bindings arrive from the control plane: a missing one may be on its way.
        self.follows_desired_state = False

    # --- transactions -----------------------------------------------------------------

    @asynccontextmanager
    async def _unit(self) -> AsyncIterator[Unit]:
        async with self.db.begin() as conn:
            unit = Unit(conn, self.clock())
            yield unit
            await unit.flush()
        if unit.bells:
            self.ring(unit.bells)

    async def _plan(self, conn: AsyncConnection, template_hash: str) -> Plan:
        plan = self._plans.get(template_hash)
        if plan is None:
            spec = await conn.scalar(
                select(template_specs.c.spec).where(template_specs.c.hash == template_hash)
            )
            plan = self._plans[template_hash] = Plan.of(msgspec.convert(spec, dsl.Template))
        return plan

    async def _locate(self, conn: AsyncConnection, step_row_id: UUID) -> tuple[Plan, dsl.Step, Any]:
        """A step row's plan, its step definition, and the row (run_id, step_id, branch)."""
        row = (
            await conn.execute(
                select(steps.c.run_id, steps.c.step_id, steps.c.branch, runs.c.template_hash)
                .join(runs, runs.c.id == steps.c.run_id)
                .where(steps.c.id == step_row_id)
            )
        ).one()
        plan = await self._plan(conn, row.template_hash)
        return plan, plan.steps[row.step_id], row

    def _compiled(self, template: dsl.Template) -> tuple[str, Any]:
        """The template's content hash and its parameters' validator, worked out once per
        template object."""
        hit = self._compiled_templates.get(id(template))
        if hit is None or hit[0] is not template:
            schema = template.parameters
            validator = jsonschema.validators.validator_for(schema)(schema)
            hit = (template, compat.content_hash(template), validator)
            self._compiled_templates[id(template)] = hit
        return hit[1], hit[2]

    async def _remember(self, conn: AsyncConnection, template: dsl.Template) -> str:
        """Store the template's text once per content hash; runs point at it."""
        digest, _ = self._compiled(template)
        if digest not in self._plans:
            await conn.execute(
                insert_ignore(conn, template_specs).values(
                    hash=digest,
                    template_id=template.id,
                    version=template.version,
                    spec=msgspec.to_builtins(template),
                    created_at=self.clock(),
                )
            )
            self._plans[digest] = Plan.of(template)
        return digest

    # --- starting runs ----------------------------------------------------------------

    async def start(
        self,
        template: dsl.Template,
        params: dict[str, Any],
        payload: dict[str, Any],
        *,
        idempotency_key: str | None = None,
        store: str | None = None,
    ) -> UUID:
        """Start a run (or return the one this key already started)."""
        return (await self.launch(template, params, payload, idempotency_key, store)).run_id

    async def launch(
        self,
        template: dsl.Template,
        params: dict[str, Any],
        payload: dict[str, Any],
        idempotency_key: str | None = None,
        store: str | None = None,
    ) -> Started:
        """:meth:`start`, also saying whether this call created the run."""
        async with self._unit() as u:
            return await self._start(u, template, params, payload, idempotency_key, store)

    async def _start(
        self,
        u: Unit,
        template: dsl.Template,
        params: dict[str, Any],
        payload: dict[str, Any],
        key: str | None,
        store: str | None,
    ) -> Started:
        merged = _with_defaults(template.parameters, params)
        _, validator = self._compiled(template)
        error = jsonschema.exceptions.best_match(validator.iter_errors(merged))
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "parameters"
            raise InvalidStart(f"{where}: {error.message}")
        if key and (found := await state.run_by_key(u.conn, key)):
            return Started(found, created=False)
        known = self.directory.store(store)
        store = known.id if known else store
        digest = await self._remember(u.conn, template)
        run_id = uuid7()
        started = u.make_event("run.started", self._plans[digest], run_id=run_id, store=store)
        run_id, first = await state.start_run(
            u.conn,
            template_id=template.id,
            template_version=template.version,
            template_hash=digest,
            first_step=template.start or template.steps[0].id,
            params=merged,
            payload=payload,
            now=u.now,
            idempotency_key=key,
            store=store,
            run_id=run_id,
            events=[started],
        )
        u.bells.append(first)
        return Started(run_id, created=True)

    # --- executing one step -----------------------------------------------------------

    async def execute(self, step_row_id: UUID) -> bool:
        """Run a rung step, and the run's following steps while they come one after the
        other: steps that touch only the database in the same transaction, a call after its
        claim has committed. True when it did something."""
        async with self._unit() as u:
            found = await state.claim_with_run(
                u.conn, step_row_id, worker=self.worker, lease=self.lease, now=u.now
            )
            if found is None:
                return False
            claim, run = found
            ctx = await self._context(u.conn, claim.run_id, claim, run)
            if ctx.status != "running":  # cancelled (or finished) meanwhile
                await state.complete(u.conn, claim, output=None, now=u.now, status="cancelled")
                return True
            pending = await self._inline(u, ctx, claim)
        while pending is not None:
            claim, step = pending, ctx.plan.steps[pending.step_id]
            began = time.monotonic()
            data = await self._data(ctx, claim.branch, claim.step_id)
            try:
                outcome = await self._act(step, data, claim, ctx.plan)
            except CallFailed as failure:
                async with self._unit() as u:
                    await self._failed(u, ctx.plan, step, claim, failure)
                return True
            async with self._unit() as u:
                if outcome.task is not None:  # an unsure classification: a person reviews
                    if await state.park(u.conn, claim):
                        await self._park(u, ctx.plan, step, claim, outcome, data)
                    return True
                if not await state.complete(u.conn, claim, output=outcome.output, now=u.now):
                    return True  # a newer attempt owns the step now
                await self._audit(u, ctx.plan, claim, outcome, data)
                u.step_event(ctx.plan, claim, "succeeded", int((time.monotonic() - began) * 1000))
                pending = await self._after(u, ctx, claim, outcome)
                if pending is not None:
                    pending = await self._inline(u, ctx, pending)
        return True

    async def _inline(self, u: Unit, ctx: RunContext, claim: state.Claim) -> state.Claim | None:
        """Execute database-only steps right here, in ``u``'s transaction; stop at a call
        (returned, written held: its claim commits before the side effect), a parked step
        or the end. A planned step that runs here is written once, already done."""
        for _ in range(INLINE_STEPS):
            step = ctx.plan.steps[claim.step_id]
            if isinstance(step, OUTSIDE_TRANSACTION):
                return await self._written(u, claim)
            try:
                data = await self._data(ctx, claim.branch, claim.step_id)
                outcome = await self._act(step, data, claim, ctx.plan)
            except CallFailed as failure:
                await self._failed(u, ctx.plan, step, await self._written(u, claim), failure)
                return None
            if outcome.task or outcome.wait or outcome.items:
                claim = await self._written(u, claim)
                if await state.park(u.conn, claim):
                    await self._park(u, ctx.plan, step, claim, outcome, data)
                return None
            if not claim.written:
                u.done.append(state.done_row(claim, output=outcome.output, now=u.now))
            elif not await state.complete(u.conn, claim, output=outcome.output, now=u.now):
                return None
            u.step_event(ctx.plan, claim, "succeeded", 0)
            nxt = await self._after(u, ctx, claim, outcome)
            if nxt is None:
                return None
            claim = nxt
        # A long straight line of database-only steps: hand the rest to the queue.
        u.bells.append(
            await state.enqueue(u.conn, claim.run_id, claim.step_id, now=u.now, branch=claim.branch)
        )
        return None

    async def _written(self, u: Unit, claim: state.Claim) -> state.Claim:
        if claim.written:
            return claim
        return await state.hold(u.conn, claim, worker=self.worker, lease=self.lease, now=u.now)

    async def _after(
        self, u: Unit, ctx: RunContext, claim: state.Claim, outcome: Outcome
    ) -> state.Claim | None:
        """Record a completed step and go on; the next step, when there is one, is held by
        this worker (returned)."""
        await self._record(u, claim.run_id, outcome)
        if outcome.vars:
            ctx.vars.update(outcome.vars)
        ctx.done(claim, outcome.output)
        return await self._follow(u, ctx.plan, claim.run_id, claim.branch, outcome.next, ctx=ctx)

    async def _context(
        self,
        conn: AsyncConnection,
        run_id: UUID,
        claim: state.Claim | None = None,
        run: Any = None,
    ) -> RunContext:
        """The run, loaded for a worker going through it (``claim``: the step it holds;
        ``run``: the run's row when the claim brought it)."""
        if run is None:
            run = (await conn.execute(state.RUN_ROW, {"run_id": run_id})).one()
        plan = await self._plan(conn, run.template_hash)
        first = plan.template.start or plan.template.steps[0].id
        if claim is not None and (claim.step_id, claim.visit, claim.branch) == (first, 1, ""):
            # The first visit of the first step: nothing ran before it in this run.
            rows: Any = [(claim.step_id, "", 1, "running", None)]
        else:
            rows = (await conn.execute(_RUN_STEPS, {"run_id": run_id})).all()
        ctx = RunContext(
            run_id=run_id,
            plan=plan,
            status=run.status,
            params=run.params,
            input=run.input,
            vars=dict(run.vars or {}),
            store=run.store or "",
            last_event=run.last_event or {},
        )
        for step_id, branch, visit, status, output in rows:
            ctx.visits[(branch, step_id)] = max(visit, ctx.visits.get((branch, step_id), 0))
            if status == "succeeded":
                ctx.outputs.setdefault(branch, {})[step_id] = {"output": output or {}}
        return ctx

    async def _data(self, ctx: RunContext, branch: str, step_id: str) -> dict[str, Any]:
        """What a step's expressions see."""
        outputs = ctx.outputs.get("", {})
        if branch:
            outputs = {**outputs, **ctx.outputs.get(branch, {})}
        data = {
            "input": ctx.input,
            "params": ctx.params,
            "vars": ctx.vars,
            "steps": outputs,
            "event": ctx.last_event,
            "run": {"id": str(ctx.run_id), "store": ctx.store},
            "now": self.clock(),
        }
        if branch:
            if branch not in ctx.items:
                async with self.db.connect() as conn:
                    ctx.items[branch] = await conn.scalar(
                        select(branches.c.item).where(branches.c.id == UUID(branch))
                    )
            data[ctx.plan.parent[step_id].alias] = ctx.items[branch]
        return data

    async def _act(
        self, step: dsl.Step, data: dict[str, Any], claim: state.Claim, plan: Plan
    ) -> Outcome:
        if isinstance(step, dsl.CallStep):
            payload = _eval_map(step.input, data)
            key = _call_key(claim.run_id, claim.branch, step.id, claim.visit)
            call = self.connectors.call(
                step.connector, step.operation, payload, idempotency_key=key
            )
            if step.timeout:
                try:
                    result = await asyncio.wait_for(call, seconds(step.timeout))
                except TimeoutError:
                    raise CallFailed("timeout", f"no answer within {step.timeout}") from None
            else:
                result = await call
            return Outcome(output=result, next=step.next)
        if isinstance(step, dsl.SetStep):
            values = _eval_map(step.values, data)
            return Outcome(output=values, next=step.next, vars=values)
        if isinstance(step, dsl.DecideStep):
            for branch in step.branches:
                if _eval(branch.when, data) is True:
                    return Outcome(output={"chose": branch.next}, next=branch.next)
            return Outcome(output={"chose": step.default}, next=step.default)
        if isinstance(step, dsl.EmitStep):
            payload = _eval_map(step.payload, data)
            event = {"type": step.event, "payload": payload}
            return Outcome(output={"emitted": step.event}, next=step.next, event=event)
        if isinstance(step, dsl.NotifyStep):
            if step.to is not None:
                recipient = human.recipient(step.to, data["run"]["store"], self.directory)
            else:
                recipient = str(_eval(step.address or "''", data))
            message = render(step.message, data)
            note = {"channel": step.channel, "recipient": recipient, "message": message}
            return Outcome(output=note, next=step.next, notification=note)
        if isinstance(step, dsl.CompensateStep):
            return Outcome(output=await self._compensate(step, claim), next=step.next)
        if isinstance(step, dsl.ApprovalStep | dsl.ChecklistStep):
            # Expressions are evaluated here, where a failure is the step's failure: the
            # title (with a parallel item's alias) and the automatic decision.
            title = None
            decided = None
            if isinstance(step, dsl.ApprovalStep):
                title = str(_eval(step.title, data)) if step.title else None
                auto = step.auto_decision
                if auto is not None and _eval(auto.when, data) is True:
                    decided = auto.decision
            task = human.task_for(step, data, title, _advice(plan, data))
            return Outcome(task=task, decided=decided)
        if isinstance(step, dsl.ClassifyStep):
            return await self._classify(step, data, plan)
        if isinstance(step, dsl.RecommendStep):
            text = _text(_eval(step.text, data))
            found = _eval(step.label, data) if step.label else None
            label = _text(found) if found not in (None, "") else None
            context = _eval_map(step.context, data)
            try:
                package = await self.triage.recommend(text, label, step.limit)
            except Exception as exc:
                raise CallFailed("model", f"the recommendation failed: {exc}") from exc
            output = {**package, "label": label, "context": context}
            decision: dict[str, Any] = {
                "kind": "recommend",
                "text": text,
                "input_hash": package["input_hash"],
                "model": package["model"],
                "model_version": package["model_version"],
                "label": label,
                "routed": "advice",
                "detail": {
                    "similar": [
                        {"run_id": c["run_id"], "similarity": c["similarity"]}
                        for c in package["similar"]
                    ],
                    "cases_searched": package["cases_searched"],
                },
            }
            case = {"text": text, "label": label}
            return Outcome(output=output, next=step.next, decision=decision, case=case)
        if isinstance(step, dsl.WaitStep):
            correlation = (
                str(_eval(step.event.correlation, data)) if step.event is not None else None
            )
            return Outcome(wait={"correlation": correlation})
        if isinstance(step, dsl.ParallelStep):
            items = _eval(step.over, data)
            if not isinstance(items, list):
                raise CallFailed("expression", f"'over' gave {type(items).__name__}, not a list")
            if not items:
                return Outcome(output=_joined([]), next=step.next)
            return Outcome(items=items)
        raise CallFailed("unsupported", f"step kind {type(step).__name__} cannot run here")

    async def _classify(self, step: dsl.ClassifyStep, data: dict[str, Any], plan: Plan) -> Outcome:
        """The model's label routes the run when it is confident enough; otherwise a person
        reviews its suggestion (the step parks on a review task)."""
        text = _text(_eval(step.text, data)).strip()
        if not text:
            raise CallFailed("expression", f"{step.text!r}: the text to classify is empty")
        try:
            verdict = await self.triage.classify(step.target, text)
        except Exception as exc:  # a model that cannot train or load: the step fails
            raise CallFailed("model", f"the {step.target} model failed: {exc}") from exc
        routed = "auto" if verdict.confidence >= step.threshold else "review"
        output = {
            "label": verdict.label,
            "confidence": verdict.confidence,
            "threshold": step.threshold,
            "routed": routed,
            "suggestion": verdict.label,
            "model": verdict.model,
            "model_version": verdict.model_version,
            "input_hash": verdict.input_hash,
        }
        decision: dict[str, Any] = {
            "kind": "classify",
            "target": step.target,
            "text": text,
            "input_hash": verdict.input_hash,
            "model": verdict.model,
            "model_version": verdict.model_version,
            "label": verdict.label,
            "confidence": verdict.confidence,
            "threshold": step.threshold,
            "routed": routed,
            "detail": {},
        }
        if routed == "auto":
            return Outcome(output=output, next=step.next, decision=decision)
        title = str(_eval(step.title, data)) if step.title else None
        review = {**output, "text": text, "labels": verdict.labels, "target": step.target}
        task = human.task_for(step, data, title, _advice(plan, data), review)
        return Outcome(task=task, decision=decision)

    async def _audit(
        self,
        u: Unit,
        plan: Plan,
        claim: state.Claim,
        outcome: Outcome,
        data: dict[str, Any],
        task_id: UUID | None = None,
    ) -> None:
        """Write the AI decision a step made (and the case a recommendation opened), in
        the transaction that completes or parks the step."""
        store = data["run"]["store"] or None
        if outcome.decision is not None:
            await u.conn.execute(
                insert_ignore(u.conn, ai_decisions).values(
                    id=uuid7(),
                    run_id=claim.run_id,
                    step_row_id=claim.step_row_id,
                    step_id=claim.step_id,
                    template_id=plan.template.id,
                    template_version=plan.template.version,
                    store=store,
                    task_id=task_id,
                    created_at=u.now,
                    **outcome.decision,
                )
            )
        if outcome.case is not None:
            await u.conn.execute(
                insert_ignore(u.conn, triage_cases).values(
                    id=uuid7(),
                    run_id=claim.run_id,
                    template_id=plan.template.id,
                    store=store,
                    status="open",
                    outcome={},
                    created_at=u.now,
                    **outcome.case,
                )
            )

    async def _record(self, u: Unit, run_id: UUID, outcome: Outcome) -> None:
        """Write what an automatic step produced: variables, an event, a notification."""
        if outcome.vars:
            u.vars.setdefault(run_id, {}).update(outcome.vars)
        if outcome.notification:
            await self._notify(u, run_id, None, "step", **outcome.notification)
        if outcome.event:
            payload = outcome.event["payload"]
            correlation = payload.get("correlation") if isinstance(payload, dict) else None
            await self._ingest(
                u,
                "internal",
                external_id=f"{run_id}:{outcome.event['type']}:{uuid7()}",
                type=outcome.event["type"],
                correlation=str(correlation) if correlation is not None else None,
                payload={**payload, "run_id": str(run_id)},
            )

    async def _failed(
        self, u: Unit, plan: Plan, step: dsl.Step, claim: state.Claim, failure: CallFailed
    ) -> None:
        policy = step.retry or dsl.Retry(attempts=1)
        retryable = failure.kind in {str(k) for k in policy.retry_on}
        if (
            failure.kind == "unbound"
            and self.follows_desired_state
            and claim.attempt < UNBOUND_ATTEMPTS
        ):
            # The deployment's bindings have not reached this process yet (its agent is a
            # moment behind the one that started the run): wait for them a while.
            await state.retry_later(u.conn, claim, error=str(failure), delay=2.0, now=u.now)
            return
        if retryable and claim.attempt < policy.attempts:
            delay = state.backoff(policy, claim.attempt, self.rng)
            await state.retry_later(u.conn, claim, error=str(failure), delay=delay, now=u.now)
        elif step.on_error != dsl.FAIL:
            # Failed, and the template routes on: the step has no output for later
            # steps (``'x' in steps`` is false) and no effect to compensate.
            output = {"error": str(failure), "error_kind": failure.kind}
            if await state.complete(u.conn, claim, output=output, now=u.now, status="failed"):
                u.step_event(plan, claim, "failed")
                await self._follow(u, plan, claim.run_id, claim.branch, step.on_error)
        else:
            reason = f"{step.id}: {failure}"
            if await state.bury(u.conn, claim, reason=reason, now=u.now):
                u.step_event(plan, claim, "dead")
                await self._follow(u, plan, claim.run_id, claim.branch, dsl.FAIL, reason)

    async def _follow(
        self,
        u: Unit,
        plan: Plan,
        run_id: UUID,
        branch: str,
        target: str | None,
        error: str | None = None,
        *,
        ctx: RunContext | None = None,
    ) -> state.Claim | None:
        """Go on to ``target``: a step, or the end (or failure) of the branch or the run.
        With ``ctx`` (a worker going on in a straight line) the next step is returned,
        planned for this worker; otherwise it is written and rung for."""
        if target is None or target in (dsl.END, dsl.FAIL):
            ok = target != dsl.FAIL
            if branch:
                await self._branch_done(u, plan, run_id, UUID(branch), ok, error)
            else:
                status = "succeeded" if ok else "failed"
                reason = None if ok else (error or "failed by design")
                await self._finish(u, run_id, status, reason, plan, ctx)
        elif ctx is not None:
            return state.planned(
                run_id, target, visit=ctx.next_visit(branch, target), branch=branch
            )
        else:
            u.bells.append(await state.enqueue(u.conn, run_id, target, now=u.now, branch=branch))
        return None

    async def _finish(
        self,
        u: Unit,
        run_id: UUID,
        status: str,
        error: str | None,
        plan: Plan,
        ctx: RunContext | None = None,
    ) -> None:
        row = await state.finish_run(u.conn, run_id, status=status, now=u.now, error=error)
        if row is not None:
            data: dict[str, Any] = {"category": plan.template.category}
            if plan.template.metrics or plan.recommends:
                final = await self._final_data(u, run_id, ctx)
                if plan.template.metrics:
                    data["metrics"] = _figures(plan.template.metrics, final)
                for step in plan.recommends:
                    await self._close_case(u, run_id, step, final, status == "succeeded")
            u.event(
                "run.finished",
                run_id=run_id,
                template_id=row.template_id,
                template_version=row.template_version,
                store=row.store,
                status=status,
                duration_ms=_ms(u.now - aware(row.created_at)),
                data=data,
            )

    async def _final_data(self, u: Unit, run_id: UUID, ctx: RunContext | None) -> dict[str, Any]:
        """What the expressions evaluated as a run ends see: its main flow as it ended."""
        if ctx is None:
            ctx = await self._context(u.conn, run_id)
            for done in u.done:  # database-only steps of this transaction, not written yet
                if done["run_id"] == run_id and not done["branch"]:
                    ctx.outputs.setdefault("", {})[done["step_id"]] = {
                        "output": done["output"] or {}
                    }
            ctx.vars.update(u.vars.get(run_id, {}))
        return await self._data(ctx, "", "")

    async def _close_case(
        self, u: Unit, run_id: UUID, step: dsl.RecommendStep, data: dict[str, Any], ok: bool
    ) -> None:
        """A run that succeeded resolves the case its recommend step opened, with what
        resolved it; a failed run leaves it unresolved (never recommended)."""
        if step.id not in data["steps"]:
            return
        values: dict[str, Any] = {"status": "unresolved", "resolved_at": u.now}
        if ok:
            resolution = _figures({"r": step.resolution}, data) if step.resolution else {}
            values |= {
                "status": "resolved",
                "outcome": _figures(step.outcome, data),
                "resolution": _text(resolution["r"])[:500] if "r" in resolution else None,
            }
        await u.conn.execute(
            update(triage_cases)
            .where(triage_cases.c.run_id == run_id, triage_cases.c.status != "resolved")
            .values(**values)
        )

    # --- waiting kinds ----------------------------------------------------------------

    async def _park(
        self,
        u: Unit,
        plan: Plan,
        step: dsl.Step,
        claim: state.Claim,
        outcome: Outcome,
        data: dict[str, Any],
    ) -> None:
        if outcome.task is not None:
            task_id = await self._open_task(
                u, plan, step, claim, outcome.task, outcome.decided, data
            )
            await self._audit(u, plan, claim, outcome, data, task_id)
        elif outcome.wait is not None:
            assert isinstance(step, dsl.WaitStep)
            await self._register_wait(u, plan, step, claim, outcome.wait["correlation"])
        elif outcome.items is not None:
            assert isinstance(step, dsl.ParallelStep)
            for position, item in enumerate(outcome.items):
                branch_id = uuid7()
                await u.conn.execute(
                    insert(branches).values(
                        id=branch_id,
                        run_id=claim.run_id,
                        parent_id=claim.step_row_id,
                        position=position,
                        item=item,
                        status="running",
                        created_at=u.now,
                    )
                )
                first = await state.enqueue(
                    u.conn, claim.run_id, step.steps[0].id, now=u.now, branch=str(branch_id)
                )
                u.bells.append(first)

    async def _open_task(
        self,
        u: Unit,
        plan: Plan,
        step: dsl.Step,
        claim: state.Claim,
        task: dict[str, Any],
        decided: str | None,
        data: dict[str, Any],
    ) -> UUID:
        assert isinstance(step, human.Human)
        store = self.directory.store(data["run"]["store"] or None)

        def at(duration: str) -> datetime:
            return human.after(step, u.now, duration, store)

        task_id = uuid7()
        row = {
            **task,
            "id": task_id,
            "run_id": claim.run_id,
            "step_row_id": claim.step_row_id,
            "template_id": plan.template.id,
            "store": data["run"]["store"] or None,
            "region": store.region if store else None,
            "status": "open",
            "due_at": at(step.sla.duration) if step.sla else None,
            "escalate_at": at(step.escalation[0].after) if step.escalation else None,
            "created_at": u.now,
        }
        if decided is not None:
            assert isinstance(step, dsl.ApprovalStep)
            row |= {
                "status": "done",
                "decision": decided,
                "decided_by": "auto-decision",
                "decided_via": "auto",
                "decided_at": u.now,
            }
            await u.conn.execute(insert(tasks).values(**row))
            u.event(
                "task.decided",
                plan,
                run_id=claim.run_id,
                store=row["store"],
                status=decided,
                duration_ms=0,
                data={
                    "task_id": str(task_id),
                    "via": "auto",
                    "step_id": step.id,
                    "task_kind": "approval",
                    "category": plan.template.category,
                },
            )
            output = human.approval_output(decided, "auto-decision", None, {})
            target = step.outcomes[decided]  # type: ignore[index]
            await self._resume(u, plan, claim.step_row_id, output, target)
            return task_id
        await u.conn.execute(insert(tasks).values(**row))
        u.event(
            "task.opened",
            plan,
            run_id=claim.run_id,
            store=row["store"],
            data={"task_id": str(task_id), "task_kind": task["kind"], "step_id": step.id},
        )
        recipient = human.recipient(step.assignee, data["run"]["store"], self.directory)
        await self._notify(
            u, claim.run_id, task_id, "task_assigned", "email", recipient, task["title"]
        )
        if step.timeout:
            await self._timer(u, claim, u.now + timedelta(seconds=seconds(step.timeout)))
        return task_id

    async def _timer(self, u: Unit, claim: state.Claim, at: datetime | None, **match: Any) -> None:
        await u.conn.execute(
            insert(waits).values(
                id=uuid7(),
                run_id=claim.run_id,
                step_row_id=claim.step_row_id,
                timeout_at=at,
                status="waiting",
                created_at=u.now,
                **match,
            )
        )

    async def _register_wait(
        self, u: Unit, plan: Plan, step: dsl.WaitStep, claim: state.Claim, correlation: str | None
    ) -> None:
        limit = step.timeout or step.timer
        at = u.now + timedelta(seconds=seconds(limit)) if limit else None
        event_type = step.event.type if step.event else None
        await self._timer(u, claim, at, event_type=event_type, correlation=correlation)
        if event_type is None:
            return
        # The event may have arrived before the run got here: take the oldest one this
        # run has not consumed yet.
        run_created = await u.conn.scalar(
            select(runs.c.created_at).where(runs.c.id == claim.run_id)
        )
        consumed = select(waits.c.event_id).where(
            waits.c.run_id == claim.run_id, waits.c.event_id.is_not(None)
        )
        early = (
            await u.conn.execute(
                select(events.c.id, events.c.payload)
                .where(
                    events.c.type == event_type,
                    events.c.correlation == correlation,
                    events.c.received_at >= run_created,
                    events.c.id.not_in(consumed),
                )
                .order_by(events.c.received_at, events.c.id)
                .limit(1)
            )
        ).first()
        if early is not None:
            await self._fire(u, claim.step_row_id, early.id, early.payload)

    async def _fire(
        self, u: Unit, step_row_id: UUID, event_id: UUID, payload: dict[str, Any]
    ) -> bool:
        """An awaited event arrived: the wait resumes its step."""
        done = await u.conn.execute(
            update(waits)
            .where(waits.c.step_row_id == step_row_id, waits.c.status == "waiting")
            .values(status="fired", event_id=event_id, finished_at=u.now)
        )
        if done.rowcount != 1:
            return False
        plan, step, row = await self._locate(u.conn, step_row_id)
        assert isinstance(step, dsl.WaitStep)
        await u.conn.execute(
            update(runs).where(runs.c.id == row.run_id).values(last_event=payload, updated_at=u.now)
        )
        await self._resume(u, plan, step_row_id, payload, step.next)
        return True

    async def _resume(
        self,
        u: Unit,
        plan: Plan,
        step_row_id: UUID,
        output: dict[str, Any],
        target: str | None,
        *,
        status: str = "succeeded",
        error: str | None = None,
    ) -> bool:
        if not await state.resume(u.conn, step_row_id, output=output, now=u.now, status=status):
            return False
        _, _, row = await self._locate(u.conn, step_row_id)
        u.step_event(plan, state.Claim(step_row_id, row.run_id, row.step_id, 0, 0), status)
        await self._follow(u, plan, row.run_id, row.branch, target, error)
        return True

    async def _branch_done(
        self, u: Unit, plan: Plan, run_id: UUID, branch_id: UUID, ok: bool, error: str | None
    ) -> None:
        """A branch's sub-flow ended; the last one to end joins the parallel step."""
        await u.conn.execute(
            update(branches)
            .where(branches.c.id == branch_id, branches.c.status == "running")
            .values(status="succeeded" if ok else "failed", error=error, finished_at=u.now)
        )
        parent_id: UUID = (
            await u.conn.execute(select(branches.c.parent_id).where(branches.c.id == branch_id))
        ).scalar_one()
        # Serialise the branches' last steps on the parent, so exactly one sees all done.
        parent = (
            await u.conn.execute(
                state.locked(u.conn, select(steps.c.step_id).where(steps.c.id == parent_id))
            )
        ).one()
        rows = (
            await u.conn.execute(
                select(branches.c.status, branches.c.item)
                .where(branches.c.parent_id == parent_id)
                .order_by(branches.c.position)
            )
        ).all()
        if any(r.status == "running" for r in rows):
            return
        step = plan.steps[parent.step_id]
        assert isinstance(step, dsl.ParallelStep)
        output = _joined([(r.status == "succeeded", r.item) for r in rows])
        if human.join_holds(step.join, output["succeeded"], output["failed"]):
            await self._resume(u, plan, parent_id, output, step.next)
        else:
            reason = f"{step.id}: {output['failed']} of {len(rows)} branches failed"
            status = "succeeded" if step.on_error != dsl.FAIL else "failed"
            await self._resume(
                u, plan, parent_id, output, step.on_error, status=status, error=reason
            )

    # --- compensation -----------------------------------------------------------------

    async def _compensate(self, step: dsl.CompensateStep, claim: state.Claim) -> dict[str, Any]:
        """Undo completed call steps, newest first, each under its own idempotency key (a
        retried compensate step replays at the system of record instead of undoing twice)."""
        async with self.db.connect() as conn:
            ctx = await self._context(conn, claim.run_id)
            plan = ctx.plan
            done = (
                await conn.execute(
                    select(steps.c.step_id, steps.c.branch, steps.c.visit, steps.c.output)
                    .where(steps.c.run_id == claim.run_id, steps.c.status == "succeeded")
                    .order_by(steps.c.finished_at.desc(), steps.c.id.desc())
                )
            ).all()
            undone = {
                key
                for r in done
                if isinstance(plan.steps.get(r.step_id), dsl.CompensateStep)
                for key in (r.output or {}).get("compensated", [])
            }
            compensated: list[str] = []
            for r in done:
                call = plan.steps.get(r.step_id)
                if not isinstance(call, dsl.CallStep) or call.compensation is None:
                    continue
                if (
                    step.steps
                    and r.step_id not in step.steps
                    and (
                        r.step_id not in plan.parent or plan.parent[r.step_id].id not in step.steps
                    )
                ):
                    continue
                key = _call_key(claim.run_id, r.branch, r.step_id, r.visit)
                if key in undone:
                    continue
                data = await self._data(ctx, r.branch, r.step_id)
                payload = _eval_map(call.compensation.input, data)
                await self.connectors.call(
                    call.connector,
                    call.compensation.operation,
                    payload,
                    idempotency_key=f"{key}:undo",
                )
                compensated.append(key)
        return {"compensated": compensated, "count": len(compensated)}

    # --- decisions, events, timers ----------------------------------------------------

    async def decide(
        self,
        task_id: UUID,
        *,
        decision: str,
        actor: str,
        comment: str | None = None,
        answers: dict[str, Any] | None = None,
    ) -> None:
        """A person decides an open task; the run goes on from the decision."""
        async with self._unit() as u:
            task = (
                await u.conn.execute(
                    state.locked(u.conn, select(tasks).where(tasks.c.id == task_id))
                )
            ).first()
            if task is None:
                raise TaskNotFound(f"no task {task_id}")
            if task.status != "open":
                raise TaskClosed(f"task {task_id} is {task.status}, not open")
            plan, step, _ = await self._locate(u.conn, task.step_row_id)
            if isinstance(step, dsl.ClassifyStep):
                output, target, stored = human.review_output(
                    step, task.context.get("review") or {}, decision, actor, comment, answers or {}
                )
            else:
                output, target, stored = human.decision_output(
                    step, decision, actor, comment, answers or {}
                )
            await u.conn.execute(
                update(tasks)
                .where(tasks.c.id == task_id, tasks.c.status == "open")
                .values(
                    status="done",
                    decision=stored,
                    decided_by=actor,
                    decided_via="human",
                    comment=comment,
                    answers=answers or {},
                    decided_at=u.now,
                )
            )
            if isinstance(step, dsl.ClassifyStep):
                await self._reviewed(u, step, task.step_row_id, output, stored, actor)
            await u.conn.execute(
                update(waits)
                .where(waits.c.step_row_id == task.step_row_id, waits.c.status == "waiting")
                .values(status="cancelled", finished_at=u.now)
            )
            u.event(
                "task.decided",
                plan,
                run_id=task.run_id,
                store=task.store,
                status=stored,
                duration_ms=_ms(u.now - aware(task.created_at)),
                data={
                    "task_id": str(task_id),
                    "via": "human",
                    "step_id": step.id,
                    "breached": task.breached_at is not None,
                    "category": plan.template.category,
                    **human.decided_figures(step, u.now, task.due_at, answers, output),
                },
            )
            await self._resume(u, plan, task.step_row_id, output, target)

    async def _reviewed(
        self,
        u: Unit,
        step: dsl.ClassifyStep,
        step_row_id: UUID,
        output: dict[str, Any],
        decision: str,
        actor: str,
    ) -> None:
        """A person decided an unsure classification: the audit gets their decision, and
        the tenant's examples the text with the label they chose."""
        audited = (
            await u.conn.execute(
                update(ai_decisions)
                .where(ai_decisions.c.step_row_id == step_row_id)
                .values(
                    decision=decision,
                    final_label=output["label"],
                    decided_by=actor,
                    decided_at=u.now,
                )
                .returning(ai_decisions.c.id, ai_decisions.c.text)
            )
        ).first()
        if audited is not None:
            await self.triage.learn(
                u.conn,
                target=step.target,
                text=audited.text,
                label=output["label"],
                source="review",
                actor=actor,
                now=u.now,
                decision_id=audited.id,
            )

    async def ingest(
        self,
        source: str,
        *,
        external_id: str,
        type: str,
        correlation: str | None,
        payload: dict[str, Any],
    ) -> bool:
        """Take an event in once (False: a duplicate, ignored): it resumes the waits that
        expect it and starts the runs of deployments it triggers, in one transaction."""
        async with self._unit() as u:
            return await self._ingest(
                u,
                source,
                external_id=external_id,
                type=type,
                correlation=correlation,
                payload=payload,
            )

    async def _ingest(
        self,
        u: Unit,
        source: str,
        *,
        external_id: str,
        type: str,
        correlation: str | None,
        payload: dict[str, Any],
    ) -> bool:
        event_id = uuid7()
        added = await u.conn.execute(
            insert_ignore(u.conn, events).values(
                id=event_id,
                source=source,
                external_id=external_id,
                type=type,
                correlation=correlation,
                payload=payload,
                received_at=u.now,
            )
        )
        if added.rowcount != 1:
            return False
        if correlation is not None:
            waiting = (
                await u.conn.execute(
                    select(waits.c.step_row_id)
                    .where(
                        waits.c.event_type == type,
                        waits.c.correlation == correlation,
                        waits.c.status == "waiting",
                    )
                    .order_by(waits.c.created_at)
                )
            ).all()
            for w in waiting:
                await self._fire(u, w.step_row_id, event_id, payload)
        for deployment in self.directory.triggered_by(source, type):
            store = payload.get("store_id") or payload.get("store")
            await self._start(
                u,
                deployment.template,
                deployment.params,
                payload,
                f"event:{event_id}:{deployment.template.id}",
                str(store) if store else None,
            )
        return True

    async def tick(self) -> int:
        """Fire what time has made due: wait timeouts and timers, task SLA breaches and
        escalations. Safe with several workers (rows are taken under lock)."""
        fired = 0
        async with self._unit() as u:
            due = (
                await u.conn.execute(
                    state.locked(
                        u.conn,
                        select(waits.c.id, waits.c.step_row_id, waits.c.run_id)
                        .where(waits.c.status == "waiting", waits.c.timeout_at <= u.now)
                        .limit(200),
                        skip=True,
                    )
                )
            ).all()
            for w in due:
                fired += await self._time_out(u, w.id, w.step_row_id)
            fired += await human.escalate(self, u)
        return fired

    async def _time_out(self, u: Unit, wait_id: UUID, step_row_id: UUID) -> int:
        await u.conn.execute(
            update(waits).where(waits.c.id == wait_id).values(status="timed_out", finished_at=u.now)
        )
        plan, step, row = await self._locate(u.conn, step_row_id)
        if isinstance(step, dsl.WaitStep) and step.event is None:
            target: str | None = step.next  # a plain timer: time passing is the point
        elif isinstance(step, dsl.WaitStep):
            target = step.on_timeout or step.on_error
        else:  # a task past its step timeout
            expired = (
                await u.conn.execute(
                    update(tasks)
                    .where(tasks.c.step_row_id == step_row_id, tasks.c.status == "open")
                    .values(status="expired", decided_at=u.now)
                    .returning(tasks.c.id, tasks.c.store, tasks.c.created_at, tasks.c.due_at)
                )
            ).first()
            if isinstance(step, dsl.ClassifyStep):  # the audit says nobody reviewed it
                await u.conn.execute(
                    update(ai_decisions)
                    .where(ai_decisions.c.step_row_id == step_row_id)
                    .values(decision="expired", decided_at=u.now)
                )
            data: dict[str, Any] = {
                "step_id": step.id,
                "via": "timeout",
                "category": plan.template.category,
                **human.decided_figures(step, u.now, expired.due_at if expired else None),
            }
            u.event(
                "task.decided",
                plan,
                run_id=row.run_id,
                store=expired.store if expired else None,
                duration_ms=_ms(u.now - aware(expired.created_at)) if expired else None,
                status="expired",
                data={**data, "task_id": str(expired.id)} if expired else data,
            )
            target = step.on_error
        limit = getattr(step, "timeout", None) or getattr(step, "timer", None)
        reason = f"{step.id}: timed out after {limit}"
        failing = target == dsl.FAIL
        return int(
            await self._resume(
                u,
                plan,
                step_row_id,
                {"timed_out": True},
                target,
                status="failed" if failing else "succeeded",
                error=reason,
            )
        )

    async def _notify(
        self,
        u: Unit,
        run_id: UUID | None,
        task_id: UUID | None,
        reason: str,
        channel: str,
        recipient: str,
        message: str,
    ) -> None:
        await u.conn.execute(
            insert(notifications).values(
                id=uuid7(),
                run_id=run_id,
                task_id=task_id,
                channel=channel,
                recipient=recipient[:320],
                reason=reason,
                message=message,
                created_at=u.now,
                # Written with the change that caused it; the mailer sends it from here.
                next_attempt_at=u.now if mailed(channel, reason) else None,
            )
        )

    async def report(self, kind: str, items: list[dict[str, Any]], **data: Any) -> None:
        """Telemetry events of one kind that no state change carries (deployment status)."""
        async with self._unit() as u:
            for item in items:
                u.event(kind, status=item.get("status"), data={**data, **item.get("data", {})})

    async def heartbeat(self, **data: Any) -> None:
        """A heartbeat event with the backlog as the database sees it."""
        async with self._unit() as u:
            row = (
                await u.conn.execute(
                    select(func.count(), func.min(steps.c.due_at)).where(
                        steps.c.status == "ready", steps.c.due_at <= u.now
                    )
                )
            ).one()
            oldest = _ms(u.now - aware(row[1])) // 1000 if row[1] is not None else 0
            dead = await u.conn.scalar(
                select(func.count()).where(dead_letters.c.replayed_at.is_(None))
            )
            u.event(
                "heartbeat",
                data={
                    **data,
                    "queue_depth": row[0],
                    "oldest_pending_s": oldest,
                    "dead_letters": int(dead or 0),
                },
            )

    # --- operator actions -------------------------------------------------------------

    async def cancel(self, run_id: UUID, *, actor: str) -> bool:
        """Stop a running run: pending steps, tasks and waits close; a step executing right
        now finishes its call, and nothing after it runs."""
        async with self._unit() as u:
            stopped = await u.conn.execute(
                update(runs)
                .where(runs.c.id == run_id, runs.c.status == "running")
                .values(
                    status="cancelled",
                    error=f"cancelled by {actor}",
                    finished_at=u.now,
                    updated_at=u.now,
                )
            )
            if stopped.rowcount != 1:
                return False
            u.event("run.finished", run_id=run_id, status="cancelled")
            await u.conn.execute(
                update(steps)
                .where(steps.c.run_id == run_id, steps.c.status.in_(("ready", "waiting")))
                .values(status="cancelled", finished_at=u.now)
            )
            await u.conn.execute(
                update(tasks)
                .where(tasks.c.run_id == run_id, tasks.c.status == "open")
                .values(status="cancelled", decided_at=u.now, decided_by=actor)
            )
            await u.conn.execute(
                update(waits)
                .where(waits.c.run_id == run_id, waits.c.status == "waiting")
                .values(status="cancelled", finished_at=u.now)
            )
            await u.conn.execute(
                update(triage_cases)
                .where(triage_cases.c.run_id == run_id, triage_cases.c.status == "open")
                .values(status="unresolved", resolved_at=u.now)
            )
        return True

    async def replay_dead_letter(self, dead_letter_id: UUID) -> UUID | None:
        """Put a dead step back in line (same row, same idempotency keys); None when the
        letter is unknown, already replayed, or its parallel step has already joined."""
        async with self._unit() as u:
            row = (
                await u.conn.execute(
                    select(steps.c.branch)
                    .join(dead_letters, dead_letters.c.step_row_id == steps.c.id)
                    .where(dead_letters.c.id == dead_letter_id)
                )
            ).first()
            if row is not None and row.branch:
                parent_status = await u.conn.scalar(
                    select(steps.c.status)
                    .join(branches, branches.c.parent_id == steps.c.id)
                    .where(branches.c.id == UUID(row.branch))
                )
                if parent_status != "waiting":
                    return None
                await u.conn.execute(
                    update(branches)
                    .where(branches.c.id == UUID(row.branch))
                    .values(status="running", error=None, finished_at=None)
                )
            step_row_id = await state.replay(u.conn, dead_letter_id, now=u.now)
            if step_row_id is not None:
                u.bells.append(step_row_id)
            return step_row_id

    # --- embedded dispatch ------------------------------------------------------------

    async def pump(self, *, limit: int = 10_000) -> int:
        """In-process dispatch (embedded mode): execute rung steps until none is left."""
        done = 0
        while self.bells and done < limit:
            done += await self.execute(self.bells.popleft())
        return done

    async def sweep(self, *, ring_again_after: timedelta) -> int:
        """Ring again for steps whose doorbell was lost or whose worker died."""
        async with self.db.begin() as conn:
            due = await state.overdue(conn, now=self.clock(), ring_again_after=ring_again_after)
        if due:
            self.ring([step_row_id for step_row_id, _ in due])
        return len(due)


def _ms(delta: timedelta) -> int:
    return max(int(delta.total_seconds() * 1000), 0)


def _call_key(run_id: UUID, branch: str, step_id: str, visit: int) -> str:
    """The idempotency key of a step's call: (run, step, call) — stable across retries,
    redeliveries and replays of the same visit."""
    return f"{run_id}:{branch}:{step_id}:{visit}" if branch else f"{run_id}:{step_id}:{visit}"


def _joined(results: list[tuple[bool, Any]]) -> dict[str, Any]:
    ok = [item for good, item in results if good]
    failed = [item for good, item in results if not good]
    return {"results": ok, "failures": failed, "succeeded": len(ok), "failed": len(failed)}


def _eval(expression: str, data: dict[str, Any]) -> Any:
    aliases = tuple(k for k in data if k not in expressions.BASE_VARIABLES and k != "now")
    try:
        compiled = expressions.compile_expression(expression, aliases=aliases)
        value = compiled.eval(data=data)
    except Exception as exc:
        raise CallFailed("expression", f"{expression!r}: {exc}") from None
    if value.type() == cel.Type.ERROR:  # no such key, bad conversion, division by zero...
        raise CallFailed("expression", f"{expression!r}: {value.plain_value()}")
    return _plain(value.plain_value())


def _plain(value: Any) -> Any:
    """A CEL result as JSON can hold it: outputs, variables and payloads are stored as JSON,
    so timestamps become ISO 8601 UTC text and durations CEL's ``"<seconds>s"``."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
        return f"{int(seconds)}s" if seconds.is_integer() else f"{seconds}s"
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _eval_map(mapping: dict[str, str], data: dict[str, Any]) -> dict[str, Any]:
    return {k: _eval(v, data) for k, v in mapping.items()}


def _figures(mapping: dict[str, str], data: dict[str, Any]) -> dict[str, Any]:
    """Expressions evaluated as a run ends: one that fails here (it names a step that never
    ran) is left out rather than failing the others."""
    figures: dict[str, Any] = {}
    for name, expression in mapping.items():
        try:
            figures[name] = _eval(expression, data)
        except CallFailed:
            continue
    return figures


def _advice(plan: Plan, data: dict[str, Any]) -> dict[str, Any] | None:
    """What the run's recommend steps found so far, for the person a task asks."""
    found = {
        step.id: data["steps"][step.id]["output"]
        for step in plan.recommends
        if step.id in data["steps"]
    }
    return found or None


def render(message: str, data: dict[str, Any]) -> str:
    """A message with its ``${expr}`` placeholders filled in."""
    return _PLACEHOLDER.sub(lambda m: _text(_eval(m.group(1), data)), message)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(_text(v) for v in value)
    return str(value)


def _with_defaults(schema: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    props = schema.get("properties") or {}
    defaults = {k: v["default"] for k, v in props.items() if isinstance(v, dict) and "default" in v}
    return {**defaults, **params}
