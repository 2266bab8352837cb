"""Validation of GeneratePlan requests, including the "too vague to plan" check.

All field problems are collected and raised together in one
:class:`~.errors.PlanningInputError`, so a caller can fix everything in one round trip.
"""

from __future__ import annotations

from .context import normalize_context
from .errors import (
    REASON_INVALID_PLAN_REQUEST,
    REASON_TASK_DESCRIPTION_TOO_VAGUE,
    PlanningInputError,
)
from .request import AgentSpec, PlanningConfig, PlanRequest
from .text import stem, tokenize

__all__ = ["VAGUE_HINT", "is_too_vague", "validate_plan_request"]

# Verbs that say *that* something should happen but not *what*.
_GENERIC_VERBS = frozenset(
    stem(w)
    for w in """
    deploy build make create do fix setup set implement develop run ship launch start finish
    work handle improve update change get go add release deliver complete sort manage help
    plan organize prepare finalize continue support maintain write
    """.split()
)
# Words that name nothing in particular.
_FILLERS = frozenset(
    stem(w)
    for w in """
    thing things stuff something whatever everything anything somehow project task tasks work
    system item items etc asap soon quickly properly new old our their some one
    """.split()
)

VAGUE_HINT = (
    "Say what should be built or changed and where, e.g. 'Migrate the orders PostgreSQL database "
    "from 12 to 15 "
    "in production', and list the requirements the result must meet."
)


def is_too_vague(name: str, description: str, requirements: tuple[str, ...]) -> bool:
    """Whether a request has nothing concrete to plan.

    A request is vague when it has no non-blank requirement and its name plus
    description contain no word beyond generic verbs ("deploy", "fix") and fillers
    ("the thing", "stuff").
    """
    if any(r.strip() for r in requirements):
        return False
    tokens = [t for t in tokenize(f"{name} {description}") if t not in _FILLERS]
    # A single letter ("x") or a number names nothing either.
    subjects = [t for t in tokens if t not in _GENERIC_VERBS and not t.isdigit() and len(t) > 1]
    return not subjects


def _check_text(
    violations: list[tuple[str, str]], field: str, value: str, limit: int, *, required: bool
) -> None:
    if required and not value.strip():
        violations.append((field, "must not be empty"))
    elif len(value) > limit:
        violations.append((field, f"must be at most {limit} characters (got {len(value)})"))


def validate_plan_request(request: PlanRequest, config: PlanningConfig) -> None:
    """Check a request; raise one error listing every problem.

    Raises:
        PlanningInputError: ``INVALID_PLAN_REQUEST`` with every field violation, or
            ``TASK_DESCRIPTION_TOO_VAGUE`` when the request is well-formed but has
            nothing concrete to plan.
    """
    violations: list[tuple[str, str]] = []
    limit = config.max_text_length
    _check_text(violations, "name", request.name, limit, required=True)
    _check_text(violations, "description", request.description, limit, required=True)
    if len(request.requirements) > config.max_requirements:
        violations.append(
            (
                "requirements",
                f"at most {config.max_requirements} requirements are supported (got "
                f"{len(request.requirements)})",
            )
        )
    for i, requirement in enumerate(request.requirements):
        _check_text(violations, f"requirements[{i}]", requirement, limit, required=True)
    for i, constraint in enumerate(request.constraints):
        _check_text(violations, f"constraints[{i}]", constraint, limit, required=True)
    if len(request.available_agents) > config.max_agents:
        violations.append(("available_agents", f"at most {config.max_agents} agents are supported"))
    seen: dict[str, int] = {}
    for i, agent in enumerate(request.available_agents):
        if not isinstance(agent, AgentSpec):
            violations.append((f"available_agents[{i}]", "must be an AgentSpec"))
            continue
        if not agent.id.strip():
            violations.append((f"available_agents[{i}].id", "must not be empty"))
        elif agent.id in seen:
            violations.append(
                (
                    f"available_agents[{i}].id",
                    f"duplicate agent id '{agent.id}' (also available_agents[{seen[agent.id]}])",
                )
            )
        else:
            seen[agent.id] = i
        for j, capability in enumerate(agent.capabilities):
            if not capability.strip():
                violations.append((f"available_agents[{i}].capabilities[{j}]", "must not be blank"))
    _, context_violations = normalize_context(request.context)
    violations.extend(context_violations)
    if violations:
        shown = "; ".join(f"{f}: {d}" for f, d in violations[:5])
        more = f" (+{len(violations) - 5} more)" if len(violations) > 5 else ""
        raise PlanningInputError(
            REASON_INVALID_PLAN_REQUEST,
            f"invalid plan request: {shown}{more}",
            violations,
            "Fix the listed fields and retry.",
        )
    if is_too_vague(request.name, request.description, request.requirements):
        raise PlanningInputError(
            REASON_TASK_DESCRIPTION_TOO_VAGUE,
            "The request is too vague to plan: it names no concrete subject and has no "
            "requirements.",
            [
                (
                    "description",
                    "too vague: add what should be built or changed, or add requirements",
                )
            ],
            VAGUE_HINT,
        )
