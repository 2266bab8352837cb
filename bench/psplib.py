"""PSPLIB benchmark of the schedulers.

Examples::

    .venv/bin/python bench/psplib.py --set j30 --sample 40 --time-limit 1
    .venv/bin/python bench/psplib.py --set j60,j120 --sample 10 --time-limit 10
    .venv/bin/python bench/psplib.py --set j30 --set j120 --solver heuristic --time-limit 1

Prints one Markdown table row per set: instances run, how many reached the best known
makespan (``ub`` of reference.csv), how many were proven optimal, mean % deviation from
``ub`` and from the critical-path bound ``cpm_lb``, and mean wall time per instance.

The data is not in the repository (about 19 MB): see ``DATA_HELP`` below. Point
``--psplib-dir`` or ``PLANSMITH_PSPLIB_DIR`` at it; ``tests/data/psplib`` holds four j30
instances of it to try the script with.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "server"))


SETS = ("j30", "j60", "j90", "j120")

DATA_HELP = """\
The PSPLIB data is not in the repository. It is the PSPLIB single-mode RCPSP benchmark
(Kolisch & Sprecher; https://www.om-db.wi.tum.de/psplib/): the instance sets j30, j60,
j90, j120 as folders of .sm files, and a reference.csv with one row per instance and at
least the columns instance (e.g. j301_1), ub (the optimum or best known makespan, from
PSPLIB's j30opt.sm / jXXhrs.sm) and cpm_lb (the critical-path length ignoring
resources). Put them in one folder (j30/*.sm, ..., reference.csv) and pass
--psplib-dir DIR or set PLANSMITH_PSPLIB_DIR=DIR. To try the script:
--psplib-dir tests/data/psplib (four j30 instances)."""


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


def missing_data(psplib_dir: Path | None, sets: list[str]) -> str:
    """What of the data is missing ("" when nothing is)."""
    if psplib_dir is None:
        return "No PSPLIB folder given (--psplib-dir or PLANSMITH_PSPLIB_DIR)."
    psplib_dir = Path(psplib_dir)
    if not (psplib_dir / "reference.csv").is_file():
        return f"No reference.csv in {psplib_dir}."
    for s in sets:
        if not any((psplib_dir / s).glob("*.sm")):
            return f"No {s} instances ({psplib_dir / s}/*.sm)."
    return ""


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
    # Imported here, so that a missing data folder is reported without loading OR-Tools.
    from plansmith_server.scheduling.cpsat import CpSatScheduler
    from plansmith_server.scheduling.heuristic import HeuristicScheduler
    from plansmith_server.scheduling.psplib import load_sm
    from plansmith_server.scheduling.validation import validate_schedule

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
    ap.add_argument(
        "--psplib-dir",
        type=Path,
        default=os.environ.get("PLANSMITH_PSPLIB_DIR"),
        help="folder with j30/ ... j120/ and reference.csv (default: $PLANSMITH_PSPLIB_DIR)",
    )
    ap.add_argument("-v", "--verbose", action="store_true", help="per-instance lines on stderr")
    args = ap.parse_args(argv)
    sets = [s for item in (args.set or ["j30"]) for s in item.split(",") if s]
    for s in sets:
        if s not in SETS:
            ap.error(f"unknown set {s!r}")
    missing = missing_data(args.psplib_dir, sets)
    if missing:
        print(f"{missing}\n\n{DATA_HELP}", file=sys.stderr)
        return 2
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
