"""Path planning time of the embedded flow planner on graphs of 10, 100 and 1,000 nodes.

    .venv/bin/python bench/flows.py                # 10, 100, 1000 nodes
    .venv/bin/python bench/flows.py --nodes 500 --runs 50

Each graph is layered (every node leads to up to three nodes of the next layer, a third
of the edges carry a condition, every fifth node has a retry loop back a layer), with
inputs every upstream node provides and descriptions drawn from a vocabulary. Measured,
median of ``--runs``:

- ``register``: the registration rules (``graph.validate``) plus compiling the graph;
- ``plan``: ``plan_embedded`` on the compiled graph (what PlanExecutionPath does once the
  version is cached), including the reasons and the check of the returned path;
- ``full``: the full-path fallback;
- ``learned``: ``plan`` with 1,000 completed runs in the history it learns from (the
  retention default), a tenth of them similar to the request;
- ``bfs``: the baseline, a plain breadth-first shortest path from the entry to a terminal
  over the same edges, measured in the same run; ``plan/bfs`` is the planner's cost in
  units of it.

Targets (docs/flows.md): ``plan`` under 10 ms at 100 nodes and under 200 ms at 1,000.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "server"))

from plansmith_server.flows.embedded import CompletedRun, plan_embedded, words  # noqa: E402
from plansmith_server.flows.graph import Graph, validate  # noqa: E402
from plansmith_server.flows.model import Flow, FlowNode  # noqa: E402
from plansmith_server.flows.planning import full_path  # noqa: E402

VOCAB = (
    "order customer invoice refund ship track report total average count list table "
    "schema query validate approve reject retry format answer search rank summarize "
    "translate classify route notify email store fetch parse extract merge"
).split()
TARGETS_MS = {100: 10.0, 1000: 200.0}


def layered_flow(n: int, seed: int = 0) -> Flow:
    rng = random.Random(seed)
    width = max(1, round(n**0.5 / 2))
    layers = [list(range(i, min(i + width, n - 1))) for i in range(1, n - 1, width)]
    layers = [[0], *layers, [n - 1]]
    names = [f"node_{i}" for i in range(n)]
    nodes = []
    for li, layer in enumerate(layers):
        # Every node of the next layer has a way in; then up to three edges per node.
        into: dict[int, list[int]] = {i: [] for i in layer}
        if li + 1 < len(layers):
            for q, t in enumerate(layers[li + 1]):
                into[layer[q % len(layer)]].append(t)
        for i in layer:
            nxt: list[str] = []
            conds: dict[str, str] = {}
            retry: list[str] = []
            if li + 1 < len(layers):
                extra = rng.sample(layers[li + 1], k=min(3, len(layers[li + 1])))
                targets = list(dict.fromkeys([*into[i], *extra]))[: max(3, len(into[i]))]
                nxt = [names[t] for t in targets]
                for t in nxt[1:]:
                    if rng.random() < 0.33:
                        conds[t] = f"state.k{li % 7} != {rng.randint(0, 3)}"
                if li > 1 and i % 5 == 0:
                    back = names[rng.choice(layers[li - 1])]
                    if back not in nxt:
                        nxt.append(back)
                        retry.append(back)
            nodes.append(
                FlowNode(
                    name=names[i],
                    description=" ".join(rng.sample(VOCAB, k=8)),
                    inputs=("k0",) if li > 1 else (),
                    outputs=(f"k{li % 7}", f"out_{i}"),
                    possible_next_nodes=tuple(nxt),
                    conditions=conds,
                    retry_next_nodes=tuple(retry),
                )
            )
    return Flow(
        name=f"bench-{n}",
        entry_node=names[0],
        terminal_nodes=(names[-1],),
        initial_state_keys=("message",),
        nodes=tuple(nodes),
    )


def bfs(g: Graph) -> list[int]:
    prev = {g.entry: -1}
    queue = deque([g.entry])
    while queue:
        v = queue.popleft()
        if v in g.terminals:
            path = [v]
            while prev[path[-1]] != -1:
                path.append(prev[path[-1]])
            return path[::-1]
        for e in g.out[v]:
            if e.dst not in prev:
                prev[e.dst] = v
                queue.append(e.dst)
    return []


def median_ms(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nodes", type=int, nargs="*", default=[10, 100, 1000])
    ap.add_argument("--runs", type=int, default=30)
    args = ap.parse_args()
    message = "list the total of refunded orders per customer and format a report"
    state = {"message": message, "k1": 2}
    print(
        f"{'nodes':>6} {'edges':>6} {'register ms':>12} {'plan ms':>9} {'full ms':>9} "
        f"{'learned ms':>11} {'bfs ms':>8} {'plan/bfs':>9} {'path':>5} {'target':>10}"
    )
    for n in args.nodes:
        flow = layered_flow(n)
        problems = validate(flow)
        if problems:
            raise SystemExit(f"the benchmark's {n}-node flow is invalid: {problems[:3]}")
        g = Graph(flow)
        edges = sum(len(x) for x in g.out)
        runs = max(3, args.runs if n <= 100 else args.runs // 3)
        register = median_ms(lambda f=flow: (validate(f), Graph(f).topo_order()), runs)
        path = plan_embedded(g, message, state)
        assert path.check.valid
        plan = median_ms(lambda g=g: plan_embedded(g, message, state), runs)
        full = median_ms(lambda g=g: full_path(g, message, state), runs)
        base = median_ms(lambda g=g: bfs(g), runs)
        rng = random.Random(n)
        similar = frozenset(words(message))
        history = [
            CompletedRun(similar if i % 10 == 0 else frozenset(rng.sample(VOCAB, k=6)), path.nodes)
            for i in range(1000)
        ]
        learned = median_ms(lambda g=g, h=history: plan_embedded(g, message, state, h), runs)
        target = TARGETS_MS.get(n)
        verdict = "" if target is None else ("ok" if plan < target else "MISSED") + f" <{target:g}"
        print(
            f"{n:>6} {edges:>6} {register:>12.2f} {plan:>9.2f} {full:>9.2f} {learned:>11.2f} "
            f"{base:>8.3f} "
            f"{plan / base:>9.1f} {len(path.nodes):>5} {verdict:>10}"
        )


if __name__ == "__main__":
    main()
