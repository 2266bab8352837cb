"""Overload soak: twice the sustainable load for several minutes; is the p99 of accepted
calls bounded, and does memory stay flat?

    .venv/bin/python bench/soak.py [--minutes 4] [--call CreateTask]

1. Measures the sustainable rate R of the call: h2load, 64 calls in flight, 5 s.
2. Offers R for 30 s, then 2 R for `--minutes`, open loop (h2load `--rps` over four
   connections, so arrivals do not wait for answers). The server lets each connection
   hold 100 calls (HTTP/2 MAX_CONCURRENT_STREAMS; h2load queues the rest itself), and
   refuses a growing share of calls, RESOURCE_EXHAUSTED + RetryInfo, once it holds more
   than `--max-in-flight` (256) running or waiting in gRPC core. h2load neither retries
   nor backs off, so its four connections keep 400 calls at the server: the worst case
   for goodput, as every call must be refused or served.
3. Meanwhile a probe (a grpc.aio client in this process, 20 GetTask calls a second,
   which the load shares the server with) measures end to end what an accepted call
   costs, and the server's resident set size (VmRSS) is sampled every 5 s.

Prints accepted and refused rates (from the server's per-code counts), the probe's p50 and
p99 for accepted calls at 1x and 2x, the server-side p99 (over the last 20,000 calls of
the phase: the status report keeps that many samples per method), and the RSS of
the first and the last minute of the 2x phase with their ratio (the aim: within 10 %).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from load import PATHS, frame, plansmith_codes, seed  # noqa: E402
from telemetry_overhead import launch, pct  # noqa: E402

from plansmith.v1 import (  # noqa: E402
    ops_service_pb2,
    ops_service_pb2_grpc,
    plan_service_pb2,
    plan_service_pb2_grpc,
)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


CONNECTIONS = 4


def h2load_cmd(address: str, path: str, body_file: str, seconds: int, rps: int | None) -> list:
    cmd = ["h2load", f"http://{address}{path}", "-d", body_file]
    cmd += ["-H", "content-type: application/grpc", "-H", "te: trailers"]
    if rps is None:
        cmd += ["-c", "1", "-m", "64"]
    else:
        # h2load's --rps is per connection
        cmd += ["-c", str(CONNECTIONS), "-m", "1024", "--rps", str(max(1, rps // CONNECTIONS))]
    return [*cmd, "-D", str(seconds)]


def sustainable_rate(address: str, path: str, body_file: str) -> float:
    out = subprocess.run(
        [*h2load_cmd(address, path, body_file, 5, None), "--warm-up-time", "1"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("finished in"))
    return float(line.split(",")[1].split()[0])


async def phase(
    address: str, pid: int, cmd: list[str], seconds: int, probe_request
) -> tuple[list[float], int, list[tuple[float, int]]]:
    """Runs one h2load phase; returns probe latencies of accepted calls (ms), probe calls
    refused, and (time, RSS KiB) samples."""
    proc = await asyncio.create_subprocess_exec(
        *cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    latencies: list[float] = []
    refused = 0
    rss: list[tuple[float, int]] = []
    start = time.monotonic()
    async with grpc.aio.insecure_channel(address) as ch:
        stub = plan_service_pb2_grpc.PlanServiceStub(ch)
        next_rss = start
        while time.monotonic() - start < seconds and proc.returncode is None:
            now = time.monotonic()
            if now >= next_rss:
                rss.append((now - start, rss_kib(pid)))
                next_rss += 5
            t0 = time.perf_counter()
            try:
                await stub.GetTask(probe_request, timeout=10)
                latencies.append((time.perf_counter() - t0) * 1000)
            except grpc.aio.AioRpcError as e:
                if e.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
                    raise
                refused += 1
            await asyncio.sleep(max(0.0, 0.05 - (time.perf_counter() - t0)))
    await asyncio.wait_for(proc.wait(), timeout=60)
    return latencies, refused, rss


async def server_p99(address: str, path: str, window: int) -> float:
    async with grpc.aio.insecure_channel(address) as ch:
        s = await ops_service_pb2_grpc.OpsServiceStub(ch).GetServiceStatus(
            ops_service_pb2.GetServiceStatusRequest(window_seconds=window)
        )
    return next((m.p99_ms for m in s.methods if m.method == path), float("nan"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--minutes", type=float, default=4.0, help="length of the 2x phase")
    ap.add_argument("--call", default="CreateTask", choices=sorted(PATHS))
    args = ap.parse_args()
    overload_s = max(60, int(args.minutes * 60))
    path = PATHS[args.call]
    with tempfile.TemporaryDirectory() as tmp:
        server, address = launch(f"{tmp}/soak.db", "off")
        try:
            reqs = asyncio.run(seed(address))
            body_file = os.path.join(tmp, "body.bin")
            Path(body_file).write_bytes(frame(reqs[args.call]))
            probe = plan_service_pb2.GetTaskRequest(task_id=reqs["GetTask"].task_id)
            rate = sustainable_rate(address, path, body_file)
            print(f"sustainable {args.call}: {rate:.0f}/s (64 in flight)", flush=True)
            results = {}
            for label, rps, seconds in (("1x", rate, 30), ("2x", 2 * rate, overload_s)):
                before = asyncio.run(plansmith_codes(address, path))
                t0 = time.monotonic()
                lat, refused, rss = asyncio.run(
                    phase(
                        address,
                        server.pid,
                        h2load_cmd(address, path, body_file, seconds, int(rps)),
                        seconds,
                        probe,
                    )
                )
                elapsed = time.monotonic() - t0
                after = asyncio.run(plansmith_codes(address, path))
                codes = {k: after.get(k, 0) - before.get(k, 0) for k in after}
                sp99 = asyncio.run(server_p99(address, path, int(elapsed)))
                results[label] = (rps, codes, elapsed, lat, refused, rss, sp99)
                print(f"  {label} done", flush=True)
        finally:
            server.terminate()
            server.wait(timeout=30)
    print(f"\n{args.call}, open loop; probe: GetTask at 20/s from a grpc.aio client")
    print(
        "| phase | offered/s | accepted/s | refused/s | other | probe p50 ms | probe p99 ms "
        "| probe refused | server p99 ms, last 20k calls |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for label, (rps, codes, elapsed, lat, refused, _, sp99) in results.items():
        ok = codes.get("OK", 0)
        shed = codes.get("RESOURCE_EXHAUSTED", 0)
        # Calls in flight when h2load hangs up at the end of a phase end CANCELLED.
        other = ", ".join(
            f"{n} {code}"
            for code, n in sorted(codes.items())
            if n and code not in ("OK", "RESOURCE_EXHAUSTED")
        )
        print(
            f"| {label} ({elapsed:.0f} s) | {rps:.0f} | {ok / elapsed:.0f} | {shed / elapsed:.0f} "
            f"| {other or 0} | {pct(lat, 50):.1f} | {pct(lat, 99):.1f} | {refused} | {sp99:.1f} |"
        )
    rss = results["2x"][5]
    first = [kib for t, kib in rss if t < 60]
    last = [kib for t, kib in rss if t >= rss[-1][0] - 60]
    a, b = statistics.mean(first) / 1024, statistics.mean(last) / 1024
    print(
        f"\nserver RSS, 2x phase: first minute {a:.1f} MiB, last minute {b:.1f} MiB, "
        f"ratio {b / a:.3f} (aim: within 10 %); max {max(k for _, k in rss) / 1024:.1f} MiB"
    )


if __name__ == "__main__":
    main()
