"""Accuracy of EstimateTaskDuration on a synthetic history with known rules.

Example::

    .venv/bin/python bench/estimation.py --history 200 --queries 100

True hours = base effort of the task type x size modifier x agent pace x noise (see
``plansmith_server.planning.synthetic``). Prints the MAPE (mean absolute percentage
error) of: history + agent pace, history only (no agent given), and the library-only
baseline (no history), plus the mean time per call.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "server"))

from plansmith_server.planning import estimate_task_duration  # noqa: E402
from plansmith_server.planning.synthetic import synthetic_history, synthetic_queries  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--history", type=int, default=200)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    history = synthetic_history(args.history, seed=args.seed)
    queries = synthetic_queries(args.queries, seed=args.seed + 4)

    def run(label: str, **kwargs) -> None:
        errors = []
        start = time.perf_counter()
        for q in queries:
            agent = q.agent if kwargs.get("agent") else ""
            result = estimate_task_duration(
                q.description,
                title=q.title,
                agent_id=agent,
                history=history if kwargs.get("history") else (),
            )
            errors.append(abs(result.estimate_hours - q.true_hours) / q.true_hours)
        per_call = (time.perf_counter() - start) / len(queries) * 1000
        print(f"| {label} | {100 * sum(errors) / len(errors):.1f}% | {per_call:.2f} |")

    print(f"history: {len(history)} completed tasks; queries: {len(queries)}")
    print("| estimator | MAPE | ms/call |")
    print("|---|---|---|")
    run("history + agent pace", history=True, agent=True)
    run("history only (no agent)", history=True, agent=False)
    run("library only (baseline)", history=False, agent=True)


if __name__ == "__main__":
    main()
