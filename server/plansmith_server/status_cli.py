"""`plansmith-server status --target HOST:PORT`: the status report, readable."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import grpc
from google.protobuf import json_format

from plansmith.v1 import ops_service_pb2, ops_service_pb2_grpc


def render(s: ops_service_pb2.GetServiceStatusResponse) -> str:
    """The report as text for a terminal."""
    lines = [
        f"Plansmith {s.version}: up {_duration(s.uptime_seconds)}, "
        f"{s.calls_in_flight} call(s) in flight, {s.active_streams} stream(s) open",
        "",
        f"Database: {'healthy' if s.database.healthy else 'UNHEALTHY'}"
        f" ({s.database.probe_latency_ms:.2f} ms probe, {_size(s.database.size_bytes)},"
        f" {s.database.path})" + (f": {s.database.error}" if s.database.error else ""),
        "",
        f"Calls over the last {s.window_seconds}s:",
    ]
    header = (
        f"{'method':<48} {'calls':>7} {'err%':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
        f"{'/s':>8} {'total':>8}"
    )
    lines.append(header)
    lines.append("-" * len(header))
    for m in s.methods:
        lines.append(
            f"{m.method:<48} {m.window_calls:>7} {m.error_rate * 100:>5.1f}% {m.p50_ms:>8.2f} "
            f"{m.p95_ms:>8.2f} {m.p99_ms:>8.2f} {m.calls_per_second:>8.2f} {m.total_calls:>8}"
        )
        errors = {k: v for k, v in sorted(m.codes.items()) if k != "OK"}
        if errors:
            lines.append("    errors: " + ", ".join(f"{k} {v}" for k, v in errors.items()))
    if not s.methods:
        lines.append("(no calls yet)")
    if s.caches:
        lines += ["", "Caches:"]
        for c in s.caches:
            lookups = c.hits + c.misses
            rate = f"{c.hits / lookups * 100:.0f}% hits" if lookups else "no lookups yet"
            lines.append(
                f"  {c.name:<16} {c.entries:>7} entries, {c.size}/{c.capacity} held, {rate} "
                f"({c.hits} of {lookups})"
            )
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def main(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(
        prog="plansmith-server status", description="Print a running server's status report."
    )
    p.add_argument("--target", default="127.0.0.1:50051", help="host:port of the server")
    p.add_argument("--window", type=int, default=300, help="seconds of history (max 3600)")
    p.add_argument("--json", action="store_true", help="print the raw report as JSON")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for the server")
    args = p.parse_args(argv)
    with grpc.insecure_channel(args.target) as ch:
        stub = ops_service_pb2_grpc.OpsServiceStub(ch)
        try:
            s = stub.GetServiceStatus(
                ops_service_pb2.GetServiceStatusRequest(window_seconds=args.window),
                timeout=args.timeout,
            )
        except grpc.RpcError as e:
            print(
                f"plansmith-server status: {args.target}: {e.code().name}: {e.details()}",
                file=sys.stderr,
            )
            return 1
    print(json_format.MessageToJson(s) if args.json else render(s))
    return 0
