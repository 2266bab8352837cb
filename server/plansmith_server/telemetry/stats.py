"""Per-method call statistics over a recent window, for `OpsService.GetServiceStatus`.

OpenTelemetry histograms are for exporters; an operator asking a single server "how is it
doing right now" wants percentiles of the last minutes, which needs the recent samples.
Each method keeps at most `max_samples` of them (the oldest go first), so memory is bounded.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass, field


@dataclass(frozen=True)
class MethodSummary:
    """Statistics of one method."""

    method: str
    total_calls: int
    total_errors: int
    window_calls: int
    error_rate: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    calls_per_second: float
    codes: dict[str, int]
    total_codes: dict[str, int]


@dataclass
class _Method:
    total: int = 0
    errors: int = 0
    total_codes: dict[str, int] = field(default_factory=dict)
    samples: deque[tuple[float, float, str]] = field(default_factory=deque)


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values (0 for none)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


class CallStats:
    """Records finished calls; summarizes them over a window."""

    def __init__(
        self, *, max_window: float = 3600.0, max_samples: int = 20_000, clock=time.monotonic
    ) -> None:
        self.max_window = max_window
        self.max_samples = max_samples
        self.clock = clock
        self.started = clock()
        self._methods: dict[str, _Method] = {}
        self.in_flight = 0
        self.active_streams = 0

    def record(self, method: str, code: str, duration_ms: float) -> None:
        m = self._methods.get(method)
        if m is None:
            m = self._methods[method] = _Method()
        m.total += 1
        m.total_codes[code] = m.total_codes.get(code, 0) + 1
        if code != "OK":
            m.errors += 1
        m.samples.append((self.clock(), duration_ms, code))
        if len(m.samples) > self.max_samples:
            m.samples.popleft()

    def summary(self, window: float) -> list[MethodSummary]:
        now = self.clock()
        window = min(window, self.max_window)
        since = now - window
        span = max(min(window, now - self.started), 1e-9)
        out = []
        for name in sorted(self._methods):
            m = self._methods[name]
            while m.samples and m.samples[0][0] < now - self.max_window:
                m.samples.popleft()
            recent = [s for s in m.samples if s[0] >= since]
            durations = sorted(s[1] for s in recent)
            codes: dict[str, int] = {}
            for s in recent:
                codes[s[2]] = codes.get(s[2], 0) + 1
            errors = len(recent) - codes.get("OK", 0)
            out.append(
                MethodSummary(
                    method=name,
                    total_calls=m.total,
                    total_errors=m.errors,
                    window_calls=len(recent),
                    error_rate=errors / len(recent) if recent else 0.0,
                    p50_ms=percentile(durations, 50),
                    p95_ms=percentile(durations, 95),
                    p99_ms=percentile(durations, 99),
                    calls_per_second=len(recent) / span,
                    codes=codes,
                    total_codes=dict(m.total_codes),
                )
            )
        return out
