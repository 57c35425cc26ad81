"""OpenTelemetry for the control plane: providers from the standard ``OTEL_*`` variables,
server spans per request (W3C context taken from the caller, e.g. a runtime calling home),
and the control plane's own instruments.

The same rules as the runtime's ``tenant_runtime.tracing`` (kept apart: a runtime imports
nothing of the control plane but its contracts): with no exporter configured nothing is
installed and requests pay nothing for tracing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from litestar.middleware import DefineMiddleware
from opentelemetry import metrics, trace

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Receive, Scope, Send
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider

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

_EXPORTERS = ("otlp", "console", "none")
_installed: Installed | None = None


def exporter_names(signal: str, environ: Mapping[str, str] | None = None) -> list[str]:
    """``OTEL_<SIGNAL>_EXPORTER`` (otlp, console, none); unset, OTLP only when an OTLP
    endpoint is set. The SDK reads the rest (endpoint, headers, sampler, resource)."""
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    variable = f"OTEL_{signal.upper()}_EXPORTER"
    raw = env.get(variable, "").strip()
    if not raw:
        endpoint = env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get(
            f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT"
        )
        return ["otlp"] if endpoint else []
    names = [name.strip().lower() for name in raw.split(",") if name.strip()]
    if unknown := [name for name in names if name not in _EXPORTERS]:
        raise ValueError(f"{variable}={raw!r}: {unknown[0]!r} is not one of otlp, console, none")
    protocol = (
        env.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_PROTOCOL")
        or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    )
    if "otlp" in names and protocol.strip() != "http/protobuf":
        raise ValueError(f"OTLP protocol {protocol!r} is not available here: use http/protobuf")
    return [name for name in names if name != "none"]


@dataclass
class Installed:
    tracer_provider: TracerProvider | None
    meter_provider: MeterProvider | None

    def shutdown(self) -> None:
        if self.tracer_provider is not None:
            self.tracer_provider.shutdown()
        if self.meter_provider is not None:
            self.meter_provider.shutdown()


def build(environ: Mapping[str, str] | None = None) -> Installed:
    """The providers the environment asks for, not installed."""
    traces, metric_names = exporter_names("traces", environ), exporter_names("metrics", environ)
    if not traces and not metric_names:
        return Installed(None, None)
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import (
        ConsoleMetricExporter,
        PeriodicExportingMetricReader,
    )
    from opentelemetry.sdk.resources import OTELResourceDetector, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    resource = Resource.create({"service.name": SERVICE}).merge(OTELResourceDetector().detect())
    tracer_provider = None
    if traces:
        tracer_provider = TracerProvider(resource=resource)  # sampler: OTEL_TRACES_SAMPLER
        for name in traces:
            span_exporter = ConsoleSpanExporter() if name == "console" else OTLPSpanExporter()
            tracer_provider.add_span_processor(BatchSpanProcessor(span_exporter))
    meter_provider = None
    if metric_names:
        readers = [
            PeriodicExportingMetricReader(
                ConsoleMetricExporter() if name == "console" else OTLPMetricExporter()
            )
            for name in metric_names
        ]
        meter_provider = MeterProvider(resource=resource, metric_readers=readers)
    return Installed(tracer_provider, meter_provider)


def setup(environ: Mapping[str, str] | None = None) -> Installed:
    """Install what the ``OTEL_*`` variables ask for, once per process."""
    global _installed
    if _installed is None:
        _installed = build(environ)
        if _installed.tracer_provider is not None:
            trace.set_tracer_provider(_installed.tracer_provider)
        if _installed.meter_provider is not None:
            metrics.set_meter_provider(_installed.meter_provider)
    return _installed


def active() -> bool:
    return not isinstance(
        trace.get_tracer_provider(), trace.ProxyTracerProvider | trace.NoOpTracerProvider
    )


def instrumented() -> bool:
    """True when requests are worth instrumenting: spans recorded, or metrics exported."""
    return active() or (_installed is not None and _installed.meter_provider is not None)


def _span_before_routing(scope: Any) -> tuple[str, dict[str, Any]]:
    # Litestar starts the server span before routing, and a path may hold ids.
    return str(scope.get("method") or "HTTP"), {}


def _name_span_by_route(app: ASGIApp) -> ASGIApp:
    """Routed: names the request's server span ``METHOD /route/{param}``."""

    async def named(scope: Scope, receive: Receive, send: Send) -> None:
        route = scope.get("path_template")
        span = trace.get_current_span()
        if route and span.is_recording():
            span.update_name(f"{scope.get('method', 'HTTP')} {route}")
            span.set_attribute("http.route", route)
        await app(scope, receive, send)

    return named


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
            scope_span_details_extractor=_span_before_routing,
        )
        found += [config.middleware, _name_span_by_route]
    found.append(DefineMiddleware(IngestMeter))
    return found
