"""Fit the planner's confidence on the labelled briefs (issue 19).

``GeneratedPlan.confidence`` is the probability that a reviewer accepts the plan's
structure; ``bench/plan_quality.py`` records the reviewer's verdict per brief (a plan is
*right* when every label holds). This script plans the **tune** briefs of one or more
labelled files (default: ``briefs.toml`` and ``dev_briefs.toml``) with the embedded
planner, computes each plan's confidence features (``planning/confidence.py``), and fits:

* for recognized briefs, a logistic regression of "right" on the features (maximum
  likelihood with an L2 penalty, Newton's method; deterministic);
* for unrecognized briefs, the share of right plans with a Laplace prior.

It prints the coefficients to copy into ``planning/confidence.py``; the mean confidence
of right plans and of the rest and the Brier score, for the current model, the refit in
sample and the refit **leave-one-out** (each brief scored by a model fitted without it:
the figure that says how the confidence does on a brief it has not seen); and a
reliability table of the current model. It never reads the holdout half.

Examples::

    .venv/bin/python bench/calibrate_confidence.py          # briefs.toml + dev_briefs.toml
    .venv/bin/python bench/calibrate_confidence.py --briefs bench/plan_quality/dev_briefs.toml
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO / "server"))

from plan_quality import (  # noqa: E402
    BRIEFS,
    RIGHT,
    EmbeddedPlanner,
    PlanView,
    TaskView,
    load_benchmark,
    score_plan,
)

from plansmith_server.planning import generate_plan  # noqa: E402
from plansmith_server.planning.confidence import (  # noqa: E402
    FEATURES,
    ConfidenceFeatures,
    confidence_features,
    plan_confidence,
)
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


def _rows(
    path: Path, halves: frozenset[str] = frozenset({"tune"})
) -> list[tuple[str, ConfidenceFeatures, float, int]]:
    """(brief id, features, current confidence, right) for the briefs of `path` in `halves`."""
    bench = load_benchmark(path)
    planner = EmbeddedPlanner(bench.now)
    out = []
    for brief in bench.briefs:
        if brief.half not in halves:
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
        out.append((brief.id, features, plan.confidence, right))
    return out


def _model(rows: list[tuple[str, ConfidenceFeatures, float, int]]) -> tuple[list[float], float]:
    """Logistic weights on the recognized rows; Laplace rate on the unrecognized ones."""
    recognized = [
        ([1.0, *(getattr(f, name) for name in FEATURES)], y) for _, f, _, y in rows if f.recognized
    ]
    unrecognized = [y for _, f, _, y in rows if not f.recognized]
    rate = (sum(unrecognized) + 1) / (len(unrecognized) + 2)
    return _fit(recognized), rate


def _predict(weights: list[float], rate: float, f: ConfidenceFeatures) -> float:
    return plan_confidence(f, dict(zip(("intercept", *FEATURES), weights, strict=True)), rate)


def _report(label: str, pairs: list[tuple[float, int]]) -> None:
    right = [c for c, y in pairs if y]
    rest = [c for c, y in pairs if not y]
    brier = sum((c - y) ** 2 for c, y in pairs) / len(pairs)
    mean_right = sum(right) / len(right) if right else float("nan")
    mean_rest = sum(rest) / len(rest) if rest else float("nan")
    print(
        f"  {label}: right {mean_right:.3f}, rest {mean_rest:.3f} "
        f"(gap {mean_right - mean_rest:+.3f}); Brier {brier:.3f}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--briefs",
        type=Path,
        action="append",
        help="labelled brief file (repeatable; default: briefs.toml and dev_briefs.toml)",
    )
    parser.add_argument(
        "--half",
        action="append",
        help="halves to fit on (repeatable; default: tune)",
    )
    args = parser.parse_args()
    paths = args.briefs or [BRIEFS, BRIEFS.parent / "dev_briefs.toml"]
    halves = frozenset(args.half or ["tune"])
    rows = [row for path in paths for row in _rows(path, halves)]
    weights, rate = _model(rows)
    n_rec = sum(1 for _, f, _, _ in rows if f.recognized)
    n_rec_right = sum(y for _, f, _, y in rows if f.recognized)
    print(
        f"{len(rows)} briefs ({', '.join(sorted(halves))}) from "
        f"{', '.join(p.name for p in paths)}: "
        f"{n_rec} recognized ({n_rec_right} right), {len(rows) - n_rec} unrecognized "
        f"({sum(y for _, f, _, y in rows if not f.recognized)} right)"
    )
    print("COEFFICIENTS = {")
    for name, value in zip(("intercept", *FEATURES), weights, strict=True):
        print(f'    "{name}": {value:.3f},')
    print("}")
    print(f"UNRECOGNIZED_BASE = {rate:.3f}  # Laplace-smoothed share right when not recognized")

    # Leave-one-out: each brief's confidence from a model fitted without it.
    held_out = []
    for i, (_, f, _, y) in enumerate(rows):
        w, r = _model(rows[:i] + rows[i + 1 :])
        held_out.append((_predict(w, r, f), y))
    print("\nconfidence vs verdict (mean confidence of right plans, of the rest; Brier)")
    _report("current model, in sample    ", [(c, y) for _, _, c, y in rows])
    refit = [(_predict(weights, rate, f), y) for _, f, _, y in rows]
    _report("refit, in sample            ", refit)
    _report("refit, leave-one-out        ", held_out)
    print("\nreliability of the current model (confidence bin: n, mean confidence, share right)")
    current = [(c, y) for _, _, c, y in rows]
    for low in (0.0, 0.2, 0.4, 0.6, 0.8):
        cell = [(c, y) for c, y in current if low <= c < low + 0.2 or (low == 0.8 and c == 1.0)]
        if cell:
            mean = sum(c for c, _ in cell) / len(cell)
            share = sum(y for _, y in cell) / len(cell)
            span = f"[{low:.1f}, {low + 0.2:.1f})"
            print(f"  {span}: n={len(cell):2}  conf {mean:.2f}  right {share:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
