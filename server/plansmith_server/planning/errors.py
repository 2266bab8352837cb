"""Errors raised by the planning domain.

``PlanningInputError`` is the one error a caller can cause; it is an
:class:`plansmith_server.errors.InvalidArgumentError`, so the API layer turns it into
INVALID_ARGUMENT with ``ErrorInfo(reason=...)`` and a ``BadRequest`` listing every field
violation at once. ``LibraryError`` is a deployment error (a broken method library) and
is raised at start-up by :func:`plansmith_server.planning.library.load_library`.
"""

from __future__ import annotations

from collections.abc import Sequence

from plansmith_server.errors import FieldViolation, InvalidArgumentError

__all__ = [
    "REASON_INVALID_ESTIMATE_REQUEST",
    "REASON_INVALID_PLAN_REQUEST",
    "REASON_INVALID_TASK",
    "REASON_TASK_DESCRIPTION_TOO_VAGUE",
    "LibraryError",
    "PlanningInputError",
]

REASON_TASK_DESCRIPTION_TOO_VAGUE = "TASK_DESCRIPTION_TOO_VAGUE"
"""Nothing concrete to plan: no requirements and a description without a subject."""
REASON_INVALID_PLAN_REQUEST = "INVALID_PLAN_REQUEST"
"""A GeneratePlan request has malformed fields (see the field violations)."""
REASON_INVALID_TASK = "INVALID_TASK"
"""A DecomposeTask input has malformed fields."""
REASON_INVALID_ESTIMATE_REQUEST = "INVALID_ESTIMATE_REQUEST"
"""An EstimateTaskDuration input has malformed fields."""


class PlanningInputError(InvalidArgumentError):
    """The caller's input cannot be planned; every problem found is listed at once.

    Attributes:
        reason: Machine-readable reason (one of the ``REASON_*`` constants).
        message: Human-readable summary.
        field_violations: ``(field, description)`` pairs, e.g.
            ``("available_agents[1].id", "duplicate agent id 'a1'")``.
        hint: What the caller should add or change to succeed.
    """

    def __init__(
        self,
        reason: str,
        message: str,
        field_violations: Sequence[tuple[str, str]] = (),
        hint: str = "",
    ) -> None:
        self.field_violations: list[tuple[str, str]] = [(f, d) for f, d in field_violations]
        self.hint = hint
        metadata = {"hint": hint} if hint else None
        super().__init__(
            [FieldViolation(f, d) for f, d in self.field_violations],
            message,
            reason=reason,
            metadata=metadata,
        )


class LibraryError(ValueError):
    """The method library is broken; the message names the file and the entry.

    Attributes:
        file: Library file the problem is in (its name, or ``"<library>"`` when the
            problem spans files).
        entry: The offending entry, e.g. ``"primitive 'db_backup'"`` (may be empty).
        problem: What is wrong.
    """

    def __init__(self, file: str, entry: str, problem: str) -> None:
        self.file = file
        self.entry = entry
        self.problem = problem
        where = f"{file}: {entry}" if entry else file
        super().__init__(f"{where}: {problem}")
