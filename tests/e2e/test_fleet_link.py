"""The control plane and two tenant runtimes as real processes on PostgreSQL and Redis.

Onboard two retailers, bootstrap their runtimes with the one-time tokens, deploy a
template, run workflows that wait for a person, move the deployment to a new version while
those runs are in flight (they finish on the old one, new runs take the new one), then stop
the control plane during traffic and restart it: the telemetry it ingests afterwards equals
each runtime's own counts exactly.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from tests.conftest import PG_HOST, PG_PORT, PG_SUPERUSER, REDIS_URL, _admin_exec

BIN = str(Path(sys.executable).parent / "storeops")
PASSWORD = "e2e-" + secrets.token_hex(8)
FLOW = """
id: e2e-transfer
name: E2E transfer with approval
version: {version}
category: inventory
owner: platform
summary: Validate a transfer, wait for approval, create the order.
connectors:
  erp: {{system: erp, operations: [validate_transfer, create_transfer_order]}}
triggers: [{{kind: api}}]
steps:
  - id: validate
    kind: call
    connector: erp
    operation: validate_transfer
    input: {{sku: input.sku, quantity: "1", from_location: "'DC-SOUTH'", to_store: input.store}}
    retry: {{attempts: 6, initial: 1s, max: 2s}}
    next: review
  - id: review
    kind: approval
    assignee: {{role: retailer_admin, scope: tenant}}
    title: "'Transfer {version} of ' + input.sku"
    outcomes: {{approved: create, rejected: end}}
  - id: create
    kind: call
    connector: erp
    operation: create_transfer_order
    input: {{sku: input.sku, quantity: "1", to_store: input.store, reference: run.id}}
    retry: {{attempts: 6, initial: 1s, max: 2s}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pg(user: str, db: str) -> str:
    return f"postgresql+asyncpg://{user}@{PG_HOST}:{PG_PORT}/{db}"


@dataclass
class Procs:
    logs: Path
    running: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, name: str, *args: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
        out = (self.logs / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            [BIN, *args], env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT
        )
        self.running[name] = proc
        return proc

    def stop(self, name: str) -> None:
        proc = self.running.pop(name)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    def stop_all(self) -> None:
        for name in list(self.running):
            self.stop(name)

    def tail(self) -> str:
        return "\n".join(
            f"--- {p.name}\n" + p.read_text()[-1500:] for p in sorted(self.logs.glob("*.log"))
        )


def cli(*args: str, env: dict[str, str], stdin: str | None = None) -> str:
    done = subprocess.run(
        [BIN, *args],
        env={**os.environ, **env},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"storeops {' '.join(args)}: {done.stdout}{done.stderr}"
    return done.stdout


async def until(what: str, check: Any, within: float = 60.0, every: float = 0.3) -> Any:
    deadline = time.monotonic() + within
    while True:
        try:
            found = await check()
        except (httpx.HTTPError, OSError):
            found = None
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(every)


@dataclass
class Runtime:
    slug: str
    tenant_id: str
    url: str
    db: str
    home: Path
    token: str = ""


async def runtime_counts(runtime: Runtime) -> dict[str, int]:
    conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_SUPERUSER, database=runtime.db)
    try:
        runs = await conn.fetchval("SELECT count(*) FROM runs")
        finished = await conn.fetchval("SELECT count(*) FROM runs WHERE status <> 'running'")
        steps = await conn.fetchval(
            "SELECT count(*) FROM steps WHERE status IN ('succeeded', 'failed', 'dead')"
        )
        unsent = await conn.fetchval(
            "SELECT count(*) FROM outbox WHERE topic = 'telemetry' AND sent_at IS NULL"
        )
        return {"runs": runs, "finished": finished, "steps": steps, "unsent": unsent}
    finally:
        await conn.close()


async def step_states(runtime: Runtime) -> list[tuple[str, str, int]]:
    conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_SUPERUSER, database=runtime.db)
    try:
        rows = await conn.fetch(
            "SELECT step_id, status, count(*) AS n FROM steps GROUP BY step_id, status"
        )
        return [(r["step_id"], r["status"], r["n"]) for r in rows]
    finally:
        await conn.close()


async def letters(runtime: Runtime) -> list[str]:
    conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_SUPERUSER, database=runtime.db)
    try:
        return [r["reason"] for r in await conn.fetch("SELECT reason FROM dead_letters")]
    finally:
        await conn.close()


@dataclass
class ControlPlaneSetup:
    """A migrated control-plane database (not yet served) with a published template and
    the partner ``e2e`` whose admin is ``admin@e2e.example``."""

    tag: str
    db: str
    url: str
    partner_id: str
    env: dict[str, str]
    sandbox_port: int


async def msp_control_plane(
    databases: list[str],
    tmp_path: Path,
    template: str,
    versions: dict[str, str],
    **extra_env: str,
) -> ControlPlaneSetup:
    """``versions``: version -> the template's YAML."""
    tag = secrets.token_hex(4)
    cp_db = f"storeops_e2e_{tag}"
    await _admin_exec(f'CREATE DATABASE "{cp_db}"')
    databases.append(cp_db)
    cp_port, sandbox_port = free_port(), free_port()
    cp_url = f"http://127.0.0.1:{cp_port}"
    cp_env = {
        "STOREOPS_HOME": str(tmp_path / "cp"),
        "STOREOPS_DATABASE_URL": pg("storeops_app", cp_db),
        "STOREOPS_ADMIN_DATABASE_URL": pg(PG_SUPERUSER, cp_db),
        "STOREOPS_PUBLIC_URL": cp_url,
        "STOREOPS_PORT": str(cp_port),
        "STOREOPS_DESIRED_STATE_POLL_MS": "200",
        **extra_env,
    }
    cli("db", "upgrade", env=cp_env)
    library = tmp_path / "library" / template
    library.mkdir(parents=True)
    for version, text in versions.items():
        (library / f"{version}.yaml").write_text(text)
    cli("catalog", "publish", str(library.parent), env=cp_env)
    out = cli(
        "partner", "create", "--slug", "e2e", "--name", "E2E MSP", "--kind", "msp", env=cp_env
    )
    partner_id = out.split()[-1]
    cli(
        "user", "create", "--email", "admin@e2e.example", "--name", "MSP admin",
        "--role", "partner_admin", "--at", f"partner:{partner_id}", "--password-stdin",
        env=cp_env, stdin=PASSWORD,
    )  # fmt: skip
    return ControlPlaneSetup(tag, cp_db, cp_url, partner_id, cp_env, sandbox_port)


async def test_two_runtimes_bootstrap_deploy_upgrade_and_survive_an_outage(
    procs: Procs, databases: list[str], tmp_path: Path
) -> None:
    cp = await msp_control_plane(
        databases,
        tmp_path,
        "e2e-transfer",
        {version: FLOW.format(version=version) for version in ("1.0.0", "1.1.0")},
    )
    tag, cp_url, cp_env, sandbox_port = cp.tag, cp.url, cp.env, cp.sandbox_port
    runtimes: list[Runtime] = []
    for i in (1, 2):
        out = cli(
            "tenant", "onboard", "--partner", "e2e", "--slug", f"shop{i}", "--name", f"Shop {i}",
            "--timezone", "Europe/Paris", env=cp_env,
        )  # fmt: skip
        tenant_id = next(w for w in out.split() if w.count("-") == 4 and len(w) == 36)
        boot = out.rsplit("token", 1)[1].split()[-1]
        cli("tenant", "activate", tenant_id, env=cp_env)
        cli(
            "user", "create", "--email", f"admin@shop{i}.example", "--name", f"Admin {i}",
            "--role", "retailer_admin", "--at", f"tenant:{tenant_id}", "--password-stdin",
            env=cp_env, stdin=PASSWORD,
        )  # fmt: skip
        db = f"storeops_e2e_{tag}_rt{i}"
        await _admin_exec(f'CREATE DATABASE "{db}"')
        databases.append(db)
        runtimes.append(
            Runtime(
                f"shop{i}", tenant_id, f"http://127.0.0.1:{free_port()}", db, tmp_path / f"rt{i}"
            )
        )
        runtimes[-1].token = boot
    procs.start("control-plane", "serve", env=cp_env)
    procs.start("sandbox", "sandbox", "--port", str(sandbox_port), env={})
    async with httpx.AsyncClient(timeout=30) as http:
        await until("the control plane", lambda: _ok(http, f"{cp_url}/readyz"))
        await until("the sandbox", lambda: _ok(http, f"http://127.0.0.1:{sandbox_port}/"))
        for rt in runtimes:
            env = {
                "STOREOPS_RUNTIME_TENANT_ID": rt.tenant_id,
                "STOREOPS_RUNTIME_HOME": str(rt.home),
                "STOREOPS_RUNTIME_DATABASE_URL": pg(PG_SUPERUSER, rt.db),
                "STOREOPS_RUNTIME_REDIS_URL": REDIS_URL,
                "STOREOPS_RUNTIME_CONTROL_PLANE_URL": cp_url,
                "STOREOPS_RUNTIME_SWEEP_SECONDS": "0.3",
                "STOREOPS_RUNTIME_HEARTBEAT_SECONDS": "2",
            }
            cli("runtime", "db-upgrade", env=env)
            port = rt.url.rsplit(":", 1)[1]
            procs.start(
                f"{rt.slug}-serve", "runtime", "serve", "--port", port,
                "--bootstrap-token", rt.token, env=env,
            )  # fmt: skip
            await until(f"{rt.slug} serve", lambda rt=rt: _ok(http, f"{rt.url}/readyz"))
            procs.start(f"{rt.slug}-worker", "runtime", "worker", "--name", rt.slug, env=env)
            # A reused bootstrap token is refused.
            again = await http.post(f"{cp_url}/runtime/v1/bootstrap", json={"token": rt.token})
            assert again.status_code == 409, again.text
            rt.token = await login(http, cp_url, rt.slug)

        try:
            msp = await login(http, cp_url, "e2e")
            await scenario(http, cp_url, cp_env, sandbox_port, runtimes, procs, msp)
        except BaseException:
            print(procs.tail())
            for rt in runtimes:
                print(rt.slug, await runtime_counts(rt), await step_states(rt), await letters(rt))
            raise


async def _ok(http: httpx.AsyncClient, url: str) -> bool:
    return (await http.get(url)).status_code == 200


async def login(http: httpx.AsyncClient, cp_url: str, slug: str) -> str:
    answer = await http.post(
        f"{cp_url}/api/v1/auth/login", json={"email": f"admin@{slug}.example", "password": PASSWORD}
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def scenario(
    http: httpx.AsyncClient,
    cp_url: str,
    cp_env: dict[str, str],
    sandbox_port: int,
    runtimes: list[Runtime],
    procs: Procs,
    msp: str,
) -> None:
    """``msp``: the partner admin's token (deploys); each runtime's token: its retailer admin."""
    erp = {"base_url": f"http://127.0.0.1:{sandbox_port}/erp", "auth": {"type": "none"}}
    deployments = {}
    for rt in runtimes:
        made = await http.post(
            f"{cp_url}/api/v1/tenants/{rt.tenant_id}/deployments",
            json={"template_id": "e2e-transfer", "version": "1.0.0", "bindings": {"erp": erp}},
            headers=auth(msp),
        )
        assert made.status_code == 201, made.text
        deployments[rt.slug] = made.json()

    async def applied(rt: Runtime, version: str) -> bool:
        answer = await http.get(
            f"{cp_url}/api/v1/tenants/{rt.tenant_id}/desired-vs-reported", headers=auth(rt.token)
        )
        items = answer.json()["deployments"]
        return bool(items) and all(not d["drift"] and d["version"] == version for d in items)

    for rt in runtimes:
        await until(f"{rt.slug} applies 1.0.0", lambda rt=rt: applied(rt, "1.0.0"), within=60)

    async def start(rt: Runtime, n: int) -> list[str]:
        ids = []
        for i in range(n):
            made = await http.post(
                f"{rt.url}/api/v1/runs",
                json={"template_id": "e2e-transfer", "input": {"sku": f"SKU-{i}", "store": "S-1"}},
                headers=auth(rt.token),
            )
            assert made.status_code == 201, made.text
            ids.append(made.json()["id"])
        return ids

    async def open_tasks(rt: Runtime) -> list[dict[str, Any]]:
        answer = await http.get(f"{rt.url}/api/v1/tasks?limit=200", headers=auth(rt.token))
        assert answer.status_code == 200, answer.text
        return list(answer.json()["items"])

    async def decide_all(rt: Runtime) -> int:
        tasks = await open_tasks(rt)
        for task in tasks:
            done = await http.post(
                f"{rt.url}/api/v1/tasks/{task['id']}/decision",
                json={"decision": "approved", "comment": "ok"},
                headers=auth(rt.token),
            )
            assert done.status_code == 200, done.text
        return len(tasks)

    async def run(rt: Runtime, run_id: str) -> dict[str, Any]:
        answer = await http.get(f"{rt.url}/api/v1/runs/{run_id}", headers=auth(rt.token))
        return dict(answer.json())

    # Runs in flight on 1.0.0: they wait for a person.
    old = {rt.slug: await start(rt, 5) for rt in runtimes}
    for rt in runtimes:
        await until(f"{rt.slug} tasks", lambda rt=rt: _count(open_tasks(rt), 5))
    # Move both deployments to 1.1.0 while those runs wait.
    for rt in runtimes:
        at = f"{cp_url}/api/v1/tenants/{rt.tenant_id}/deployments/{deployments[rt.slug]['id']}"
        current = await http.get(at, headers=auth(msp))
        moved = await http.patch(
            at,
            json={"version": "1.1.0"},
            headers={**auth(msp), "If-Match": current.headers["etag"]},
        )
        assert moved.status_code == 200, moved.text
    for rt in runtimes:
        await until(f"{rt.slug} applies 1.1.0", lambda rt=rt: applied(rt, "1.1.0"), within=60)
    new = {rt.slug: await start(rt, 3) for rt in runtimes}
    for rt in runtimes:
        await until(f"{rt.slug} tasks", lambda rt=rt: _count(open_tasks(rt), 8))
        assert await decide_all(rt) == 8

    async def finished(rt: Runtime, ids: list[str]) -> bool:
        statuses = [(await run(rt, i))["status"] for i in ids]
        return all(status == "succeeded" for status in statuses)

    for rt in runtimes:
        await until(
            f"{rt.slug} runs finish", lambda rt=rt: finished(rt, old[rt.slug] + new[rt.slug])
        )
        for run_id in old[rt.slug]:
            assert (await run(rt, run_id))["template_version"] == "1.0.0"
        for run_id in new[rt.slug]:
            assert (await run(rt, run_id))["template_version"] == "1.1.0"

    # Outage: the control plane stops while the retailers keep working.
    procs.stop("control-plane")
    during = {rt.slug: await start(rt, 6) for rt in runtimes}
    for rt in runtimes:
        await until(f"{rt.slug} tasks", lambda rt=rt: _count(open_tasks(rt), 6))
        assert await decide_all(rt) == 6
        await until(f"{rt.slug} runs finish", lambda rt=rt: finished(rt, during[rt.slug]))
        assert (await runtime_counts(rt))["unsent"] > 0  # nothing could leave meanwhile
    await asyncio.sleep(2)
    procs.start("control-plane", "serve", env=cp_env)
    await until("the control plane again", lambda: _ok(http, f"{cp_url}/readyz"))
    for rt in runtimes:
        token = await login(http, cp_url, rt.slug)

        async def ingested(rt: Runtime = rt, token: str = token) -> bool:
            counts = await runtime_counts(rt)
            rolled = await http.get(
                f"{cp_url}/api/v1/tenants/{rt.tenant_id}/telemetry/rollups",
                params={
                    "granularity": "1h",
                    "from": (datetime.now(UTC) - timedelta(days=1)).isoformat(),
                },
                headers=auth(token),
            )
            assert rolled.status_code == 200, rolled.text
            buckets = rolled.json()["buckets"]
            seen = (
                sum(b["runs_started"] for b in buckets),
                sum(b["runs_finished"] for b in buckets),
                sum(b["steps_finished"] for b in buckets),
            )
            return seen == (counts["runs"], counts["finished"], counts["steps"])

        # Everything the runtime did while the control plane was away arrives, once.
        await until(f"{rt.slug} telemetry ingested", ingested, within=90)
        counts = await runtime_counts(rt)
        assert counts["runs"] == counts["finished"] == 14
        assert counts["steps"] == 14 * 3  # validate, review, create
        beat = await http.get(
            f"{cp_url}/api/v1/tenants/{rt.tenant_id}/telemetry/heartbeat", headers=auth(token)
        )
        assert beat.json()["data"]["queue_depth"] == 0
        # Still equal a few heartbeats later: nothing is counted twice.
        await asyncio.sleep(3)
        assert await ingested()


async def _count(tasks: Any, n: int) -> bool:
    return len(await tasks) == n
