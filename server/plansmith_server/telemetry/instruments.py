"""The tracer, the metric instruments and the call statistics the server uses.

Built once per server from explicit providers (tests pass in-memory ones); with the
API's no-op providers every instrument costs next to nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from opentelemetry import metrics, trace
from opentelemetry.metrics import Observation

from plansmith_server.telemetry.stats import CallStats

INSTRUMENTATION = "plansmith_server"


@dataclass
class Telemetry:
    """Everything a component needs to report what it does."""

    tracer: trace.Tracer
    meter: metrics.Meter
    stats: CallStats = field(default_factory=CallStats)
    tracing_enabled: bool = False
    """Whether spans are recorded at all; without it the server skips per-call spans."""

    def __post_init__(self) -> None:
        m = self.meter
        self.rpc_duration = m.create_histogram(
            "rpc.server.duration", unit="ms", description="Duration of RPCs by method and status"
        )
        # Observed at collection time from the call statistics: nothing to do per call.
        m.create_observable_up_down_counter(
            "rpc.server.active_requests",
            callbacks=[lambda _options: [Observation(self.stats.in_flight)]],
            unit="{call}",
            description="RPCs in flight",
        )
        m.create_observable_up_down_counter(
            "plansmith.streams.active",
            callbacks=[lambda _options: [Observation(self.stats.active_streams)]],
            unit="{stream}",
            description="Server streams open",
        )
        self.db_duration = m.create_histogram(
            "plansmith.db.transaction.duration", unit="ms", description="Database transactions"
        )
        self.generation_duration = m.create_histogram(
            "plansmith.planning.generation.duration", unit="ms", description="Plan generation"
        )
        self.solver_duration = m.create_histogram(
            "plansmith.planning.solver.duration", unit="ms", description="Schedule solver runs"
        )

    @classmethod
    def from_providers(
        cls,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
    ) -> Telemetry:
        """Uses the given providers, or the global ones (no-op unless an SDK is set up)."""
        tp = tracer_provider or trace.get_tracer_provider()
        mp = meter_provider or metrics.get_meter_provider()
        enabled = not isinstance(tp, trace.NoOpTracerProvider | trace.ProxyTracerProvider)
        return cls(
            tracer=tp.get_tracer(INSTRUMENTATION),
            meter=mp.get_meter(INSTRUMENTATION),
            tracing_enabled=enabled,
        )

    @classmethod
    def noop(cls) -> Telemetry:
        return cls.from_providers(trace.NoOpTracerProvider(), metrics.NoOpMeterProvider())
