"""Tenant health: each verdict with its reason, from signals and through the API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from control_plane.contracts.telemetry import Kind
from control_plane.health.assess import Signals, Status, Thresholds, assess
from control_plane.identity.principal import Grant
from control_plane.identity.roles import Role
from tests.conftest import World, bearer
from tests.telemetry.conftest import event, post_ok, runtime_token


@pytest.mark.parametrize(
    ("signals", "status", "reason"),
    [
        (Signals(heartbeat_age_s=None), Status.UNKNOWN, "no heartbeat has ever arrived"),
        (Signals(heartbeat_age_s=121), Status.DOWN, "last heartbeat 121s ago (down after 120s)"),
        (
            Signals(heartbeat_age_s=5, runs_finished=10, runs_failed=2),
            Status.DEGRADED,
            "20% of runs failed",
        ),
        (Signals(heartbeat_age_s=5, queue_depth=201), Status.DEGRADED, "201 steps waiting"),
        (Signals(heartbeat_age_s=5, oldest_pending_s=301), Status.DEGRADED, "has waited 301s"),
        (
            Signals(heartbeat_age_s=5, tasks_opened=5, sla_breaches=2),
            Status.DEGRADED,
            "40% of tasks breached",
        ),
        (
            Signals(heartbeat_age_s=5, runs_finished=4, runs_failed=4),
            Status.HEALTHY,
            "4 of 4 runs failed",
        ),
        (
            Signals(heartbeat_age_s=120, runs_finished=10, runs_failed=1),
            Status.HEALTHY,
            "heartbeat 120s ago",
        ),
    ],
)
def test_each_verdict_says_why(signals: Signals, status: Status, reason: str) -> None:
    verdict = assess(signals)
    assert verdict.status is status
    assert any(reason in r for r in verdict.reasons), verdict.reasons


def test_several_reasons_are_all_given_and_thresholds_are_settings() -> None:
    signals = Signals(heartbeat_age_s=1, runs_finished=20, runs_failed=5, queue_depth=500)
    assert len(assess(signals).reasons) == 2
    relaxed = Thresholds(failure_rate=0.5, queue_depth=1000)
    assert assess(signals, relaxed).status is Status.HEALTHY


async def test_the_api_judges_from_the_heartbeat_and_recent_rollups(
    client: httpx.AsyncClient, world: World
) -> None:
    tree = await world.tree()
    admin = await world.token(
        Grant(Role.RETAILER_ADMIN, partner_id=tree.partner_id, tenant_id=tree.tenant_id)
    )
    url = f"/api/v1/tenants/{tree.tenant_id}/health"
    first = await client.get(url, headers=bearer(admin))
    assert first.status_code == 200, first.text
    assert first.json()["status"] == "unknown"

    runtime = await runtime_token(world, tree)
    now = datetime.now(UTC)
    finished = [
        event(Kind.RUN_FINISHED, now - timedelta(minutes=2), template_id="t", status=status)
        for status in ("failed",) * 3 + ("succeeded",) * 7
    ]
    beat = event(Kind.HEARTBEAT, now, data={"queue_depth": 3, "oldest_pending_s": 1})
    await post_ok(client, runtime, tree, [*finished, beat])
    body = (await client.get(url, headers=bearer(admin))).json()
    assert body["status"] == "degraded"
    assert body["reasons"] == ["30% of runs failed in the last 15 min (3 of 10; limit 10%)"]
    assert body["signals"]["runs_finished"] == 10 and body["signals"]["queue_depth"] == 3

    # A runtime gone quiet is down, whatever its last figures said.
    quiet = await world.tree()
    quiet_admin = await world.token(
        Grant(Role.RETAILER_ADMIN, partner_id=quiet.partner_id, tenant_id=quiet.tenant_id)
    )
    stale = event(Kind.HEARTBEAT, now - timedelta(minutes=10), data={"queue_depth": 0})
    await post_ok(client, await runtime_token(world, quiet), quiet, [stale])
    down = (
        await client.get(f"/api/v1/tenants/{quiet.tenant_id}/health", headers=bearer(quiet_admin))
    ).json()
    assert down["status"] == "down" and down["reasons"][0].startswith("last heartbeat 6")
    other = await world.tree()
    outsider = await world.token(
        Grant(Role.RETAILER_ADMIN, partner_id=other.partner_id, tenant_id=other.tenant_id)
    )
    assert (await client.get(url, headers=bearer(outsider))).status_code == 404
