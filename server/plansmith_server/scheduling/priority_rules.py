"""Priority rules for list scheduling and the activity lists they induce.

Each rule maps an activity to a key; a lower key means "schedule earlier". Ties are
broken by latest start time, then index, so lists are deterministic.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Sequence

from .compiled import CompiledProblem

PriorityKeys = list[tuple[float, ...]]


def _transitive_successor_counts(cp: CompiledProblem) -> list[int]:
    # Bitsets as Python ints: exact transitive closure in O(n^2 / wordsize).
    reach = [0] * cp.n
    for v in reversed(cp.topo):
        bits = 0
        for s in cp.succs[v]:
            bits |= reach[s] | (1 << s)
        reach[v] = bits
    return [r.bit_count() for r in reach]


def rule_keys(cp: CompiledProblem) -> dict[str, PriorityKeys]:
    """Computes the keys of every built-in rule.

    Rules: ``LFT`` (latest finish time), ``LST`` (latest start time), ``MTS`` (most total
    successors), ``GRPW`` (greatest rank positional weight: own duration plus immediate
    successors'), ``MSLK`` (minimum slack), ``GRD`` (greatest resource demand x duration)
    and ``SPT`` (shortest processing time).
    """
    es = cp.heads()
    tail = cp.tails()
    horizon = max((es[v] + cp.dur[v] for v in range(cp.n)), default=0)
    ls = [horizon - tail[v] for v in range(cp.n)]
    lf = [ls[v] + cp.dur[v] for v in range(cp.n)]
    mts = _transitive_successor_counts(cp)
    rng = range(cp.n)
    return {
        "LFT": [(lf[v], ls[v], v) for v in rng],
        "LST": [(ls[v], lf[v], v) for v in rng],
        "MTS": [(-mts[v], ls[v], v) for v in rng],
        "GRPW": [(-(cp.dur[v] + sum(cp.dur[s] for s in cp.succs[v])), ls[v], v) for v in rng],
        "MSLK": [(ls[v] - es[v], ls[v], v) for v in rng],
        "GRD": [(-cp.dur[v] * sum(q for _, q in cp.demands[v]), ls[v], v) for v in rng],
        "SPT": [(cp.dur[v], ls[v], v) for v in rng],
    }


def list_from_keys(cp: CompiledProblem, keys: Sequence[tuple[float, ...]]) -> list[int]:
    """Precedence-feasible list: repeatedly the eligible activity with the lowest key."""
    indeg = [len(p) for p in cp.preds]
    heap = [(keys[v], v) for v in range(cp.n) if indeg[v] == 0]
    heapq.heapify(heap)
    order: list[int] = []
    while heap:
        _, v = heapq.heappop(heap)
        order.append(v)
        for s in cp.succs[v]:
            indeg[s] -= 1
            if indeg[s] == 0:
                heapq.heappush(heap, (keys[s], s))
    return order


def regret_biased_list(
    cp: CompiledProblem,
    values: Sequence[float],
    rng: random.Random,
    alpha: float = 1.0,
) -> list[int]:
    """Regret-based biased random sampling (Drexl 1991) over priority values.

    Among eligible activities, ``v`` is drawn with probability proportional to
    ``(max value - value[v] + 1) ** alpha``: low values (e.g. early latest finish)
    are favoured but every eligible activity keeps a chance.
    """
    indeg = [len(p) for p in cp.preds]
    eligible = [v for v in range(cp.n) if indeg[v] == 0]
    order: list[int] = []
    rand = rng.random
    while eligible:
        if len(eligible) == 1:
            pos = 0
        else:
            top = max(values[v] for v in eligible)
            weights = [(top - values[v] + 1.0) ** alpha for v in eligible]
            x = rand() * sum(weights)
            pos = 0
            acc = weights[0]
            while acc < x and pos < len(weights) - 1:
                pos += 1
                acc += weights[pos]
        v = eligible[pos]
        eligible[pos] = eligible[-1]
        eligible.pop()
        order.append(v)
        for s in cp.succs[v]:
            indeg[s] -= 1
            if indeg[s] == 0:
                eligible.append(s)
    return order


RuleFn = Callable[[CompiledProblem], PriorityKeys]
