"""Path validity as a property over random graphs (seeded): whatever the graph and the
state, every path the planners return passes `check_path`, and they find one whenever
one exists (checked against every simple path, enumerated)."""

from __future__ import annotations

import random

import pytest

from plansmith_server.flows.embedded import NoPathError, plan_embedded
from plansmith_server.flows.graph import Graph, validate
from plansmith_server.flows.model import Flow, FlowNode
from plansmith_server.flows.paths import check_path
from plansmith_server.flows.planning import full_path

KEYS = ["k0", "k1", "k2", "k3", "k4", "k5"]
WORDS = ["alpha", "beta", "gamma", "delta", "omega", "sigma", "tau", "rho"]


def random_flow(rng: random.Random) -> Flow:
    n = rng.randint(3, 9)
    names = [f"n{i}" for i in range(n)]
    initial = rng.sample(KEYS, k=2)
    outputs = [tuple(sorted(set(rng.sample(KEYS, k=rng.randint(0, 2))))) for _ in range(n)]
    known = sorted(set(initial).union(*outputs))
    nodes = []
    for i in range(n):
        last = i == n - 1
        nxt = (
            [] if last else sorted({names[i + 1], *rng.sample(names[i + 1 :], k=min(2, n - i - 1))})
        )
        retry = []
        if not last and i > 0 and rng.random() < 0.3:
            back = names[rng.randrange(0, i)]
            nxt.append(back)
            retry.append(back)
        conds = {}
        for t in nxt:
            r = rng.random()
            k = rng.choice(known)
            if r < 0.25:
                conds[t] = f"state.{k} == {rng.randint(0, 2)}"
            elif r < 0.4:
                conds[t] = f"not state.{k} or state.{rng.choice(known)} > 0"
        upstream = sorted(set(initial).union(*outputs[:i]))
        inputs = tuple(rng.sample(upstream, k=min(len(upstream), rng.randint(0, 1))))
        nodes.append(
            FlowNode(
                name=names[i],
                description=" ".join(rng.sample(WORDS, k=2)),
                inputs=inputs,
                outputs=outputs[i],
                possible_next_nodes=tuple(nxt),
                conditions=conds,
                retry_next_nodes=tuple(retry),
            )
        )
    return Flow(
        name="random",
        entry_node="n0",
        terminal_nodes=(names[-1],),
        initial_state_keys=tuple(initial),
        nodes=tuple(nodes),
    )


def simple_paths(g: Graph) -> list[list[str]]:
    out: list[list[str]] = []

    def walk(i: int, path: list[int]) -> None:
        if i in g.terminals:
            out.append([g.names[x] for x in path])
            return
        for e in g.forward[i]:
            if e.dst not in path:
                walk(e.dst, [*path, e.dst])

    walk(g.entry, [g.entry])
    return out


@pytest.mark.parametrize("seed", range(300))
def test_planned_paths_are_valid_and_found_when_one_exists(seed):
    rng = random.Random(seed)
    flow = random_flow(rng)
    while validate(flow):  # the next one the same generator makes (deterministic)
        flow = random_flow(rng)
    g = Graph(flow)
    state = {k: rng.randint(0, 2) for k in rng.sample(KEYS, k=rng.randint(0, 3))}
    message = " ".join(rng.sample(WORDS, k=3))
    valid = [p for p in simple_paths(g) if check_path(g, p, state).valid]
    try:
        path = plan_embedded(g, message, state)
    except NoPathError:
        assert not valid, f"a valid path exists: {valid[0]}"
        with pytest.raises(NoPathError):
            full_path(g, message, state)
        return
    assert path.check.valid, path.check.summary()
    assert check_path(g, path.nodes, state).valid
    assert 0.0 <= path.confidence <= 1.0
    full = full_path(g, message, state)
    assert full.check.valid
    assert len(full.nodes) == max(len(p) for p in valid)


def test_most_random_flows_are_registrable():
    ok = sum(not validate(random_flow(random.Random(s))) for s in range(300))
    assert ok >= 200
