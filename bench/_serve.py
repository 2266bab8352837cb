"""Runs a Plansmith server for a benchmark: `python bench/_serve.py DB MODE`.

MODE `off`: telemetry as by default (no SDK). MODE `on`: tracing and metrics with the SDK,
every trace recorded (`sampled`: 10 % of traces),
spans batched to an exporter that drops them and metrics to an in-memory reader, so the
cost measured is ours and the SDK's, not an exporter's I/O. Prints `ADDRESS host:port`.
Runs on the event loop `PLANSMITH_EVENT_LOOP` names (default `auto`), as the server does.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Sequence

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

from plansmith_server import loops
from plansmith_server.app import freeze_startup_objects, start
from plansmith_server.config import Config
from plansmith_server.telemetry import Telemetry


class DropSpans(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


async def main(db: str, mode: str) -> None:
    telemetry = None
    if mode in ("on", "sampled"):
        # "sampled": what OTEL_TRACES_SAMPLER=parentbased_traceidratio with
        # OTEL_TRACES_SAMPLER_ARG=0.1 gives (10 % of new traces recorded).
        sampler = ParentBased(TraceIdRatioBased(0.1)) if mode == "sampled" else None
        tp = TracerProvider(sampler=sampler) if sampler else TracerProvider()
        tp.add_span_processor(BatchSpanProcessor(DropSpans()))
        mp = MeterProvider(metric_readers=[InMemoryMetricReader()])
        telemetry = Telemetry.from_providers(tp, mp)
    # Benchmarks write far more tasks into one plan than a real plan holds.
    running = await start(
        Config(
            listen="127.0.0.1:0",
            db_path=db,
            log_level="WARNING",
            max_tasks_per_plan=10**8,
            page_cache_tasks=int(
                os.environ.get("PLANSMITH_PAGE_CACHE_TASKS", Config.page_cache_tasks)
            ),
        ),
        telemetry=telemetry,
    )
    freeze_startup_objects()  # as `plansmith-server` does
    print(f"ADDRESS {running.address}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await running.stop(grace=1)


if __name__ == "__main__":
    import logging

    logging.basicConfig(level=logging.WARNING)
    # On the loop `plansmith-server` would pick (PLANSMITH_EVENT_LOOP, default auto).
    loops.run(main(sys.argv[1], sys.argv[2]), loops.from_env())
