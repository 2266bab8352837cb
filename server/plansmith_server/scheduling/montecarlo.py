"""Monte Carlo schedule risk: completion percentiles, deadline odds, criticality.

Durations are drawn per task from three-point estimates (optimistic, most likely,
pessimistic) as a ``tasks x samples`` matrix. The longest path is computed for all samples
at once, level by level (see :mod:`.cpm`): a level's earliest starts are the maximum over
the finishes of its incoming edges' sources, a few numpy steps per level (see
`_Segment`); a long chain of tasks is one node of the levels, done by a cumulative sum
(see `_Plan`). A backward pass the same way gives each sample's slack; a task is critical
in a sample when its slack is zero, and its criticality index is the share of such
samples.

The graph is any DAG: the risk assessment passes the plan's dependencies plus each agent's
sequence of tasks (:mod:`.agent_sequence`), so that every sample is a schedule of the plan
as assigned, one task at a time per agent.

Distribution: triangular by default (exact inverse-CDF sampling, fast, its mean
``(a + m + b) / 3`` gives pessimistic tails more weight than PERT); PERT-beta
(``alpha = 1 + 4 (m - a) / (b - a)``, ``beta = 1 + 4 (b - m) / (b - a)``, mean
``(a + 4m + b) / 6``) is available.

Same seed, sample count and chunk size (a function of the task count): identical numbers.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .cpm import IntArray, topological_levels
from .errors import DependencyCycleError

FloatArray = npt.NDArray[np.float64]

DEFAULT_SAMPLES = 10_000
#: Samples per chunk: bounds memory to a few ``tasks x CHUNK`` float matrices.
CHUNK = 2_000
#: ...and to a few matrices of at most this many cells (8 bytes each): a plan of 10,000
#: tasks in chunks of 2,000 held ~1 GB of them at once.
MAX_CHUNK_CELLS = 2_000_000


class SimulationCancelled(Exception):
    """`simulate` stopped early because its caller no longer wants the result."""


class Distribution(enum.Enum):
    """Duration distribution built from a three-point estimate."""

    TRIANGULAR = "TRIANGULAR"
    PERT = "PERT"


@dataclass(frozen=True, eq=False)
class SimulationResult:
    """Raw Monte Carlo output over node indices.

    Attributes:
        totals: Project duration per sample (hours).
        criticality: Share of samples where each node has zero slack (0 for
            zero-length nodes).
        mean: Sample mean duration per node.
        std: Sample standard deviation per node.
        correlation: Correlation of each node's duration with the project duration
            (0 when either is constant).
    """

    totals: FloatArray
    criticality: FloatArray
    mean: FloatArray
    std: FloatArray
    correlation: FloatArray


#: Edges into one node reduced by one numpy step each, rank by rank (see `_Segment`);
#: a node with more takes one more step for the rest.
RANKS = 8
#: Chains of at least this many tasks are computed as one node of the levels (`_Plan`).
MIN_CHAIN = 8


@dataclass(frozen=True, eq=False)
class _Segment:
    """The edges that meet one level's nodes at their `key` end, ready to reduce.

    For each key node ``keys[j]``, the reduction over its edges' `other` ends: rank 0
    (each key's first edge) is one gather, each further rank up to ``RANKS`` one gather
    and one elementwise max/min over the keys that have that many edges, and the rest
    of a key with more, one reduction of its own. ``np.ufunc.reduceat`` along the node
    axis did the same in one call per level but ran ~20 times slower than a copy of its
    input, which made deep graphs (an agent's sequence of tasks is a chain) slow.

    Attributes:
        nodes: The level's nodes.
        keys: Its nodes that have edges.
        first: The `other` end of each key's first edge.
        ranks: Per further rank: positions in `keys` having such an edge, and its
            `other` ends.
        rest: Per key with more than `RANKS` edges: its position and its remaining
            edges' `other` ends.
    """

    nodes: IntArray
    keys: IntArray
    first: IntArray
    ranks: tuple[tuple[IntArray, IntArray], ...]
    rest: tuple[tuple[int, IntArray], ...]

    def reduce(self, ufunc: np.ufunc, x: FloatArray) -> FloatArray:
        """``ufunc`` over the rows of `x` at each key's `other` ends: ``keys x samples``."""
        out = x[self.first]
        for pos, other in self.ranks:
            if len(pos) == len(out):
                ufunc(out, x[other], out=out)
            else:
                out[pos] = ufunc(out[pos], x[other])
        for j, other in self.rest:
            ufunc(out[j], ufunc.reduce(x[other], axis=0), out=out[j])
        return out


def _level_segments(
    count: int, nodes: list[IntArray], level: IntArray, key: IntArray, other: IntArray
) -> list[_Segment]:
    """Per level: its `nodes` and the edges whose `key` end lies on it (`level` of each
    node)."""
    order = np.lexsort((key, level[key])) if len(key) else np.zeros(0, np.int64)
    ks, os_ = key[order], other[order]
    eb = np.searchsorted(level[ks], np.arange(count + 1))
    out = []
    empty = np.zeros(0, np.int64)
    for k in range(count):
        a, b = eb[k], eb[k + 1]
        seg, oth = ks[a:b], os_[a:b]
        if not len(seg):
            out.append(_Segment(nodes[k], empty, empty, (), ()))
            continue
        starts = np.flatnonzero(np.r_[True, seg[1:] != seg[:-1]])
        counts = np.diff(np.r_[starts, len(seg)])
        ranks = []
        for r in range(1, min(int(counts.max()), RANKS)):
            pos = np.flatnonzero(counts > r)
            ranks.append((pos, oth[starts[pos] + r]))
        rest = tuple(
            (int(j), oth[starts[j] + RANKS : starts[j] + counts[j]])
            for j in np.flatnonzero(counts > RANKS)
        )
        out.append(_Segment(nodes[k], seg[starts], oth[starts], tuple(ranks), rest))
    return out


def _long_chains(n: int, src: IntArray, dst: IntArray) -> list[IntArray]:
    """Maximal runs of at least `MIN_CHAIN` nodes, each the only successor of the one
    before and having it as its only predecessor (edges without duplicates)."""
    outdeg = np.bincount(src, minlength=n)
    indeg = np.bincount(dst, minlength=n)
    link = (outdeg[src] == 1) & (indeg[dst] == 1)
    nxt = np.full(n, -1, dtype=np.int64)
    nxt[src[link]] = dst[link]
    linked_in = np.zeros(n, dtype=bool)
    linked_in[dst[link]] = True
    chains = []
    nxt_list = nxt.tolist()
    # Heads: a link starts from them but none ends in them (a ring of links has none and
    # stays for the cycle check).
    for h in np.flatnonzero((nxt >= 0) & ~linked_in).tolist():
        run = [h]
        v = nxt_list[h]
        while v >= 0:
            run.append(v)
            v = nxt_list[v]
        if len(run) >= MIN_CHAIN:
            chains.append(np.array(run, dtype=np.int64))
    return chains


class _Plan:
    """Edge segments per level, prepared once for all chunks.

    A long chain (an agent's sequence of tasks with nothing joining or leaving it midway,
    a run of dependent tasks) is one node of the levels: its finishes are its head's
    earliest start plus a cumulative sum of its durations, its latest starts the tail's
    minus one, instead of one level (and its numpy steps) per task of the chain.
    """

    def __init__(self, n: int, src: IntArray, dst: IntArray) -> None:
        if len(src):
            pairs = np.unique(src * n + dst)  # duplicates change no longest path
            src, dst = pairs // n, pairs % n
        chains = _long_chains(n, src, dst)
        head = np.arange(n, dtype=np.int64)  # each node's chain head (itself if none)
        tail = np.arange(n, dtype=np.int64)
        inner = np.zeros(n, dtype=bool)  # chain members other than the head
        for c in chains:
            head[c] = c[0]
            tail[c] = c[-1]
            inner[c[1:]] = True
        # Links inside a chain go; the others run from a tail (or lone node) to a head.
        keep = head[src] != head[dst]
        src_k, dst_k = src[keep], dst[keep]
        try:
            lv = topological_levels(n, head[src_k], dst_k)
        except DependencyCycleError:
            topological_levels(n, src, dst)  # names the cycle in tasks, not chains
            raise
        if len(src_k) + sum(len(c) - 1 for c in chains) != len(src):
            topological_levels(n, src, dst)  # an edge back into a chain: a cycle
        self.levels = lv
        level = lv.level[head]
        has_succ = np.zeros(n, dtype=bool)
        has_succ[src] = True
        self.sinks = np.flatnonzero(~has_succ)
        fwd_nodes, bwd_nodes = [], []
        for k in range(lv.count):
            at = lv.order[lv.bounds[k] : lv.bounds[k + 1]]
            at = at[~inner[at]]
            fwd_nodes.append(at)
            bwd_nodes.append(tail[at])
        self.chains_at: list[list[IntArray]] = [[] for _ in range(lv.count)]
        for c in chains:
            self.chains_at[int(lv.level[c[0]])].append(c)
        # Forward: edges grouped by target, targets by level; backward: by source.
        self.fwd = _level_segments(lv.count, fwd_nodes, level, key=dst_k, other=src_k)
        self.bwd = _level_segments(lv.count, bwd_nodes, level, key=src_k, other=dst_k)


def sample_durations(
    rng: np.random.Generator,
    low: FloatArray,
    mode: FloatArray,
    high: FloatArray,
    size: int,
    distribution: Distribution = Distribution.TRIANGULAR,
) -> FloatArray:
    """Draws a ``len(low) x size`` matrix of durations."""
    a = low[:, None]
    m = mode[:, None]
    b = high[:, None]
    width = b - a
    safe = np.where(width > 0, width, 1.0)
    if distribution is Distribution.PERT:
        alpha = 1.0 + 4.0 * (m - a) / safe
        beta = 1.0 + 4.0 * (b - m) / safe
        x = rng.beta(
            np.broadcast_to(alpha, (len(low), size)), np.broadcast_to(beta, (len(low), size))
        )
        return a + width * x
    u = rng.random((len(low), size))
    # Inverse CDF, both branches computed in place (a chunk is millions of cells).
    is_left = u < (m - a) / safe
    left = u * (safe * (m - a))
    np.sqrt(left, out=left)
    left += a
    right = np.subtract(1.0, u, out=u)
    right *= safe * (b - m)
    np.sqrt(right, out=right)
    np.subtract(b, right, out=right)
    out = np.where(is_left, left, right)
    point = np.flatnonzero(width[:, 0] <= 0)
    if len(point):
        out[point] = a[point]
    return out


def simulate(
    low: Sequence[float] | FloatArray,
    mode: Sequence[float] | FloatArray,
    high: Sequence[float] | FloatArray,
    src: IntArray,
    dst: IntArray,
    *,
    samples: int = DEFAULT_SAMPLES,
    seed: int = 0,
    distribution: Distribution = Distribution.TRIANGULAR,
    chunk: int = CHUNK,
    cancelled: Callable[[], bool] | None = None,
) -> SimulationResult:
    """Monte Carlo over a DAG of three-point durations.

    Args:
        low: Optimistic hours per node.
        mode: Most likely hours per node.
        high: Pessimistic hours per node.
        src: Edge sources (``dst`` depends on ``src``).
        dst: Edge targets.
        samples: Number of samples.
        seed: Seed for ``numpy.random.default_rng``.
        distribution: Duration distribution.
        chunk: Samples per chunk (fewer for large graphs, see ``MAX_CHUNK_CELLS``).
        cancelled: Asked between chunks; once it returns True the simulation stops.

    Raises:
        DependencyCycleError: The graph has a cycle (node indices as strings).
        SimulationCancelled: ``cancelled()`` returned True.
    """
    lo = np.asarray(low, dtype=np.float64)
    mo = np.clip(np.asarray(mode, dtype=np.float64), lo, None)
    hi = np.maximum(np.asarray(high, dtype=np.float64), mo)
    n = len(lo)
    src = np.asarray(src, dtype=np.int64)
    dst = np.asarray(dst, dtype=np.int64)
    plan = _Plan(n, src, dst)
    chunk = max(1, min(chunk, MAX_CHUNK_CELLS // max(n, 1)))
    rng = np.random.default_rng(seed)
    totals = np.empty(samples)
    crit = np.zeros(n)
    s1 = np.zeros(n)
    s2 = np.zeros(n)
    sdt = np.zeros(n)
    positive = hi > 0
    done = 0
    while done < samples:
        if cancelled is not None and cancelled():
            raise SimulationCancelled
        c = min(chunk, samples - done)
        d = sample_durations(rng, lo, mo, hi, c, distribution)
        ef = np.empty((n, c))
        for seg, chains in zip(plan.fwd, plan.chains_at, strict=True):
            ef[seg.nodes] = d[seg.nodes]
            if len(seg.keys):
                ef[seg.keys] += seg.reduce(np.maximum, ef)
            for chain in chains:
                run = np.cumsum(d[chain[1:]], axis=0)
                run += ef[chain[0]]
                ef[chain[1:]] = run
        total = ef[plan.sinks].max(axis=0) if n else np.zeros(c)
        # Backward pass: latest finish; reuse a buffer for latest starts.
        ls = np.empty((n, c))
        for seg, chains in zip(reversed(plan.bwd), reversed(plan.chains_at), strict=True):
            ls[seg.nodes] = total - d[seg.nodes]
            if len(seg.keys):
                owners = seg.keys
                ls[owners] = np.minimum(seg.reduce(np.minimum, ls), total) - d[owners]
            for chain in chains:
                run = np.cumsum(d[chain[-2::-1]], axis=0)
                np.subtract(ls[chain[-1]], run, out=run)
                ls[chain[-2::-1]] = run
        slack = ls - (ef - d)
        tol = 1e-9 * np.maximum(total, 1.0)
        crit += np.count_nonzero(slack <= tol, axis=1)
        totals[done : done + c] = total
        s1 += d.sum(axis=1)
        s2 += np.einsum("ij,ij->i", d, d)
        sdt += d @ total
        done += c
    crit = np.where(positive, crit / samples, 0.0)
    mean = s1 / samples
    var = np.maximum(s2 / samples - mean**2, 0.0)
    std = np.sqrt(var)
    t_mean = totals.mean()
    t_std = totals.std()
    cov = sdt / samples - mean * t_mean
    denom = std * t_std
    corr = np.where(denom > 1e-12, cov / np.where(denom > 1e-12, denom, 1.0), 0.0)
    return SimulationResult(totals, crit, mean, std, np.clip(corr, -1.0, 1.0))
