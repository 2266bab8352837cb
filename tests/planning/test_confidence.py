"""Confidence means what docs/planning.md says: plans a reviewer accepts carry clearly
more confidence than the rest, and over briefs the planner had not seen a recognized
plan's confidence is the share of such plans a reviewer accepted."""

from __future__ import annotations

import importlib.util
import statistics
import sys
from pathlib import Path

_PATH = Path(__file__).resolve().parents[2] / "bench" / "plan_quality.py"
_spec = importlib.util.spec_from_file_location("plan_quality", _PATH)
assert _spec is not None and _spec.loader is not None
pq = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("plan_quality", pq)  # dataclasses resolve their module by name
_spec.loader.exec_module(pq)


def test_right_plans_are_more_confident_than_the_rest_on_the_tune_half() -> None:
    bench = pq.load_benchmark()
    planner = pq.EmbeddedPlanner(bench.now)
    # Only the tune half: the holdout half is the test set of the benchmark.
    scores = [pq.score_plan(b, planner.plan(b)) for b in bench.briefs if b.half == "tune"]
    right = [s.confidence for s in scores if s.verdict == pq.RIGHT]
    rest = [s.confidence for s in scores if s.verdict != pq.RIGHT]
    assert right and rest
    assert statistics.mean(right) - statistics.mean(rest) >= 0.2


def test_right_plans_are_more_confident_on_the_tune_and_dev_briefs_together() -> None:
    # The model is fitted on both files (bench/calibrate_confidence.py); the fresh dev
    # set has wrong plans the tuned half no longer has, so it is what tests the features.
    scores = []
    for path in (pq.BRIEFS, pq.BRIEFS.parent / "dev_briefs.toml"):
        bench = pq.load_benchmark(path)
        planner = pq.EmbeddedPlanner(bench.now)
        scores += [pq.score_plan(b, planner.plan(b)) for b in bench.briefs if b.half == "tune"]
    assert len(scores) == 60
    right = [s.confidence for s in scores if s.verdict == pq.RIGHT]
    rest = [s.confidence for s in scores if s.verdict != pq.RIGHT]
    assert statistics.mean(right) - statistics.mean(rest) >= 0.2


def test_a_recognized_plans_confidence_is_the_share_accepted_on_unseen_briefs() -> None:
    # The studied briefs accept over 0.9 of recognized plans; the blind sets at their
    # first scoring accepted 23 of 50 (UNSEEN_ACCEPTED), and a user's brief is unseen.
    # Over blind2, scored before anyone tuned on it, the recognized plans' mean
    # confidence is that share; a fit on the studied briefs alone said about 0.93.
    from plansmith_server.planning.confidence import UNSEEN_ACCEPTED

    bench = pq.load_benchmark(pq.BRIEFS.parent / "blind2_briefs.toml")
    planner = pq.EmbeddedPlanner(bench.now)
    views = [planner.plan(b) for b in bench.briefs]
    assert len(views) == 30
    recognized = [v.confidence for v in views if pq.NOT_RECOGNIZED not in v.warnings]
    accepted, scored = UNSEEN_ACCEPTED
    assert abs(statistics.mean(recognized) - accepted / scored) <= 0.05, recognized
