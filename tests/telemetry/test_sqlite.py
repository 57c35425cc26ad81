"""The embedded path: the same ingest rules on SQLite, delete-based retention, the CLI."""

from __future__ import annotations

import asyncio
import random
import shlex
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from litestar import Litestar

from control_plane.app import create_app
from control_plane.cli import main
from control_plane.config import Settings, get_settings
from control_plane.contracts.telemetry import Kind
from control_plane.db.migrate import upgrade
from control_plane.identity.admin import ensure_signing_key
from control_plane.runner import run_as
from control_plane.telemetry import apply_retention, rebuild_rollups
from tests.conftest import Tree, World
from tests.telemetry.conftest import (
    batch,
    event,
    mixed_events,
    post,
    post_ok,
    rollups,
    runtime_token,
    totals,
)

pytestmark = pytest.mark.sqlite


class Embedded:
    def __init__(self, app: Litestar, settings: Settings, client: httpx.AsyncClient) -> None:
        self.app, self.settings, self.client = app, settings, client
        self.world = World(app, settings)


@pytest.fixture(scope="module")
async def embedded(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Embedded]:
    settings = Settings(home=Path(tmp_path_factory.mktemp("telemetry")), log_level="WARNING")
    assert settings.database_url.startswith("sqlite")
    await asyncio.to_thread(upgrade, settings)
    await run_as(settings, lambda c: ensure_signing_key(c, settings))
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://embedded") as client:
        yield Embedded(app, settings, client)
    for hook in app.on_shutdown:
        await hook()


async def setup(embedded: Embedded) -> tuple[Tree, str]:
    tree = await embedded.world.tree()
    return tree, await runtime_token(embedded.world, tree)


async def test_ingest_dedupes_and_rolls_up_on_sqlite(embedded: Embedded) -> None:
    client = embedded.client
    tree, token = await setup(embedded)
    rng = random.Random(11)
    pool = mixed_events(200)
    sent: set[object] = set()
    for _ in range(12):
        chosen = [rng.choice(pool) for _ in range(rng.randint(1, 50))]
        rng.shuffle(chosen)
        result = await post_ok(client, token, tree, chosen)
        new = {e.id for e in chosen} - sent
        assert result == {"accepted": len(new), "duplicates": len(chosen) - len(new)}
        sent |= new
    distinct = [e for e in pool if e.id in sent]
    kinds = Counter(e.kind for e in distinct)
    for granularity in ("5m", "1h"):
        buckets = await rollups(client, tree.tenant_token, tree, granularity=granularity)
        assert totals(buckets, "events", "runs_started", "steps_finished") == {
            "events": len(distinct),
            "runs_started": kinds[Kind.RUN_STARTED],
            "steps_finished": kinds[Kind.STEP_FINISHED],
        }
        steps = Counter()
        for b in buckets:
            steps.update(b["steps_by_status"])
        assert steps == Counter(e.status for e in distinct if e.kind is Kind.STEP_FINISHED)
    beat = await client.get(
        f"/api/v1/tenants/{tree.tenant_id}/telemetry/heartbeat",
        headers={"Authorization": f"Bearer {tree.tenant_token}"},
    )
    latest = max((e for e in distinct if e.kind is Kind.HEARTBEAT), key=lambda e: e.at)
    assert datetime.fromisoformat(beat.json()["at"]) == latest.at

    other = await embedded.world.tree()
    refused = await post(client, token, batch(other, mixed_events(3)))
    assert refused.status_code == 403
    assert "batch for another tenant" in refused.json()["detail"]
    garbage = await post(client, token, b"\x1f\x8bnot really gzip")
    assert garbage.status_code == 422


async def test_retention_deletes_old_rows_and_refuses_late_copies(embedded: Embedded) -> None:
    client = embedded.client
    tree, token = await setup(embedded)
    now = datetime.now(UTC)
    old = event(Kind.RUN_STARTED, now - timedelta(days=40), template_id="t")
    recent = event(Kind.RUN_STARTED, now - timedelta(minutes=5), template_id="t")
    assert (await post_ok(client, token, tree, [old, recent]))["accepted"] == 2
    result = await apply_retention(embedded.settings, 30, now=now)
    assert result.horizon == datetime.combine(now.date() - timedelta(days=30), time(), UTC)
    assert result.deleted_rows >= 1 and result.dropped_partitions == []
    assert await post_ok(client, token, tree, [old, recent]) == {
        "accepted": 0,
        "duplicates": 1,
        "expired": 1,
    }
    fresh = event(Kind.RUN_STARTED, now - timedelta(minutes=1), template_id="t")
    assert await post_ok(client, token, tree, [fresh]) == {"accepted": 1, "duplicates": 0}


async def test_rebuild_on_sqlite(embedded: Embedded) -> None:
    client = embedded.client
    tree, token = await setup(embedded)
    await post_ok(client, token, tree, mixed_events(120))
    before = await rollups(client, tree.tenant_token, tree)
    now = datetime.now(UTC)
    result = await rebuild_rollups(
        embedded.app.state.db, now - timedelta(hours=3), now + timedelta(hours=1), tree.tenant_id
    )
    assert result.events == 120
    assert await rollups(client, tree.tenant_token, tree) == before


def _cli(runner: CliRunner, command: str, code: int = 0) -> str:
    result = runner.invoke(main, shlex.split(command))
    assert result.exit_code == code, result.output
    return result.output


def test_cli_retention_and_rollup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STOREOPS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("STOREOPS_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        _cli(runner, "db upgrade")
        out = _cli(runner, "telemetry retention --keep-days 10")
        assert "horizon" in out and "0 partition(s) dropped, 0 row(s) deleted" in out
        yesterday = datetime.now(UTC).date() - timedelta(days=1)
        out = _cli(runner, f"telemetry rollup --since {yesterday} --until {yesterday}T06:00")
        assert "rebuilt 0 rollup(s) from 0 event(s)" in out
        # The horizon now refuses a rebuild before it (the raw events are gone there).
        out = _cli(runner, "telemetry rollup --since 2020-01-01 --until 2020-01-02", code=1)
        assert "dropped by retention" in out
        assert "Invalid value" in _cli(runner, "telemetry retention --keep-days 0", code=2)
    finally:
        get_settings.cache_clear()
