"""The process entry point: ``storeops runtime serve`` answers, and in embedded mode the
app's lifespan runs the runtime's in-process pump."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from uuid import uuid4

import httpx
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from tenant_runtime.config import RuntimeSettings
from tenant_runtime.db.migrate import upgrade
from tenant_runtime.db.schema import outbox
from tenant_runtime.runtime import Runtime
from tests.runtime.api.conftest import TENANT, Tokens, bearer, directory, make_app

STORE_OPS = str(Path(sys.executable).with_name("storeops"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def runtime_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STOREOPS_RUNTIME_")}
    env |= {"STOREOPS_RUNTIME_TENANT_ID": str(uuid4()), "STOREOPS_RUNTIME_HOME": str(home)}
    return env | extra


def test_runtime_serve_answers_and_stops_on_sigterm(tmp_path: Path) -> None:
    # A fresh home: the embedded SQLite database is created and migrated on start.
    env = runtime_env(tmp_path / "home", STOREOPS_RUNTIME_CONTROL_PLANE_URL="http://127.0.0.1:9")
    port = free_port()
    server = subprocess.Popen(
        [STORE_OPS, "runtime", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                ready = httpx.get(f"{base}/readyz", timeout=1)
                break
            except httpx.TransportError:
                assert server.poll() is None, server.stdout.read() if server.stdout else ""
                assert time.monotonic() < deadline, "the runtime did not come up in 20 s"
                time.sleep(0.1)
        assert ready.status_code == 200 and ready.json()["checks"]["database"] == "ok"
        assert httpx.get(f"{base}/healthz").json() == {"status": "ok"}
        assert httpx.get(f"{base}/api/v1/tasks").status_code == 401
        assert httpx.get(f"{base}/portal").status_code == 200
    finally:
        server.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then re-raises the signal it caught.
        assert server.wait(timeout=20) in (0, -signal.SIGTERM)
    output = server.stdout.read().decode() if server.stdout else ""
    assert "Application shutdown complete" in output, output


def test_runtime_serve_needs_the_control_plane_url(tmp_path: Path) -> None:
    done = subprocess.run(
        [STORE_OPS, "runtime", "serve"], env=runtime_env(tmp_path), capture_output=True, text=True
    )
    assert done.returncode == 1
    assert "STOREOPS_RUNTIME_CONTROL_PLANE_URL" in done.stderr


async def test_embedded_mode_runs_steps_in_the_background(tmp_path: Path, tokens: Tokens) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'runtime.db'}"
    await asyncio.to_thread(upgrade, url)
    runtime = Runtime(
        RuntimeSettings(tenant_id=TENANT, home=tmp_path, database_url=url, sweep_seconds=0.05),
        directory=directory(),
    )
    try:
        async with AsyncTestClient(app=make_app(runtime, background=None)) as client:
            res = await client.post(
                "/api/v1/runs",
                json={"template_id": "markdown-approval", "input": {"sku": "BG-1"}, "store": "S-A"},
                headers=bearer(tokens.admin),
            )
            assert res.status_code == 201, res.text
            for _ in range(100):  # nobody pumps here: the lifespan's task does
                inbox = (await client.get("/api/v1/tasks", headers=bearer(tokens.manager_a))).json()
                if inbox["items"]:
                    break
                await asyncio.sleep(0.05)
            assert [t["title"] for t in inbox["items"]] == ["Approve markdown of BG-1"]
    finally:
        await runtime.close()


async def test_api_calls_are_metered_and_reported_as_usage(
    client: httpx.AsyncClient, runtime: Runtime, tokens: Tokens
) -> None:
    runtime.usage.clear()
    for _ in range(3):
        await client.get("/api/v1/tasks", headers=bearer(tokens.admin))
    await client.get("/healthz")
    assert runtime.usage["api_calls"] == 3
    await runtime.flush_usage()
    assert not runtime.usage
    async with runtime.db.connect() as conn:
        rows = (
            await conn.execute(select(outbox.c.payload).where(outbox.c.topic == "telemetry"))
        ).all()
    usage = [e for r in rows for e in r.payload if e["kind"] == "usage"]
    assert usage[-1]["data"]["api_calls"] == 3
