"""Parser for PSPLIB single-mode RCPSP files (``.sm``, latin-1).

Jobs become activities named by their job number (``"1"`` ... ``"32"``), renewable
resources ``R1``..``R4``; durations are periods, so the problem uses a time resolution of
1 (one unit per period, reported as "hours").

The parser is strict: every number of the three data sections must be a whole number in
its column, each job must appear once in both job sections, and each section must end
with its line of asterisks, so a truncated or edited file is refused (naming the line)
rather than read as a different instance.
"""

from __future__ import annotations

import re
from pathlib import Path

from .errors import InvalidProblemError
from .model import Activity, Resource, SchedulingProblem

_JOBS_PREFIX = "JOBS (INCL. SUPERSOURCE/SINK )"


_WHOLE = re.compile(r"-?[0-9]+")


def parse_sm(text: str, name: str = "") -> SchedulingProblem:
    """Parses the text of an ``.sm`` file.

    Args:
        text: File contents.
        name: Instance name to record on the problem.

    Raises:
        InvalidProblemError: The text is not a complete single-mode PSPLIB file: a
            section is missing or truncated, a number is malformed or negative, a row has
            the wrong number of columns, a job is listed twice, missing from one section
            or names an unknown successor, or the declared job count does not match.
    """
    lines = text.splitlines()

    def find(prefix: str) -> int:
        for i, line in enumerate(lines):
            if line.strip().upper().startswith(prefix):
                return i
        raise InvalidProblemError(f"PSPLIB section {prefix!r} not found")

    def numbers(i: int) -> list[int]:
        # ASCII digits only: int() would also take "1_0", "+7" and other scripts' digits.
        tokens = lines[i].split()
        if not all(_WHOLE.fullmatch(x) for x in tokens):
            raise InvalidProblemError(
                f"PSPLIB line {i + 1}: expected whole numbers, got {lines[i].strip()!r}"
            )
        return [int(x) for x in tokens]

    def rows(section: str, skip: int) -> list[tuple[int, list[int]]]:
        """(line index, numbers) of the non-blank lines of a section, up to its end."""
        out = []
        i = find(section) + skip
        while i < len(lines) and not lines[i].startswith("*"):
            if lines[i].strip():
                out.append((i, numbers(i)))
            i += 1
        if i >= len(lines):
            raise InvalidProblemError(f"PSPLIB section {section!r} is truncated")
        return out

    for section in ("PRECEDENCE RELATIONS", "REQUESTS/DURATIONS", "RESOURCEAVAILABILITIES"):
        find(section)  # names the first missing section, in file order
    caps_rows = rows("RESOURCEAVAILABILITIES", 2)  # header line "R 1  R 2 ..."
    if len(caps_rows) != 1 or not caps_rows[0][1]:
        raise InvalidProblemError("PSPLIB resource availabilities: expected one line of numbers")
    caps = caps_rows[0][1]
    if any(c < 0 for c in caps):
        raise InvalidProblemError(f"PSPLIB resource availabilities are negative: {caps}")

    succ_of: dict[int, list[int]] = {}
    for i, nums in rows("PRECEDENCE RELATIONS", 2):  # header line
        if len(nums) < 3 or nums[2] < 0 or len(nums) != 3 + nums[2]:
            raise InvalidProblemError(
                f"PSPLIB line {i + 1}: expected job, modes, successor count and that many "
                f"successors, got {lines[i].strip()!r}"
            )
        job, modes = nums[0], nums[1]
        if modes != 1:
            raise InvalidProblemError(f"PSPLIB job {job} has {modes} modes; only 1 is supported")
        if job in succ_of:
            raise InvalidProblemError(f"PSPLIB job {job} has two precedence rows")
        succ_of[job] = nums[3:]

    durations: dict[int, int] = {}
    demands: dict[int, list[int]] = {}
    for i, nums in rows("REQUESTS/DURATIONS", 3):  # header line and dashes
        if len(nums) != 3 + len(caps):
            raise InvalidProblemError(
                f"PSPLIB line {i + 1}: expected job, mode, duration and {len(caps)} "
                f"resource requests, got {lines[i].strip()!r}"
            )
        job, mode, d = nums[0], nums[1], nums[2]
        if mode != 1:
            raise InvalidProblemError(f"PSPLIB job {job} has mode {mode}; only 1 is supported")
        if job in durations:
            raise InvalidProblemError(f"PSPLIB job {job} has two request rows")
        if d < 0 or any(q < 0 for q in nums[3:]):
            raise InvalidProblemError(f"PSPLIB line {i + 1}: negative duration or request")
        durations[job] = d
        demands[job] = nums[3:]

    if not durations:
        raise InvalidProblemError("empty PSPLIB instance")
    if set(succ_of) != set(durations):
        odd = sorted(set(succ_of) ^ set(durations))
        raise InvalidProblemError(
            f"PSPLIB jobs {odd} are missing from the precedence or the request section"
        )
    for j, ss in succ_of.items():
        unknown = [s for s in ss if s not in durations]
        if unknown:
            raise InvalidProblemError(f"PSPLIB job {j} has unknown successors {unknown}")
    for i, line in enumerate(lines):
        if line.strip().upper().startswith(_JOBS_PREFIX):
            declared = _number_after_colon(line, i)
            if declared != len(durations):
                raise InvalidProblemError(
                    f"PSPLIB file declares {declared} jobs but lists {len(durations)}"
                )
            break

    preds: dict[int, list[int]] = {j: [] for j in durations}
    for j, ss in succ_of.items():
        for s in ss:
            preds[s].append(j)
    res_ids = [f"R{k + 1}" for k in range(len(caps))]
    activities = tuple(
        Activity(
            id=str(j),
            duration=float(durations[j]),
            predecessors=tuple(str(p) for p in sorted(set(preds[j]))),
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


def _number_after_colon(line: str, i: int) -> int:
    """The whole number after the ``:`` of a ``key : value`` header line."""
    try:
        return int(line.split(":", 1)[1])
    except (IndexError, ValueError):
        raise InvalidProblemError(
            f"PSPLIB line {i + 1}: expected a whole number after ':', got {line.strip()!r}"
        ) from None


def load_sm(path: str | Path) -> SchedulingProblem:
    """Reads and parses an ``.sm`` file; the instance name is the file stem."""
    p = Path(path)
    return parse_sm(p.read_text(encoding="latin-1"), name=p.stem)
