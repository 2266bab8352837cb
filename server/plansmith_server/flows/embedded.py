"""The embedded path planner: deterministic, no model.

1. Relevance. Each node is scored against the request: the words of the message that
   occur in the node's name, description, inputs, outputs and the string literals of the
   conditions on edges into it, each weighted by how rare it is among the flow's nodes
   (inverse document frequency), plus the state keys the request gives that the node
   reads. A node is *needed* when its score is at least half the best node's and at
   least `MIN_EVIDENCE` (about one distinctive word).
2. Search. Over the forward graph (every edge but the retry loops: acyclic), in
   topological order, labels (covered relevance, length, state keys available) are
   extended edge by edge; an edge is taken only when its condition holds on the state or
   reads keys the path or the initial state provide (an assumption), and a node only when
   its inputs are available. The best label at a terminal covers the most needed
   relevance, then has the fewest nodes. At most `LABELS_PER_NODE` labels are kept per
   node, so the search costs O(edges x LABELS_PER_NODE).
3. Learning. Among completed runs of the flow with similar messages (word overlap,
   Jaccard >= `SIMILAR`), the path completed most often (weighted by similarity) is
   preferred when it is valid for this state.

Confidence: the share of the request's evidence the path accounts for, where evidence is
the relevance of the needed nodes plus the similarity of similar completed runs; 0 when
nothing matched (then the shortest valid path is chosen).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from plansmith_server.flows import conditions as cond
from plansmith_server.flows.graph import Graph
from plansmith_server.flows.model import ExecutionPath, Hop
from plansmith_server.flows.paths import check_path

NEEDED_SHARE = 0.5
MIN_EVIDENCE = 1.0
LABELS_PER_NODE = 8
SIMILAR = 0.5
PLANNER = "embedded"

_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset(
    "a an the is are was were be been to of and or in on at for with this that these those "
    "it its by from as me my i you your we our us can could do does did what please all up "
    "so any some into about there their them they he she his her if then than just also "
    "will would should how".split()
)


def words(text: str) -> list[str]:
    """Lowercase words without stop words, a plural `s` cut (`orders` -> `order`)."""
    out = []
    for w in _WORD.findall(text.lower().replace("_", " ")):
        if w in _STOP:
            continue
        if len(w) > 3 and w.endswith("s") and not w.endswith("ss"):
            w = w[:-1]
        out.append(w)
    return out


class NoPathError(Exception):
    """No valid path from the entry to a terminal under this state."""


@dataclass(frozen=True)
class Relevance:
    scores: tuple[float, ...]
    """Per node, 0..1 of the best node's raw score."""
    needed: frozenset[int]
    matched: tuple[tuple[str, ...], ...]
    """Per node, the request's words (or state keys) it matched."""
    total_needed: float


@dataclass(frozen=True)
class CompletedRun:
    """A completed run the planner learns from."""

    message_words: frozenset[str]
    path: tuple[str, ...]


def _docs(g: Graph) -> list[set[str]]:
    docs: list[set[str]] = []
    into: list[list[str]] = [[] for _ in g.names]
    for edges in g.out:
        for e in edges:
            if e.condition is not None:
                into[e.dst].extend(cond.literals(e.condition.tree))
    for i, n in enumerate(g.flow.nodes):
        text = " ".join([n.name, n.description, *n.inputs, *n.outputs, *into[i]])
        docs.append(set(words(text)))
    return docs


_DOC_CACHE: dict[int, tuple[Graph, list[set[str]], dict[str, float]]] = {}


def _index(g: Graph) -> tuple[list[set[str]], dict[str, float]]:
    cached = getattr(g, "_relevance_index", None)
    if cached is None:
        docs = _docs(g)
        df: dict[str, int] = {}
        for d in docs:
            for w in d:
                df[w] = df.get(w, 0) + 1
        n = len(docs)
        idf = {w: math.log(1 + n / c) for w, c in df.items()}
        cached = (docs, idf)
        # Cached on the graph it describes (Graph declares no such attribute).
        g._relevance_index = cached  # type: ignore[attr-defined]
    return cached


def relevance(g: Graph, message: str, state: dict[str, Any]) -> Relevance:
    docs, idf = _index(g)
    msg = set(words(message))
    given = {k for k, v in state.items() if v is not None and k not in g.initial_keys}
    raw: list[float] = []
    matched: list[tuple[str, ...]] = []
    for i, d in enumerate(docs):
        hits = sorted(msg & d)
        keys = sorted(given & set(g.inputs[i]))
        raw.append(sum(idf[w] for w in hits) + sum(math.log(1 + len(docs)) for _ in keys))
        matched.append(tuple(hits) + tuple(f"state.{k}" for k in keys))
    best = max(raw, default=0.0)
    if best < MIN_EVIDENCE:
        return Relevance(tuple(0.0 for _ in raw), frozenset(), tuple(matched), 0.0)
    scores = tuple(r / best for r in raw)
    needed = frozenset(
        i for i, s in enumerate(scores) if s >= NEEDED_SHARE and raw[i] >= MIN_EVIDENCE
    )
    return Relevance(scores, needed, tuple(matched), sum(scores[i] for i in needed))


@dataclass
class _Label:
    cov: int
    """Covered relevance, in millionths (integers compare exactly)."""
    length: int
    keys: int
    """The state keys the path provides, of those some input or condition needs (bits)."""
    node: int
    parent: _Label | None


def search(
    g: Graph,
    state: dict[str, Any],
    weight: Sequence[float],
    start: int,
    start_keys: set[str],
    stale: frozenset[str] = frozenset(),
) -> list[int]:
    """The best valid path from `start` to a terminal (see the module's docstring);
    `start_keys`: state keys available at `start` (after it ran); `stale`: keys of the
    state that nodes still to run will write again, so conditions on them are assumed,
    not checked."""
    have = set(state) | set(g.initial_keys)
    # Per forward edge: None (the condition fails now), or the keys it needs from the path.
    edge_keys: dict[tuple[int, int], list[str] | None] = {}
    for edges in g.forward:
        for e in edges:
            c = e.condition
            if c is None:
                continue
            missing = [k for k in c.keys if k not in state or k in stale]
            if not missing:
                if not c.holds(state):
                    edge_keys[(e.src, e.dst)] = None
            else:
                edge_keys[(e.src, e.dst)] = [k for k in missing if k not in g.initial_keys]
    # Only keys some input or condition needs are tracked: paths that differ in other
    # keys are the same to the search.
    needed_keys = {k for ins in g.inputs for k in ins if k not in have}
    needed_keys.update(k for ks in edge_keys.values() if ks for k in ks)
    bit = {k: 1 << i for i, k in enumerate(sorted(needed_keys))}

    def mask(keys: Any) -> int:
        m = 0
        for k in keys:
            m |= bit.get(k, 0)
        return m

    out_mask = [mask(o) for o in g.outputs]
    need_mask = [mask(k for k in ins if k not in have) for ins in g.inputs]
    edge_need = {k: (None if v is None else mask(v)) for k, v in edge_keys.items()}
    score = [round(w * 1_000_000) for w in weight]
    begin = mask(start_keys)
    if need_mask[start] & ~begin:
        raise NoPathError(f"the inputs of {g.names[start]!r} are not all available")
    labels: dict[int, list[_Label]] = {
        start: [_Label(score[start], 1, begin | out_mask[start], start, None)]
    }
    best: _Label | None = None
    for v in g.topo_order():
        here = labels.pop(v, None)
        if not here:
            continue
        if v in g.terminals:
            for lab in here:
                if best is None or (-lab.cov, lab.length) < (-best.cov, best.length):
                    best = lab
            continue
        for lab in here:
            for e in g.forward[v]:
                w = e.dst
                need = edge_need.get((v, w), 0)
                if need is None or need & ~lab.keys or need_mask[w] & ~lab.keys:
                    continue
                new = _Label(lab.cov + score[w], lab.length + 1, lab.keys | out_mask[w], w, lab)
                bucket = labels.get(w)
                if bucket is None:
                    labels[w] = [new]
                else:
                    _add(bucket, new)
    if best is None:
        raise NoPathError(f"no valid path from {g.names[start]!r} to a terminal node")
    path: list[int] = []
    node: _Label | None = best
    while node is not None:
        path.append(node.node)
        node = node.parent
    return path[::-1]


def _add(bucket: list[_Label], new: _Label) -> None:
    """Keeps the labels no other dominates (as covered or more, no longer, no fewer
    keys); at most LABELS_PER_NODE, the best first."""
    for old in bucket:
        if old.cov >= new.cov and old.length <= new.length and new.keys & ~old.keys == 0:
            return
    bucket[:] = [
        o
        for o in bucket
        if not (new.cov >= o.cov and new.length <= o.length and o.keys & ~new.keys == 0)
    ]
    bucket.append(new)
    if len(bucket) > LABELS_PER_NODE:
        bucket.sort(key=lambda lab: (-lab.cov, lab.length))
        del bucket[LABELS_PER_NODE:]


def _learned(
    g: Graph, message: str, state: dict[str, Any], history: Sequence[CompletedRun]
) -> tuple[tuple[str, ...] | None, float, float, int]:
    """The most often completed valid path of similar runs: (path, its support, the
    support of every similar run, how many similar runs)."""
    msg = frozenset(words(message))
    support: dict[tuple[str, ...], float] = {}
    total = 0.0
    count = 0
    for run in history:
        union = msg | run.message_words
        sim = len(msg & run.message_words) / len(union) if union else 0.0
        if sim >= SIMILAR:
            support[run.path] = support.get(run.path, 0.0) + sim
            total += sim
            count += 1
    for path, s in sorted(support.items(), key=lambda kv: (-kv[1], kv[0])):
        if check_path(g, path, state).valid:
            return path, s, total, count
    return None, 0.0, total, count


def plan_embedded(
    g: Graph,
    message: str,
    state: dict[str, Any],
    history: Sequence[CompletedRun] = (),
) -> ExecutionPath:
    """The embedded planner's path for a request; raises NoPathError when none is valid."""
    rel = relevance(g, message, state)
    weight = [rel.scores[i] if i in rel.needed else 0.0 for i in range(len(g.names))]
    learned, support, total_support, similar = _learned(g, message, state, history)
    if learned is not None:
        nodes = learned
        note = (
            f"completed by {similar} similar run(s); this path carries "
            f"{support / total_support:.0%} of their weight"
        )
    else:
        nodes = tuple(
            g.names[i] for i in search(g, state, weight, g.entry, set(state) | set(g.initial_keys))
        )
        note = ""
    covered = sum(weight[g.index[n]] for n in set(nodes))
    evidence = rel.total_needed + total_support
    confidence = (covered + support) / evidence if evidence > 0 else 0.0
    return describe(g, nodes, state, rel, PLANNER, round(min(1.0, confidence), 4), note)


def describe(
    g: Graph,
    nodes: Sequence[str],
    state: dict[str, Any],
    rel: Relevance,
    planner: str,
    confidence: float,
    note: str = "",
) -> ExecutionPath:
    """A valid path with its reasons per hop and per skipped node."""
    check = check_path(g, nodes, state)
    assumed = {(a.from_node, a.to_node): a for a in check.assumptions}
    hops: list[Hop] = []
    for pos, name in enumerate(nodes):
        i = g.index[name]
        parts = []
        if pos == 0:
            parts.append("the entry node")
        else:
            edge = g.edge(g.index[nodes[pos - 1]], i)
            c = edge.condition if edge else None
            a = assumed.get((nodes[pos - 1], name))
            if a is not None:
                parts.append(f"assumes `{a.condition}` ({', '.join(a.unknown_keys)} not known yet)")
            elif c is not None:
                parts.append(f"`{c.text}` holds on the state")
            else:
                parts.append(f"follows {nodes[pos - 1]!r}")
        if i in rel.needed:
            parts.append(
                f"the request needs it (relevance {rel.scores[i]:.2f}: "
                f"{', '.join(rel.matched[i][:6])})"
            )
        elif pos == len(nodes) - 1:
            parts.append("a terminal node")
        if note and pos == 0:
            parts.append(note)
        hops.append(Hop(name, "; ".join(parts)))
    on_path = set(nodes)
    blocked = _blocked(g, state)
    skipped = []
    for i, name in enumerate(g.names):
        if name in on_path:
            continue
        if i in blocked:
            reason = blocked[i]
        elif i in rel.needed:
            reason = (
                f"matches the request (relevance {rel.scores[i]:.2f}: "
                f"{', '.join(rel.matched[i][:6])}), but the chosen path covers more of it"
            )
        elif rel.matched[i]:
            reason = (
                f"not needed: the request matches it weakly (relevance {rel.scores[i]:.2f}: "
                f"{', '.join(rel.matched[i][:6])})"
            )
        else:
            reason = "not needed: nothing in the request or state points to it"
        skipped.append(Hop(name, reason))
    return ExecutionPath(
        nodes=tuple(nodes),
        hops=tuple(hops),
        skipped=tuple(skipped),
        check=check,
        planner=planner,
        confidence=confidence,
    )


def _blocked(g: Graph, state: dict[str, Any]) -> dict[int, str]:
    """Nodes no path can reach under the state (a condition on known state is false),
    with the reason."""
    failing: dict[int, str] = {}
    open_edges: list[list[Any]] = [[] for _ in g.names]
    for edges in g.forward:
        for e in edges:
            c = e.condition
            if c is not None and all(k in state for k in c.keys) and not c.holds(state):
                failing.setdefault(e.dst, f"`{c.text}` is false on the state")
            else:
                open_edges[e.src].append(e)
    reach = g.reachable_from(g.entry, open_edges)
    return {
        i: f"not reachable under the state: {failing.get(i, 'every route to it is closed')}"
        for i in range(len(g.names))
        if i not in reach
    }
