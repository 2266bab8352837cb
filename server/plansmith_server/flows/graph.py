"""A flow compiled for checking and planning: node indexes, edges with parsed conditions,
the forward graph (every edge but the retry loops, acyclic once registered) in
topological order, and the registration rules (`validate`)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from plansmith_server.errors import FieldViolation
from plansmith_server.flows import conditions as cond
from plansmith_server.flows.model import Flow, NodeKind

MAX_NODES = 1_000
"""Nodes of one flow: the embedded planner's search is bounded by it (see docs/flows.md)."""
MAX_EDGES = 5_000
"""Edges of one flow, over all nodes."""
MAX_NEXT = 32
"""Next nodes of one node."""
MAX_KEYS = 50
"""Inputs, outputs or initial state keys of one node or flow."""
MAX_DESCRIPTION = 4_000
MAX_FLOW_NAME = 200
NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
"""A node's name or a state key."""


@dataclass(frozen=True)
class Edge:
    src: int
    dst: int
    condition: cond.Condition | None
    retry: bool


class Graph:
    """A flow whose definition passed `validate` (or, for `validate` itself, any flow:
    unknown targets are left out of the edges)."""

    def __init__(self, flow: Flow) -> None:
        self.flow = flow
        self.names = [n.name for n in flow.nodes]
        self.index: dict[str, int] = {}
        for i, n in enumerate(flow.nodes):
            self.index.setdefault(n.name, i)
        self.entry = self.index.get(flow.entry_node, -1)
        self.terminals = frozenset(self.index[t] for t in flow.terminal_nodes if t in self.index)
        self.initial_keys = frozenset(flow.initial_state_keys)
        self.outputs = [frozenset(n.outputs) for n in flow.nodes]
        self.inputs = [tuple(n.inputs) for n in flow.nodes]
        self.condition_errors: dict[tuple[int, str], str] = {}
        self.out: list[list[Edge]] = [[] for _ in flow.nodes]
        for i, n in enumerate(flow.nodes):
            retry = set(n.retry_next_nodes)
            for target in dict.fromkeys(n.possible_next_nodes):
                j = self.index.get(target)
                if j is None:
                    continue
                parsed = None
                text = n.conditions.get(target)
                if text is not None:
                    try:
                        parsed = cond.compile_condition(text)
                    except cond.ConditionError as exc:
                        self.condition_errors[(i, target)] = str(exc)
                self.out[i].append(Edge(i, j, parsed, target in retry))
        self.forward = [[e for e in edges if not e.retry] for edges in self.out]
        self.producers: dict[str, list[int]] = {}
        for i, outs in enumerate(self.outputs):
            for k in outs:
                self.producers.setdefault(k, []).append(i)
        self._topo: list[int] | None = None

    def edge(self, a: int, b: int) -> Edge | None:
        for e in self.out[a]:
            if e.dst == b:
                return e
        return None

    def topo_order(self) -> list[int]:
        """The nodes in an order where every forward edge goes forward (Kahn's algorithm;
        nodes on a forward cycle, which registration refuses, are left out)."""
        if self._topo is None:
            indeg = [0] * len(self.names)
            for edges in self.forward:
                for e in edges:
                    indeg[e.dst] += 1
            ready = [i for i, d in enumerate(indeg) if d == 0]
            order: list[int] = []
            while ready:
                i = ready.pop()
                order.append(i)
                for e in self.forward[i]:
                    indeg[e.dst] -= 1
                    if indeg[e.dst] == 0:
                        ready.append(e.dst)
            self._topo = order
        return self._topo

    def reachable_from(self, start: int, edges: list[list[Edge]]) -> set[int]:
        seen = {start}
        stack = [start]
        while stack:
            for e in edges[stack.pop()]:
                if e.dst not in seen:
                    seen.add(e.dst)
                    stack.append(e.dst)
        return seen

    def reaching(self, targets: Iterable[int], edges: list[list[Edge]]) -> set[int]:
        """Nodes from which some target can be reached along `edges`."""
        back: list[list[int]] = [[] for _ in self.names]
        for es in edges:
            for e in es:
                back[e.dst].append(e.src)
        seen = set(targets)
        stack = list(seen)
        while stack:
            for p in back[stack.pop()]:
                if p not in seen:
                    seen.add(p)
                    stack.append(p)
        return seen


def _sccs(n: int, edges: list[list[Edge]]) -> list[list[int]]:
    """Strongly connected components (iterative Tarjan), each in discovery order."""
    index = [-1] * n
    low = [0] * n
    on_stack = [False] * n
    stack: list[int] = []
    out: list[list[int]] = []
    counter = 0
    for root in range(n):
        if index[root] != -1:
            continue
        work = [(root, 0)]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack[root] = True
        while work:
            v, i = work[-1]
            if i < len(edges[v]):
                work[-1] = (v, i + 1)
                w = edges[v][i].dst
                if index[w] == -1:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack[w] = True
                    work.append((w, 0))
                elif on_stack[w]:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                u = work[-1][0]
                low[u] = min(low[u], low[v])
            if low[v] == index[v]:
                comp: list[int] = []
                while True:
                    w = stack.pop()
                    on_stack[w] = False
                    comp.append(w)
                    if w == v:
                        break
                out.append(comp[::-1])
    return out


def _cycle_text(g: Graph, comp: list[int], edges: list[list[Edge]]) -> str:
    """One cycle through the component's first node, as `a -> b -> a`."""
    members = set(comp)
    start = comp[0]
    prev: dict[int, int] = {start: -1}
    stack = [start]
    while stack:
        v = stack.pop()
        for e in edges[v]:
            if e.dst == start:
                path = [v]
                while prev[path[-1]] != -1:
                    path.append(prev[path[-1]])
                names = [g.names[x] for x in reversed(path)] + [g.names[start]]
                return " -> ".join(names[:12]) + (" -> ..." if len(names) > 12 else "")
            if e.dst in members and e.dst not in prev:
                prev[e.dst] = v
                stack.append(e.dst)
    return g.names[start]


def validate(flow: Flow, prefix: str = "flow") -> list[FieldViolation]:
    """Every violation of the registration rules (docs/flows.md), each naming the node."""
    v: list[FieldViolation] = []

    def add(field: str, description: str) -> None:
        v.append(FieldViolation(f"{prefix}.{field}" if field else prefix, description))

    if not flow.name.strip():
        add("name", "is required and must not be blank")
    elif len(flow.name) > MAX_FLOW_NAME:
        add("name", f"is {len(flow.name)} characters long; at most {MAX_FLOW_NAME} are allowed")
    if len(flow.description) > MAX_DESCRIPTION:
        add("description", f"is longer than the limit of {MAX_DESCRIPTION} characters")
    if not flow.nodes:
        add("nodes", "at least one node is required")
    if len(flow.nodes) > MAX_NODES:
        add("nodes", f"has {len(flow.nodes)} nodes; the limit is {MAX_NODES} nodes per flow")
    edges = sum(len(n.possible_next_nodes) for n in flow.nodes)
    if edges > MAX_EDGES:
        add("nodes", f"has {edges} edges; the limit is {MAX_EDGES} edges per flow")
    if len(flow.initial_state_keys) > MAX_KEYS:
        add(
            "initial_state_keys",
            f"has {len(flow.initial_state_keys)} keys; the limit is {MAX_KEYS}",
        )
    if v and (len(flow.nodes) > MAX_NODES or edges > MAX_EDGES):
        return v  # too big to look into
    for i, k in enumerate(flow.initial_state_keys):
        if not NAME.fullmatch(k):
            add(f"initial_state_keys[{i}]", f"{k[:80]!r} is not a key name (letters, digits, _)")
    seen: dict[str, int] = {}
    for i, n in enumerate(flow.nodes):
        p = f"nodes[{i}]"
        who = f"node {n.name[:64]!r}"
        if not NAME.fullmatch(n.name):
            add(
                f"{p}.name",
                f"{who}: a name is 1 to 64 letters, digits and _, starting with a letter",
            )
        elif n.name in seen:
            add(f"{p}.name", f"{who}: the name is used by nodes[{seen[n.name]}] too")
        else:
            seen[n.name] = i
        if len(n.description) > MAX_DESCRIPTION:
            add(f"{p}.description", f"{who}: longer than the limit of {MAX_DESCRIPTION} characters")
        for what, keys in (("inputs", n.inputs), ("outputs", n.outputs)):
            if len(keys) > MAX_KEYS:
                add(f"{p}.{what}", f"{who}: {len(keys)} {what}; the limit is {MAX_KEYS}")
            for j, k in enumerate(keys[:MAX_KEYS]):
                if not NAME.fullmatch(k):
                    add(
                        f"{p}.{what}[{j}]",
                        f"{who}: {k[:80]!r} is not a key name (letters, digits, _)",
                    )
        if len(n.possible_next_nodes) > MAX_NEXT:
            add(
                f"{p}.possible_next_nodes",
                f"{who}: {len(n.possible_next_nodes)} next nodes; the limit is {MAX_NEXT}",
            )
        for j, kind in enumerate(n.kinds):
            if kind not in (
                NodeKind.HUMAN_IN_THE_LOOP,
                NodeKind.SIDE_EFFECTING,
                NodeKind.RETRY_LOOP,
            ):
                add(f"{p}.kinds[{j}]", f"{who}: unknown kind {kind}")
    names = set(seen)
    g = Graph(flow)
    if not flow.entry_node:
        add("entry_node", "is required")
    elif flow.entry_node not in names:
        add("entry_node", f"names no node of the flow: {flow.entry_node[:80]!r}")
    if not flow.terminal_nodes:
        add("terminal_nodes", "at least one terminal node is required")
    for j, t in enumerate(flow.terminal_nodes):
        if t not in names:
            add(f"terminal_nodes[{j}]", f"names no node of the flow: {t[:80]!r}")
    known_keys = set(flow.initial_state_keys).union(*(n.outputs for n in flow.nodes))
    for i, n in enumerate(flow.nodes):
        p = f"nodes[{i}]"
        who = f"node {n.name[:64]!r}"
        for j, target in enumerate(n.possible_next_nodes):
            if target not in names:
                add(f"{p}.possible_next_nodes[{j}]", f"{who}: unknown target {target[:80]!r}")
        if n.name in flow.terminal_nodes and n.possible_next_nodes:
            add(f"{p}.possible_next_nodes", f"{who}: a terminal node has no next nodes")
        for target in n.conditions:
            field = f"{p}.conditions[{target[:64]!r}]"
            if target not in n.possible_next_nodes:
                add(field, f"{who}: a condition on {target[:64]!r}, which is not a next node")
                continue
            err = g.condition_errors.get((i, target))
            if err is not None:
                add(field, f"{who}: the condition does not parse: {err}")
                continue
            unknown = [
                r.text()
                for r in cond.refs(cond.parse(n.conditions[target]))
                if r.key not in known_keys
            ]
            if unknown:
                add(
                    field,
                    f"{who}: the condition names unknown state {', '.join(dict.fromkeys(unknown))}"
                    " (neither an initial state key nor any node's output)",
                )
        for j, target in enumerate(n.retry_next_nodes):
            if target not in n.possible_next_nodes:
                add(f"{p}.retry_next_nodes[{j}]", f"{who}: {target[:64]!r} is not a next node")
    if g.entry < 0 or not flow.nodes:
        return v
    _graph_rules(g, add)
    return v


def _graph_rules(g: Graph, add_: Callable[[str, str], None]) -> None:
    n = len(g.names)

    def node_field(i: int) -> str:
        return f"nodes[{i}]"

    def who(i: int) -> str:
        return f"node {g.names[i]!r}"

    reach = g.reachable_from(g.entry, g.out)
    for i in range(n):
        if i not in reach:
            add_(node_field(i), f"{who(i)}: unreachable from the entry node {g.names[g.entry]!r}")
    # Cycles along forward edges would let a path repeat nodes without a retry loop.
    for comp in _sccs(n, g.forward):
        if len(comp) > 1 or any(e.dst == comp[0] for e in g.forward[comp[0]]):
            add_(
                node_field(comp[0]),
                f"{who(comp[0])}: on a cycle with no retry-loop edge: "
                f"{_cycle_text(g, comp, g.forward)} (list one of its edges in retry_next_nodes)",
            )
    # A cycle of any edges that nothing leaves, and no terminal in it: a run there never ends.
    trapped: set[int] = set()
    for comp in _sccs(n, g.out):
        members = set(comp)
        cyclic = len(comp) > 1 or any(e.dst == comp[0] for e in g.out[comp[0]])
        exits = any(e.dst not in members for i in comp for e in g.out[i])
        if cyclic and not exits and not members & g.terminals:
            trapped |= members
            add_(
                node_field(comp[0]),
                f"{who(comp[0])}: on a cycle with no exit: {_cycle_text(g, comp, g.out)}",
            )
    # A path ends at a terminal without going back along a retry loop.
    finishing = g.reaching(g.terminals, g.forward)
    for i in range(n):
        if i not in finishing and i not in trapped:
            add_(node_field(i), f"{who(i)}: no route to a terminal node (retry-loop edges aside)")
    # Inputs: available on some route from the entry (initial keys, outputs upstream),
    # as bit masks over the components of the graph in topological order (Tarjan lists
    # a component after every component it reaches).
    bit: dict[str, int] = {}

    def mask(keys: Iterable[str]) -> int:
        m = 0
        for k in keys:
            b = bit.get(k)
            if b is None:
                b = bit[k] = 1 << len(bit)
            m |= b
        return m

    comps = _sccs(n, g.out)
    comp_of = [0] * n
    for ci, comp in enumerate(comps):
        for i in comp:
            comp_of[i] = ci
    avail_in: list[int | None] = [None] * len(comps)
    avail_in[comp_of[g.entry]] = mask(g.initial_keys)
    for ci in range(len(comps) - 1, -1, -1):
        here = avail_in[ci]
        if here is None:
            continue  # unreachable from the entry: said above
        comp = comps[ci]
        produced = mask(k for i in comp for k in g.outputs[i])
        if len(comp) > 1 or any(e.dst == comp[0] for e in g.out[comp[0]]):
            here |= produced  # around the cycle, each member sees the others' outputs
            avail_in[ci] = here
        passed = here | produced
        for i in comp:
            for e in g.out[i]:
                cj = comp_of[e.dst]
                if cj != ci:
                    prev = avail_in[cj]
                    avail_in[cj] = passed if prev is None else prev | passed
    for i in range(n):
        have = avail_in[comp_of[i]]
        if have is None:
            continue
        for j, k in enumerate(g.inputs[i]):
            if not have & bit.get(k, 0):
                add_(
                    f"{node_field(i)}.inputs[{j}]",
                    f"{who(i)}: input {k!r} is provided by no upstream node and is not an "
                    "initial state key",
                )
