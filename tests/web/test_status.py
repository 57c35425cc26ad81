"""The grid's quick status agrees with :func:`assess`, and with the alert evaluator's
signals (``fleet_signals``) on a seeded fleet."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st
from litestar import Litestar

from control_plane.health import noc
from control_plane.health.assess import Signals, Thresholds, assess
from control_plane.health.fleet import fleet_signals
from control_plane.health.noc import status_of
from control_plane.identity.principal import Principal
from control_plane.runner import run_as
from tests.web.support import SeededFleet

counts = st.integers(min_value=0, max_value=400)


@settings(max_examples=500, deadline=None)
@given(
    age=st.none() | st.floats(min_value=0, max_value=1000),
    depth=counts,
    oldest=st.floats(min_value=0, max_value=1000),
    runs=counts,
    failed=counts,
    tasks=counts,
    breaches=counts,
)
def test_status_of_is_assess_without_reasons(
    age: float | None, depth: int, oldest: float, runs: int, failed: int, tasks: int, breaches: int
) -> None:
    limits = Thresholds()
    signals = Signals(
        heartbeat_age_s=age,
        queue_depth=depth,
        oldest_pending_s=oldest,
        runs_finished=runs,
        runs_failed=failed,
        tasks_opened=tasks,
        sla_breaches=breaches,
    )
    quick = status_of(age, depth, oldest, runs, failed, tasks, breaches, limits)
    assert quick == assess(signals, limits).status


async def test_the_grid_and_the_alert_signals_agree(app: Litestar, fleet: SeededFleet) -> None:
    now = datetime.now(UTC)
    ids = [t.id for t in fleet.tenants]

    async def both(ctx):  # type: ignore[no-untyped-def]
        signals = await fleet_signals(ctx, now, ids)
        slugs = ",".join(slug for _, slug in fleet.partners)
        grid = await noc.fleet(
            ctx, noc.FleetFilter(partners=tuple(slugs.split(",")), limit=500), now=now
        )
        return signals, grid

    signals, grid = await run_as(app.state.db.settings, both, Principal.system(), app.state.db)
    for row in grid.items:
        expected = (
            assess(signals[row.tenant_id]).status.value if row.tenant_id in signals else "unknown"
        )
        assert row.status == expected, row
