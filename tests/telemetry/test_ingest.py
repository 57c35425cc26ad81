"""POST /runtime/v1/telemetry on PostgreSQL: stored once by event id, rolled up once."""

from __future__ import annotations

import asyncio
import gzip
import random
from collections import Counter
from datetime import UTC, datetime, timedelta

import httpx
import msgspec

from control_plane.config import Settings
from control_plane.contracts import telemetry
from control_plane.contracts.telemetry import Kind
from control_plane.identity.principal import Grant
from control_plane.identity.roles import Role
from control_plane.telemetry.routes import BODY_LIMIT
from tests.conftest import Tree, World, bearer
from tests.telemetry.conftest import (
    HEADERS,
    TEMPLATES,
    URL,
    batch,
    event,
    mixed_events,
    post,
    post_ok,
    rollups,
    runtime_token,
    stored_ids,
    totals,
)

COUNTED = (
    "events",
    "runs_started",
    "runs_finished",
    "runs_succeeded",
    "runs_failed",
    "runs_cancelled",
    "steps_finished",
    "tasks_opened",
    "tasks_decided",
    "tasks_escalated",
    "sla_breaches",
)


async def test_a_batch_is_stored_and_rolled_up(
    client: httpx.AsyncClient, settings: Settings, tree: Tree, token: str
) -> None:
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=20)
    tpl = "stock-transfer-approval"
    events = [
        event(Kind.RUN_STARTED, start, template_id=tpl),
        event(Kind.RUN_STARTED, start, template_id=tpl),
        event(Kind.RUN_STARTED, start, template_id="price-sync"),
        event(Kind.RUN_FINISHED, start, template_id=tpl, status="succeeded", duration_ms=400),
        event(Kind.RUN_FINISHED, start, template_id=tpl, status="succeeded", duration_ms=1_500),
        event(Kind.RUN_FINISHED, start, template_id=tpl, status="failed", duration_ms=90_000),
        event(Kind.STEP_FINISHED, start, template_id=tpl, status="succeeded"),
        event(Kind.STEP_FINISHED, start, template_id=tpl, status="succeeded"),
        event(Kind.STEP_FINISHED, start, template_id=tpl, status="dead"),
        event(Kind.TASK_OPENED, start, template_id=tpl),
        event(Kind.TASK_DECIDED, start, template_id=tpl, status="approved", duration_ms=60_000),
        event(Kind.TASK_BREACHED, start, template_id=tpl),
        event(Kind.TASK_ESCALATED, start, template_id=tpl),
        event(Kind.USAGE, start, data={"api_calls": 12, "webhooks": 2}),
        event(Kind.USAGE, start + timedelta(seconds=1), data={"api_calls": 3}),
        event(Kind.HEARTBEAT, start, data={"version": "1.0.0", "queue_depth": 4}),
        event(Kind.HEARTBEAT, start + timedelta(seconds=30), data={"version": "1.0.1"}),
    ]
    assert await post_ok(client, token, tree, events) == {"accepted": 17, "duplicates": 0}
    assert sorted(await stored_ids(settings, tree.tenant_id)) == sorted(e.id for e in events)

    buckets = await rollups(client, tree.tenant_token, tree, granularity="5m")
    by_template = {b["template_id"]: b for b in buckets}
    assert set(by_template) == {tpl, "price-sync", None}
    main = by_template[tpl]
    bucket = datetime.fromisoformat(main["bucket"])
    assert bucket == start.replace(minute=start.minute - start.minute % 5)
    assert (main["events"], main["runs_started"], main["runs_finished"]) == (12, 2, 3)
    assert (main["runs_succeeded"], main["runs_failed"], main["runs_cancelled"]) == (2, 1, 0)
    assert main["steps_finished"] == 3
    assert main["steps_by_status"] == {"succeeded": 2, "dead": 1}
    assert (main["tasks_opened"], main["tasks_decided"], main["tasks_escalated"]) == (1, 1, 1)
    assert main["sla_breaches"] == 1
    durations = main["run_duration"]
    assert (durations["count"], durations["sum_ms"], durations["max_ms"]) == (3, 91_900, 90_000)
    assert sum(durations["histogram"]) == 3
    assert 60_000 < durations["p95_ms"] <= 90_000
    assert by_template["price-sync"]["runs_started"] == 1
    assert by_template[None]["usage"] == {"api_calls": 15, "webhooks": 2}
    assert by_template[None]["events"] == 4

    hourly = await rollups(client, tree.tenant_token, tree, granularity="1h")
    assert totals(hourly, *COUNTED) == totals(buckets, *COUNTED)

    beat = await client.get(
        f"/api/v1/tenants/{tree.tenant_id}/telemetry/heartbeat", headers=bearer(tree.partner_token)
    )
    assert beat.status_code == 200, beat.text
    body = beat.json()
    assert body["runtime"] == "runtime-1"
    assert datetime.fromisoformat(body["at"]) == start + timedelta(seconds=30)
    assert body["data"] == {"version": "1.0.1"}
    assert body["age_seconds"] > 0


async def test_a_batch_sent_twice_counts_once(
    client: httpx.AsyncClient, settings: Settings, tree: Tree, token: str
) -> None:
    events = mixed_events(40)
    body = batch(tree, events)
    first, again = await post(client, token, body), await post(client, token, body)
    assert first.json() == {"accepted": 40, "duplicates": 0}
    assert again.status_code == 200
    assert again.json() == {"accepted": 0, "duplicates": 40}
    assert len(await stored_ids(settings, tree.tenant_id)) == 40
    buckets = await rollups(client, tree.tenant_token, tree)
    assert totals(buckets, "events")["events"] == 40


async def test_overlapping_batches_and_repeats_within_one_count_once(
    client: httpx.AsyncClient, settings: Settings, tree: Tree, token: str
) -> None:
    events = mixed_events(30)
    assert await post_ok(client, token, tree, events[:20]) == {"accepted": 20, "duplicates": 0}
    assert await post_ok(client, token, tree, events[10:]) == {"accepted": 10, "duplicates": 10}
    repeated = [events[0], events[0], events[29], events[5]]
    assert await post_ok(client, token, tree, repeated) == {"accepted": 0, "duplicates": 4}
    fresh = mixed_events(2)
    assert await post_ok(client, token, tree, [*fresh, fresh[0]]) == {
        "accepted": 2,
        "duplicates": 1,
    }
    assert len(await stored_ids(settings, tree.tenant_id)) == 32
    buckets = await rollups(client, tree.tenant_token, tree)
    expected = Counter(e.kind for e in [*events, *fresh])
    got = totals(buckets, "events", "runs_started", "tasks_opened")
    assert got == {
        "events": 32,
        "runs_started": expected[Kind.RUN_STARTED],
        "tasks_opened": expected[Kind.TASK_OPENED],
    }


async def test_a_batch_for_another_tenant_is_refused_and_nothing_stored(
    client: httpx.AsyncClient, settings: Settings, world: World, tree: Tree, token: str
) -> None:
    other = await world.tree()
    response = await post(client, token, batch(other, mixed_events(5)))
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "batch for another tenant" in response.json()["detail"]
    assert await stored_ids(settings, other.tenant_id) == []
    assert await stored_ids(settings, tree.tenant_id) == []
    # The other tenant's own runtime is not refused.
    theirs = await runtime_token(world, other)
    assert (await post_ok(client, theirs, other, mixed_events(5)))["accepted"] == 5


def _gzip(raw: bytes) -> bytes:
    return gzip.compress(raw)


async def test_malformed_bodies_are_422_with_the_reason(
    client: httpx.AsyncClient, settings: Settings, tree: Tree, token: str
) -> None:
    valid = msgspec.msgpack.decode(gzip.decompress(batch(tree, mixed_events(3))))
    no_events = {**valid, "events": []}
    unknown_field = {**valid, "colour": "red"}
    bad_kind = {**valid, "events": [{**valid["events"][0], "kind": "run.exploded"}]}
    too_many = {**valid, "events": valid["events"][:1] * (telemetry.MAX_EVENTS + 1)}
    bomb = gzip.compress(b"\0" * (telemetry.MAX_RAW_BYTES + 1024), compresslevel=9)
    truncated = batch(tree, mixed_events(3))[:-12]
    cases = {
        b"": "truncated",
        b"garbage, not a batch": "not gzip",
        _gzip(b"\xc1\xc1 not msgpack"): "not msgpack",
        _gzip(msgspec.msgpack.encode([1, 2, 3])): "invalid batch",
        _gzip(msgspec.msgpack.encode(no_events)): "invalid batch",
        _gzip(msgspec.msgpack.encode(unknown_field)): "colour",
        _gzip(msgspec.msgpack.encode(bad_kind)): "kind",
        _gzip(msgspec.msgpack.encode(too_many)): "invalid batch",
        bomb: "inflates beyond",
        truncated: "truncated",
        b"\x1f\x8b" + b"x" * (telemetry.MAX_COMPRESSED_BYTES - 1): "exceeds",
    }
    for body, reason in cases.items():
        response = await post(client, token, body)
        assert response.status_code == 422, (reason, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert reason in response.json()["detail"], response.json()
    far_too_large = await post(client, token, b"x" * (BODY_LIMIT + 1))
    assert far_too_large.status_code == 413
    assert await stored_ids(settings, tree.tenant_id) == []


async def test_a_full_size_batch_is_not_cut_by_the_body_limit(
    client: httpx.AsyncClient, settings: Settings, tree: Tree, token: str
) -> None:
    """The largest batch the contract allows, with bulky (incompressible) data, goes in."""
    rng = random.Random(5)
    events = mixed_events(telemetry.MAX_EVENTS)
    for e in events:
        e.data = {**e.data, "noise": rng.randbytes(300).hex()}
    body = batch(tree, events)
    assert settings.max_body_bytes < len(body) <= telemetry.MAX_COMPRESSED_BYTES
    assert (await post_ok(client, token, tree, events))["accepted"] == telemetry.MAX_EVENTS


async def test_callers_other_than_the_runtime_are_refused(
    client: httpx.AsyncClient, world: World, tree: Tree
) -> None:
    body = batch(tree, mixed_events(2))
    anonymous = await client.post(URL, content=body, headers=HEADERS)
    assert anonymous.status_code == 401
    for user_token in (
        tree.tenant_token,
        tree.partner_token,
        await world.token(Grant(Role.PLATFORM_ADMIN)),
    ):
        refused = await post(client, user_token, body)
        assert refused.status_code == 403, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")


async def test_the_runtime_client_credentials_flow_posts(
    client: httpx.AsyncClient, world: World, tree: Tree
) -> None:
    """End to end: a tenant_runtime API client exchanges its secret for a token."""
    from control_plane.identity import schemas as ids
    from control_plane.identity import service as identity

    async def make(c: object) -> tuple[str, str]:
        made, _, secret = await identity.create_client(
            c,  # type: ignore[arg-type]
            ids.ClientCreate(
                name="runtime",
                grants=[ids.GrantSpec(role=Role.TENANT_RUNTIME, tenant_id=tree.tenant_id)],
            ),
        )
        return made.client_id, secret

    client_id, secret = await world.run(make)
    answer = await client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
    )
    assert answer.status_code == 200, answer.text
    token = answer.json()["access_token"]
    assert (await post_ok(client, token, tree, mixed_events(3)))["accepted"] == 3


async def test_random_duplicates_and_reorderings_count_each_event_once(
    client: httpx.AsyncClient, tree: Tree, token: str
) -> None:
    """Property: whatever the batching, repetition and order, the rollups equal the
    rollups of the distinct events."""
    rng = random.Random(20261202)
    pool = mixed_events(400)
    sent: set[object] = set()
    accepted = 0
    for _ in range(25):
        size = rng.randint(1, 60)
        chosen = [rng.choice(pool) for _ in range(size)]
        if sent and rng.random() < 0.5:  # resend part of what already went
            chosen += rng.sample([e for e in pool if e.id in sent], k=min(10, len(sent)))
        rng.shuffle(chosen)
        result = await post_ok(client, token, tree, chosen)
        new = {e.id for e in chosen} - sent
        assert result == {"accepted": len(new), "duplicates": len(chosen) - len(new)}
        sent |= new
        accepted += result["accepted"]
    distinct = [e for e in pool if e.id in sent]
    assert accepted == len(distinct)
    buckets = await rollups(client, tree.tenant_token, tree)
    kinds = Counter(e.kind for e in distinct)
    finished = [e for e in distinct if e.kind is Kind.RUN_FINISHED]
    assert totals(buckets, "events", "runs_started", "runs_finished", "sla_breaches") == {
        "events": len(distinct),
        "runs_started": kinds[Kind.RUN_STARTED],
        "runs_finished": kinds[Kind.RUN_FINISHED],
        "sla_breaches": kinds[Kind.TASK_BREACHED],
    }
    assert sum(b["run_duration"]["sum_ms"] for b in buckets) == sum(
        e.duration_ms or 0 for e in finished
    )
    usage = sum(b["usage"].get("api_calls", 0) for b in buckets)
    assert usage == 3 * kinds[Kind.USAGE]
    per_template = Counter(e.template_id for e in distinct)
    got = Counter()
    for b in buckets:
        got[b["template_id"]] += b["events"]
    assert got == per_template


async def test_concurrent_overlapping_batches_count_exactly(
    client: httpx.AsyncClient, settings: Settings, world: World
) -> None:
    """Four batches posted at once, overlapping pairwise, on the same buckets: each event
    is stored and counted once, and no rollup update is lost."""
    for round_ in range(3):
        tree = await world.tree()
        token = await runtime_token(world, tree)
        pool = mixed_events(800, seed=round_)
        slices = [pool[0:400], pool[200:600], pool[400:800], pool[100:700]]
        results = await asyncio.gather(*(post_ok(client, token, tree, s) for s in slices))
        assert sum(r["accepted"] for r in results) == 800
        assert sum(r["duplicates"] for r in results) == sum(len(s) for s in slices) - 800
        assert len(await stored_ids(settings, tree.tenant_id)) == 800
        five = await rollups(client, tree.tenant_token, tree)
        hour = await rollups(client, tree.tenant_token, tree, granularity="1h")
        kinds = Counter(e.kind for e in pool)
        for buckets in (five, hour):
            assert totals(buckets, "events", "runs_started", "steps_finished") == {
                "events": 800,
                "runs_started": kinds[Kind.RUN_STARTED],
                "steps_finished": kinds[Kind.STEP_FINISHED],
            }


async def test_templates_filter_and_window(
    client: httpx.AsyncClient, tree: Tree, token: str
) -> None:
    now = datetime.now(UTC)
    old = now - timedelta(hours=30)
    await post_ok(
        client,
        token,
        tree,
        [
            event(Kind.RUN_STARTED, now - timedelta(minutes=1), template_id=TEMPLATES[0]),
            event(Kind.RUN_STARTED, now - timedelta(minutes=1), template_id=TEMPLATES[1]),
            event(Kind.RUN_STARTED, old, template_id=TEMPLATES[0]),
        ],
    )
    recent = await rollups(client, tree.tenant_token, tree)
    assert totals(recent, "runs_started")["runs_started"] == 2
    only = await rollups(client, tree.tenant_token, tree, template_id=TEMPLATES[0])
    assert {b["template_id"] for b in only} == {TEMPLATES[0]}
    wide = await rollups(
        client,
        tree.tenant_token,
        tree,
        granularity="1h",
        **{"from": (now - timedelta(days=2)).isoformat(), "to": now.isoformat()},
    )
    assert totals(wide, "runs_started")["runs_started"] == 3


async def test_a_nul_character_is_a_422_not_a_server_error(
    client: httpx.AsyncClient, settings: Settings, tree: Tree, token: str
) -> None:
    """PostgreSQL text cannot hold NUL: such a batch is refused for good (a 5xx would have
    the runtime resend it forever)."""
    for bad in (
        event(Kind.RUN_STARTED, template_id="t", store="S-1\x00"),
        event(Kind.USAGE, data={"api_calls": 1, "note": "a\x00b"}),
    ):
        response = await post(client, token, batch(tree, [*mixed_events(3), bad]))
        assert response.status_code == 422, response.text
        assert "NUL" in response.json()["detail"]
    assert await stored_ids(settings, tree.tenant_id) == []
