"""One trace from the caller's request to the ERP: the runtime API starts a run, a real
Dramatiq message on Redis carries the trace context to a worker, which runs a database-only
step inline and then calls the sandbox ERP, which receives the same trace id."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
import redis
from dramatiq import Worker
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from control_plane.contracts.validate import lint
from tenant_runtime.config import RuntimeSettings
from tenant_runtime.connectors import NoAuth, RestConnector, RetryPolicy
from tenant_runtime.connectors.bindings import BoundConnectors
from tenant_runtime.db.migrate import upgrade
from tenant_runtime.db.schema import runs
from tenant_runtime.engine.directory import Deployment, Directory
from tenant_runtime.engine.dispatch import Dispatcher, tenant_broker
from tenant_runtime.engine.executor import Engine
from tenant_runtime.runtime import Runtime
from tenant_runtime.sandbox import SandboxConfig, create_sandbox_app
from tenant_runtime.secrets import SecretCache
from tests.conftest import _admin_exec
from tests.engine.conftest import _database
from tests.observability.conftest import Otel
from tests.runtime.api.conftest import PARTNER, TENANT, bearer, grant, make_app, mint

#: Its own Redis database, apart from the engine tests' (which flush theirs).
REDIS_URL = "redis://127.0.0.1:6379/12"

TRANSFER = """
id: traced-transfer
name: Traced transfer
version: 1.0.0
category: inventory
owner: platform
summary: Note the request, then validate the transfer in the ERP.
connectors:
  erp: {system: erp, operations: [validate_transfer]}
triggers: [{kind: api}]
steps:
  - id: note
    kind: set
    values: {requested: "true"}
    next: validate
  - id: validate
    kind: call
    connector: erp
    operation: validate_transfer
    input: {sku: input.sku, quantity: input.quantity, from_location: input.from, to_store: input.to}
    retry: {attempts: 1}
"""


class NoSecrets:
    async def get(self, name: str) -> str:
        raise AssertionError(f"no secret expected, asked for {name}")


class HeaderLog:
    """ASGI wrapper in front of the sandbox: the headers of every request it received."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.seen: list[dict[str, str]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.seen.append({k.decode(): v.decode() for k, v in scope["headers"]})
        await self.app(scope, receive, send)


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[str]:
    url, name = await _database("postgresql", tmp_path)
    await asyncio.to_thread(upgrade, url)
    yield url
    if name:
        await _admin_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def erp(sandbox: HeaderLog) -> BoundConnectors:
    connector = RestConnector(
        "http://sandbox/erp",
        NoAuth(),
        timeout=5.0,
        retry=RetryPolicy(attempts=1, initial=0.1, max=0.1),
        secrets=SecretCache(NoSecrets()),
        transport=httpx.ASGITransport(app=sandbox),
    )
    return BoundConnectors({"erp": connector})


async def wait_finished(runtime: Runtime, run_id: UUID, seconds: float = 30) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        async with runtime.db.connect() as conn:
            status = await conn.scalar(select(runs.c.status).where(runs.c.id == run_id))
        if status != "running":
            return str(status)
        await asyncio.sleep(0.1)
    raise AssertionError(f"run {run_id} still running after {seconds}s")


def one(spans: list[ReadableSpan], name: str, kind: SpanKind) -> ReadableSpan:
    found = [s for s in spans if s.name == name and s.kind == kind]
    assert len(found) == 1, f"{name} ({kind}): {[(s.name, s.kind) for s in spans]}"
    return found[0]


def ancestors(span: ReadableSpan, spans: list[ReadableSpan]) -> list[str]:
    by_id = {s.context.span_id: s for s in spans}
    names: list[str] = []
    while span.parent is not None and span.parent.span_id in by_id:
        span = by_id[span.parent.span_id]
        names.append(span.name)
    return names


async def test_one_trace_spans_the_api_call_the_queue_hop_and_the_connector_call(
    otel: Otel, database: str, tmp_path: Path
) -> None:
    template, problems = lint(TRANSFER, "traced-transfer/1.0.0.yaml")
    assert template is not None and not problems, problems
    directory = Directory(deployments={"traced-transfer": Deployment(template, {})})
    sandbox = HeaderLog(create_sandbox_app(SandboxConfig()))
    tenant_broker_id = uuid4()  # its own Redis namespace
    broker = tenant_broker(REDIS_URL, tenant_broker_id)

    def worker_engine() -> Engine:
        return Engine(
            create_async_engine(database), erp(sandbox), worker="traced", ring=dispatcher.ring
        )

    dispatcher = Dispatcher(broker, worker_engine)
    settings = RuntimeSettings(
        tenant_id=TENANT, home=tmp_path, database_url=database, redis_url=REDIS_URL
    )
    api = Runtime(settings, directory=directory, ring=dispatcher.ring, connectors=erp(sandbox))
    worker = Worker(broker, worker_threads=1, worker_timeout=100)
    worker.start()
    otel.spans.clear()
    # The caller (the control plane, say) already has a trace going: the runtime joins it.
    trace_id = secrets.token_hex(16)
    caller = f"00-{trace_id}-{secrets.token_hex(8)}-01"
    try:
        app = make_app(api)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://runtime.test") as c:
            body = {
                "template_id": "traced-transfer",
                "input": {"sku": "SKU-1001", "quantity": 2, "from": "DC-SOUTH", "to": "S-101"},
            }
            admin = mint(grant("retailer_admin", partner_id=PARTNER, tenant_id=TENANT))
            headers = {**bearer(admin), "traceparent": caller}
            res = await c.post("/api/v1/runs", json=body, headers=headers)
            assert res.status_code == 201, res.text
            run_id = UUID(res.json()["id"])
            assert await wait_finished(api, run_id) == "succeeded"
            assert (await c.get(f"/api/v1/runs/{run_id}", headers=bearer(admin))).is_success
    finally:
        worker.stop()
        broker.close()
        await api.close()
        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(f"storeops-{tenant_broker_id}*"))
        if keys:
            client.delete(*keys)

    spans = list(otel.spans.get_finished_spans())
    # Server spans are named by route, never by the ids in a path.
    read = one(spans, "GET /api/v1/runs/{run_id}", SpanKind.SERVER)
    assert str(run_id) not in read.name and read.context.trace_id != int(trace_id, 16)
    server = one(spans, "POST /api/v1/runs", SpanKind.SERVER)
    publish = one(spans, "steps publish", SpanKind.PRODUCER)
    process = one(spans, "steps process", SpanKind.CONSUMER)
    call = one(spans, "POST validate_transfer", SpanKind.CLIENT)

    # One trace, the caller's, from the request to the ERP.
    assert {f"{s.context.trace_id:032x}" for s in (server, publish, process, call)} == {trace_id}
    assert ancestors(call, spans) == ["steps process", "steps publish", "POST /api/v1/runs"]
    assert server.attributes is not None and server.attributes["http.route"] == "/api/v1/runs"
    assert process.attributes is not None
    assert process.attributes["messaging.system"] == "dramatiq"
    assert process.attributes["messaging.message.id"]
    # The connector's span says what was called and how it went, not what was sent.
    assert call.attributes is not None
    assert call.attributes["url.template"] == "http://sandbox/erp/validate_transfer"
    assert call.attributes["http.response.status_code"] == 200
    values = " ".join(str(v) for s in spans for v in (s.attributes or {}).values())
    assert "SKU-1001" not in values and "DC-SOUTH" not in values

    # The sandbox saw the same trace, with the connector's span as the parent.
    calls = [h for h in sandbox.seen if "traceparent" in h]
    assert len(calls) == 1, sandbox.seen
    _, seen_trace, seen_parent, _ = calls[0]["traceparent"].split("-")
    assert seen_trace == trace_id
    assert seen_parent == f"{call.context.span_id:016x}"
