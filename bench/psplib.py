"""PSPLIB benchmark of the schedulers.

Examples::

    .venv/bin/python bench/psplib.py --set j30 --sample 40 --time-limit 1
    .venv/bin/python bench/psplib.py --set j60,j120 --sample 10 --time-limit 10
    .venv/bin/python bench/psplib.py --set j30 --set j120 --solver heuristic --time-limit 1

Prints one Markdown table row per set: instances run, how many reached the best known
makespan (``ub`` of reference.csv), how many were proven optimal, mean % deviation from
``ub`` and from the critical-path bound ``cpm_lb``, and mean wall time per instance.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "server"))

from plansmith_server.scheduling.cpsat import CpSatScheduler  # noqa: E402
from plansmith_server.scheduling.heuristic import HeuristicScheduler  # noqa: E402
from plansmith_server.scheduling.psplib import load_sm  # noqa: E402
from plansmith_server.scheduling.validation import validate_schedule  # noqa: E402

SETS = ("j30", "j60", "j90", "j120")


@dataclass(frozen=True)
class Row:
    """Outcome of one instance."""

    instance: str
    makespan: float
    ub: int
    cpm_lb: int
    optimal: bool
    seconds: float


def instance_paths(psplib_dir: Path, set_name: str, sample: int | None) -> list[Path]:
    """Instances of a set in (parameter, instance) order; ``sample`` takes every k-th."""

    def key(p: Path) -> tuple[int, int]:
        par, inst = p.stem[len(set_name) :].split("_")
        return int(par), int(inst)

    paths = sorted((psplib_dir / set_name).glob("*.sm"), key=key)
    if sample and sample < len(paths):
        step = len(paths) / sample
        paths = [paths[int(i * step)] for i in range(sample)]
    return paths


def run_set(
    psplib_dir: Path,
    set_name: str,
    *,
    solver: str,
    time_limit: float,
    sample: int | None,
    workers: int,
    seed: int,
    max_iterations: int,
    verbose: bool,
    warm_share: float | None = None,
) -> list[Row]:
    """Solves the sampled instances of one set and validates every schedule."""
    ref = {r["instance"]: r for r in csv.DictReader(open(psplib_dir / "reference.csv"))}
    if solver == "cpsat":
        sched = CpSatScheduler(num_workers=workers, warm_start_share=warm_share)
    else:
        sched = HeuristicScheduler(max_iterations=max_iterations)
    rows = []
    for path in instance_paths(psplib_dir, set_name, sample):
        problem = load_sm(path)
        t0 = time.perf_counter()
        result = sched.solve(problem, time_limit_s=time_limit, seed=seed)
        dt = time.perf_counter() - t0
        violations = validate_schedule(problem, result)
        if violations:
            raise SystemExit(f"{problem.name}: invalid schedule: {violations[:3]}")
        r = ref[problem.name]
        row = Row(problem.name, result.makespan, int(r["ub"]), int(r["cpm_lb"]), result.optimal, dt)
        rows.append(row)
        if verbose:
            print(
                f"{row.instance}: {row.makespan:g} (ub {row.ub}, cpm {row.cpm_lb}) "
                f"opt={row.optimal} {row.seconds:.2f}s",
                file=sys.stderr,
            )
    return rows


def summary_line(set_name: str, rows: list[Row]) -> str:
    """One Markdown table row."""
    dev_ub = statistics.mean(100 * (r.makespan - r.ub) / r.ub for r in rows)
    dev_cpm = statistics.mean(100 * (r.makespan - r.cpm_lb) / r.cpm_lb for r in rows)
    at_ub = sum(r.makespan <= r.ub for r in rows)
    opt = sum(r.optimal for r in rows)
    secs = statistics.mean(r.seconds for r in rows)
    return (
        f"| {set_name} | {len(rows)} | {at_ub} | {opt} | {dev_ub:.2f} | {dev_cpm:.2f} "
        f"| {secs:.2f} |"
    )


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--set", action="append", default=[], help="j30|j60|j90|j120 (repeatable or comma list)"
    )
    ap.add_argument("--time-limit", type=float, default=1.0, help="seconds per instance")
    ap.add_argument("--sample", type=int, default=None, help="N instances per set (every k-th)")
    ap.add_argument("--solver", choices=("cpsat", "heuristic"), default="cpsat")
    ap.add_argument("--workers", type=int, default=2, help="CP-SAT workers")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-iterations", type=int, default=10**9, help="heuristic SGS-pass cap")
    ap.add_argument("--warm-share", type=float, default=None, help="CP-SAT warm-start time share")
    ap.add_argument("--psplib-dir", type=Path, default=REPO.parent / "shared" / "psplib")
    ap.add_argument("-v", "--verbose", action="store_true", help="per-instance lines on stderr")
    args = ap.parse_args(argv)
    sets = [s for item in (args.set or ["j30"]) for s in item.split(",") if s]
    for s in sets:
        if s not in SETS:
            ap.error(f"unknown set {s!r}")
    print(
        f"solver={args.solver} time_limit={args.time_limit}s workers={args.workers} "
        f"sample={args.sample} seed={args.seed}"
    )
    print()
    print(
        "| set | instances | at best known | proven optimal | mean dev. from best known % "
        "| mean dev. from CPM bound % | mean s/instance |"
    )
    print("|---|---|---|---|---|---|---|")
    for s in sets:
        rows = run_set(
            args.psplib_dir,
            s,
            solver=args.solver,
            time_limit=args.time_limit,
            sample=args.sample,
            workers=args.workers,
            seed=args.seed,
            max_iterations=args.max_iterations,
            verbose=args.verbose,
            warm_share=args.warm_share,
        )
        print(summary_line(s, rows), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
