"""The health gate, computed by hand, and the sample read from raw telemetry events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from control_plane.context import Ctx
from control_plane.rollouts.gates import FAIL, PASS, WAITING, Sample, Thresholds, evaluate, sample
from tests.conftest import World
from tests.deployments.support import TRANSFER
from tests.rollouts.support import fleet, runs

LIMITS = Thresholds(max_failure_rate_increase=0.05, max_breach_rate_increase=0.10, min_runs=20)


def test_pass_within_thresholds() -> None:
    # New: 2 failed of 40 = 5 %; old: 1 of 50 = 2 %: +3 points <= 5.
    reading = evaluate(Sample(40, 2, 10, 1), Sample(50, 1, 10, 0), LIMITS)
    assert reading.verdict == PASS
    assert reading.failure_rate_increase == pytest.approx(0.03)
    assert reading.breach_rate_increase == pytest.approx(0.10)  # at the limit is allowed
    assert reading.reasons == []


def test_failure_rate_regression() -> None:
    # New: 6 of 30 = 20 %; old: 4 of 100 = 4 %: +16 points > 5.
    reading = evaluate(Sample(30, 6), Sample(100, 4), LIMITS)
    assert reading.verdict == FAIL
    assert reading.failure_rate_increase == pytest.approx(0.16)
    assert reading.reasons == [
        "failure rate 20.0% vs 4.0% on the old version: +16.0% exceeds +5.0%"
    ]


def test_breach_rate_regression() -> None:
    # Breaches: new 5 of 20 tasks = 25 %; old 2 of 20 = 10 %: +15 points > 10.
    reading = evaluate(Sample(25, 0, 20, 5), Sample(25, 0, 20, 2), LIMITS)
    assert reading.verdict == FAIL
    assert reading.breach_rate_increase == pytest.approx(0.15)
    assert reading.reasons[0].startswith("SLA breach rate 25.0% vs 10.0%")


def test_too_few_runs_waits_and_no_baseline_is_zero() -> None:
    reading = evaluate(Sample(19, 19), Sample(), LIMITS)
    assert reading.verdict == WAITING
    assert reading.reasons == ["19 of the 20 finished runs a verdict needs"]
    # With the sample reached, an old version without runs is a 0 % baseline.
    assert evaluate(Sample(20, 1), Sample(), LIMITS).verdict == PASS  # 5 % = the limit
    assert evaluate(Sample(20, 2), Sample(), LIMITS).verdict == FAIL


async def test_sample_counts_the_versions_tenants_and_window(world: World) -> None:
    f = await fleet(world, 2)
    now = datetime.now(UTC)
    a, b = f.shops
    await runs(world, f, a, "1.1.0", ok=7, failed=3, opened=4, breached=1, at=now)
    await runs(world, f, a, "1.0.0", ok=5, failed=1, at=now)
    await runs(world, f, b, "1.1.0", ok=100, at=now)  # another tenant
    await runs(world, f, a, "1.1.0", failed=50, at=now - timedelta(hours=2))  # before

    async def read(c: Ctx) -> Sample:
        return await sample(
            c.session,
            tenant_ids=[a.id],
            template_id=TRANSFER,
            versions=["1.1.0"],
            since=now - timedelta(minutes=1),
            until=now + timedelta(minutes=1),
        )

    got = await world.run(read)
    assert got == Sample(runs=10, failed=3, tasks_opened=4, tasks_breached=1)
    assert got.failure_rate == pytest.approx(0.3)
    assert got.breach_rate == pytest.approx(0.25)
