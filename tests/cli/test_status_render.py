"""The status report shows each planner backend (one renderer for `plansmith status` and
`plansmith-server status`)."""

from __future__ import annotations

from plansmith.cli.status import render
from plansmith.v1 import ops_service_pb2 as ops


def test_backends_show_breaker_state_counts_latency_and_last_error():
    status = ops.GetServiceStatusResponse(
        backends=[
            ops.BackendStatus(
                name="cloud",
                kind="openai",
                model="gpt-4o-mini",
                breaker_state=ops.BREAKER_STATE_OPEN,
                open_seconds_left=42,
                calls=7,
                failures=5,
                fallbacks=5,
                p50_ms=812,
                p95_ms=2400,
                p99_ms=3100,
                last_error="HTTP 503 from the backend",
            ),
            ops.BackendStatus(name="embedded", kind="embedded", calls=9),
        ]
    )
    text = render(status)
    lines = text.splitlines()
    start = lines.index("Planner backends:")
    cloud, error, embedded = lines[start + 1 : start + 4]
    assert cloud.split() == [
        "cloud", "openai", "gpt-4o-mini:", "breaker", "OPEN", "(42s", "left),", "7", "call(s),",
        "5", "failure(s),", "5", "fallback(s),", "p50", "812", "ms,", "p95", "2400", "ms,",
        "p99", "3100", "ms",
    ]  # fmt: skip
    assert error.strip() == "last error: HTTP 503 from the backend"
    assert "embedded: breaker none, 9 call(s)" in embedded


def test_no_backends_section_without_backends():
    assert "Planner backends" not in render(ops.GetServiceStatusResponse())
