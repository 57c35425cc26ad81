"""From the control plane to the runtime: a desired state names the trace of the change that
produced it, and the runtime's fetch of it links to that trace."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Litestar
from opentelemetry.trace import SpanKind

from control_plane.app import create_app
from control_plane.config import Settings
from tenant_runtime.config import RuntimeSettings
from tenant_runtime.link import ControlPlane
from tests.conftest import World, bearer
from tests.deployments.support import fleet, transfer
from tests.observability.conftest import Otel
from tests.runtimelink.support import runtime_token


@pytest.fixture
async def traced_app(otel: Otel, settings: Settings) -> AsyncIterator[Litestar]:
    """A control plane built once spans are recorded (as its process would at start)."""
    app = create_app(settings)
    yield app
    for hook in app.on_shutdown:
        await hook()


def elsewhere(app: Litestar) -> httpx.ASGITransport:
    """Each request handled as in another process: only its headers carry a context."""

    async def handle(scope: Any, receive: Any, send: Any) -> None:
        await asyncio.create_task(app(scope, receive, send), context=contextvars.Context())

    return httpx.ASGITransport(app=handle)


async def test_the_runtime_links_its_desired_state_to_the_change_that_made_it(
    otel: Otel, traced_app: Litestar, world: World, tmp_path: Path
) -> None:
    f = await fleet(world)
    transport = elsewhere(traced_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as cp:
        token = await runtime_token(cp, f)
        otel.spans.clear()
        res = await cp.post(
            f"{f.base}/deployments/apply",
            json={"deployments": [transfer()]},
            headers=bearer(f.tree.partner_token),
        )
        assert res.status_code == 200, res.text
    (change,) = [
        s
        for s in otel.spans.get_finished_spans()
        if s.kind == SpanKind.SERVER and s.name.endswith("/deployments/apply")
    ]

    settings = RuntimeSettings(
        tenant_id=f.tenant_id, home=tmp_path, control_plane_url="http://testserver"
    )
    link = ControlPlane(settings, transport=transport)
    link._token = (token, float("inf"))  # the bootstrap is another test's business
    otel.spans.clear()
    try:
        answer = await link.call("GET", "/runtime/v1/desired-state")
    finally:
        await link.close()
    assert answer.status_code == 200, answer.text
    assert answer.headers["storeops-change-traceparent"].split("-")[1] == (
        f"{change.context.trace_id:032x}"
    )
    fetch = next(s for s in otel.spans.get_finished_spans() if s.kind == SpanKind.CLIENT)
    assert fetch.name == "GET /runtime/v1/desired-state"
    assert [(lk.context.trace_id, lk.context.span_id) for lk in fetch.links] == [
        (change.context.trace_id, change.context.span_id)
    ]
    # The fetch itself is the runtime's trace, joined by the control plane's server span.
    served = next(
        s
        for s in otel.spans.get_finished_spans()
        if s.kind == SpanKind.SERVER and s.name == "GET /runtime/v1/desired-state"
    )
    assert served.context.trace_id == fetch.context.trace_id
