"""Each agent's work sequence in a schedule, as precedence edges.

An agent does one task at a time. A schedule of the plan as assigned (the serial SGS's
list schedule of :func:`schedule_current_plan`) gives every agent an order of its tasks;
chaining each task to the one its agent does before it turns the agent's capacity into
dependencies. The longest path through the dependencies plus these edges is the schedule's
makespan at its durations, and stays a valid schedule of the same assignment and order at
any other durations: the Monte Carlo simulation (:mod:`.montecarlo`) schedules every
sample this way, vectorized over samples, instead of running a Python SGS per sample.

Why the order is kept rather than regenerated per sample: a serial SGS run on one
sample's durations may slip a task into an earlier gap of its agent, which in a real run
needs knowing the durations beforehand; the sequence is what an agent can follow as the
work unfolds (start the next task of its list when its dependencies are done). At the
schedule's own durations both agree: each task starts where the schedule put it, since the
serial SGS starts a task either when its dependencies are done or when its agent finishes
the task before it.

The schedule is acyclic with the dependencies: a sequence edge goes from an earlier start
to a strictly later one, a dependency never to an earlier start.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .cpm import IntArray
from .model import ScheduleResult


def agent_sequence_edges(
    schedule: ScheduleResult, index: Mapping[str, int]
) -> tuple[IntArray, IntArray]:
    """Edges from each agent's task to its next one in `schedule` (``dst`` after ``src``).

    Tasks of no agent and zero-length tasks hold no agent (as in the serial SGS) and are
    left out of the sequences; so are activities not in `index`.

    Args:
        schedule: A schedule of the tasks (e.g. :func:`schedule_current_plan`).
        index: Index of each task id.
    """
    last: dict[str, int] = {}
    src: list[int] = []
    dst: list[int] = []
    # Starts of one agent's positive-length tasks differ; sorting by start alone keeps
    # the input order of the result for ties of other tasks, which are skipped anyway.
    for a in sorted(schedule.activities, key=lambda a: a.start):
        if a.agent is None or a.end <= a.start or a.activity_id not in index:
            continue
        v = index[a.activity_id]
        u = last.get(a.agent)
        if u is not None:
            src.append(u)
            dst.append(v)
        last[a.agent] = v
    return np.array(src, dtype=np.int64), np.array(dst, dtype=np.int64)
