"""Property: whatever the runtime sends — duplicates in a batch, whole batches replayed,
events that arrive after their period was closed — the quantities billed over the
invoices equal the ground truth (each distinct event counted once), on the wholesale
invoice of the partner and on the resale invoice of its retailer alike. Closing twice
changes nothing. Everything goes through the real ingest, metering and close."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from control_plane.billing import books, invoices, service
from control_plane.billing.meters import UNCATEGORISED, period_bounds, period_of
from control_plane.billing.models import BookKind, Invoice, InvoiceUsage
from control_plane.billing.pricing import METERS, Item
from control_plane.context import Ctx
from control_plane.contracts.ids import uuid7
from control_plane.contracts.telemetry import Event, Kind
from tests.conftest import Tree, World
from tests.telemetry.conftest import post_ok, runtime_token

STORES = ["S-1", "S-2", "S-3"]
TEMPLATES = ["probe-transfer", "probe-returns"]  # not in the catalog: uncategorised
#: Every meter at one minor unit a unit, nothing included: amounts equal quantities.
FLAT = [Item(meter=meter, unit_price="1") for meter in METERS]

fact = st.fixed_dictionaries(
    {
        "kind": st.sampled_from(
            [Kind.RUN_STARTED, Kind.RUN_FINISHED, Kind.STEP_FINISHED, Kind.USAGE, Kind.HEARTBEAT]
        ),
        "when": st.floats(min_value=0, max_value=1, exclude_max=True),
        "store": st.sampled_from([*STORES, None]),
        "template": st.sampled_from(TEMPLATES),
        "api_calls": st.integers(min_value=0, max_value=50),
        "copies": st.integers(min_value=1, max_value=3),  # sent this many times
        "late": st.booleans(),  # arrives after its period was closed
    }
)


def month_window(now: datetime) -> tuple[str, datetime, datetime]:
    """This month (its events are all in the past, within any retention) and its end."""
    period = period_of(now.date())
    start, end = period_bounds(period)
    return period, datetime.combine(start, time(), UTC), datetime.combine(end, time(), UTC)


def make_event(f: dict[str, Any], start: datetime, now: datetime) -> Event:
    at = start + (now - start) * f["when"]
    fields: dict[str, Any] = {}
    if f["kind"] in (Kind.RUN_STARTED, Kind.RUN_FINISHED, Kind.STEP_FINISHED):
        fields = {"template_id": f["template"], "store": f["store"]}
    elif f["kind"] == Kind.USAGE:
        fields = {"data": {"api_calls": f["api_calls"]}}
    return Event(id=uuid7(), at=at, kind=f["kind"], **fields)


def truth(sent: list[Event]) -> Counter[tuple[str, str]]:
    """What should be billed: each distinct event once, by the meters' definitions."""
    distinct = {e.id: e for e in sent}.values()
    out: Counter[tuple[str, str]] = Counter()
    store_days: set[tuple[date, str]] = set()
    for e in distinct:
        if e.kind == Kind.RUN_STARTED:
            out[("runs", UNCATEGORISED)] += 1
        elif e.kind == Kind.STEP_FINISHED:
            out[("steps", "")] += 1
        elif e.kind == Kind.USAGE:
            out[("api_calls", "")] += int(e.data.get("api_calls", 0))
        if e.store:
            store_days.add((e.at.date(), e.store))
    out[("store_days", "")] = len(store_days)
    out[("tenant_days", "")] = len({e.at.date() for e in distinct})
    return +out


async def send(client: httpx.AsyncClient, token: str, tree: Tree, batch: list[Event]) -> None:
    for i in range(0, len(batch), 50):
        await post_ok(client, token, tree, batch[i : i + 50])


async def flat_books(world: World, tree: Tree, period: str) -> None:
    async def make(c: Ctx) -> None:
        for kind, tenant in ((BookKind.WHOLESALE, None), (BookKind.RESALE, None)):
            await books.create_book(
                c,
                books.PriceBookCreate(
                    kind=kind, name=f"{kind} flat", effective_from=period, currency="EUR",
                    items=FLAT, partner_id=tree.partner_id, tenant_id=tenant,
                ),
            )  # fmt: skip

    await world.run(make)


async def close(world: World, tree: Tree, period: str, now: datetime) -> service.CloseReport:
    report: service.CloseReport = await world.run(
        lambda c: service.close(c, period, now=now, partner_id=tree.partner_id)
    )
    return report


async def billed(world: World, tree: Tree, kind: str) -> Counter[tuple[str, str]]:
    async def read(c: Ctx) -> Counter[tuple[str, str]]:
        rows = await c.session.execute(
            select(InvoiceUsage.meter, InvoiceUsage.dimension, InvoiceUsage.quantity).where(
                InvoiceUsage.partner_id == tree.partner_id, InvoiceUsage.kind == kind
            )
        )
        out: Counter[tuple[str, str]] = Counter()
        for meter, dimension, quantity in rows:
            out[(meter, dimension)] += quantity
        return +out

    result: Counter[tuple[str, str]] = await world.run(read)
    return result


async def issued_rows(world: World, tree: Tree) -> list[tuple[Any, ...]]:
    async def read(c: Ctx) -> list[tuple[Any, ...]]:
        rows = await c.session.scalars(
            select(Invoice).where(Invoice.partner_id == tree.partner_id).order_by(Invoice.key)
        )
        return [(i.key, i.number, i.total, i.lines, i.usage_digest) for i in rows]

    found: list[tuple[Any, ...]] = await world.run(read)
    return found


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(facts=st.lists(fact, min_size=1, max_size=30), seed=st.integers(0, 2**16))
async def test_billed_quantities_equal_the_ground_truth(
    client: httpx.AsyncClient, world: World, facts: list[dict[str, Any]], seed: int
) -> None:
    now = datetime.now(UTC) - timedelta(seconds=5)
    period, start, end = month_window(now)
    following = period_of(end.date())
    tree = await world.tree()
    token = await runtime_token(world, tree)
    await flat_books(world, tree, period)
    rng = random.Random(seed)

    on_time: list[Event] = []
    late: list[Event] = []
    for f in facts:
        event = make_event(f, start, now)
        (late if f["late"] else on_time).extend([event] * f["copies"])
    rng.shuffle(on_time)
    # Part of what was sent on time is replayed as a whole batch, as a runtime does after
    # losing an answer.
    replay = on_time[: rng.randint(0, len(on_time))]
    await send(client, token, tree, on_time)
    await send(client, token, tree, replay)

    first = await close(world, tree, period, end)
    assert len(first.issued) == 2 and first.unchanged == 0
    issued = await issued_rows(world, tree)
    assert await billed(world, tree, "wholesale") == truth(on_time)
    again = await close(world, tree, period, end + timedelta(hours=1))
    assert (len(again.issued), again.unchanged) == (0, 2)
    assert await issued_rows(world, tree) == issued  # closing twice changes nothing

    await send(client, token, tree, late)
    assert await issued_rows(world, tree) == issued  # issued invoices never change
    next_end = datetime.combine(period_bounds(following)[1], time(), UTC)
    await close(world, tree, following, next_end)
    everything = truth(on_time + late)
    assert await billed(world, tree, "wholesale") == everything
    assert await billed(world, tree, "resale") == everything
    # At one minor unit a unit, the money billed is the quantity billed, too.
    totals = [row[2] for row in await issued_rows(world, tree)]
    assert sum(totals) == 2 * sum(everything.values())

    # Each invoice is reproduced exactly from what it billed, and nothing used is unbilled.
    async def check(c: Ctx) -> None:
        for invoice in await c.session.scalars(
            select(Invoice).where(Invoice.partner_id == tree.partner_id)
        ):
            again = await invoices.reproduce(c, invoice)
            assert again.ok, invoice.number
            assert again.arrived_since == {}, invoice.number

    await world.run(check)
