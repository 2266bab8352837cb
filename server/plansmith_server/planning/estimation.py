"""EstimateTaskDuration: history first, then the method library, then a default.

**History.** Completed tasks supplied by the caller are compared with the new task by
TF-IDF cosine similarity over normalized words (see :mod:`.text`). The most similar
ones (similarity >= ``MIN_SIMILARITY``, at most ``MAX_NEIGHBOURS``) vote, weighted by
similarity squared, on the log of their actual hours -- after removing the pace of the
agent who did them, so a slow agent's history does not inflate everyone's estimates.

**Agent pace.** An agent's pace is their actual/estimated ratio on finished work (in
log space), shrunk toward the team's pace with a prior weight of ``PACE_PRIOR_WEIGHT``
tasks (empirical Bayes): with two tasks the agent's own ratio counts for 40 %, with
twenty for 87 %. The team pace itself is shrunk toward 1. The target agent's pace
multiplies the estimate.

**Library fallback.** Without similar history, the best-matching primitive task of the
method library gives a three-point estimate (PERT mean, p10/p90 from the beta-PERT
spread), times the agent's pace when known. Without that either: a default.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from .errors import (
    REASON_INVALID_ESTIMATE_REQUEST,
    REASON_TASK_DESCRIPTION_TOO_VAGUE,
    PlanningInputError,
)
from .library import MethodLibrary, load_library
from .request_validation import VAGUE_HINT, is_too_vague
from .text import tokenize

__all__ = [
    "MAX_NEIGHBOURS",
    "MIN_SIMILARITY",
    "PACE_PRIOR_WEIGHT",
    "CompletedTask",
    "DurationEstimate",
    "EstimateBasis",
    "estimate_task_duration",
    "library_estimate",
]

MIN_SIMILARITY = 0.25
MAX_NEIGHBOURS = 10
PACE_PRIOR_WEIGHT = 3.0
TEAM_PRIOR_WEIGHT = 2.0
LIBRARY_PRIOR_WEIGHT = 0.05
LIBRARY_MATCH_THRESHOLD = 0.3
DEFAULT_HOURS = (4.0, 8.0, 16.0)
_Z90 = 1.2816  # standard normal quantile of the 90th percentile


@dataclass(frozen=True)
class CompletedTask:
    """A finished task from the caller's history.

    Attributes:
        id: Task id (reported back in the basis when used).
        title: Title.
        description: Description.
        estimated_hours: The estimate it had (None if unknown); needed for pace.
        actual_hours: Hours it really took; entries without positive actual hours
            are ignored.
        assigned_agent: Agent who did it (``""`` if unknown).
    """

    id: str
    title: str = ""
    description: str = ""
    estimated_hours: float | None = None
    actual_hours: float = 0.0
    assigned_agent: str = ""


@dataclass(frozen=True)
class EstimateBasis:
    """How an estimate was made.

    Attributes:
        method: ``"history"``, ``"history+agent_pace"``, ``"library"``,
            ``"library+agent_pace"`` or ``"default"``.
        similar_task_ids: History tasks used, most similar first.
        library_task: Library primitive used (library methods; also the prior blended
            into history estimates), else ``""``.
        agent_pace: The agent's shrunk actual/estimated ratio (None if not used).
        agent_sample_size: Finished tasks with estimates behind the agent's pace.
        note: One human-readable sentence.
    """

    method: str
    similar_task_ids: tuple[str, ...] = ()
    library_task: str = ""
    agent_pace: float | None = None
    agent_sample_size: int = 0
    note: str = ""


@dataclass(frozen=True)
class DurationEstimate:
    """Result of EstimateTaskDuration.

    Attributes:
        estimate_hours: Point estimate (hours, 0.01 precision).
        low_hours: About the 10th percentile.
        high_hours: About the 90th percentile.
        confidence: 0-1.
        basis: How it was computed.
    """

    estimate_hours: float
    low_hours: float
    high_hours: float
    confidence: float
    basis: EstimateBasis


def library_estimate(
    text: str, library: MethodLibrary | None = None
) -> tuple[str, float, float, float, float] | None:
    """Best-matching library primitive for `text`.

    Returns:
        ``(primitive name, score, PERT mean, p10, p90)`` or None if nothing matches.
    """
    lib = library if library is not None else load_library()
    ranked = lib.primitive_index.rank(tokenize(text), minimum=LIBRARY_MATCH_THRESHOLD)
    if not ranked:
        return None
    name, score = ranked[0]
    est = lib.primitives[name].estimate
    sigma = (est.pessimistic - est.optimistic) / 6.0
    mean = est.expected
    low = max(est.optimistic, mean - _Z90 * sigma)
    high = min(est.pessimistic, mean + _Z90 * sigma)
    return name, score, mean, low, high


def _usable(task: CompletedTask) -> bool:
    return (
        isinstance(task.actual_hours, (int, float))
        and math.isfinite(task.actual_hours)
        and task.actual_hours > 0
    )


def _has_estimate(task: CompletedTask) -> bool:
    e = task.estimated_hours
    return e is not None and math.isfinite(e) and e > 0


def _paces(history: Sequence[CompletedTask]) -> tuple[float, dict[str, tuple[float, int]]]:
    """Team log-pace and per-agent (log-pace, sample size), both shrunk."""
    ratios = [
        (t.assigned_agent, math.log(t.actual_hours / t.estimated_hours))
        for t in history
        if _has_estimate(t) and t.estimated_hours  # (narrows it for mypy)
    ]
    team = sum(r for _, r in ratios) / (len(ratios) + TEAM_PRIOR_WEIGHT) if ratios else 0.0
    per_agent: dict[str, list[float]] = {}
    for agent, r in ratios:
        if agent:
            per_agent.setdefault(agent, []).append(r)
    agents = {
        agent: ((sum(rs) + PACE_PRIOR_WEIGHT * team) / (len(rs) + PACE_PRIOR_WEIGHT), len(rs))
        for agent, rs in sorted(per_agent.items())
    }
    return team, agents


def _vectors(
    docs: Sequence[tuple[str, ...]], query: tuple[str, ...]
) -> tuple[list[dict[str, float]], dict[str, float]]:
    df: dict[str, int] = {}
    for tokens in (*docs, query):
        for t in set(tokens):
            df[t] = df.get(t, 0) + 1
    n = len(docs) + 1
    idf = {t: math.log((1 + n) / (1 + c)) + 1.0 for t, c in df.items()}

    def vec(tokens: tuple[str, ...]) -> dict[str, float]:
        tf: dict[str, int] = {}
        for t in tokens:
            tf[t] = tf.get(t, 0) + 1
        v = {t: (1.0 + math.log(c)) * idf[t] * (0.2 if t.isdigit() else 1.0) for t, c in tf.items()}
        norm = math.sqrt(sum(x * x for x in v.values())) or 1.0
        return {t: x / norm for t, x in v.items()}

    return [vec(d) for d in docs], vec(query)


def estimate_task_duration(
    description: str,
    *,
    title: str = "",
    agent_id: str = "",
    history: Sequence[CompletedTask] = (),
    library: MethodLibrary | None = None,
) -> DurationEstimate:
    """Estimate how long a task will take.

    Args:
        description: What the task is.
        title: Optional title (matched together with the description).
        agent_id: Who will do it (enables the agent-pace adjustment).
        history: The caller's completed tasks.
        library: Method library for the fallback (default: packaged).

    Returns:
        The estimate with its p10/p90 interval, confidence and basis.

    Raises:
        PlanningInputError: ``INVALID_ESTIMATE_REQUEST`` when there is no text,
            ``TASK_DESCRIPTION_TOO_VAGUE`` when the text names nothing concrete.
    """
    text = f"{title} {description}".strip()
    if not text:
        raise PlanningInputError(
            REASON_INVALID_ESTIMATE_REQUEST,
            "A task description is required to estimate it.",
            [("description", "must not be empty")],
            "Describe the task to estimate.",
        )
    if is_too_vague(title, description, ()):
        raise PlanningInputError(
            REASON_TASK_DESCRIPTION_TOO_VAGUE,
            "The task description is too vague to estimate.",
            [("description", "too vague: say what is built or changed")],
            VAGUE_HINT,
        )
    usable = [t for t in history if _usable(t)]
    team_log_pace, agent_paces = _paces(usable)
    agent_log_pace, agent_n = (
        agent_paces.get(agent_id, (team_log_pace, 0)) if agent_id else (team_log_pace, 0)
    )
    use_agent = bool(agent_id) and agent_n > 0
    lib_hit = library_estimate(text, library)

    query = tokenize(text)
    neighbours: list[tuple[float, CompletedTask]] = []
    if usable and query:
        docs = [tokenize(f"{t.title} {t.description}") for t in usable]
        vectors, qv = _vectors(docs, query)
        for task, v in zip(usable, vectors, strict=True):
            sim = sum(x * v.get(t, 0.0) for t, x in qv.items())
            if sim >= MIN_SIMILARITY:
                neighbours.append((sim, task))
        neighbours.sort(key=lambda item: (-item[0], item[1].id))
        neighbours = neighbours[:MAX_NEIGHBOURS]

    target_pace = math.exp(agent_log_pace)
    if neighbours:
        weights = [s * s for s, _ in neighbours]
        logs = []
        for _, task in neighbours:
            pace = agent_paces.get(task.assigned_agent, (team_log_pace, 0))[0]
            logs.append(math.log(task.actual_hours) - pace)  # the task at standard pace
        total_w = sum(weights)
        mean_log = sum(w * x for w, x in zip(weights, logs, strict=True)) / total_w
        if lib_hit is not None:
            # A little pull toward the library estimate when history is thin.
            mean_log = (total_w * mean_log + LIBRARY_PRIOR_WEIGHT * math.log(lib_hit[2])) / (
                total_w + LIBRARY_PRIOR_WEIGHT
            )
        variance = sum(w * (x - mean_log) ** 2 for w, x in zip(weights, logs, strict=True))
        variance /= total_w
        n_eff = total_w * total_w / sum(w * w for w in weights)
        sigma = max(0.1, math.sqrt(variance + 0.25**2 / n_eff))
        estimate = math.exp(mean_log + agent_log_pace)
        mean_sim = sum(s for s, _ in neighbours) / len(neighbours)
        confidence = (1.0 - math.exp(-n_eff / 2.0)) * min(1.0, mean_sim + 0.2) * math.exp(-sigma)
        method = "history+agent_pace" if use_agent else "history"
        note = f"{len(neighbours)} similar completed task(s), weighted by similarity"
        if use_agent:
            note += f"; agent {agent_id} pace x{target_pace:.2f} from {agent_n} finished task(s)"
        basis = EstimateBasis(
            method=method,
            similar_task_ids=tuple(t.id for _, t in neighbours),
            library_task=lib_hit[0] if lib_hit else "",
            agent_pace=round(target_pace, 3) if use_agent else None,
            agent_sample_size=agent_n if use_agent else 0,
            note=note + ".",
        )
        low, high = estimate * math.exp(-_Z90 * sigma), estimate * math.exp(_Z90 * sigma)
    elif lib_hit is not None:
        name, score, mean, low, high = lib_hit
        factor = target_pace if use_agent else 1.0
        estimate, low, high = mean * factor, low * factor, high * factor
        confidence = 0.2 + 0.25 * min(1.0, score)
        basis = EstimateBasis(
            method="library+agent_pace" if use_agent else "library",
            library_task=name,
            agent_pace=round(target_pace, 3) if use_agent else None,
            agent_sample_size=agent_n if use_agent else 0,
            note=f"No similar history; library task '{name}' (match {score:.2f}), PERT mean of its "
            "three-point estimate.",
        )
    else:
        factor = target_pace if use_agent else 1.0
        low, estimate, high = (h * factor for h in DEFAULT_HOURS)
        confidence = 0.1
        basis = EstimateBasis(
            method="default",
            agent_pace=round(target_pace, 3) if use_agent else None,
            agent_sample_size=agent_n if use_agent else 0,
            note="No similar history and no library match; default estimate.",
        )
    estimate = round(estimate, 2)
    low = round(min(low, estimate), 2)
    high = round(max(high, estimate), 2)
    return DurationEstimate(
        estimate, max(0.01, low), high, round(min(0.95, max(0.05, confidence)), 2), basis
    )
