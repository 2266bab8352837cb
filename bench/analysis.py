"""Timing of the plan-analysis domain functions.

Examples::

    .venv/bin/python bench/analysis.py                 # every benchmark
    .venv/bin/python bench/analysis.py --only cpm --tasks 100000 --edges 300000
    .venv/bin/python bench/analysis.py --only montecarlo --mc-tasks 1000 --samples 10000

``server``: AnalyzePlan (all analyses, 10,000 samples) on a stored 1,000-task plan through
a real server process; the server-side time comes from the server's own interceptors
(OpsService status), so the network and the client are excluded.

``risk``: AnalyzePlan's risk assessment alone, default samples, on the same stored plan
(8 agents, 80 % of the tasks assigned, so the simulation schedules each agent's sequence).

With ``--baseline-ref REF``, ``server`` and ``risk`` also run a server on the ``server/``
tree of that commit (e.g. ``4d172b1``, the last whose simulation ignored the agents), call
both in alternation and print the ratio this tree / baseline::

    .venv/bin/python bench/analysis.py --only risk --baseline-ref 4d172b1

``cpm``: CPM (levels, forward and backward pass) on a random DAG, as index arrays
(:func:`cpm_arrays`) and through the id-level API (:func:`analyze_cpm`, which also maps
string ids and lists critical paths). ``montecarlo``: :func:`monte_carlo_timing`.
Prints the median of ``--runs`` runs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "server"))

from plansmith_server.scheduling.cpm import analyze_cpm, cpm_arrays  # noqa: E402
from plansmith_server.scheduling.montecarlo import simulate  # noqa: E402


def random_dag(n: int, m: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``m`` random edges between ``n`` nodes, acyclic, node order shuffled."""
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, n, m), rng.integers(0, n, m)
    keep = a != b
    perm = rng.permutation(n)
    return perm[np.minimum(a, b)[keep]], perm[np.maximum(a, b)[keep]]


def median_time(fn: Callable[[], object], runs: int) -> float:
    """Median wall time of ``runs`` calls."""
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def cpm_timing(n: int, m: int, runs: int) -> tuple[float, float]:
    """Median seconds of :func:`cpm_arrays` and of :func:`analyze_cpm` on a random DAG."""
    src, dst = random_dag(n, m)
    dur = np.random.default_rng(1).uniform(0, 10, n)
    ids = [f"task-{i}" for i in range(n)]
    deps: list[list[str]] = [[] for _ in range(n)]
    for u, v in zip(src.tolist(), dst.tolist(), strict=True):
        deps[v].append(ids[u])
    t_arr = median_time(lambda: cpm_arrays(dur, src, dst), runs)
    t_ids = median_time(lambda: analyze_cpm(ids, dur, deps), runs)
    return t_arr, t_ids


def monte_carlo_timing(
    n_tasks: int = 1000,
    samples: int = 10_000,
    edges_per_task: int = 3,
    runs: int = 3,
    seed: int = 0,
) -> float:
    """Median seconds of one Monte Carlo run (criticality included) on a random DAG.

    Args:
        n_tasks: Tasks.
        samples: Samples per run.
        edges_per_task: Average dependencies per task.
        runs: Runs to take the median of.
        seed: Seed of the graph and of the simulation.
    """
    src, dst = random_dag(n_tasks, n_tasks * edges_per_task, seed)
    m = np.random.default_rng(seed + 1).uniform(1, 10, n_tasks)
    return median_time(
        lambda: simulate(0.8 * m, m, 1.5 * m, src, dst, samples=samples, seed=seed), runs
    )


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--only", choices=("cpm", "montecarlo", "server", "risk"), default=None)
    ap.add_argument(
        "--baseline-ref",
        default=None,
        help="server, risk: also time a server running this commit's server/ tree",
    )
    ap.add_argument("--tasks", type=int, default=100_000)
    ap.add_argument("--edges", type=int, default=300_000)
    ap.add_argument("--mc-tasks", type=int, default=1000)
    ap.add_argument("--samples", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args(argv)
    if args.only in (None, "cpm"):
        t_arr, t_ids = cpm_timing(args.tasks, args.edges, args.runs)
        print(
            f"CPM {args.tasks} tasks / {args.edges} edges: cpm_arrays {t_arr:.3f} s, "
            f"analyze_cpm (ids, critical paths) {t_ids:.3f} s (median of {args.runs})"
        )
    if args.only in (None, "montecarlo"):
        t = monte_carlo_timing(args.mc_tasks, args.samples, runs=min(args.runs, 3))
        print(
            f"Monte Carlo {args.mc_tasks} tasks x {args.samples} samples: {t:.3f} s "
            f"(median of {min(args.runs, 3)})"
        )
    for mode in ("server", "risk"):
        if args.only not in (None, mode):
            continue
        risk_only = mode == "risk"
        samples = 0 if risk_only else args.samples
        what = (
            "risk assessment, default samples"
            if risk_only
            else f"{args.samples} samples, all analyses"
        )
        times = server_timing(
            args.mc_tasks,
            args.runs,
            samples=samples,
            risk_only=risk_only,
            baseline_ref=args.baseline_ref,
        )
        for name, (p50, p95, n, hours, cpu) in times.items():
            print(
                f"AnalyzePlan on a stored {args.mc_tasks}-task plan, {what}, {name}: "
                f"server-side p50 {p50:.3f} s, p95 {p95:.3f} s ({n} calls), "
                f"server CPU {cpu:.3f} s per call (median); forecast P50 {hours:.1f} h"
            )
        if len(times) == 2:
            (new, *_, new_cpu), (old, *_, old_cpu) = times.values()
            print(
                f"  ratio this tree / {args.baseline_ref}: {new / old:.2f} (p50), "
                f"{new_cpu / old_cpu:.2f} (CPU)"
            )
    return 0


def bench_plan(n_tasks: int) -> tuple[list[Any], list[Any]]:
    """Agents and tasks of the stored benchmark plan: 8 agents, up to 3 dependencies per
    task on earlier ones, 80 % of the tasks assigned, the first 10 % done."""
    import random

    from plansmith.v1 import agent_pb2, task_pb2

    rng = random.Random(1)
    agents = [agent_pb2.Agent(id=f"a{i}", capabilities=["backend"]) for i in range(8)]
    tasks = []
    for i in range(n_tasks):
        deps = sorted({f"r{rng.randrange(i)}" for _ in range(rng.randint(0, 3))}) if i else []
        o = rng.uniform(1, 8)
        tasks.append(
            task_pb2.Task(
                id=f"r{i}",
                title=f"task {i}",
                estimated_hours=o * 1.5,
                optimistic_hours=o,
                pessimistic_hours=o * 3,
                dependencies=deps,
                assigned_to=agents[rng.randrange(len(agents))].id if rng.random() < 0.8 else "",
                status=task_pb2.TASK_STATUS_DONE
                if i < n_tasks // 10
                else task_pb2.TASK_STATUS_TODO,
            )
        )
    return agents, tasks


async def store_plan(address: str, n_tasks: int) -> str:
    """Stores the benchmark plan on the server at `address`; returns its id."""
    import grpc

    from plansmith.v1 import plan_pb2, plan_service_pb2, plan_service_pb2_grpc

    agents, tasks = bench_plan(n_tasks)
    async with grpc.aio.insecure_channel(address) as ch:
        plans = plan_service_pb2_grpc.PlanServiceStub(ch)
        plan = (
            await plans.CreatePlan(
                plan_service_pb2.CreatePlanRequest(plan=plan_pb2.Plan(name="big", agents=agents))
            )
        ).plan
        await plans.BatchCreateTasks(
            plan_service_pb2.BatchCreateTasksRequest(plan_id=plan.id, tasks=tasks)
        )
    return str(plan.id)


async def analyze_stats(address: str) -> tuple[float, float, int]:
    """Server-side p50 and p95 seconds and call count of AnalyzePlan (OpsService status)."""
    import grpc

    from plansmith.v1 import ops_service_pb2, ops_service_pb2_grpc

    async with grpc.aio.insecure_channel(address) as ch:
        status = await ops_service_pb2_grpc.OpsServiceStub(ch).GetServiceStatus(
            ops_service_pb2.GetServiceStatusRequest(window_seconds=3600)
        )
    m = {x.method: x for x in status.methods}["/plansmith.v1.PlanningService/AnalyzePlan"]
    return m.p50_ms / 1000, m.p95_ms / 1000, int(m.window_calls)


async def analyze(address: str, request: Any) -> Any:
    import grpc

    from plansmith.v1 import planning_service_pb2_grpc

    async with grpc.aio.insecure_channel(address) as ch:
        return await planning_service_pb2_grpc.PlanningServiceStub(ch).AnalyzePlan(request)


def server_timing(
    n_tasks: int, runs: int, *, samples: int = 0, risk_only: bool, baseline_ref: str | None = None
) -> dict[str, tuple[float, float, int, float, float]]:
    """AnalyzePlan on the stored benchmark plan of `n_tasks` tasks: all analyses, or the
    risk assessment alone; `samples` 0 for the default. Per server (this tree's and, given
    `baseline_ref`, that commit's, called in alternation after one warm-up call each):
    server-side p50 and p95 seconds, calls, the last forecast's P50 hours, and the median
    CPU seconds the server process spent per call (warm-up excluded), which other jobs on
    the machine disturb far less than the elapsed time."""
    import asyncio
    import subprocess
    import tempfile

    from plansmith.v1 import planning_service_pb2 as pb

    types = [pb.ANALYSIS_TYPE_RISK_ASSESSMENT] if risk_only else []
    with tempfile.TemporaryDirectory() as tmp:
        trees: dict[str, str | None] = {"this tree": None}
        if baseline_ref:
            base = Path(tmp) / "baseline"
            base.mkdir()
            archive = subprocess.run(
                ["git", "-C", str(REPO), "archive", baseline_ref, "server"],
                check=True,
                capture_output=True,
            ).stdout
            subprocess.run(["tar", "-x", "-C", str(base)], input=archive, check=True)
            trees[baseline_ref] = str(base / "server")
        servers = {
            name: launch_server(f"{tmp}/{i}.db", server_dir)
            for i, (name, server_dir) in enumerate(trees.items())
        }
        try:

            async def run() -> dict[str, tuple[float, float, int, float, float]]:
                ids = {name: await store_plan(addr, n_tasks) for name, (_, addr) in servers.items()}
                hours = {}
                cpu: dict[str, list[float]] = {name: [] for name in servers}
                for seed in range(runs + 1):
                    for name, (proc, addr) in servers.items():
                        before = cpu_seconds(proc.pid)
                        r = await analyze(
                            addr,
                            pb.AnalyzePlanRequest(
                                plan_id=ids[name],
                                analysis_types=types,
                                monte_carlo_samples=samples,
                                seed=seed,
                            ),
                        )
                        if seed:  # the first call warms up
                            cpu[name].append(cpu_seconds(proc.pid) - before)
                        hours[name] = r.risk_assessment.p50_hours
                return {
                    name: (*await analyze_stats(addr), hours[name], statistics.median(cpu[name]))
                    for name, (_, addr) in servers.items()
                }

            return asyncio.run(run())
        finally:
            for proc, _ in servers.values():
                proc.terminate()
                proc.wait(timeout=30)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process `pid`, all its threads (Linux /proc)."""
    import os

    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def launch_server(db: str, server_dir: str | None = None) -> tuple[Any, str]:
    """A bench server (`_serve.py`, telemetry off) on `db`, running the `plansmith_server`
    of `server_dir` instead of the installed one if given."""
    import os
    import subprocess

    env = dict(os.environ)
    if server_dir:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [server_dir, env.get("PYTHONPATH")]))
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "bench" / "_serve.py"), db, "off"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("ADDRESS "):
        proc.kill()
        raise RuntimeError(f"bench server did not start: {line!r}")
    return proc, line.split()[1]


if __name__ == "__main__":
    raise SystemExit(main())
