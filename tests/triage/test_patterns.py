"""The recurring-pattern job: three refrigeration incidents at one store within 30 days
become an insight with its evidence, told to the region's manager and sent home to the
NOC; running it again raises nothing new, a grown pattern is sent home again."""

from __future__ import annotations

from datetime import timedelta

import msgspec
from sqlalchemy import select

from control_plane.contracts import telemetry
from control_plane.contracts.brand import DEFAULT, branding_templates, render_email
from control_plane.contracts.triage import TriageSettings
from tenant_runtime.db.schema import insights, notifications, outbox
from tenant_runtime.triage.patterns import describe, raise_insights
from tests.templates.harness import Harness

FRIDGE = [
    "Dairy chiller at 9°C and rising, alarm beeping",
    "The walk-in freezer is at minus 5 and the door seal is torn, ice cream going soft",
    "Meat counter fridge showing 8 degrees, product moved to the back chiller",
    "Chilled aisle multideck is warm, the night blind was left up and it will not recover",
]
UNSURE = "Something is not right at the back of the shop, please send someone"


async def report(h: Harness, text: str, store: str = "S-101") -> None:
    incident = {"category": "refrigeration", "asset_id": "AST-10001", "description": text}
    await h.start("maintenance-incident", incident, store=store)
    h.clock.now += timedelta(days=2)


async def sent_home(h: Harness) -> list[telemetry.Event]:
    async with h.db.connect() as conn:
        rows = await conn.execute(select(outbox.c.payload).order_by(outbox.c.id))
        found = [msgspec.convert(e, telemetry.Event) for r in rows for e in r.payload]
    return [e for e in found if e.kind == telemetry.Kind.INSIGHT]


async def test_three_incidents_of_one_category_at_a_store_become_an_insight(h: Harness) -> None:
    settings = TriageSettings()
    for text in FRIDGE[:2]:
        await report(h, text)
    await report(h, UNSURE)  # waits for its review: not counted
    assert await raise_insights(h.engine, settings) == []

    await report(h, FRIDGE[2])
    [insight] = await raise_insights(h.engine, settings)
    assert (insight.scope, insight.subject, insight.label, insight.count) == (
        "store",
        "S-101",
        "refrigeration",
        3,
    )
    assert insight.threshold == 3 and insight.window_days == 30
    assert [e.text for e in insight.evidence] == FRIDGE[:3]
    assert insight.notified == "regional_manager@region:NE"

    async with h.db.connect() as conn:
        [told] = (
            await conn.execute(select(notifications).where(notifications.c.reason == "insight"))
        ).all()
    assert told.recipient == "regional_manager@region:NE" and told.channel == "email"
    assert told.message.startswith("3 refrigeration incidents at store S-101 in the last 30 days")
    assert told.next_attempt_at is not None  # the mailer sends it
    email = render_email(
        branding_templates(),
        "insight",
        DEFAULT,
        headline=told.message.partition("\n\n")[0],
        evidence=[FRIDGE[0]],
        link=None,
    )
    assert "Recurring incidents" in email.subject and FRIDGE[0] in email.text

    [event] = await sent_home(h)
    assert (event.status, event.store) == ("raised", "S-101")
    assert event.data["id"] == insight.id and event.data["count"] == 3
    assert len(event.data["evidence"]) == 3

    # Again: nothing new. One more incident: the same insight, grown, sent home again.
    assert await raise_insights(h.engine, settings) == []
    await report(h, FRIDGE[3])
    [grown] = await raise_insights(h.engine, settings)
    assert (grown.id, grown.count) == (insight.id, 4)
    assert [e.status for e in await sent_home(h)] == ["raised", "updated"]
    async with h.db.connect() as conn:
        assert (await conn.scalar(select(insights.c.count))) == 4
        told = (
            await conn.execute(select(notifications).where(notifications.c.reason == "insight"))
        ).all()
    assert len(told) == 1  # the manager is told once per insight

    # A month later the incidents have left the window.
    h.clock.now += timedelta(days=31)
    assert await raise_insights(h.engine, settings) == []


async def test_a_region_threshold_counts_across_its_stores(h: Harness) -> None:
    settings = TriageSettings(store_threshold=5, region_threshold=2)
    await report(h, FRIDGE[0], store="S-101")
    await report(h, FRIDGE[1], store="S-101")
    await report(h, FRIDGE[2], store="S-102")  # another region
    [insight] = await raise_insights(h.engine, settings)
    assert (insight.scope, insight.subject, insight.count) == ("region", "NE", 2)
    assert {e.store for e in insight.evidence} == {"S-101"}
    assert describe(insight).splitlines()[0].startswith("2 refrigeration incidents at region NE")
