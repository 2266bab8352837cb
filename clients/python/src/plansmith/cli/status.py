"""The status report as text: one implementation for `plansmith status` and
`plansmith-server status` (which imports it, so this module needs only protobuf)."""

from __future__ import annotations

from plansmith.v1 import ops_service_pb2


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
    if s.backends:
        lines += ["", "Planner backends:"]
        for b in s.backends:
            state = "none"  # the embedded planner has no breaker
            if b.breaker_state != ops_service_pb2.BREAKER_STATE_UNSPECIFIED:
                name = ops_service_pb2.BreakerState.Name(b.breaker_state)
                state = name.removeprefix("BREAKER_STATE_")
            if b.breaker_state == ops_service_pb2.BREAKER_STATE_OPEN:
                state += f" ({b.open_seconds_left:.0f}s left)"
            model = f" {b.model}" if b.model else ""
            lines.append(
                f"  {b.name:<16} {b.kind}{model}: breaker {state}, {b.calls} call(s), "
                f"{b.failures} failure(s), {b.fallbacks} fallback(s), "
                f"p50 {b.p50_ms:.0f} ms, p95 {b.p95_ms:.0f} ms, p99 {b.p99_ms:.0f} ms"
            )
            if b.last_error:
                lines.append(f"    last error: {b.last_error}")
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
