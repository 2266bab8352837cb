"""Fit the planner's confidence on the labelled briefs (issue 19).

``GeneratedPlan.confidence`` is the probability that a reviewer accepts the plan's
structure; ``bench/plan_quality.py`` records the reviewer's verdict per brief (a plan is
*right* when every label holds). This script plans the **tune** half with the embedded
planner, computes each plan's confidence features (``planning/confidence.py``), and fits:

* for recognized briefs, a logistic regression of "right" on the features (maximum
  likelihood with an L2 penalty, Newton's method; deterministic);
* for unrecognized briefs, the share of right plans with a Laplace prior.

It prints the coefficients to copy into ``planning/confidence.py`` and a reliability
table (mean confidence vs share right per bin) of the *current* model. It never reads
the holdout half.

Example::

    .venv/bin/python bench/calibrate_confidence.py
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO / "server"))

from plan_quality import (  # noqa: E402
    RIGHT,
    EmbeddedPlanner,
    PlanView,
    TaskView,
    load_benchmark,
    score_plan,
)

from plansmith_server.planning import generate_plan  # noqa: E402
from plansmith_server.planning.confidence import FEATURES, confidence_features  # noqa: E402
from plansmith_server.planning.recognition import recognize_domain  # noqa: E402
from plansmith_server.planning.text import tokenize  # noqa: E402

L2 = 1.0


def _fit(rows: list[tuple[list[float], int]]) -> list[float]:
    """L2-penalized logistic regression by Newton's method (intercept unpenalized)."""
    k = len(rows[0][0])
    w = [0.0] * k
    for _ in range(50):
        grad = [0.0] * k
        hess = [[0.0] * k for _ in range(k)]
        for x, y in rows:
            z = sum(wi * xi for wi, xi in zip(w, x, strict=True))
            p = 1.0 / (1.0 + math.exp(-z))
            for i in range(k):
                grad[i] += (p - y) * x[i]
                for j in range(k):
                    hess[i][j] += p * (1 - p) * x[i] * x[j]
        for i in range(1, k):
            grad[i] += L2 * w[i]
            hess[i][i] += L2
        step = _solve(hess, grad)
        w = [wi - si for wi, si in zip(w, step, strict=True)]
        if max(abs(s) for s in step) < 1e-9:
            break
    return w


def _solve(a: list[list[float]], b: list[float]) -> list[float]:
    n = len(b)
    m = [[*row, b[i]] for i, row in enumerate(a)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(m[r][col]))
        m[col], m[pivot] = m[pivot], m[col]
        for r in range(n):
            if r != col and m[col][col]:
                f = m[r][col] / m[col][col]
                m[r] = [x - f * y for x, y in zip(m[r], m[col], strict=True)]
    return [m[i][n] / m[i][i] if m[i][i] else 0.0 for i in range(n)]


def main() -> int:
    bench = load_benchmark()
    planner = EmbeddedPlanner(bench.now)
    recognized: list[tuple[list[float], int]] = []
    unrecognized: list[int] = []
    current: list[tuple[float, int]] = []
    for brief in bench.briefs:
        if brief.half != "tune":
            continue
        request = planner.request(brief)
        plan = generate_plan(request, now=bench.now, library=planner.library)
        view = PlanView(
            tasks=tuple(
                TaskView(t.id, t.title, t.description, tuple(t.dependencies)) for t in plan.tasks
            ),
            warnings=frozenset(w.code for w in plan.warnings),
            confidence=plan.confidence,
        )
        right = int(score_plan(brief, view).verdict == RIGHT)
        head = tokenize(f"{request.name}. {request.description}")
        whole = tokenize(" ".join((request.name, request.description, *request.requirements)))
        features = confidence_features(
            recognize_domain(planner.library, head, whole), plan.explanation.requirement_coverage
        )
        current.append((plan.confidence, right))
        if features.recognized:
            recognized.append(([1.0, *(getattr(features, f) for f in FEATURES)], right))
        else:
            unrecognized.append(right)
    weights = _fit(recognized)
    print(
        f"tune half: {len(recognized)} recognized ({sum(y for _, y in recognized)} right), "
        f"{len(unrecognized)} unrecognized ({sum(unrecognized)} right)"
    )
    print("COEFFICIENTS = {")
    for name, value in zip(("intercept", *FEATURES), weights, strict=True):
        print(f'    "{name}": {value:.3f},')
    print("}")
    rate = (sum(unrecognized) + 1) / (len(unrecognized) + 2)
    print(f"UNRECOGNIZED_BASE = {rate:.3f}  # Laplace-smoothed share right when not recognized")
    print("\nreliability of the current model (confidence bin: n, mean confidence, share right)")
    for low in (0.0, 0.2, 0.4, 0.6, 0.8):
        cell = [(c, y) for c, y in current if low <= c < low + 0.2 or (low == 0.8 and c == 1.0)]
        if cell:
            mean = sum(c for c, _ in cell) / len(cell)
            share = sum(y for _, y in cell) / len(cell)
            span = f"[{low:.1f}, {low + 0.2:.1f})"
            print(f"  {span}: n={len(cell):2}  conf {mean:.2f}  right {share:.2f}")
    brier = sum((c - y) ** 2 for c, y in current) / len(current)
    print(f"  Brier {brier:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
