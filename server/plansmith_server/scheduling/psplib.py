"""Parser for PSPLIB single-mode RCPSP files (``.sm``, latin-1).

Jobs become activities named by their job number (``"1"`` ... ``"32"``), renewable
resources ``R1``..``R4``; durations are periods, so the problem uses a time resolution of
1 (one unit per period, reported as "hours").
"""

from __future__ import annotations

import re
from pathlib import Path

from .errors import InvalidProblemError
from .model import Activity, Resource, SchedulingProblem

_INT_RE = re.compile(r"-?\d+")


def parse_sm(text: str, name: str = "") -> SchedulingProblem:
    """Parses the text of an ``.sm`` file.

    Args:
        text: File contents.
        name: Instance name to record on the problem.

    Raises:
        InvalidProblemError: The text is not a single-mode PSPLIB file.
    """
    lines = text.splitlines()

    def find(prefix: str) -> int:
        for i, line in enumerate(lines):
            if line.strip().upper().startswith(prefix):
                return i
        raise InvalidProblemError(f"PSPLIB section {prefix!r} not found")

    succ_of: dict[int, list[int]] = {}
    i = find("PRECEDENCE RELATIONS") + 2
    while i < len(lines) and not lines[i].startswith("*"):
        nums = [int(x) for x in _INT_RE.findall(lines[i])]
        if nums:
            job, _modes, nsucc = nums[0], nums[1], nums[2]
            succ_of[job] = nums[3 : 3 + nsucc]
        i += 1

    i = find("REQUESTS/DURATIONS") + 3  # header line and dashes
    durations: dict[int, int] = {}
    demands: dict[int, list[int]] = {}
    while i < len(lines) and not lines[i].startswith("*"):
        nums = [int(x) for x in _INT_RE.findall(lines[i])]
        if nums:
            job, _mode, d = nums[0], nums[1], nums[2]
            durations[job] = d
            demands[job] = nums[3:]
        i += 1

    i = find("RESOURCEAVAILABILITIES") + 2
    caps = [int(x) for x in _INT_RE.findall(lines[i])]
    if not durations or not caps:
        raise InvalidProblemError("empty PSPLIB instance")

    preds: dict[int, list[int]] = {j: [] for j in durations}
    for j, ss in succ_of.items():
        for s in ss:
            preds.setdefault(s, []).append(j)
    res_ids = [f"R{k + 1}" for k in range(len(caps))]
    activities = tuple(
        Activity(
            id=str(j),
            duration=float(durations[j]),
            predecessors=tuple(str(p) for p in sorted(preds.get(j, []))),
            demands={res_ids[k]: q for k, q in enumerate(demands[j]) if q > 0},
        )
        for j in sorted(durations)
    )
    return SchedulingProblem(
        activities=activities,
        resources=tuple(Resource(r, c) for r, c in zip(res_ids, caps, strict=True)),
        time_resolution=1.0,
        name=name,
    )


def load_sm(path: str | Path) -> SchedulingProblem:
    """Reads and parses an ``.sm`` file; the instance name is the file stem."""
    p = Path(path)
    return parse_sm(p.read_text(encoding="latin-1"), name=p.stem)
