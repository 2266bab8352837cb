"""The real exporters: OTLP to a collector (a real gRPC endpoint in the test) and a
Prometheus scrape endpoint, each from a `plansmith-server` process."""

from __future__ import annotations

import asyncio
import socket
import urllib.request

import grpc
from opentelemetry.proto.collector.metrics.v1 import (
    metrics_service_pb2,
    metrics_service_pb2_grpc,
)
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from plansmith.v1 import plan_pb2, plan_service_pb2_grpc
from plansmith.v1 import plan_service_pb2 as pb
from tests.test_process import launch


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Collector(
    trace_service_pb2_grpc.TraceServiceServicer, metrics_service_pb2_grpc.MetricsServiceServicer
):
    def __init__(self) -> None:
        self.spans: list[tuple[str, str]] = []  # (service.name, span name)
        self.metrics: set[str] = set()

    async def Export(self, request, context):
        if isinstance(request, trace_service_pb2.ExportTraceServiceRequest):
            for rs in request.resource_spans:
                service = next(
                    (
                        a.value.string_value
                        for a in rs.resource.attributes
                        if a.key == "service.name"
                    ),
                    "",
                )
                for ss in rs.scope_spans:
                    self.spans += [(service, s.name) for s in ss.spans]
            return trace_service_pb2.ExportTraceServiceResponse()
        for rm in request.resource_metrics:
            for sm in rm.scope_metrics:
                self.metrics |= {m.name for m in sm.metrics}
        return metrics_service_pb2.ExportMetricsServiceResponse()


async def test_otlp_traces_and_metrics_reach_a_collector(tmp_path, monkeypatch):
    collector = Collector()
    server = grpc.aio.server()
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(collector, server)
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(collector, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_INSECURE", "true")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "plansmith-test")
    monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", "200")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")
    sp = await asyncio.to_thread(
        launch, str(tmp_path / "db.sqlite"), "--traces", "otlp", "--metrics", "otlp"
    )
    try:
        async with grpc.aio.insecure_channel(sp.address) as ch:
            stub = plan_service_pb2_grpc.PlanServiceStub(ch)
            await stub.CreatePlan(pb.CreatePlanRequest(plan=plan_pb2.Plan(name="P")))
        # Shutdown flushes both exporters.
        assert await asyncio.to_thread(sp.stop) == 0
        assert ("plansmith-test", "plansmith.v1.PlanService/CreatePlan") in collector.spans
        assert ("plansmith-test", "db.write") in collector.spans
        assert "rpc.server.duration" in collector.metrics
    finally:
        await asyncio.to_thread(sp.stop)
        await server.stop(0)


async def test_prometheus_endpoint_serves_rpc_metrics(tmp_path):
    address = f"127.0.0.1:{free_port()}"
    sp = await asyncio.to_thread(
        launch,
        str(tmp_path / "db.sqlite"),
        "--metrics",
        "prometheus",
        "--prometheus-address",
        address,
    )
    try:
        async with grpc.aio.insecure_channel(sp.address) as ch:
            stub = plan_service_pb2_grpc.PlanServiceStub(ch)
            for _ in range(3):
                await stub.ListPlans(pb.ListPlansRequest())

        def scrape() -> str:
            with urllib.request.urlopen(f"http://{address}/metrics", timeout=10) as r:
                return r.read().decode()

        text = await asyncio.to_thread(scrape)
        lines = [
            line
            for line in text.splitlines()
            if line.startswith("rpc_server_duration_milliseconds_count")
            and 'rpc_method="ListPlans"' in line
        ]
        assert lines and float(lines[0].rsplit(" ", 1)[1]) == 3.0, text[:2000]
    finally:
        await asyncio.to_thread(sp.stop)
