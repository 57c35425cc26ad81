"""OpenTelemetry for the control plane: providers from the standard ``OTEL_*`` variables,
server spans per request (W3C context taken from the caller, e.g. a runtime calling home),
and the control plane's own instruments.

Provider setup is the runtime's own (``tenant_runtime.tracing``; the control plane may
import the runtime, never the other way round): with no exporter configured nothing is
installed and requests pay nothing for tracing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from litestar.middleware import DefineMiddleware
from opentelemetry import metrics

from tenant_runtime import tracing
from tenant_runtime.tracing import (
    Installed,
    active,
    exporter_names,
    instrumented,
    name_span_by_route,
    span_before_routing,
)

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Receive, Scope, Send

__all__ = ["Installed", "active", "build", "exporter_names", "middleware", "setup"]

SERVICE = "storeops-control-plane"
SCOPE = "storeops.control_plane"
TELEMETRY_ROUTE = "/runtime/v1/telemetry"

meter = metrics.get_meter(SCOPE)
ingest_batches = meter.create_counter(
    "storeops.telemetry.ingest.batches",
    unit="{batch}",
    description="Telemetry batches runtimes posted, by response status",
)
ingest_bytes = meter.create_histogram(
    "storeops.telemetry.ingest.size", unit="By", description="Telemetry batch bodies as sent"
)


def build(environ: Mapping[str, str] | None = None) -> Installed:
    """The providers the environment asks for, not installed."""
    return tracing.build(SERVICE, environ=environ)


def setup(environ: Mapping[str, str] | None = None) -> Installed:
    """Install what the ``OTEL_*`` variables ask for, once per process."""
    return tracing.setup(SERVICE, environ=environ)


class IngestMeter:
    """Counts telemetry batches by the status the control plane answered."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("path_template") != TELEMETRY_ROUTE:
            await self.app(scope, receive, send)
            return
        status = {"code": 0}

        async def sending(message: Any) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            ingest_batches.add(1, {"http.response.status_code": status["code"]})
            for name, value in scope.get("headers", ()):
                if name == b"content-length" and value.isdigit():
                    ingest_bytes.record(int(value))


def middleware() -> list[Any]:
    """Server spans and HTTP metrics (when exported) and the ingest meter, outermost first."""
    found: list[Any] = []
    if instrumented():
        from litestar.plugins.opentelemetry import OpenTelemetryConfig

        config = OpenTelemetryConfig(
            exclude=["/metrics", "/healthz", "/readyz"],
            exclude_spans=["receive", "send"],
            scope_span_details_extractor=span_before_routing,
        )
        found += [config.middleware, name_span_by_route]
    found.append(DefineMiddleware(IngestMeter))
    return found
