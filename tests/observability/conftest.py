"""One in-memory span exporter and metric reader for this process, installed as the global
OpenTelemetry providers (the API allows that once per process). Spans are kept only while
a test of this folder runs, so the suite's later tests leave nothing piling up."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


class GatedProcessor(SimpleSpanProcessor):
    """Exports finished spans only while ``open``."""

    open = False

    def on_end(self, span: ReadableSpan) -> None:
        if self.open:
            super().on_end(span)


@dataclass
class Otel:
    spans: InMemorySpanExporter
    metrics: InMemoryMetricReader
    gate: GatedProcessor = field(repr=False)

    def points(self, name: str) -> list[object]:
        """Every data point of the metric ``name`` collected so far."""
        data = self.metrics.get_metrics_data()
        found: list[object] = []
        for rm in data.resource_metrics if data else []:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    if metric.name == name:
                        found.extend(metric.data.data_points)
        return found


_OTEL: Otel | None = None


def _installed() -> Otel:
    global _OTEL
    if _OTEL is None:
        spans, reader = InMemorySpanExporter(), InMemoryMetricReader()
        gate = GatedProcessor(spans)
        provider = TracerProvider()
        provider.add_span_processor(gate)
        trace.set_tracer_provider(provider)
        metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
        _OTEL = Otel(spans, reader, gate)
    return _OTEL


@pytest.fixture
def otel() -> Iterator[Otel]:
    found = _installed()
    found.spans.clear()
    found.gate.open = True
    yield found
    found.gate.open = False
    found.spans.clear()
