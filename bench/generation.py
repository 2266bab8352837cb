"""GeneratePlan through the real server: server-side time and time to first streamed event.

    .venv/bin/python bench/generation.py [--repeat 50]

Starts `bench/_serve.py` (telemetry off) on a fresh database, sends the 10-requirement
request of `bench/generation_domain.py` repeatedly, and prints medians of:
- the server-side duration of GeneratePlan (measured by the server's own interceptors and
  read back from OpsService.GetServiceStatus, so the network and client are excluded);
- the client-observed GeneratePlan latency on loopback;
- the time from starting StreamGeneratePlan to its first event, and to `completed`.
Aims (issue): under 50 ms server-side and under 10 ms to the first event.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import grpc
from google.protobuf import struct_pb2

sys.path.insert(0, str(Path(__file__).resolve().parent))

from generation_domain import REQUEST
from telemetry_overhead import launch

from plansmith.v1 import (
    agent_pb2,
    generation_pb2,
    ops_service_pb2,
    ops_service_pb2_grpc,
    planning_service_pb2,
    planning_service_pb2_grpc,
)


def brief() -> generation_pb2.PlanBrief:
    ctx = struct_pb2.Struct()
    ctx.update(dict(REQUEST.context))
    return generation_pb2.PlanBrief(
        name=REQUEST.name,
        description=REQUEST.description,
        requirements=list(REQUEST.requirements),
        constraints=list(REQUEST.constraints),
        available_agents=[
            agent_pb2.Agent(id=a.id, name=a.name, capabilities=list(a.capabilities))
            for a in REQUEST.available_agents
        ],
        context=ctx,
    )


async def run(address: str, repeat: int) -> dict[str, float]:
    async with grpc.aio.insecure_channel(address) as ch:
        stub = planning_service_pb2_grpc.PlanningServiceStub(ch)
        b = brief()
        unary: list[float] = []
        first: list[float] = []
        whole: list[float] = []
        for _ in range(5):  # warm-up
            await stub.GeneratePlan(planning_service_pb2.GeneratePlanRequest(brief=b))
        for _ in range(repeat):
            t0 = time.perf_counter()
            r = await stub.GeneratePlan(planning_service_pb2.GeneratePlanRequest(brief=b))
            unary.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            call = stub.StreamGeneratePlan(planning_service_pb2.StreamGeneratePlanRequest(brief=b))
            n = 0
            async for _event in call:
                if n == 0:
                    first.append(time.perf_counter() - t0)
                n += 1
            whole.append(time.perf_counter() - t0)
        status = await ops_service_pb2_grpc.OpsServiceStub(ch).GetServiceStatus(
            ops_service_pb2.GetServiceStatusRequest(window_seconds=3600)
        )
        server = {m.method: m for m in status.methods}["/plansmith.v1.PlanningService/GeneratePlan"]
        return {
            "tasks": len(r.result.tasks),
            "server_p50": server.p50_ms,
            "server_p95": server.p95_ms,
            "unary_p50": statistics.median(unary) * 1000,
            "first_p50": statistics.median(first) * 1000,
            "stream_p50": statistics.median(whole) * 1000,
            "events": n,
        }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--repeat", type=int, default=50)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        proc, address = launch(f"{tmp}/gen.db", "off")
        try:
            f = asyncio.run(run(address, args.repeat))
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    print(f"10 requirements -> {f['tasks']} tasks; {f['events']} stream events;", end=" ")
    print(f"{args.repeat} calls")
    print("| measure | median ms | aim |")
    print("|---|---|---|")
    p95 = f["server_p95"]
    print(f"| GeneratePlan, server-side (p95 {p95:.2f}) | {f['server_p50']:.2f} | < 50 |")
    print(f"| GeneratePlan, client-observed | {f['unary_p50']:.2f} | |")
    print(f"| StreamGeneratePlan, first event | {f['first_p50']:.2f} | < 10 |")
    print(f"| StreamGeneratePlan, whole stream | {f['stream_p50']:.2f} | |")


if __name__ == "__main__":
    main()
