"""Runs a Plansmith server for a benchmark: `python bench/_serve.py DB MODE`.

MODE `off`: telemetry as by default (no SDK). MODE `on`: tracing and metrics with the SDK,
every trace recorded (`sampled`: 10 % of traces),
spans batched to an exporter that drops them and metrics to an in-memory reader, so the
cost measured is ours and the SDK's, not an exporter's I/O. Prints `ADDRESS host:port`.
Runs on the event loop `PLANSMITH_EVENT_LOOP` names (default `auto`), as the server does.
Logs as `plansmith-server` would with the same environment (default: `--log-level INFO`,
`--access-log errors`; `PLANSMITH_LOG_LEVEL`, `PLANSMITH_ACCESS_LOG` change them), to
stderr, which the benchmarks send to /dev/null.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Sequence
from dataclasses import replace

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

from plansmith_server import logs, loops
from plansmith_server.app import freeze_startup_objects, start
from plansmith_server.config import load
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
    # The environment's configuration, as `plansmith-server` reads it, on a free port;
    # benchmarks write far more tasks into one plan than a real plan holds.
    config = replace(
        load([], os.environ), listen="127.0.0.1:0", db_path=db, max_tasks_per_plan=10**8
    )
    logs.configure(config.log_level, config.log_format)
    running = await start(config, telemetry=telemetry)
    freeze_startup_objects()  # as `plansmith-server` does
    print(f"ADDRESS {running.address}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await running.stop(grace=1)


if __name__ == "__main__":
    # On the loop `plansmith-server` would pick (PLANSMITH_EVENT_LOOP, default auto).
    loops.run(main(sys.argv[1], sys.argv[2]), loops.from_env())
