"""The access log's cost: GetTask on two servers, one with `--access-log errors` (the
default: no line for a call that ends OK) and one with `--access-log all` (a line per
call), both at the default `--log-level INFO`, lines written to /dev/null; with the echo
server as the ceiling, in one run.

    .venv/bin/python bench/access_log.py [--rounds 3] [--seconds 5] [--inflight 64]
    .venv/bin/python bench/access_log.py --in-process [--calls 200000]

The servers run alternately, `--rounds` times each, under h2load (see `load.py`). Prints
calls/s and each rate over the echo's of the same round, and the server's CPU time per
call (user + system, from /proc).

`--in-process` times the access-log concern alone around a handler that returns at once,
logging as the server does (text lines to /dev/null), in CPU time per call: a figure that
other jobs loading the machine barely move, unlike the rates.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from load import PATHS, echo_run, frame, launch_echo, plansmith_run, seed  # noqa: E402
from telemetry_overhead import launch as launch_plansmith  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


class _Context:
    """What the access-log concern reads of a finished unary call."""

    def code(self) -> None:
        return None  # OK

    def peer(self) -> str:
        return "ipv4:127.0.0.1:50000"

    def time_remaining(self) -> None:
        return None


def in_process(calls: int) -> None:
    import logging
    import time

    from plansmith_server import logs
    from plansmith_server.api.interceptors import AccessLogConcern

    logs.configure("INFO", "text")
    logging.getLogger().handlers[0].setStream(open(os.devnull, "w"))

    async def handler(request: object, context: object) -> object:
        return request

    async def run(every_call: bool) -> float:
        wrapped = AccessLogConcern(every_call=every_call).unary("/bench.Echo/Unary", handler)
        context = _Context()
        t0 = time.process_time()
        for _ in range(calls):
            await wrapped(b"", context)
        return (time.process_time() - t0) / calls * 1e6

    bare = asyncio.run(_bare(handler, calls))
    for every_call in (False, True, False, True):
        us = asyncio.run(run(every_call))
        mode = "all" if every_call else "errors"
        print(f"--access-log {mode:<6} {us - bare:6.2f} us of CPU per OK call (over the handler)")


async def _bare(handler, calls: int) -> float:
    import time

    t0 = time.process_time()
    for _ in range(calls):
        await handler(b"", None)
    return (time.process_time() - t0) / calls * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--inflight", type=int, default=64)
    ap.add_argument("--in-process", action="store_true", help="time the concern alone")
    ap.add_argument("--calls", type=int, default=200_000, help="calls for --in-process")
    args = ap.parse_args()
    if args.in_process:
        in_process(args.calls)
        return
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    modes = ("errors", "all")
    results: dict[str, list[tuple[float, float, float]]] = {m: [] for m in modes}
    with tempfile.TemporaryDirectory() as tmp:
        echo, echo_addr = launch_echo()
        servers = {}
        try:
            for mode in modes:
                os.environ["PLANSMITH_ACCESS_LOG"] = mode
                servers[mode] = launch_plansmith(f"{tmp}/{mode}.db", "off")
            del os.environ["PLANSMITH_ACCESS_LOG"]
            bodies = {m: frame(asyncio.run(seed(a))["GetTask"]) for m, (_, a) in servers.items()}
            for _ in range(args.rounds):
                for mode in modes:
                    proc, addr = servers[mode]
                    echo_rate = echo_run(echo_addr, args.inflight, args.seconds, tmp)["rate"]
                    cpu0 = cpu_seconds(proc.pid)
                    r = plansmith_run(
                        addr, PATHS["GetTask"], bodies[mode], args.inflight, args.seconds, tmp
                    )
                    us = (cpu_seconds(proc.pid) - cpu0) / max(r["succeeded"], 1) * 1e6
                    rate = r["rate"]
                    results[mode].append((rate, rate / echo_rate, us))
                    print(
                        f"--access-log {mode:<6} GetTask {rate:7.0f}/s  "
                        f"{rate / echo_rate:.2f} of the echo ({echo_rate:.0f}/s)  "
                        f"server CPU {us:5.0f} us/call  load {os.getloadavg()[0]:.2f}"
                    )
        finally:
            for proc, _ in (*servers.values(), (echo, "")):
                proc.terminate()
                proc.wait(timeout=30)
    print("\nmedians:")
    for mode in modes:
        rates, ratios, us = zip(*results[mode], strict=True)
        print(
            f"--access-log {mode:<6} {statistics.median(rates):7.0f}/s  "
            f"{statistics.median(ratios):.2f} of the echo  "
            f"{statistics.median(us):5.0f} us of server CPU per call"
        )


if __name__ == "__main__":
    main()
