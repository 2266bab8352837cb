"""Sets up OpenTelemetry SDK providers from configuration and the standard OTEL_* variables.

Traces: `none` (default: no SDK, near-zero cost), `console`, or `otlp` (needs the `otlp`
extra). Metrics: `none` (default), `otlp`, or `prometheus` (a scrape endpoint on its own
port; needs the `prometheus` extra). The resource comes from `OTEL_SERVICE_NAME` /
`OTEL_RESOURCE_ATTRIBUTES` (service name defaults to `plansmith`); the OTLP exporters read
`OTEL_EXPORTER_OTLP_ENDPOINT` and friends themselves.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import metrics, trace

log = logging.getLogger(__name__)


class TelemetrySetupError(RuntimeError):
    """The configuration asks for an exporter that is not installed."""


@dataclass
class Providers:
    """SDK providers made for the server; `shutdown()` flushes and stops them."""

    tracer_provider: trace.TracerProvider | None = None
    meter_provider: metrics.MeterProvider | None = None
    _closers: list[Any] = field(default_factory=list)

    def shutdown(self) -> None:
        for close in self._closers:
            try:
                close()
            except Exception as exc:  # flushing must never break shutdown
                log.warning("telemetry shutdown: %s", exc)


def _resource() -> Any:
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource

    attrs = {} if os.environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: "plansmith"}
    return Resource.create(attrs)


def build(traces: str, metrics_exporter: str, prometheus_address: str) -> Providers:
    """Providers for the chosen exporters (None where the choice is `none`)."""
    out = Providers()
    if traces != "none":
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

        tp = TracerProvider(resource=_resource())
        if traces == "console":
            exporter: Any = ConsoleSpanExporter()
        else:
            try:
                from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
                    OTLPSpanExporter,
                )
            except ImportError as exc:
                raise TelemetrySetupError(
                    "traces=otlp needs the otlp extra: pip install 'plansmith-server[otlp]'"
                ) from exc
            exporter = OTLPSpanExporter()
        tp.add_span_processor(BatchSpanProcessor(exporter))
        out.tracer_provider = tp
        out._closers.append(tp.shutdown)
    if metrics_exporter != "none":
        from opentelemetry.sdk.metrics import MeterProvider

        if metrics_exporter == "prometheus":
            try:
                from opentelemetry.exporter.prometheus import PrometheusMetricReader
                from prometheus_client import start_http_server
            except ImportError as exc:
                raise TelemetrySetupError(
                    "metrics=prometheus needs the prometheus extra: "
                    "pip install 'plansmith-server[prometheus]'"
                ) from exc
            host, _, port = prometheus_address.rpartition(":")
            server, _thread = start_http_server(int(port), addr=host or "127.0.0.1")
            reader: Any = PrometheusMetricReader()
            out._closers.append(server.shutdown)
            log.info("prometheus metrics on http://%s/metrics", prometheus_address)
        else:
            try:
                from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
                    OTLPMetricExporter,
                )
            except ImportError as exc:
                raise TelemetrySetupError(
                    "metrics=otlp needs the otlp extra: pip install 'plansmith-server[otlp]'"
                ) from exc
            from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

            reader = PeriodicExportingMetricReader(OTLPMetricExporter())
        mp = MeterProvider(resource=_resource(), metric_readers=[reader])
        out.meter_provider = mp
        out._closers.insert(0, mp.shutdown)
    return out
