"""Critical chain of a concrete schedule.

Walking back from the activity that ends last, each step goes to an activity ending
exactly when the current one starts and linked to it by a precedence, by the same agent
or by a shared general resource. The chain explains the makespan: delaying any link
delays the end unless the schedule is rebuilt.
"""

from __future__ import annotations

from collections.abc import Sequence

from .compiled import CompiledProblem


def critical_chain_indices(
    cp: CompiledProblem, starts: Sequence[int], agents: Sequence[int]
) -> list[int]:
    """Returns the critical chain (activity indices, in time order).

    Precedence links are preferred over agent links, agent links over shared-resource
    links, and positive-duration activities over zero-duration ones.
    """
    n = cp.n
    if n == 0:
        return []
    dur = cp.dur
    ends = [starts[v] + dur[v] for v in range(n)]
    makespan = max(ends)
    last = [v for v in range(n) if ends[v] == makespan]
    cur = max(last, key=lambda v: (dur[v] > 0, -v))
    by_end: dict[int, list[int]] = {}
    for v in range(n):
        by_end.setdefault(ends[v], []).append(v)
    # Plans have no general resources: no sets to build for their thousands of tasks.
    res_sets = [{r for r, _ in cp.demands[v]} for v in range(n)] if cp.capacities else None
    chain = [cur]
    seen = {cur}
    while starts[cur] > 0:
        s = starts[cur]
        cands = [u for u in by_end.get(s, []) if u not in seen]
        if not cands:
            break
        pred_set = set(cp.preds[cur])

        def rank(u: int, pred_set: set[int] = pred_set, cur: int = cur) -> tuple[int, int, int]:
            if u in pred_set:
                link = 0
            elif agents[cur] >= 0 and agents[u] == agents[cur]:
                link = 1
            elif res_sets is not None and res_sets[u] & res_sets[cur]:
                link = 2
            else:
                link = 3
            return (link, 0 if dur[u] > 0 else 1, u)

        best = min(cands, key=rank)
        if rank(best)[0] == 3:
            break
        chain.append(best)
        seen.add(best)
        cur = best
    chain.reverse()
    return chain
