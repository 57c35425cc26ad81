"""Fleet rollouts end to end: the control plane, its job worker, four tenant runtimes and
the sandbox as real processes on PostgreSQL and Redis, with steady traffic on every
retailer.

A good version reaches every tenant in waves (canary, 10 %, the rest), each wave confirmed
by the runtimes and gated on their telemetry. Then a version whose call step the sandbox
refuses is rolled back automatically after the canary; the other tenants never receive it
(their desired state never names it and their runtimes never start a run on it). The
timings are printed (run with ``-s``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from tests import conftest
from tests.conftest import PG_HOST, PG_PORT, PG_SUPERUSER, _admin_exec
from tests.e2e import test_fleet_link as link
from tests.e2e.test_fleet_link import (
    Procs,
    Runtime,
    auth,
    cli,
    free_port,
    login,
    msp_control_plane,
    pg,
    until,
)

TEMPLATE = "e2e-rollout"
FLOW = """
id: e2e-rollout
name: E2E rollout
version: {version}
category: inventory
owner: platform
summary: Validate a transfer.
connectors:
  erp: {{system: erp, operations: [validate_transfer, {operation}]}}
triggers: [{{kind: api}}]
steps:
  - id: validate
    kind: call
    connector: erp
    operation: {operation}
    input: {{sku: input.sku, quantity: "1", from_location: "'DC-SOUTH'", to_store: input.store}}
    retry: {{attempts: 1, initial: 1s, max: 1s}}
"""
#: 1.2.0 calls an operation the sandbox's ERP does not have: every run of it fails.
VERSIONS = {"1.0.0": "validate_transfer", "1.1.0": "validate_transfer", "1.2.0": "explode"}
SHOPS = 4
#: A Redis database of its own: other suites' flushes of theirs leave these runtimes alone.
REDIS_URL = conftest.REDIS_URL.rsplit("/", 1)[0] + "/11"
GATES = {
    "min_runs": 5,
    "max_failure_rate_increase": 0.2,
    "max_breach_rate_increase": 0.2,
    "max_silence_seconds": 20,
}


async def runtime_versions(rt: Runtime) -> dict[str, int]:
    """Runs the runtime started, per template version."""
    conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_SUPERUSER, database=rt.db)
    try:
        rows = await conn.fetch(
            "SELECT template_version, count(*) AS n FROM runs GROUP BY template_version"
        )
        return {r["template_version"]: r["n"] for r in rows}
    finally:
        await conn.close()


async def runtime_timeline(rt: Runtime) -> list[tuple[str, int, str]]:
    """Runs per version with the first and last start (printed on failure)."""
    conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_SUPERUSER, database=rt.db)
    try:
        rows = await conn.fetch(
            "SELECT template_version, count(*) AS n, min(created_at) AS a, max(created_at) AS b "
            "FROM runs GROUP BY template_version"
        )
        return [(r["template_version"], r["n"], f"{r['a']:%T}-{r['b']:%T}") for r in rows]
    finally:
        await conn.close()


async def stored_events(cp_db: str) -> list[tuple[str, str, str | None, int, str]]:
    """What the control plane ingested per tenant, kind and version, with the last event's
    time (printed on failure)."""
    conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_SUPERUSER, database=cp_db)
    try:
        rows = await conn.fetch(
            "SELECT t.slug, e.kind, e.template_version, count(*) AS n, max(e.at) AS last "
            "FROM telemetry_events e JOIN tenants t ON t.id = e.tenant_id "
            "WHERE e.kind IN ('heartbeat', 'run.finished') GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
        )
        return [
            (r["slug"], r["kind"], r["template_version"], r["n"], f"{r['last']:%T}") for r in rows
        ]
    finally:
        await conn.close()


async def test_rollout_in_waves_and_automatic_rollback(
    procs: Procs, databases: list[str], tmp_path: Path
) -> None:
    clock = time.monotonic()
    cp = await msp_control_plane(
        databases,
        tmp_path,
        TEMPLATE,
        {v: FLOW.format(version=v, operation=op) for v, op in VERSIONS.items()},
        STOREOPS_JOBS_INLINE="false",
    )
    tag, cp_db, cp_url, cp_env, sandbox_port = cp.tag, cp.db, cp.url, cp.env, cp.sandbox_port
    partner_id = cp.partner_id

    async def onboard(i: int) -> Runtime:
        """One retailer (the storeops commands run side by side, in threads)."""
        out = await asyncio.to_thread(
            cli, "tenant", "onboard", "--partner", "e2e", "--slug", f"shop{i}",
            "--name", f"Shop {i}", "--timezone", "Europe/Paris", env=cp_env,
        )  # fmt: skip
        tenant_id = next(w for w in out.split() if w.count("-") == 4 and len(w) == 36)
        await asyncio.to_thread(cli, "tenant", "activate", tenant_id, env=cp_env)
        await asyncio.to_thread(
            cli, "user", "create", "--email", f"admin@shop{i}.example", "--name", f"Admin {i}",
            "--role", "retailer_admin", "--at", f"tenant:{tenant_id}", "--password-stdin",
            env=cp_env, stdin=link.PASSWORD,
        )  # fmt: skip
        db = f"storeops_e2e_{tag}_rt{i}"
        await _admin_exec(f'CREATE DATABASE "{db}"')
        databases.append(db)
        rt = Runtime(
            f"shop{i}", tenant_id, f"http://127.0.0.1:{free_port()}", db, tmp_path / f"rt{i}"
        )
        rt.token = out.rsplit("token", 1)[1].split()[-1]
        return rt

    # The first onboarding makes the local secret store's key; the others run side by side.
    first = await onboard(1)
    runtimes = [first, *await asyncio.gather(*(onboard(i) for i in range(2, SHOPS + 1)))]
    print(
        f"\n[rollout e2e] control plane set up with {SHOPS} tenants: {time.monotonic() - clock:.1f} s"
    )
    procs.start("control-plane", "serve", env=cp_env)
    procs.start("jobs", "worker", env=cp_env)
    procs.start("sandbox", "sandbox", "--port", str(sandbox_port), env={})
    async with httpx.AsyncClient(timeout=30) as http:
        await until("the control plane", lambda: link._ok(http, f"{cp_url}/readyz"))
        await until("the sandbox", lambda: link._ok(http, f"http://127.0.0.1:{sandbox_port}/"))

        async def boot(rt: Runtime) -> None:
            env = {
                "STOREOPS_RUNTIME_TENANT_ID": rt.tenant_id,
                "STOREOPS_RUNTIME_HOME": str(rt.home),
                "STOREOPS_RUNTIME_DATABASE_URL": pg(PG_SUPERUSER, rt.db),
                "STOREOPS_RUNTIME_REDIS_URL": REDIS_URL,
                "STOREOPS_RUNTIME_CONTROL_PLANE_URL": cp_url,
                "STOREOPS_RUNTIME_SWEEP_SECONDS": "0.3",
                "STOREOPS_RUNTIME_HEARTBEAT_SECONDS": "1",
            }
            await asyncio.to_thread(cli, "runtime", "db-upgrade", env=env)
            port = rt.url.rsplit(":", 1)[1]
            procs.start(
                f"{rt.slug}-serve", "runtime", "serve", "--port", port,
                "--bootstrap-token", rt.token, env=env,
            )  # fmt: skip
            # Ready means bootstrapped: the worker reads the credentials serve just wrote.
            await until(f"{rt.slug} serve", lambda: link._ok(http, f"{rt.url}/readyz"))
            procs.start(f"{rt.slug}-worker", "runtime", "worker", "--name", rt.slug, env=env)
            rt.token = await login(http, cp_url, rt.slug)

        await asyncio.gather(*(boot(rt) for rt in runtimes))
        print(f"[rollout e2e] processes up: {time.monotonic() - clock:.1f} s")
        try:
            msp = await login(http, cp_url, "e2e")
            await scenario(http, cp_url, sandbox_port, runtimes, msp, partner_id)
        except BaseException:
            print(procs.tail())
            for row in await stored_events(cp_db):
                print("stored:", *row)
            for rt in runtimes:
                print(rt.slug, "runs:", await runtime_timeline(rt))
            raise


async def scenario(
    http: httpx.AsyncClient,
    cp_url: str,
    sandbox_port: int,
    runtimes: list[Runtime],
    msp: str,
    partner_id: str,
) -> None:
    erp = {"base_url": f"http://127.0.0.1:{sandbox_port}/erp", "auth": {"type": "none"}}
    for rt in runtimes:
        made = await http.post(
            f"{cp_url}/api/v1/tenants/{rt.tenant_id}/deployments",
            json={"template_id": TEMPLATE, "version": "1.0.0", "bindings": {"erp": erp}},
            headers=auth(msp),
        )
        assert made.status_code == 201, made.text

    async def applied(rt: Runtime, version: str) -> bool:
        answer = await http.get(
            f"{cp_url}/api/v1/tenants/{rt.tenant_id}/desired-vs-reported", headers=auth(msp)
        )
        items = answer.json()["deployments"]
        return bool(items) and all(
            not d["drift"] and d["version"] == version and d["reported"]["status"] == "applied"
            for d in items
        )

    for rt in runtimes:
        await until(f"{rt.slug} applies 1.0.0", lambda rt=rt: applied(rt, "1.0.0"))
    print("[rollout e2e] 1.0.0 deployed and applied everywhere")

    stop = asyncio.Event()

    async def traffic(rt: Runtime) -> None:
        """Steady runs on every retailer, as its systems would start them."""
        i = 0
        while not stop.is_set():
            i += 1
            with contextlib.suppress(httpx.HTTPError):
                await http.post(
                    f"{rt.url}/api/v1/runs",
                    json={"template_id": TEMPLATE, "input": {"sku": f"SKU-{i}", "store": "S-1"}},
                    headers=auth(rt.token),
                )
            await asyncio.sleep(0.25)

    load = [asyncio.create_task(traffic(rt)) for rt in runtimes]
    try:
        await good_rollout(http, cp_url, runtimes, msp, partner_id, applied)
        await bad_rollout(http, cp_url, runtimes, msp, partner_id, applied)
    finally:
        stop.set()
        await asyncio.gather(*load, return_exceptions=True)


async def wait_for(
    http: httpx.AsyncClient, cp_url: str, msp: str, rollout_id: str, states: set[str], within: float
) -> dict[str, Any]:
    last: dict[str, Any] = {}

    async def ended() -> dict[str, Any] | None:
        got = await http.get(f"{cp_url}/api/v1/rollouts/{rollout_id}", headers=auth(msp))
        last.update(got.json())
        return last if last["status"] in states else None

    try:
        result: dict[str, Any] = await until(f"rollout {states}", ended, within=within, every=0.5)
    except AssertionError:
        print("rollout at the timeout:", last)
        raise
    return result


async def good_rollout(
    http: httpx.AsyncClient,
    cp_url: str,
    runtimes: list[Runtime],
    msp: str,
    partner_id: str,
    applied: Any,
) -> None:
    started = time.monotonic()
    made = await http.post(
        f"{cp_url}/api/v1/rollouts",
        json={
            "template_id": TEMPLATE,
            "version": "1.1.0",
            "partner_id": partner_id,
            "canary": runtimes[0].tenant_id,
            "soak_seconds": 3,
            "apply_timeout_seconds": 60,
            "gates": GATES,
        },
        headers=auth(msp),
    )
    assert made.status_code == 201, made.text
    done = await wait_for(http, cp_url, msp, made.json()["id"], {"completed", "rolled_back"}, 150)
    elapsed = time.monotonic() - started
    assert done["status"] == "completed", done["reason"]
    # Canary, then 10 % (one tenant), then the rest, in that order.
    waves = [[t["slug"] for t in w["tenants"]] for w in done["waves"]]
    assert waves == [["shop1"], ["shop2"], ["shop3", "shop4"]], waves
    assert [w["state"] for w in done["waves"]] == ["passed"] * 3
    for wave in done["waves"]:
        assert wave["gate"]["verdict"] == "pass"
        assert wave["gate"]["new"]["runs"] >= GATES["min_runs"]
        assert wave["gate"]["new"]["failed"] == 0
    starts = [(e["wave"], e["at"]) for e in done["events"] if e["kind"] == "wave_started"]
    assert [w for w, _ in starts] == [0, 1, 2]
    assert [at for _, at in starts] == sorted(at for _, at in starts)
    for rt in runtimes:
        await until(f"{rt.slug} applies 1.1.0", lambda rt=rt: applied(rt, "1.1.0"))
        assert (await runtime_versions(rt)).get("1.1.0", 0) > 0
    print(f"\n[rollout e2e] good rollout 1.0.0 -> 1.1.0 over {SHOPS} tenants in 3 waves "
          f"(soak 3 s, job every 5 s): {elapsed:.1f} s to complete")  # fmt: skip


async def bad_rollout(
    http: httpx.AsyncClient,
    cp_url: str,
    runtimes: list[Runtime],
    msp: str,
    partner_id: str,
    applied: Any,
) -> None:
    canary, others = runtimes[1], [runtimes[0], *runtimes[2:]]
    started = time.monotonic()
    made = await http.post(
        f"{cp_url}/api/v1/rollouts",
        json={
            "template_id": TEMPLATE,
            "version": "1.2.0",
            "partner_id": partner_id,
            "canary": canary.tenant_id,
            "soak_seconds": 30,
            "apply_timeout_seconds": 60,
            "gates": GATES,
        },
        headers=auth(msp),
    )
    assert made.status_code == 201, made.text
    rollout_id = made.json()["id"]
    seen_by_others: set[str] = set()

    async def ended() -> dict[str, Any] | None:
        for rt in others:  # watch the others' desired state the whole time
            answer = await http.get(
                f"{cp_url}/api/v1/tenants/{rt.tenant_id}/desired-vs-reported", headers=auth(msp)
            )
            seen_by_others.update(d["version"] for d in answer.json()["deployments"])
        got = await http.get(f"{cp_url}/api/v1/rollouts/{rollout_id}", headers=auth(msp))
        body: dict[str, Any] = got.json()
        return body if body["status"] in {"rolled_back", "completed", "paused"} else None

    done: dict[str, Any] = await until("the rollback", ended, within=120, every=0.5)
    rolled_back = time.monotonic()
    assert done["status"] == "rolled_back", done["reason"]
    assert "failure rate" in done["reason"], done["reason"]
    assert done["current_wave"] == 0
    assert [w["state"] for w in done["waves"]] == ["failed", "waiting", "waiting"]
    assert done["waves"][0]["tenants"][0]["state"] == "rolled_back"
    assert all(t["state"] == "waiting" for w in done["waves"][1:] for t in w["tenants"])
    kinds = [e["kind"] for e in done["events"]]
    assert kinds == ["wave_started", "wave_applied", "paused", "rolled_back"], kinds
    canary_at = next(e["at"] for e in done["events"] if e["kind"] == "wave_applied")
    back_at = next(e["at"] for e in done["events"] if e["kind"] == "rolled_back")
    await until("the canary back on 1.1.0", lambda: applied(canary, "1.1.0"))
    restored = time.monotonic()
    # The canary really ran the bad version; nobody else ever received it.
    assert (await runtime_versions(canary)).get("1.2.0", 0) >= GATES["min_runs"]
    assert seen_by_others == {"1.1.0"}, seen_by_others
    for rt in others:
        assert "1.2.0" not in await runtime_versions(rt)
        assert await applied(rt, "1.1.0")
    server = (datetime.fromisoformat(back_at) - datetime.fromisoformat(canary_at)).total_seconds()
    print(
        f"[rollout e2e] bad version 1.2.0: canary confirmed at {canary_at}, rolled back at "
        f"{back_at} ({server:.1f} s from canary applied to rollback decision); "
        f"{rolled_back - started:.1f} s from start to rolled_back, "
        f"{restored - started:.1f} s until the canary's runtime confirmed 1.1.0 again"
    )
