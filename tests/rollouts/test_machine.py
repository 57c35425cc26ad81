"""The state machine driven with an explicit clock: waves in order, gates, automatic
rollback, pause, promote and abort. The runtimes are played by reports and telemetry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import msgspec
import pytest

from control_plane.context import Ctx
from control_plane.deployments.state import current_generation
from control_plane.errors import IllegalTransition
from control_plane.rollouts import schemas, service, views
from tests.conftest import World
from tests.deployments.support import TRANSFER
from tests.rollouts.support import Fleet, Shop, beat, confirm, fleet, runs, version_of

T0 = datetime.now(UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


async def start(world: World, f: Fleet, **changes: Any) -> UUID:
    data = msgspec.convert(
        {
            "template_id": TRANSFER,
            "version": "1.1.0",
            "partner_id": str(f.partner_id),
            "soak_seconds": 10,
            "gates": {"min_runs": 10},
            **changes,
        },
        schemas.RolloutCreate,
    )

    async def go(c: Ctx) -> UUID:
        return (await service.create(c, data, now=at(0))).id

    result: UUID = await world.run(go)
    return result


async def tick(world: World, seconds: float) -> int:
    result: int = await world.run(lambda c: service.advance_all(c, at(seconds)))
    return result


async def view(world: World, rollout_id: UUID) -> schemas.Rollout:
    async def go(c: Ctx) -> schemas.Rollout:
        return await views.detail(c, await service.get(c, rollout_id))

    result: schemas.Rollout = await world.run(go)
    return result


async def versions(world: World, f: Fleet) -> list[str]:
    return [await version_of(world, s) for s in f.shops]


async def generations(world: World, shops: list[Shop]) -> list[int]:
    async def go(c: Ctx) -> list[int]:
        return [await current_generation(c.session, s.id) for s in shops]

    result: list[int] = await world.run(go)
    return result


def kinds(v: schemas.Rollout) -> list[tuple[str, int | None]]:
    return [(e.kind, e.wave) for e in v.events]


@pytest.fixture
async def f(world: World) -> Fleet:
    return await fleet(world, 5)


async def test_a_good_version_moves_wave_by_wave(world: World, f: Fleet) -> None:
    rid = await start(world, f)
    order = [t.slug for w in (await view(world, rid)).waves for t in w.tenants]
    shops = {s.slug: s for s in f.shops}
    canary = shops[order[0]]
    assert await tick(world, 1) == 0  # nothing confirmed yet
    await confirm(world, f, canary)
    assert await tick(world, 2) == 1
    v = await view(world, rid)
    assert v.status == "soaking"
    assert v.waves[0].soak_until == at(12).isoformat()
    # Telemetry of the soak: the new version as healthy as the old.
    await runs(world, f, canary, "1.1.0", ok=12, failed=0, at=at(5))
    for slug in order[1:]:
        await runs(world, f, shops[slug], "1.0.0", ok=5, failed=0, at=at(5))
    await tick(world, 6)  # mid-soak: a passing gate does not cut the soak short
    v = await view(world, rid)
    assert v.status == "soaking" and v.waves[0].gate is not None
    assert v.waves[0].gate["verdict"] == "pass"
    await tick(world, 12)
    v = await view(world, rid)
    assert (v.status, v.current_wave) == ("applying", 1)
    assert v.waves[0].state == "passed"
    assert v.waves[0].gate is not None and v.waves[0].gate["new"]["runs"] == 12
    moved = await versions(world, f)
    assert sorted(moved) == ["1.0.0"] * 3 + ["1.1.0"] * 2

    # Wave 2 (10 %: one tenant), then the rest.
    second = shops[order[1]]
    await confirm(world, f, second)
    await tick(world, 13)
    await runs(world, f, second, "1.1.0", ok=10, at=at(15))
    await tick(world, 24)
    assert (await view(world, rid)).current_wave == 2
    for slug in order[2:]:
        await confirm(world, f, shops[slug])
    await tick(world, 25)
    await runs(world, f, shops[order[2]], "1.1.0", ok=10, at=at(26))
    await tick(world, 36)
    v = await view(world, rid)
    assert v.status == "completed" and v.finished_at == at(36)
    assert [w.state for w in v.waves] == ["passed", "passed", "passed"]
    assert await versions(world, f) == ["1.1.0"] * 5
    assert [k for k in kinds(v) if k[0] == "wave_started"] == [
        ("wave_started", 0), ("wave_started", 1), ("wave_started", 2)
    ]  # fmt: skip
    assert kinds(v)[-1] == ("completed", 2)
    # Done: the same tenants may take a new rollout.
    await start(world, f, version="2.0.0")


async def test_a_regression_on_the_canary_rolls_back_and_nobody_else_moves(
    world: World, f: Fleet
) -> None:
    rid = await start(world, f)
    v = await view(world, rid)
    canary = next(s for s in f.shops if s.slug == v.waves[0].tenants[0].slug)
    others = [s for s in f.shops if s is not canary]
    before = await generations(world, others)
    await confirm(world, f, canary)
    await tick(world, 1)
    # Failure rate 50 % on the new version vs 10 % on the old: +40 points > 5.
    await runs(world, f, canary, "1.1.0", ok=5, failed=5, at=at(3))
    await runs(world, f, others[0], "1.0.0", ok=18, failed=2, at=at(3))
    await tick(world, 4)  # regression is acted on at once, before the soak ends
    v = await view(world, rid)
    assert v.status == "rolled_back"
    assert v.reason is not None and "failure rate 50.0% vs 10.0%" in v.reason
    assert v.waves[0].state == "failed" and v.waves[1].state == "waiting"
    assert v.waves[0].tenants[0].state == "rolled_back"
    assert await versions(world, f) == ["1.0.0"] * 5
    # The others' desired state never changed.
    assert await generations(world, others) == before
    assert [k[0] for k in kinds(v)] == ["wave_started", "wave_applied", "paused", "rolled_back"]


async def test_a_failed_apply_is_a_regression(world: World, f: Fleet) -> None:
    rid = await start(world, f)
    v = await view(world, rid)
    canary = next(s for s in f.shops if s.slug == v.waves[0].tenants[0].slug)
    await confirm(world, f, canary, "failed")
    await tick(world, 1)
    v = await view(world, rid)
    assert v.status == "rolled_back"
    assert v.reason is not None
    assert "failed to apply" in v.reason and "boom" in v.reason and canary.slug in v.reason
    assert await versions(world, f) == ["1.0.0"] * 5


async def test_an_apply_timeout_is_a_regression(world: World, f: Fleet) -> None:
    rid = await start(world, f, apply_timeout_seconds=30)
    await tick(world, 29)
    assert (await view(world, rid)).status == "applying"
    await tick(world, 30)
    v = await view(world, rid)
    assert v.status == "rolled_back"
    assert v.reason is not None and "did not confirm 1.1.0 within 30s" in v.reason


async def test_without_auto_rollback_it_pauses_then_promote_resumes_and_abort_rolls_back(
    world: World, f: Fleet
) -> None:
    rid = await start(world, f, auto_rollback=False, waves=[1, 1, "rest"])
    v = await view(world, rid)
    canary = next(s for s in f.shops if s.slug == v.waves[0].tenants[0].slug)
    await confirm(world, f, canary)
    await tick(world, 1)
    await runs(world, f, canary, "1.1.0", ok=0, failed=10, at=at(2))
    await tick(world, 3)
    v = await view(world, rid)
    assert v.status == "paused" and v.waves[0].state == "failed"
    assert await version_of(world, canary) == "1.1.0"  # kept for a person to look at
    assert await tick(world, 100) == 0  # a pause waits for a person

    async def promote(c: Ctx) -> None:
        await service.promote(c, rid, "known flaky ERP")

    await world.run(promote)
    v = await view(world, rid)
    assert (v.status, v.current_wave) == ("applying", 1)
    assert v.waves[0].state == "overridden"
    assert sorted(await versions(world, f)).count("1.1.0") == 2

    async def abort(c: Ctx) -> None:
        await service.abort(c, rid, "enough")

    await world.run(abort)
    v = await view(world, rid)
    assert v.status == "aborted"
    assert await versions(world, f) == ["1.0.0"] * 5
    with pytest.raises(IllegalTransition):
        await world.run(promote)


async def test_promote_skips_the_soak_and_a_thin_sample_waits(world: World, f: Fleet) -> None:
    rid = await start(world, f, soak_seconds=10, gates={"min_runs": 50})
    v = await view(world, rid)
    canary = next(s for s in f.shops if s.slug == v.waves[0].tenants[0].slug)
    await confirm(world, f, canary)
    await tick(world, 1)
    await runs(world, f, canary, "1.1.0", ok=3, at=at(2))
    await tick(world, 20)  # soak over, 3 of 50 runs: the wave keeps soaking
    v = await view(world, rid)
    assert v.status == "soaking"
    assert v.waves[0].gate is not None and v.waves[0].gate["verdict"] == "waiting"
    assert v.waves[0].gate["reasons"] == ["3 of the 50 finished runs a verdict needs"]
    assert kinds(v)[-1] == ("gate_waiting", 0)

    async def promote(c: Ctx) -> None:
        await service.promote(c, rid, None)

    await world.run(promote)
    v = await view(world, rid)
    assert (v.status, v.current_wave, v.waves[0].state) == ("applying", 1, "promoted")


async def test_a_silent_runtime_is_a_regression(world: World, f: Fleet) -> None:
    rid = await start(world, f, gates={"min_runs": 10, "max_silence_seconds": 5})
    v = await view(world, rid)
    canary = next(s for s in f.shops if s.slug == v.waves[0].tenants[0].slug)
    await confirm(world, f, canary)
    await tick(world, 1)
    await beat(world, f, canary, at(5))
    await tick(world, 9)  # 4 s since its last heartbeat
    assert (await view(world, rid)).status == "soaking"
    await tick(world, 11)
    v = await view(world, rid)
    assert v.status == "rolled_back"
    assert v.reason == (
        f"wave 0: {canary.slug} sent no heartbeat for more than 5s since applying 1.1.0"
    )
    assert await versions(world, f) == ["1.0.0"] * 5
