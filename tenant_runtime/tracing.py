"""OpenTelemetry for a tenant runtime: providers built from the standard ``OTEL_*`` variables,
the runtime's tracer and metric instruments, and W3C trace-context helpers.

With no exporter configured nothing is installed: the API's no-op providers stay, spans are
not recorded, and the engine's hot path pays one provider check per message.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opentelemetry import metrics, propagate, trace

if TYPE_CHECKING:  # the SDK is imported only by a process that installs it
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import MetricExporter, MetricReader
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

SERVICE = "storeops-tenant-runtime"
SCOPE = "storeops.tenant_runtime"
#: The ``message.options`` key that carries the W3C headers across the queue.
OPTION = "trace_context"

tracer = trace.get_tracer(SCOPE)
meter = metrics.get_meter(SCOPE)

runs_started = meter.create_counter(
    "storeops.runs.started", unit="{run}", description="Runs started (as reported home)"
)
runs_finished = meter.create_counter(
    "storeops.runs.finished", unit="{run}", description="Runs finished, by status"
)
run_duration = meter.create_histogram(
    "storeops.run.duration", unit="s", description="Run duration, start to finish"
)
step_duration = meter.create_histogram(
    "storeops.step.duration", unit="s", description="Step duration, by step kind and status"
)
step_messages = meter.create_counter(
    "storeops.step.messages", unit="{message}", description="Step messages a worker handled"
)
connector_duration = meter.create_histogram(
    "storeops.connector.call.duration",
    unit="s",
    description="Connector calls, retries included, by connector host, operation and outcome",
)
telemetry_batches = meter.create_counter(
    "storeops.telemetry.batches.sent",
    unit="{batch}",
    description="Telemetry batches the control plane acknowledged",
)
telemetry_events = meter.create_counter(
    "storeops.telemetry.events.sent",
    unit="{event}",
    description="Telemetry events the control plane acknowledged",
)

_EXPORTERS = ("otlp", "console", "none")
_installed: Installed | None = None


def _env(environ: Mapping[str, str] | None) -> Mapping[str, str]:
    # The OTel SDK reads these variables itself (endpoint, headers, sampler, resource);
    # choosing the exporters is the one decision made here, so it reads them too.
    return os.environ if environ is None else environ


def exporter_names(signal: str, environ: Mapping[str, str] | None = None) -> list[str]:
    """The exporters ``OTEL_<SIGNAL>_EXPORTER`` names; unset, OTLP when an OTLP endpoint is
    set and none otherwise (unlike the SDK's own default, so an unconfigured runtime sends
    nothing anywhere)."""
    env = _env(environ)
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
    return [name for name in names if name != "none"]


def _protocol(signal: str, env: Mapping[str, str]) -> str:
    protocol = (
        env.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_PROTOCOL")
        or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    ).strip()
    if protocol != "http/protobuf":
        raise ValueError(
            f"OTLP protocol {protocol!r} is not available here: use http/protobuf "
            "(OTEL_EXPORTER_OTLP_PROTOCOL)"
        )
    return protocol


def span_exporters(environ: Mapping[str, str] | None = None) -> list[SpanExporter]:
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter

    env = _env(environ)
    found: list[SpanExporter] = []
    for name in exporter_names("traces", env):
        if name == "console":
            found.append(ConsoleSpanExporter())
        else:
            _protocol("traces", env)
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            found.append(OTLPSpanExporter())
    return found


def metric_readers(environ: Mapping[str, str] | None = None) -> list[MetricReader]:
    from opentelemetry.sdk.metrics.export import (
        ConsoleMetricExporter,
        PeriodicExportingMetricReader,
    )

    env = _env(environ)
    found: list[MetricReader] = []
    for name in exporter_names("metrics", env):
        exporter: MetricExporter
        if name == "console":
            exporter = ConsoleMetricExporter()
        else:
            _protocol("metrics", env)
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
                OTLPMetricExporter,
            )

            exporter = OTLPMetricExporter()
        found.append(PeriodicExportingMetricReader(exporter))
    return found


def resource(service: str, attributes: Mapping[str, Any] | None = None) -> Resource:
    """``service`` and ``attributes`` as defaults under what ``OTEL_SERVICE_NAME`` and
    ``OTEL_RESOURCE_ATTRIBUTES`` say."""
    from opentelemetry.sdk.resources import OTELResourceDetector, Resource

    base = Resource.create({"service.name": service, **(attributes or {})})
    return base.merge(OTELResourceDetector().detect())


@dataclass
class Installed:
    """The providers :func:`setup` installed (``None``: that signal stays a no-op)."""

    tracer_provider: TracerProvider | None
    meter_provider: MeterProvider | None

    def shutdown(self) -> None:
        """Flush and stop the exporters (also done at interpreter exit)."""
        if self.tracer_provider is not None:
            self.tracer_provider.shutdown()
        if self.meter_provider is not None:
            self.meter_provider.shutdown()


def build(
    service: str = SERVICE,
    attributes: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Installed:
    """The providers the environment asks for, not installed."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    env = _env(environ)
    exporters, readers = span_exporters(env), metric_readers(env)
    if not exporters and not readers:
        return Installed(None, None)
    res = resource(service, attributes)
    tracer_provider = None
    if exporters:
        tracer_provider = TracerProvider(resource=res)  # sampler: OTEL_TRACES_SAMPLER
        for exporter in exporters:
            tracer_provider.add_span_processor(BatchSpanProcessor(exporter))
    meter_provider = MeterProvider(resource=res, metric_readers=readers) if readers else None
    return Installed(tracer_provider, meter_provider)


def setup(
    service: str = SERVICE,
    attributes: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Installed:
    """Install the providers the ``OTEL_*`` variables ask for, once per process."""
    global _installed
    if _installed is None:
        _installed = build(service, attributes, environ)
        if _installed.tracer_provider is not None:
            trace.set_tracer_provider(_installed.tracer_provider)
        if _installed.meter_provider is not None:
            metrics.set_meter_provider(_installed.meter_provider)
    return _installed


def active() -> bool:
    """True when spans are recorded somewhere (a real tracer provider is installed)."""
    return not isinstance(
        trace.get_tracer_provider(), trace.ProxyTracerProvider | trace.NoOpTracerProvider
    )


def instrumented() -> bool:
    """True when requests are worth instrumenting: spans recorded, or metrics exported."""
    return active() or (_installed is not None and _installed.meter_provider is not None)


def span_before_routing(scope: Any) -> tuple[str, dict[str, Any]]:
    """A server span's first name: the method alone (the path may hold ids)."""
    return str(scope.get("method") or "HTTP"), {}


def name_span_by_route(app: Any) -> Any:
    """ASGI middleware, routed: names the request's server span ``METHOD /route/{param}``."""

    async def named(scope: Any, receive: Any, send: Any) -> None:
        route = scope.get("path_template")
        span = trace.get_current_span()
        if route and span.is_recording():
            span.update_name(f"{scope.get('method', 'HTTP')} {route}")
            span.set_attribute("http.route", route)
        await app(scope, receive, send)

    return named


def inject(carrier: MutableMapping[str, str]) -> MutableMapping[str, str]:
    """Write the current context's ``traceparent`` (and ``tracestate``) into ``carrier``."""
    propagate.inject(carrier)
    return carrier


def extract(carrier: Mapping[str, str] | None) -> Any:
    """The context a ``traceparent`` carrier names (the current one when it names none)."""
    return propagate.extract(carrier or {})
