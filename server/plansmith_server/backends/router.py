"""The planner the service calls: routes each request along a chain of backends (rules, or
the caller's choice), the embedded planner last, and says what happened on the way.

For each backend of the chain, in order:

- skipped at once when its circuit breaker is open, its estimated cost exceeds the
  request's budget, or too little of the caller's deadline is left (no waiting: with every
  breaker open a request reaches the embedded planner in microseconds);
- otherwise asked, bounded by the sooner of its timeout and the caller's deadline. A 429
  whose Retry-After is short (and fits the deadline) is waited out and asked once more;
  an answer that fails validation is asked once more with the problems listed (the repair
  re-ask); truncated output (`finish_reason: length`) is its own outcome.

Every try of a model backend is an `Attempt` (backend, outcome, reason, duration, tokens,
cost): streamed as an `AttemptEvent` by `generate`, returned with the result by `decompose`
and `estimate`. The embedded planner is not listed (it costs nothing and cannot fail for
its health); the result names the backend that produced it, so a request the embedded
planner served without routing looks exactly as it did before backends existed.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any, Generic, TypeVar

from plansmith_server import planning
from plansmith_server.backends import llm_plans
from plansmith_server.backends.breakers import BackendBreaker, BreakerOpenError
from plansmith_server.backends.config import EMBEDDED, BackendConfig, RoutingConfig
from plansmith_server.backends.errors import (
    BackendError,
    BackendOutputError,
    RateLimitedError,
    clean_text,
)
from plansmith_server.backends.llm import ChatClient, bounded, estimate_tokens
from plansmith_server.backends.routing import Budget, Route, RouteRequest, choose
from plansmith_server.planning import (
    CompletedEvent,
    CompletedTask,
    Decomposition,
    DurationEstimate,
    PhaseEvent,
    PlanEvent,
    PlanRequest,
    TaskAssignedEvent,
    TaskProposedEvent,
    TaskToDecompose,
    WarningEvent,
)
from plansmith_server.planning.request import DEFAULT_CONFIG
from plansmith_server.planning.request_validation import validate_plan_request

T = TypeVar("T")

RESERVE_SECONDS = 0.25
"""Of the caller's deadline, kept for the embedded fallback (it needs milliseconds)."""
MIN_ATTEMPT_SECONDS = 0.2
"""Less time than this left: a model backend is not tried."""


def _unexpected(exc: Exception) -> str:
    """The reason recorded for an exception no check anticipated: its type only (its text
    may carry anything the server sent)."""
    return f"the answer could not be read ({type(exc).__name__})"


class Outcome(StrEnum):
    """How a try ended (the proto's `AttemptOutcome` without its prefix)."""

    SUCCEEDED = "SUCCEEDED"
    RETRIED = "RETRIED"
    FAILED = "FAILED"
    INVALID_OUTPUT = "INVALID_OUTPUT"
    TRUNCATED = "TRUNCATED"
    REJECTED = "REJECTED"
    SKIPPED_BREAKER_OPEN = "SKIPPED_BREAKER_OPEN"
    SKIPPED_OVER_BUDGET = "SKIPPED_OVER_BUDGET"
    SKIPPED_NO_TIME = "SKIPPED_NO_TIME"


@dataclass(frozen=True)
class Attempt:
    """One try of one backend."""

    backend: str
    outcome: Outcome
    reason: str = ""
    duration_ms: float = 0.0
    tokens: int = 0
    cost: float = 0.0


@dataclass(frozen=True)
class AttemptEvent:
    """A try ended (streamed before the plan's task events)."""

    attempt: Attempt
    kind: str = field(default="attempt", init=False)


@dataclass(frozen=True)
class PlanStart:
    """From here on the events are the plan of `backend` (sent only when a model backend
    is in the chain; never on the wire): what a replay of the generation repeats."""

    backend: str
    kind: str = field(default="plan_start", init=False)


@dataclass(frozen=True)
class Call:
    """What the caller asked of routing, besides the work itself."""

    backend: str = ""
    """A backend named by the caller (bypasses the rules), or empty."""
    budget: Budget = field(default_factory=Budget)
    deadline: float | None = None
    """`time.monotonic()` by which the answer is due (the call's deadline), or None."""


NO_CALL = Call()
"""No explicit backend, no budget, no deadline."""


@dataclass(frozen=True)
class Routed(Generic[T]):
    """A result and how it was obtained."""

    value: T
    backend: str
    attempts: tuple[Attempt, ...]


@dataclass(frozen=True)
class BackendState:
    """One backend as the status report shows it."""

    name: str
    kind: str
    model: str
    breaker: str
    """`closed`, `open`, `half-open`, or empty for the embedded planner."""
    calls: int
    failures: int
    fallbacks: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    last_error: str
    open_seconds_left: float


class _Next(Exception):
    """This backend gave nothing usable; go on to the next one."""


@dataclass
class _Slot:
    config: BackendConfig
    client: ChatClient
    breaker: BackendBreaker


class Router:
    """Serves generate, decompose and estimate along the routed chain of backends."""

    def __init__(self, embedded: Any, config: RoutingConfig | None = None) -> None:
        self.embedded = embedded
        self.config = config
        self.name = "router"
        self.slots: dict[str, _Slot] = {}
        for name, b in (config.backends if config else {}).items():
            self.slots[name] = _Slot(
                b,
                ChatClient(b),
                BackendBreaker(
                    name, fail_max=b.breaker_failures, reset_timeout=b.breaker_reset_seconds
                ),
            )
        self.embedded_stats = BackendBreaker(EMBEDDED, fail_max=1, reset_timeout=1).stats

    @property
    def known(self) -> list[str]:
        return [*self.slots, EMBEDDED]

    async def aclose(self) -> None:
        for s in self.slots.values():
            await s.client.aclose()

    def route(self, req: RouteRequest, call: Call) -> Route:
        """The chain for a request (validates an explicit backend name)."""
        return choose(self.config, req, call.backend)

    # ---- generation ------------------------------------------------------------------

    def generate_route(self, request: PlanRequest, call: Call = NO_CALL) -> Route:
        return self.route(
            RouteRequest(
                "generate",
                " ".join((request.name, request.description, *request.requirements)),
                len(request.requirements),
                request.context,
                call.budget,
            ),
            call,
        )

    async def generate(
        self, request: PlanRequest, *, today: date, call: Call = NO_CALL
    ) -> AsyncIterator[PlanEvent | AttemptEvent | PlanStart]:
        route = self.generate_route(request, call)
        if len(route.chain) > 1:
            # A brief the embedded planner would refuse is refused before any model is paid.
            validate_plan_request(request, DEFAULT_CONFIG)
        for name in route.chain:
            if name == EMBEDDED:
                start = time.monotonic()
                self.embedded_stats.calls += 1
                if len(route.chain) > 1:
                    yield PlanStart(EMBEDDED)
                async for event in self.embedded.generate(request, today=today):
                    if isinstance(event, CompletedEvent):
                        self.embedded_stats.durations.append((time.monotonic() - start) * 1000)
                    yield event
                return
            slot = self.slots[name]
            schema = llm_plans.plan_schema(request)
            queue: asyncio.Queue[PlanEvent | AttemptEvent] = asyncio.Queue()

            def parse(
                content: str, schema: Any = schema, name: str = name
            ) -> planning.GeneratedPlan:
                return llm_plans.plan_from_answer(
                    content, request, schema, today=today, source=name
                )

            task = asyncio.ensure_future(
                self._ask(
                    slot,
                    llm_plans.PLAN_INSTRUCTIONS,
                    llm_plans.plan_prompt(request),
                    schema,
                    "plan",
                    parse,
                    call,
                    route.options,
                    queue.put_nowait,
                    stream=True,
                )
            )
            getter: asyncio.Future[Any] | None = None
            try:
                # Progress and attempt events as they happen, while the backend works.
                while True:
                    getter = asyncio.ensure_future(queue.get())
                    await asyncio.wait({task, getter}, return_when=asyncio.FIRST_COMPLETED)
                    if getter.done():
                        yield getter.result()
                        continue
                    getter.cancel()
                    while not queue.empty():
                        yield queue.get_nowait()
                    break
                plan = task.result()
            except _Next:
                slot.breaker.stats.fallbacks += 1
                continue
            finally:
                if getter is not None and not getter.done():
                    getter.cancel()
                if not task.done():
                    task.cancel()
            yield PlanStart(name)
            for event in plan_events(plan):
                yield event
            return

    # ---- decomposition and estimation -------------------------------------------------

    async def decompose(
        self,
        task: TaskToDecompose,
        level: str,
        *,
        context: Mapping[str, Any] | None = None,
        call: Call = NO_CALL,
    ) -> Routed[Decomposition]:
        route = self.route(
            RouteRequest(
                "decompose", f"{task.title} {task.description}", 0, context or {}, call.budget
            ),
            call,
        )
        schema = llm_plans.decompose_schema(task)
        return await self._unary(
            route,
            call,
            lambda: self.embedded.decompose(task, level, context=context),
            llm_plans.DECOMPOSE_INSTRUCTIONS,
            llm_plans.decompose_prompt(task, level),
            schema,
            "decomposition",
            lambda content, name: llm_plans.decomposition_from_answer(
                content, task, level, schema, name
            ),
        )

    async def estimate(
        self,
        description: str,
        *,
        agent_id: str,
        history: Sequence[CompletedTask],
        call: Call = NO_CALL,
    ) -> Routed[DurationEstimate]:
        route = self.route(RouteRequest("estimate", description, 0, {}, call.budget), call)
        schema = llm_plans.estimate_schema(history)
        return await self._unary(
            route,
            call,
            lambda: self.embedded.estimate(description, agent_id=agent_id, history=history),
            llm_plans.ESTIMATE_INSTRUCTIONS,
            llm_plans.estimate_prompt(description, agent_id, history),
            schema,
            "estimate",
            lambda content, name: llm_plans.estimate_from_answer(content, history, schema, name),
        )

    async def _unary(
        self,
        route: Route,
        call: Call,
        embedded: Callable[[], Any],
        instructions: str,
        prompt: str,
        schema: Mapping[str, Any],
        schema_name: str,
        parse: Callable[[str, str], T],
    ) -> Routed[T]:
        attempts: list[Attempt] = []

        def note(event: Any) -> None:
            if isinstance(event, AttemptEvent):
                attempts.append(event.attempt)

        for name in route.chain:
            if name == EMBEDDED:
                start = time.monotonic()
                self.embedded_stats.calls += 1
                value = await embedded()
                self.embedded_stats.durations.append((time.monotonic() - start) * 1000)
                return Routed(value, EMBEDDED, tuple(attempts))
            slot = self.slots[name]

            def parse_reply(content: str, name: str = name) -> T:
                return parse(content, name)

            try:
                value = await self._ask(
                    slot,
                    instructions,
                    prompt,
                    schema,
                    schema_name,
                    parse_reply,
                    call,
                    route.options,
                    note,
                    stream=False,
                )
            except _Next:
                slot.breaker.stats.fallbacks += 1
                continue
            return Routed(value, name, tuple(attempts))
        raise AssertionError("a chain always ends with the embedded planner")

    async def ask_models(
        self,
        method: str,
        text: str,
        context: Mapping[str, Any],
        instructions: str,
        prompt: str,
        schema: Mapping[str, Any],
        schema_name: str,
        parse: Callable[[str, str], T],
    ) -> Routed[T | None] | None:
        """For a caller with its own embedded planner (flow paths): the answer of the model
        backends the rules route `method` to, in order, each with its one repair re-ask;
        None when the rules route it to the embedded planner alone; a value of None when
        no model backend gave a usable answer (the attempts say why)."""
        route = self.route(RouteRequest(method, text, 0, context), NO_CALL)
        if route.chain == (EMBEDDED,):
            return None

        async def nothing() -> None:
            return None

        return await self._unary(
            route, NO_CALL, nothing, instructions, prompt, schema, schema_name, parse
        )

    # ---- one model backend --------------------------------------------------------------

    async def _ask(
        self,
        slot: _Slot,
        instructions: str,
        prompt: str,
        schema: Mapping[str, Any],
        schema_name: str,
        parse: Callable[[str], T],
        call: Call,
        options: Mapping[str, Any],
        emit: Callable[[Any], None],
        *,
        stream: bool,
    ) -> T:
        """The backend's result, after at most one repair re-ask and one short 429 wait;
        raises `_Next` (having emitted the attempts) when it gives nothing usable."""
        c = slot.config
        name = c.name
        messages = [{"role": "user", "content": prompt}]
        spent_tokens, spent_cost = 0, 0.0
        repaired = waited = False
        max_out = int(options.get("max_output_tokens", c.max_output_tokens))
        schema_size = len(json.dumps(schema))

        def attempt(outcome: Outcome, reason: str, start: float | None = None, **kw: Any) -> None:
            took = (time.monotonic() - start) * 1000 if start is not None else 0.0
            emit(AttemptEvent(Attempt(name, outcome, clean_text(reason), took, **kw)))

        while True:
            prompt_tokens = (
                estimate_tokens(instructions)
                + schema_size // 4
                + sum(estimate_tokens(m["content"]) for m in messages)
            )
            cost = c.estimated_cost(prompt_tokens, max_out)
            budget = call.budget
            over = ""
            if budget.max_cost and spent_cost + cost > budget.max_cost:
                over = (
                    f"estimated cost {cost:.4f} exceeds the budget "
                    f"{budget.max_cost - spent_cost:.4f}"
                )
            elif budget.max_tokens and spent_tokens + prompt_tokens + max_out > budget.max_tokens:
                over = (
                    f"estimated {prompt_tokens + max_out} tokens exceed the budget "
                    f"{budget.max_tokens - spent_tokens}"
                )
            if over:
                attempt(Outcome.SKIPPED_OVER_BUDGET, over)
                raise _Next
            timeout = c.timeout_seconds
            if call.deadline is not None:
                timeout = min(timeout, call.deadline - time.monotonic() - RESERVE_SECONDS)
            if timeout < MIN_ATTEMPT_SECONDS:
                attempt(Outcome.SKIPPED_NO_TIME, "too little of the caller's deadline is left")
                raise _Next
            if stream:
                emit(PhaseEvent("analyzing", 0, f"Asking the model backend {name} ({c.model})"))
            progress = _progress(name, emit) if stream else None
            body = slot.client.body(
                instructions, messages, schema, schema_name, stream=stream, options=options
            )
            start = time.monotonic()
            try:
                with slot.breaker.calling():
                    answer = await bounded(slot.client.complete(body, progress=progress), timeout)
            except BreakerOpenError as exc:
                attempt(Outcome.SKIPPED_BREAKER_OPEN, str(exc))
                raise _Next from None
            except RateLimitedError as exc:
                wait = exc.retry_after
                left = (
                    call.deadline - time.monotonic() - RESERVE_SECONDS
                    if call.deadline is not None
                    else float("inf")
                )
                if (
                    not waited
                    and wait is not None
                    and wait <= c.max_retry_wait_seconds
                    and wait + MIN_ATTEMPT_SECONDS < left
                ):
                    attempt(Outcome.RETRIED, f"{exc.reason}; retrying after {wait:g} s", start)
                    waited = True
                    await asyncio.sleep(wait)
                    continue
                more = f"; Retry-After {wait:g} s" if wait is not None else ""
                attempt(Outcome.FAILED, exc.reason + more, start)
                raise _Next from None
            except BackendError as exc:
                attempt(Outcome(exc.outcome), exc.reason, start)
                if not isinstance(exc, BackendOutputError):
                    slot.breaker.stats.last_error = clean_text(exc.reason)
                raise _Next from None
            except Exception as exc:
                # Whatever a server sends may break a parser in ways nobody listed: it is a
                # bad answer (not a health failure), and the next backend is asked.
                attempt(Outcome.INVALID_OUTPUT, _unexpected(exc), start)
                raise _Next from None
            tokens = answer.tokens or (prompt_tokens + estimate_tokens(answer.content))
            actual = c.estimated_cost(
                answer.prompt_tokens or prompt_tokens,
                answer.completion_tokens or estimate_tokens(answer.content),
            )
            spent_tokens += tokens
            spent_cost += actual
            try:
                # Off the event loop: checking and scheduling a few hundred tasks takes up to
                # about half a second, and other RPCs go on meanwhile.
                value = await asyncio.to_thread(parse, answer.content)
            except BackendOutputError as exc:
                exc.reason = clean_text(exc.reason)
                if repaired:
                    attempt(Outcome.INVALID_OUTPUT, exc.reason, start, tokens=tokens, cost=actual)
                    raise _Next from None
                repaired = True
                attempt(
                    Outcome.RETRIED,
                    f"{exc.reason}; asking again with the problems listed",
                    start,
                    tokens=tokens,
                    cost=actual,
                )
                messages += [
                    {"role": "assistant", "content": answer.content[:20_000]},
                    {"role": "user", "content": repair_prompt(exc.problems)},
                ]
                continue
            except Exception as exc:
                attempt(Outcome.INVALID_OUTPUT, _unexpected(exc), start, tokens=tokens, cost=actual)
                raise _Next from None
            attempt(Outcome.SUCCEEDED, "", start, tokens=tokens, cost=actual)
            return value

    # ---- status ----------------------------------------------------------------------------

    def status(self) -> list[BackendState]:
        out = []
        for name, s in self.slots.items():
            st = s.breaker.stats
            out.append(
                BackendState(
                    name,
                    s.config.kind,
                    s.config.model,
                    s.breaker.state,
                    st.calls,
                    st.failures,
                    st.fallbacks,
                    st.percentile(0.5),
                    st.percentile(0.95),
                    st.percentile(0.99),
                    st.last_error,
                    s.breaker.seconds_left() if s.breaker.state == "open" else 0.0,
                )
            )
        e = self.embedded_stats
        out.append(
            BackendState(
                EMBEDDED,
                EMBEDDED,
                "",
                "",
                e.calls,
                0,
                0,
                e.percentile(0.5),
                e.percentile(0.95),
                e.percentile(0.99),
                "",
                0.0,
            )
        )
        return out


def repair_prompt(problems: Sequence[str]) -> str:
    shown = "\n".join(f"- {p}" for p in problems[:30])
    return (
        "Your answer has these problems:\n"
        f"{shown}\n"
        "Answer again with the complete corrected JSON, matching the schema."
    )


def _progress(name: str, emit: Callable[[Any], None]) -> Callable[[int], None]:
    """Progress events while the model writes: one per 512 characters received."""
    last = [0]

    def told(size: int) -> None:
        if size - last[0] >= 512:
            last[0] = size
            emit(
                PhaseEvent(
                    "decomposing",
                    min(49, 20 + size // 1024),
                    f"{name}: {size} characters of the plan received",
                )
            )

    return told


def plan_events(plan: planning.GeneratedPlan) -> list[PlanEvent]:
    """A finished plan as the events the embedded planner streams: tasks, assignments,
    phases, warnings, then the plan."""
    count = max(len(plan.tasks), 1)
    events: list[PlanEvent] = [PhaseEvent("decomposing", 50, "The model's plan passed validation")]
    for i, t in enumerate(plan.tasks):
        proposed = planning.PlannedTask(
            **{
                **t.__dict__,
                "assigned_to": "",
                "start_hours": 0.0,
                "finish_hours": 0.0,
                "on_critical_path": False,
            }
        )
        events.append(TaskProposedEvent(proposed, 50 + (5 * (i + 1)) // count))
    events.append(PhaseEvent("assigning", 55, "Assignments as the model made them"))
    gaps = {tid: g for g in plan.capability_gaps for tid in g.task_ids}
    for i, t in enumerate(plan.tasks):
        if t.assigned_to:
            reason = "chosen by the model"
        elif t.id in gaps:
            reason = f"no available agent has: {', '.join(gaps[t.id].capabilities)}"
        else:
            reason = "left unassigned by the model"
        events.append(TaskAssignedEvent(t.id, t.assigned_to, reason, 55 + (20 * (i + 1)) // count))
    events.append(PhaseEvent("scheduling", 75, "Scheduling tasks and computing the critical path"))
    events.append(PhaseEvent("assessing", 90, "Assessing risks and confidence"))
    events += [WarningEvent(w.code, w.message, 95) for w in plan.warnings]
    events.append(CompletedEvent(plan))
    return events
