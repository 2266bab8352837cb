"""Plan quality: score generated plans against labelled briefs (issue 19).

Examples::

    .venv/bin/python bench/plan_quality.py                 # tune half, embedded planner
    .venv/bin/python bench/plan_quality.py -v              # ... naming the failed labels
    .venv/bin/python bench/plan_quality.py --half holdout  # the held-back half (report only)
    .venv/bin/python bench/plan_quality.py --half all --json
    .venv/bin/python bench/plan_quality.py --target 127.0.0.1:50051   # a running server
    .venv/bin/python bench/plan_quality.py --half blind \
        --briefs bench/plan_quality/blind_briefs.toml          # the blind set
    .venv/bin/python bench/plan_quality.py --half blind2 \
        --briefs bench/plan_quality/blind2_briefs.toml         # the second blind set

The briefs and their labels are in ``bench/plan_quality/briefs.toml``. Each plan is
**right** when every label of its brief holds, **honest** when it carries the warning
``DOMAIN_NOT_RECOGNIZED`` and no task betrays another domain, and **wrong** otherwise
("confidently wrong" when it is wrong without that warning). Prints the verdict per brief,
the totals per half, the calibration (mean confidence of right plans vs the rest, Brier
score of the confidence against right = 1 / not right = 0) and the in-process time of
GeneratePlan for a 10-requirement brief. Always exits 0: it is a report.

The ``holdout`` half is the test set: tune the method library on ``tune`` only.
``blind_briefs.toml`` (half ``blind``) was written on 2026-12-07 by someone who had not
seen the planner, and scored once, after that day's changes: the first unseen measure.
It has been studied since; ``blind2_briefs.toml`` (half ``blind2``), written blind on
2026-12-08 by another author, is the unseen measure of the changes made after it.
The scoring functions (:func:`load_benchmark`, :func:`score_plan`, :func:`summarize`)
are imported by ``tests/planning/test_plan_quality_rubric.py``: the rubric lives here only.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BRIEFS = Path(__file__).resolve().parent / "plan_quality" / "briefs.toml"
NOT_RECOGNIZED = "DOMAIN_NOT_RECOGNIZED"
HALVES = ("tune", "holdout", "blind", "blind2")
RIGHT, HONEST, WRONG = "right", "honest", "wrong"
# Pieces of the brief's own text shorter than this are common words, not sentences.
_MIN_ECHO = 8


# -- the data ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Labels:
    """What a senior lead checks in a plan for one brief (regexes, case-insensitive)."""

    must: tuple[str, ...] = ()
    forbid: tuple[str, ...] = ()
    min_tasks: int = 4
    order: tuple[tuple[str, str], ...] = ()
    specifics: tuple[str, ...] = ()


@dataclass(frozen=True)
class Brief:
    """A labelled brief: the PlanBrief fields plus its labels."""

    id: str
    half: str
    domain: str
    known: bool
    expect: str
    origin: str
    name: str
    description: str
    requirements: tuple[str, ...]
    constraints: tuple[str, ...]
    context: Mapping[str, Any]
    agents: tuple[Mapping[str, Any], ...]
    labels: Labels


@dataclass(frozen=True)
class Benchmark:
    now: date
    briefs: tuple[Brief, ...]
    timing_brief: Brief


def _brief(entry: Mapping[str, Any], *, id: str, half: str = "", domain: str = "") -> Brief:
    b = entry.get("brief", entry)
    raw = entry.get("labels", {})
    labels = Labels(
        must=tuple(raw.get("must", ())),
        forbid=tuple(raw.get("forbid", ())),
        min_tasks=int(raw.get("min_tasks", 4)),
        order=tuple((a, z) for a, z in raw.get("order", ())),
        specifics=tuple(raw.get("specifics", ())),
    )
    return Brief(
        id=id,
        half=half,
        domain=domain,
        known=bool(entry.get("known", False)),
        expect=entry.get("expect", RIGHT),
        origin=entry.get("origin", ""),
        name=b["name"],
        description=b["description"],
        requirements=tuple(b.get("requirements", ())),
        constraints=tuple(b.get("constraints", ())),
        context=dict(b.get("context", {})),
        agents=tuple(b.get("agents", ())),
        labels=labels,
    )


def load_benchmark(path: Path = BRIEFS) -> Benchmark:
    """The labelled briefs of `path` (see the comment at the top of the file)."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    briefs = tuple(
        _brief(e, id=e["id"], half=e["half"], domain=e["domain"]) for e in data["briefs"]
    )
    return Benchmark(
        now=date.fromisoformat(data["now"]),
        briefs=briefs,
        timing_brief=_brief(data["timing_brief"], id="timing"),
    )


# -- the rubric -------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskView:
    """What the rubric reads of a task, whatever produced the plan."""

    id: str
    title: str
    description: str = ""
    dependencies: tuple[str, ...] = ()


@dataclass(frozen=True)
class PlanView:
    """What the rubric reads of a plan. `error` is set when the brief was rejected."""

    tasks: tuple[TaskView, ...]
    warnings: frozenset[str] = frozenset()
    confidence: float = 0.0
    error: str = ""


@dataclass(frozen=True)
class Score:
    id: str
    half: str
    domain: str
    verdict: str  # right | honest | wrong
    confident: bool  # wrong without DOMAIN_NOT_RECOGNIZED
    confidence: float
    tasks: int
    failures: tuple[str, ...] = field(default_factory=tuple)


def brief_fragments(brief: Brief) -> list[str]:
    """The brief's own sentences, removed from task text before matching, so a task that
    merely echoes the brief ("Design: <requirement>") proves nothing."""
    pieces = [brief.name, *brief.requirements, *brief.constraints]
    pieces += re.split(r"(?<=[.!?;])\s+", brief.description)
    out = []
    for piece in pieces:
        piece = piece.strip().rstrip(".!?;:").strip()
        if len(piece) >= _MIN_ECHO:
            out.append(piece)
    return sorted(set(out), key=len, reverse=True)


def _echo_pattern(fragments: Sequence[str]) -> re.Pattern[str] | None:
    if not fragments:
        return None
    parts = (r"\s+".join(re.escape(w) for w in f.split()) for f in fragments)
    return re.compile("|".join(parts), re.IGNORECASE)


def task_texts(brief: Brief, plan: PlanView) -> dict[str, str]:
    """Each task's "title + description" with the brief's own sentences removed."""
    echo = _echo_pattern(brief_fragments(brief))
    texts = {}
    for t in plan.tasks:
        text = f"{t.title}\n{t.description}"
        texts[t.id] = echo.sub(" ", text) if echo else text
    return texts


def ancestors(plan: PlanView) -> dict[str, set[str]]:
    """Every task's transitive prerequisites."""
    deps = {t.id: set(t.dependencies) for t in plan.tasks}
    memo: dict[str, set[str]] = {}

    def walk(tid: str, seen: frozenset[str]) -> set[str]:
        if tid in memo:
            return memo[tid]
        out: set[str] = set()
        for d in deps.get(tid, ()):
            if d in seen:  # a cycle is the plan's problem, not a reason to hang
                continue
            out.add(d)
            out |= walk(d, seen | {d})
        memo[tid] = out
        return out

    return {tid: walk(tid, frozenset({tid})) for tid in deps}


def _matching(pattern: str, texts: Mapping[str, str]) -> list[str]:
    rx = re.compile(pattern, re.IGNORECASE)
    return [tid for tid, text in texts.items() if rx.search(text)]


def order_holds(
    first: str, then: str, texts: Mapping[str, str], before: Mapping[str, set[str]]
) -> bool:
    """Some task matching `first` precedes every other task matching `then`; false when
    no such pair exists (either side matches nothing)."""
    b_ids = _matching(then, texts)
    for a in _matching(first, texts):
        rest = [b for b in b_ids if b != a]
        if rest and all(a in before[b] for b in rest):
            return True
    return False


def label_failures(brief: Brief, plan: PlanView) -> list[str]:
    """The labels of `brief` that `plan` breaks, named (empty: all hold)."""
    texts = task_texts(brief, plan)
    labels = brief.labels
    failures = []
    if len(plan.tasks) < labels.min_tasks:
        failures.append(f"min_tasks: {len(plan.tasks)} < {labels.min_tasks}")
    failures += [f"must: {p}" for p in labels.must if not _matching(p, texts)]
    failures += forbid_hits(brief, texts)
    failures += [f"specifics: {p}" for p in labels.specifics if not _matching(p, texts)]
    if labels.order:
        before = ancestors(plan)
        failures += [
            f"order: {a} -> {z}" for a, z in labels.order if not order_holds(a, z, texts, before)
        ]
    return failures


def forbid_hits(brief: Brief, texts: Mapping[str, str]) -> list[str]:
    return [
        f"forbid: {p} ({', '.join(ids)})"
        for p in brief.labels.forbid
        if (ids := _matching(p, texts))
    ]


def score_plan(brief: Brief, plan: PlanView) -> Score:
    """Right / honest / wrong for one plan of `brief`."""
    flagged = NOT_RECOGNIZED in plan.warnings
    if plan.error:
        failures = [f"rejected: {plan.error}"]
        verdict = WRONG
    else:
        failures = label_failures(brief, plan)
        betrayed = forbid_hits(brief, task_texts(brief, plan))
        if brief.expect == RIGHT and not failures:
            verdict = RIGHT
        elif flagged and not betrayed:
            verdict = HONEST
        else:
            verdict = WRONG
        if brief.expect == HONEST and not flagged:
            failures = [f"expected {NOT_RECOGNIZED}", *betrayed]
        elif brief.expect == HONEST:
            failures = betrayed
    return Score(
        id=brief.id,
        half=brief.half,
        domain=brief.domain,
        verdict=verdict,
        confident=verdict == WRONG and not flagged and not plan.error,
        confidence=plan.confidence,
        tasks=len(plan.tasks),
        failures=tuple(failures),
    )


def summarize(scores: Iterable[Score]) -> dict[str, Any]:
    """Totals and calibration of a set of scores."""
    scores = list(scores)
    right = [s.confidence for s in scores if s.verdict == RIGHT]
    rest = [s.confidence for s in scores if s.verdict != RIGHT]
    n = len(scores)
    return {
        "briefs": n,
        "right": len(right),
        "honest": sum(s.verdict == HONEST for s in scores),
        "wrong": sum(s.verdict == WRONG for s in scores),
        "confidently_wrong": sum(s.confident for s in scores),
        "right_share": len(right) / n if n else 0.0,
        # Not a target: shows how far the plans are from right besides the specifics.
        "right_but_for_specifics": sum(
            s.verdict != RIGHT
            and bool(s.failures)
            and all(f.startswith("specifics:") for f in s.failures)
            for s in scores
        ),
        "mean_confidence_right": statistics.fmean(right) if right else None,
        "mean_confidence_rest": statistics.fmean(rest) if rest else None,
        "brier": (
            statistics.fmean((s.confidence - (s.verdict == RIGHT)) ** 2 for s in scores)
            if n
            else None
        ),
    }


# -- running a planner ------------------------------------------------------------------


def _server_context(context: Mapping[str, Any]) -> dict[str, Any]:
    """The context as the server sees it after a round trip through `Struct`."""
    from google.protobuf import json_format, struct_pb2

    struct = struct_pb2.Struct()
    struct.update(dict(context))
    return json_format.MessageToDict(struct)


class EmbeddedPlanner:
    """The in-process planner, with the library loaded once as the server does."""

    def __init__(self, now: date) -> None:
        sys.path.insert(0, str(REPO / "server"))
        from plansmith_server import planning

        self.planning = planning
        self.library = planning.load_library()
        self.now = now

    def request(self, brief: Brief) -> Any:
        p = self.planning
        return p.PlanRequest(
            name=brief.name,
            description=brief.description,
            requirements=brief.requirements,
            constraints=brief.constraints,
            available_agents=tuple(
                p.AgentSpec(a["id"], a.get("name", ""), tuple(a.get("capabilities", ())))
                for a in brief.agents
            ),
            context=_server_context(brief.context),
        )

    def plan(self, brief: Brief) -> PlanView:
        try:
            plan = self.planning.generate_plan(
                self.request(brief), now=self.now, library=self.library
            )
        except self.planning.PlanningInputError as exc:
            return PlanView(tasks=(), error=str(exc))
        return PlanView(
            tasks=tuple(
                TaskView(t.id, t.title, t.description, tuple(t.dependencies)) for t in plan.tasks
            ),
            warnings=frozenset(w.code for w in plan.warnings),
            confidence=plan.confidence,
        )

    def median_ms(self, brief: Brief, repeat: int) -> float:
        request = self.request(brief)
        self.planning.generate_plan(request, now=self.now, library=self.library)  # warm up
        samples = []
        for _ in range(repeat):
            start = time.perf_counter()
            self.planning.generate_plan(request, now=self.now, library=self.library)
            samples.append(time.perf_counter() - start)
        return statistics.median(samples) * 1000


class RemotePlanner:
    """A running server, through the Python client's GeneratePlan."""

    def __init__(self, target: str) -> None:
        sys.path.insert(0, str(REPO / "clients" / "python" / "src"))
        from plansmith.errors import ValidationError
        from plansmith.sync_client import PlansmithClient

        self.client = PlansmithClient.connect(target)
        self.rejected = ValidationError

    def _call(self, brief: Brief) -> Any:
        return self.client.generate_plan(
            brief.name,
            brief.description,
            requirements=brief.requirements,
            constraints=brief.constraints,
            available_agents=[dict(a) for a in brief.agents],
            context=dict(brief.context),
        )

    def plan(self, brief: Brief) -> PlanView:
        try:
            result = self._call(brief)
        except self.rejected as exc:
            return PlanView(tasks=(), error=str(exc))
        return PlanView(
            tasks=tuple(
                TaskView(g.task.id, g.task.title, g.task.description, tuple(g.task.dependencies))
                for g in result.tasks
            ),
            warnings=frozenset(w.code for w in result.warnings),
            confidence=result.confidence,
        )

    def median_ms(self, brief: Brief, repeat: int) -> float:
        self._call(brief)
        samples = []
        for _ in range(repeat):
            start = time.perf_counter()
            self._call(brief)
            samples.append(time.perf_counter() - start)
        return statistics.median(samples) * 1000


# -- the report -------------------------------------------------------------------------


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def _print_half(name: str, scores: list[Score], verbose: bool) -> None:
    print(f"\n== {name} ({len(scores)} briefs)")
    for s in scores:
        mark = "WRONG (confidently)" if s.confident else s.verdict
        print(f"  {s.id:34} {s.domain:28} {mark:20} conf {s.confidence:.2f}  tasks {s.tasks}")
        if verbose:
            for f in s.failures:
                print(f"      - {f}")
    t = summarize(scores)
    print(
        f"  right {t['right']}/{t['briefs']} ({t['right_share']:.0%}), honest {t['honest']}, "
        f"wrong {t['wrong']} (confidently {t['confidently_wrong']}); "
        f"{t['right_but_for_specifics']} more would be right but for the specifics"
    )
    print(
        f"  confidence: right {_fmt(t['mean_confidence_right'])}, "
        f"rest {_fmt(t['mean_confidence_rest'])}; Brier {_fmt(t['brier'])}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--half", choices=(*HALVES, "all"), default="tune")
    parser.add_argument("--target", help="host:port of a running server (default: embedded)")
    parser.add_argument("--briefs", type=Path, default=BRIEFS)
    parser.add_argument("--repeat", type=int, default=30, help="timing runs (median)")
    parser.add_argument("-v", "--verbose", action="store_true", help="name the failed labels")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    args = parser.parse_args(argv)

    bench = load_benchmark(args.briefs)
    planner = RemotePlanner(args.target) if args.target else EmbeddedPlanner(bench.now)
    present = {b.half for b in bench.briefs}
    halves = tuple(h for h in HALVES if h in present) if args.half == "all" else (args.half,)
    scores = {
        h: [score_plan(b, planner.plan(b)) for b in bench.briefs if b.half == h] for h in halves
    }
    timing_ms = planner.median_ms(bench.timing_brief, max(1, args.repeat))
    timing_what = (
        f"GeneratePlan round trip to {args.target}"
        if args.target
        else "GeneratePlan in process (server-side equivalent)"
    )
    every = [s for h in halves for s in scores[h]]

    if args.json:
        out = {
            "planner": args.target or "embedded",
            "halves": {
                h: {"summary": summarize(scores[h]), "briefs": [asdict(s) for s in scores[h]]}
                for h in halves
            },
            "all": summarize(every),
            "timing": {
                "what": timing_what,
                "requirements": len(bench.timing_brief.requirements),
                "median_ms": timing_ms,
                "runs": args.repeat,
            },
        }
        print(json.dumps(out, indent=2))
        return 0

    print(f"Plan quality -- planner: {args.target or 'embedded'}; briefs: {args.briefs.name}")
    for h in halves:
        _print_half(h, scores[h], args.verbose)
    if len(halves) > 1:
        t = summarize(every)
        print(
            f"\n== all: right {t['right']}/{t['briefs']}, honest {t['honest']}, wrong "
            f"{t['wrong']} (confidently {t['confidently_wrong']}); confidence right "
            f"{_fmt(t['mean_confidence_right'])} vs rest {_fmt(t['mean_confidence_rest'])}; "
            f"Brier {_fmt(t['brier'])}"
        )
    print(
        f"\nTiming: {timing_what}, {len(bench.timing_brief.requirements)}-requirement brief: "
        f"median {timing_ms:.1f} ms over {args.repeat} runs (target < 50 ms)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
