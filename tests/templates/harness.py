"""The template library end to end: an Engine wired to the sandbox through REST connectors,
engine and sandbox on one clock, every library template deployed, and helpers to let the
runs settle, let time pass, decide tasks and read what the simulated systems saw."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.contracts import dsl
from tenant_runtime.connectors import NoAuth, RestConnector, RetryPolicy
from tenant_runtime.connectors.bindings import BoundConnectors
from tenant_runtime.db.schema import (
    ai_decisions,
    branches,
    dead_letters,
    events,
    insights,
    notifications,
    runs,
    steps,
    tasks,
    triage_cases,
    triage_examples,
    waits,
)
from tenant_runtime.engine.calendar import BusinessCalendar
from tenant_runtime.engine.directory import Deployment, Directory, StoreInfo
from tenant_runtime.engine.executor import Engine
from tenant_runtime.runtime import load_template
from tenant_runtime.sandbox import SYSTEMS, SandboxConfig, create_sandbox_app
from tenant_runtime.secrets import SecretCache

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
LIBRARY = sorted(p.name for p in TEMPLATES.iterdir() if (p / "1.0.0.yaml").is_file())
#: A Monday morning, inside every test store's opening hours.
START = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
#: S-101 trades around the clock; S-102 keeps Paris shop hours (closed on Sundays).
PARIS_HOURS = {day: [["08:00", "20:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat")}
STORES = {
    "S-101": StoreInfo("S-101", code="S-101", name="Riverside", region="NE"),
    "S-102": StoreInfo(
        "S-102",
        code="S-102",
        name="Old Town",
        region="METRO",
        calendar=BusinessCalendar(timezone="Europe/Paris", opening_hours=PARIS_HOURS),
    ),
}
#: The sweeper rings again for a due step whose doorbell is older than this.
RING_AGAIN = timedelta(seconds=1)
#: Tables of the runtime database a test writes, children first.
_TABLES = (
    notifications,
    tasks,
    waits,
    dead_letters,
    branches,
    steps,
    runs,
    events,
    ai_decisions,
    triage_examples,
    triage_cases,
    insights,
)

Predicate = Callable[[dict[str, Any]], bool]


class Clock:
    """The one clock of the engine and the sandbox; tests move it."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class _NoSecrets:
    async def get(self, name: str) -> str:
        raise AssertionError(f"the sandbox needs no secret, asked for {name}")


class Harness:
    """One sandbox and one engine on a shared clock, with the whole library deployed."""

    def __init__(self, db: AsyncEngine, params: dict[str, dict[str, Any]] | None = None) -> None:
        self.db = db
        self.clock = Clock()
        self.app = create_sandbox_app(SandboxConfig(), clock=self.clock)
        self.transport = httpx.ASGITransport(app=self.app)
        self.api = httpx.AsyncClient(transport=self.transport, base_url="http://sandbox")
        secrets = SecretCache(_NoSecrets())
        # One attempt per connector call: retries are the steps' own policy, in the engine.
        self.connectors = {
            name: RestConnector(
                f"http://sandbox/{name}",
                NoAuth(),
                timeout=5.0,
                retry=RetryPolicy(attempts=1),
                secrets=secrets,
                transport=self.transport,
            )
            for name in SYSTEMS
        }
        params = params or {}
        self.directory = Directory(
            deployments={
                template_id: Deployment(template, params.get(template_id, {}))
                for template_id, template in library().items()
            },
            stores=dict(STORES),
        )
        self.engine = Engine(
            db, BoundConnectors(self.connectors), directory=self.directory, clock=self.clock
        )
        #: Sandbox events already seen (delivered or withheld), by sequence number.
        self.seen = 0
        self._withhold: list[Predicate] = []
        self.hooks = 0

    @classmethod
    @asynccontextmanager
    async def open(
        cls, db: AsyncEngine, params: dict[str, dict[str, Any]] | None = None
    ) -> AsyncIterator[Harness]:
        """A harness on an emptied runtime database; closes its clients afterwards."""
        async with db.begin() as conn:
            for table in _TABLES:
                await conn.execute(delete(table))
        harness = cls(db, params)
        try:
            yield harness
        finally:
            await harness.api.aclose()
            for connector in harness.connectors.values():
                await connector.aclose()

    # --- driving runs -----------------------------------------------------------------

    async def start(
        self, template_id: str, payload: dict[str, Any], *, store: str | None = "S-101"
    ) -> UUID:
        """Start a run of a deployed template, as the runtime API does, and let it settle."""
        deployment = self.directory.deployments[template_id]
        run_id = await self.engine.start(
            deployment.template, deployment.params, payload, store=store
        )
        await self.settle()
        return run_id

    async def webhook(self, source: str, type: str, payload: dict[str, Any]) -> list[UUID]:
        """Deliver a retailer webhook; the runs it started, once they settled."""
        before = set(await self._run_ids())
        self.hooks += 1
        await self.engine.ingest(
            source,
            external_id=f"hook-{self.hooks}",
            type=type,
            correlation=None,
            payload=payload,
        )
        await self.settle()
        return [r for r in await self._run_ids() if r not in before]

    async def settle(self, *, retries: bool = False, rounds: int = 500) -> None:
        """Execute what is rung, deliver the sandbox's events, ring for overdue steps, until
        nothing moves. With ``retries``, the clock also jumps to each pending retry."""
        for _ in range(rounds):
            moved = await self.engine.pump()
            moved += await self._deliver()
            moved += await self.engine.sweep(ring_again_after=RING_AGAIN)
            if moved:
                continue
            due = await self._next_retry() if retries else None
            if due is None:
                return
            self.clock.now = due
        raise AssertionError(f"the runs did not settle in {rounds} rounds")

    async def advance(self, delta: timedelta) -> None:
        """Let time pass: timers, timeouts, SLA breaches and escalations fire, runs go on."""
        self.clock.now += delta
        while await self.engine.tick():
            await self.settle()
        await self.settle()

    def withhold(self, type: str, *, times: int | None = None, **match: Any) -> None:
        """Do not deliver sandbox events of ``type`` (whose payload has ``match``; only the
        first ``times`` of them when given): the system stays silent, as a supplier or a
        vendor that does not answer."""
        remaining = times

        def hit(event: dict[str, Any]) -> bool:
            nonlocal remaining
            payload = event["payload"]
            if event["type"] != type or any(payload.get(k) != v for k, v in match.items()):
                return False
            if remaining is None:
                return True
            if remaining == 0:
                return False
            remaining -= 1
            return True

        self._withhold.append(hit)

    async def _deliver(self) -> int:
        answer = (await self.api.get("/_sandbox/events", params={"after": self.seen})).json()
        delivered = 0
        for event in answer["events"]:
            self.seen = event["seq"]
            if any(hit(event) for hit in self._withhold):
                continue
            delivered += await self.engine.ingest(
                event["source"],
                external_id=f"sandbox-{event['seq']}",
                type=event["type"],
                correlation=event["correlation"],
                payload=event["payload"],
            )
        return delivered

    async def _next_retry(self) -> datetime | None:
        async with self.db.connect() as conn:
            due: datetime | None = await conn.scalar(
                select(func.min(steps.c.due_at)).where(
                    steps.c.status == "ready", steps.c.due_at > self.clock.now
                )
            )
        return utc(due) if due is not None else None

    async def _run_ids(self) -> list[UUID]:
        async with self.db.connect() as conn:
            return list((await conn.scalars(select(runs.c.id).order_by(runs.c.id))).all())

    # --- people -------------------------------------------------------------------------

    async def task(self, run_id: UUID) -> Any:
        """The run's one open task."""
        async with self.db.connect() as conn:
            found = (
                await conn.execute(
                    select(tasks).where(tasks.c.run_id == run_id, tasks.c.status == "open")
                )
            ).all()
        assert len(found) == 1, f"expected one open task, found {[t.title for t in found]}"
        return found[0]

    async def tasks(self, run_id: UUID) -> list[Any]:
        async with self.db.connect() as conn:
            return list(
                (
                    await conn.execute(
                        select(tasks).where(tasks.c.run_id == run_id).order_by(tasks.c.id)
                    )
                ).all()
            )

    async def decide(
        self,
        run_id: UUID,
        decision: str = "approved",
        *,
        actor: str = "manager@example.com",
        comment: str | None = None,
        **answers: Any,
    ) -> Any:
        """Decide the run's open task, let the run go on; the task as it was opened."""
        task = await self.task(run_id)
        await self.engine.decide(
            task.id, decision=decision, actor=actor, comment=comment, answers=answers
        )
        await self.settle()
        return task

    async def submit(
        self, run_id: UUID, *, actor: str = "manager@example.com", **items: Any
    ) -> Any:
        """Submit the run's open checklist: every item passes with plausible evidence,
        except the ones given (``item=False`` fails it, ``item=<evidence>`` records it)."""
        task = await self.task(run_id)
        answers = {}
        for item in task.form:
            given = items.pop(item["id"], None)
            if given is False:
                answers[item["id"]] = {"ok": False}
            elif given is not None:
                answers[item["id"]] = {"ok": True, "evidence": given}
            elif item.get("required", True) or item.get("evidence", "none") == "none":
                answers[item["id"]] = {"ok": True, "evidence": _evidence(item)}
        assert not items, f"not items of this checklist: {sorted(items)}"
        await self.engine.decide(task.id, decision="submitted", actor=actor, answers=answers)
        await self.settle()
        return task

    # --- what happened --------------------------------------------------------------------

    async def run(self, run_id: UUID) -> Any:
        async with self.db.connect() as conn:
            return (await conn.execute(select(runs).where(runs.c.id == run_id))).one()

    async def status(self, run_id: UUID) -> str:
        return str((await self.run(run_id)).status)

    async def path(self, run_id: UUID) -> list[str]:
        """The main flow's step ids in the order they were entered (sub-flows left out)."""
        async with self.db.connect() as conn:
            rows = await conn.execute(
                select(steps.c.step_id)
                .where(steps.c.run_id == run_id, steps.c.branch == "")
                .order_by(steps.c.created_at, steps.c.id)
            )
            return [r.step_id for r in rows]

    async def output(self, run_id: UUID, step_id: str) -> dict[str, Any]:
        """The output of the step's last finished visit in the main flow."""
        async with self.db.connect() as conn:
            found = await conn.scalar(
                select(steps.c.output)
                .where(
                    steps.c.run_id == run_id,
                    steps.c.step_id == step_id,
                    steps.c.branch == "",
                    steps.c.finished_at.is_not(None),
                )
                .order_by(steps.c.visit.desc())
                .limit(1)
            )
        assert isinstance(found, dict), f"{step_id} has no output"
        return found

    async def emitted(self, run_id: UUID) -> list[tuple[str, dict[str, Any]]]:
        """The internal events the run emitted: (type, payload), in order."""
        async with self.db.connect() as conn:
            rows = await conn.execute(
                select(events.c.type, events.c.payload)
                .where(events.c.source == "internal")
                .order_by(events.c.received_at, events.c.id)
            )
            return [(r.type, r.payload) for r in rows if r.payload.get("run_id") == str(run_id)]

    async def notifications(self, run_id: UUID) -> list[Any]:
        async with self.db.connect() as conn:
            return list(
                (
                    await conn.execute(
                        select(notifications)
                        .where(notifications.c.run_id == run_id)
                        .order_by(notifications.c.created_at, notifications.c.id)
                    )
                ).all()
            )

    async def dead_letters(self, run_id: UUID) -> list[Any]:
        async with self.db.connect() as conn:
            return list(
                (
                    await conn.execute(
                        select(dead_letters, steps.c.step_id)
                        .join(steps, steps.c.id == dead_letters.c.step_row_id)
                        .where(dead_letters.c.run_id == run_id)
                        .order_by(dead_letters.c.created_at)
                    )
                ).all()
            )

    # --- the sandbox ------------------------------------------------------------------------

    async def world(self) -> dict[str, Any]:
        """Every simulated system's records now (``/_sandbox/state``)."""
        state: dict[str, Any] = (await self.api.get("/_sandbox/state")).json()
        return state

    async def calls(self, system: str, operation: str) -> list[dict[str, Any]]:
        """The request log of one operation."""
        params = {"system": system, "operation": operation}
        entries: list[dict[str, Any]] = (await self.api.get("/_sandbox/log", params=params)).json()[
            "entries"
        ]
        return entries

    async def effects(self, system: str, operation: str) -> int:
        """How many times the operation took effect."""
        return sum(e["effect_applied"] for e in await self.calls(system, operation))

    async def fault(self, system: str, operation: str, **rule: Any) -> None:
        """Inject faults on one operation (``error_rate=1.0``, ``drop_after_commit_rate``...)."""
        answer = await self.api.post(
            "/_sandbox/faults", json={"system": system, "operation": operation, **rule}
        )
        assert answer.status_code == 200, answer.text

    async def clear_faults(self) -> None:
        assert (await self.api.delete("/_sandbox/faults")).status_code == 200

    async def no_duplicate_effects(self) -> dict[str, Any]:
        """Assert no idempotency key took effect twice; the sandbox's stats."""
        stats: dict[str, Any] = (await self.api.get("/_sandbox/stats")).json()
        doubled = {
            name: op["duplicate_effects"]
            for name, op in stats["operations"].items()
            if op["duplicate_effects"]
        }
        assert stats["totals"]["duplicate_effects"] == 0 and not doubled, doubled
        assert stats["totals"]["unkeyed_effects"] == 0, "every effect carries a key"
        return stats


def utc(moment: datetime) -> datetime:
    """A timestamp read back from the runtime database, with its zone (SQLite drops it)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@cache
def library() -> dict[str, dsl.Template]:
    """The library's templates, linted once per session."""
    return {template_id: load_template(TEMPLATES, template_id, "1.0.0") for template_id in LIBRARY}


def _evidence(item: dict[str, Any]) -> Any:
    kind = item.get("evidence", "none")
    if kind == "number":
        low, high = item.get("min"), item.get("max")
        if low is not None and high is not None:
            return (low + high) / 2
        return low if low is not None else (high if high is not None else 1)
    if kind == "photo":
        return f"https://photos.example/{item['id']}.jpg"
    if kind == "text":
        return "all in order"
    return None
