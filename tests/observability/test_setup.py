"""The standard OTEL_* variables choose the exporters, in the runtime and the control plane
alike; with none set nothing is installed and nothing leaves the process."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics.export import ConsoleMetricExporter
from opentelemetry.sdk.trace.export import ConsoleSpanExporter

from control_plane import observability
from tenant_runtime import tracing

OTLP = "http://collector.test:4318"
Names = Callable[..., list[str]]
BOTH: list[Names] = [tracing.exporter_names, observability.exporter_names]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("OTEL_"):
            monkeypatch.delenv(name)


@pytest.mark.parametrize("names", BOTH)
@pytest.mark.parametrize(
    ("env", "traces", "metrics"),
    [
        ({}, [], []),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": OTLP}, ["otlp"], ["otlp"]),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": OTLP}, ["otlp"], []),
        ({"OTEL_TRACES_EXPORTER": "console"}, ["console"], []),
        ({"OTEL_METRICS_EXPORTER": "Console, otlp"}, [], ["console", "otlp"]),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": OTLP, "OTEL_TRACES_EXPORTER": "none"}, [], ["otlp"]),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": OTLP, "OTEL_SDK_DISABLED": "true"}, [], []),
    ],
)
def test_otel_variables_choose_the_exporters(
    names: Names, env: dict[str, str], traces: list[str], metrics: list[str]
) -> None:
    assert names("traces", env) == traces
    assert names("metrics", env) == metrics


@pytest.mark.parametrize("names", BOTH)
def test_an_unknown_exporter_is_refused_with_the_names_that_would_do(names: Names) -> None:
    with pytest.raises(ValueError, match="'jaeger' is not one of otlp, console, none"):
        names("traces", {"OTEL_TRACES_EXPORTER": "jaeger"})


def test_an_otlp_protocol_not_installed_is_refused_with_the_one_that_is() -> None:
    env = {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}
    with pytest.raises(ValueError, match="use http/protobuf"):
        tracing.span_exporters(env)
    with pytest.raises(ValueError, match="use http/protobuf"):
        observability.build(env)


def test_nothing_set_builds_nothing() -> None:
    runtime = tracing.build(environ={})
    assert runtime.tracer_provider is None and runtime.meter_provider is None
    control_plane = observability.build(environ={})
    assert control_plane.tracer_provider is None and control_plane.meter_provider is None


def _exporters(provider: Any) -> list[Any]:
    processors = provider._active_span_processor._span_processors
    return [p.span_exporter for p in processors]


def test_console_and_otlp_build_those_exporters(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", OTLP)
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp,console")
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "console")
    built = tracing.build()
    assert built.tracer_provider is not None and built.meter_provider is not None
    exporters = _exporters(built.tracer_provider)
    assert [type(e) for e in exporters] == [OTLPSpanExporter, ConsoleSpanExporter]
    assert exporters[0]._endpoint == f"{OTLP}/v1/traces"
    readers = built.meter_provider._metric_readers
    assert [type(r._exporter) for r in readers] == [ConsoleMetricExporter]
    built.shutdown()

    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "otlp")
    cp = observability.build()
    assert cp.tracer_provider is not None and cp.meter_provider is not None
    assert [type(e) for e in _exporters(cp.tracer_provider)] == [
        OTLPSpanExporter,
        ConsoleSpanExporter,
    ]
    cp_readers = cp.meter_provider._metric_readers
    assert [type(r._exporter) for r in cp_readers] == [OTLPMetricExporter]
    cp.shutdown()


def test_service_name_resource_and_sampler_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    built = tracing.build(attributes={"storeops.tenant_id": "t-1"})
    assert built.tracer_provider is not None
    attributes = built.tracer_provider.resource.attributes
    assert attributes["service.name"] == tracing.SERVICE
    assert attributes["storeops.tenant_id"] == "t-1"
    built.shutdown()

    monkeypatch.setenv("OTEL_SERVICE_NAME", "runtime-acme")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=staging")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_off")
    built = tracing.build()
    assert built.tracer_provider is not None
    attributes = built.tracer_provider.resource.attributes
    assert attributes["service.name"] == "runtime-acme"
    assert attributes["deployment.environment"] == "staging"
    assert not built.tracer_provider.get_tracer("t").start_span("x").is_recording()
    built.shutdown()

    cp = observability.build()
    assert cp.tracer_provider is not None
    assert cp.tracer_provider.resource.attributes["service.name"] == "runtime-acme"
    cp.shutdown()


SCRIPT = textwrap.dedent(
    """
    from tenant_runtime import tracing
    from control_plane import observability

    installed = tracing.setup()
    observability.setup()
    print("active" if tracing.active() else "inactive", flush=True)
    with tracing.tracer.start_as_current_span("probe") as span:
        carrier = tracing.inject({})
        print("recording" if span.is_recording() else "not recording", flush=True)
        print("carrier" if carrier else "no carrier", flush=True)
    installed.shutdown()
    """
)


def _run(env: dict[str, str]) -> list[str]:
    import os

    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.splitlines()


def test_unset_a_process_records_and_exports_nothing() -> None:
    assert _run({}) == ["inactive", "not recording", "no carrier"]


def test_console_exporter_prints_the_spans_a_process_records() -> None:
    out = _run({"OTEL_TRACES_EXPORTER": "console", "OTEL_SERVICE_NAME": "probe-runtime"})
    assert out[:3] == ["active", "recording", "carrier"]
    printed = "\n".join(out[3:])
    assert '"name": "probe"' in printed and "probe-runtime" in printed
