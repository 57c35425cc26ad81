"""Alerts on the embedded SQLite database the demo runs on: same evaluation, same outbox,
mail into the local .eml sink."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import pytest

from control_plane.alerts import channels, rules, service
from control_plane.alerts import schemas as s
from control_plane.alerts.delivery import deliver_due
from control_plane.alerts.evaluate import evaluate
from control_plane.alerts.models import ChannelKind
from control_plane.config import Settings
from control_plane.context import Ctx
from control_plane.db.migrate import upgrade
from control_plane.runner import run_as
from control_plane.telemetry.models import Heartbeat
from control_plane.tenancy import schemas as ts
from control_plane.tenancy import service as tenancy

pytestmark = pytest.mark.sqlite


async def test_alerts_open_notify_and_resolve_on_sqlite(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, log_level="WARNING")
    assert settings.database_url.startswith("sqlite")
    await asyncio.to_thread(upgrade, settings)
    now = datetime.now(UTC)

    async def build(c: Ctx) -> UUID:
        p = await tenancy.create_partner(c, ts.PartnerCreate(slug="p1", name="P", kind="msp"))
        t = await tenancy.onboard_tenant(
            c, p.id, ts.TenantCreate(slug="t1", name="Freshmart", timezone="Europe/London")
        )
        await tenancy.transition_tenant(c, t.id, "activate")
        await rules.create_rule(
            c,
            s.AlertRuleCreate(key="depth", partner_id=p.id, metric="queue_depth",
                              comparator=">", threshold=10, severity="critical"),
        )  # fmt: skip
        await channels.create_channel(
            c,
            s.NotificationChannelCreate(
                name="mail", kind=ChannelKind.EMAIL, partner_id=p.id, addresses=["a@b.example"]
            ),
        )
        c.session.add(
            Heartbeat(tenant_id=t.id, partner_id=p.id, runtime="r", at=now, received_at=now,
                      data={"queue_depth": 50, "dead_letters": 2})
        )  # fmt: skip
        return t.id

    tenant_id = await run_as(settings, build)
    assert await run_as(settings, lambda c: evaluate(c, now)) > 0
    assert await run_as(settings, lambda c: evaluate(c, now)) == 0
    counts = await run_as(settings, lambda c: service.open_alert_counts(c))
    assert counts == {tenant_id: 2}  # the partner's rule and the platform's dead-letters
    assert await run_as(settings, lambda c: deliver_due(c, now, settings)) == 2
    mail = sorted((tmp_path / "mail").glob("*.eml"))
    assert len(mail) == 2 and b"Freshmart" in mail[0].read_bytes()

    async def resolve_by_hand(c: Ctx) -> str:
        rows, _ = await service.list_alerts(c, state="open")
        depth = next(a for a in rows if a.rule_key == "depth")
        await service.acknowledge(c, depth.id, "on it")
        return (await service.resolve(c, depth.id, "queue drained by hand")).state

    assert await run_as(settings, resolve_by_hand) == "resolved"
    await run_as(settings, lambda c: deliver_due(c, datetime.now(UTC), settings))
    assert len(list((tmp_path / "mail").glob("*.eml"))) == 3

    async def recover(c: Ctx) -> None:
        beat = await c.session.get(Heartbeat, tenant_id)
        assert beat is not None
        beat.at = now + timedelta(seconds=20)
        beat.data = {"queue_depth": 0, "dead_letters": 0}

    await run_as(settings, recover)
    await run_as(settings, lambda c: evaluate(c, now + timedelta(seconds=30)))
    assert await run_as(settings, lambda c: service.open_alert_counts(c)) == {}
    await run_as(settings, lambda c: deliver_due(c, now + timedelta(seconds=30), settings))
    assert len(list((tmp_path / "mail").glob("*.eml"))) == 4
