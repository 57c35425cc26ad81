"""What the instruments count (connector calls, runs and steps as reported home, telemetry
batches the control plane ingests), and trace context on the runtime's calls home."""

from __future__ import annotations

import asyncio
import contextvars
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import msgspec
import pytest
from litestar import Litestar, Request, post
from opentelemetry.trace import SpanKind

from control_plane import observability
from control_plane.contracts import telemetry
from tenant_runtime.config import RuntimeSettings
from tenant_runtime.connectors import ConnectorError, NoAuth, RestConnector, RetryPolicy
from tenant_runtime.link import ControlPlane, count
from tenant_runtime.sandbox import FaultRule, SandboxConfig, create_sandbox_app
from tenant_runtime.secrets import SecretCache
from tests.observability.conftest import Otel


class NoSecrets:
    async def get(self, name: str) -> str:
        raise AssertionError(f"no secret expected, asked for {name}")


def attrs(point: Any) -> dict[str, Any]:
    return dict(point.attributes)


def connector(app: Any) -> RestConnector:
    async def sleep(_: float) -> None:
        return None

    return RestConnector(
        "http://sandbox/erp",
        NoAuth(),
        timeout=5.0,
        retry=RetryPolicy(attempts=2, initial=0.01, max=2.0),
        secrets=SecretCache(NoSecrets()),
        transport=httpx.ASGITransport(app=app),
        sleep=sleep,
    )


async def test_connector_calls_are_timed_by_operation_and_outcome(otel: Otel) -> None:
    body = {"sku": "SKU-1", "quantity": 1, "from_location": "DC-SOUTH", "to_store": "S-101"}
    async with connector(create_sandbox_app(SandboxConfig())) as erp:
        await erp.call("validate_transfer", body, idempotency_key="k-ok")
    failing = create_sandbox_app(
        SandboxConfig(
            faults=[FaultRule(system="erp", operation="validate_transfer", error_rate=1.0)]
        )
    )
    otel.spans.clear()
    async with connector(failing) as erp:
        with pytest.raises(ConnectorError) as raised:
            await erp.call("validate_transfer", body, idempotency_key="k-bad")
    outcomes = {
        attrs(p)["outcome"]: p.count
        for p in otel.points("storeops.connector.call.duration")
        if attrs(p)["storeops.connector.operation"] == "validate_transfer"
    }
    assert outcomes.get("ok", 0) >= 1
    assert outcomes.get(raised.value.error_class.value, 0) >= 1
    (span,) = [s for s in otel.spans.get_finished_spans() if s.kind == SpanKind.CLIENT]
    assert span.status.is_ok is False
    assert span.attributes is not None
    assert span.attributes["error.type"] == raised.value.error_class.value
    assert span.attributes["http.request.resend_count"] == 1
    assert not span.events  # no exception message: it may quote the response body


def _event(kind: str, **fields: Any) -> telemetry.Event:
    return telemetry.Event(id=uuid4(), at=datetime.now(UTC), kind=telemetry.Kind(kind), **fields)


def test_runs_and_steps_are_counted_from_the_events_sent_home(otel: Otel) -> None:
    template = f"tpl-{uuid4().hex[:6]}"
    count(
        [
            _event("run.started", template_id=template),
            _event(
                "step.finished", status="succeeded", duration_ms=250, data={"step_kind": "call"}
            ),
            _event("run.finished", template_id=template, status="succeeded", duration_ms=1200),
            _event("heartbeat", data={"workers": 2}),
        ]
    )
    started = [p for p in otel.points("storeops.runs.started") if attrs(p)["template"] == template]
    finished = [
        p for p in otel.points("storeops.runs.finished") if attrs(p)["template"] == template
    ]
    assert [p.value for p in started] == [1]
    assert [(p.value, attrs(p)["status"]) for p in finished] == [(1, "succeeded")]
    runs = [p for p in otel.points("storeops.run.duration") if attrs(p)["template"] == template]
    assert runs[0].count == 1 and runs[0].sum == pytest.approx(1.2)
    steps = [p for p in otel.points("storeops.step.duration") if attrs(p)["step_kind"] == "call"]
    assert steps and steps[0].count >= 1


async def test_calls_home_carry_the_trace_and_the_control_plane_joins_it(
    otel: Otel, tmp_path: Path
) -> None:
    seen: list[dict[str, str]] = []

    @post("/runtime/v1/telemetry", status_code=200)
    async def ingest(request: Request[Any, Any, Any]) -> dict[str, int]:
        seen.append(dict(request.headers))
        return {"accepted": 1}

    # The control plane's own middleware, as create_app installs it.
    home = Litestar([ingest], middleware=observability.middleware())

    async def elsewhere(scope: Any, receive: Any, send: Any) -> None:
        # Another process: nothing of the caller's context but what its headers carry.
        await asyncio.create_task(home(scope, receive, send), context=contextvars.Context())

    transport = httpx.ASGITransport(app=elsewhere)
    settings = RuntimeSettings(tenant_id=uuid4(), home=tmp_path, control_plane_url="http://cp.test")
    link = ControlPlane(settings, transport=transport)
    link._token = ("token", float("inf"))  # credentials are another test's business
    otel.spans.clear()
    try:
        result = await link.post_telemetry(b"batch-bytes")
    finally:
        await link.close()
    assert result == {"accepted": 1}
    assert "traceparent" in seen[0]
    spans = otel.spans.get_finished_spans()
    client = next(s for s in spans if s.kind == SpanKind.CLIENT)
    server = next(s for s in spans if s.kind == SpanKind.SERVER)
    assert client.name == "POST /runtime/v1/telemetry"
    assert server.name == "POST /runtime/v1/telemetry"
    assert server.context.trace_id == client.context.trace_id
    assert server.parent is not None and server.parent.span_id == client.context.span_id
    # The batch the control plane answered is counted, with its size.
    batches = [
        p
        for p in otel.points("storeops.telemetry.ingest.batches")
        if attrs(p)["http.response.status_code"] == 200
    ]
    assert batches and batches[0].value >= 1
    sizes = otel.points("storeops.telemetry.ingest.size")
    assert sizes and max(p.max for p in sizes) >= len(b"batch-bytes")


def test_trace_context_survives_a_message_encoding() -> None:
    """Dramatiq encodes options as JSON: the carrier is plain strings."""
    from opentelemetry import trace

    from tenant_runtime import tracing

    with trace.get_tracer("t").start_as_current_span("send"):
        carrier = tracing.inject({})
    decoded = msgspec.json.decode(msgspec.json.encode({tracing.OPTION: carrier}))
    context = tracing.extract(decoded[tracing.OPTION])
    assert trace.get_current_span(context).get_span_context().is_valid
