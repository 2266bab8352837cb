"""The server's interceptor chain: one wrapper per cross-cutting concern.

Order (outermost first), built in `chain()`: request id (and the trace context when no
spans are recorded), tracing, metrics, access log, error mapping, load shedding. Each
concern wraps a handler's behavior (through `handlers.wrap_handler`); `InterceptorChain`,
the one grpc interceptor, applies them all once per method and reuses the result, so a
call pays for the wrappers' work and not for building them (a grpc interceptor per
concern would rebuild every wrapper per call).
"""

from __future__ import annotations

import abc
import asyncio
import contextvars
import functools
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from typing import Any

import grpc
from grpc_status import rpc_status
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import Status, StatusCode

from plansmith_server import deadlines
from plansmith_server.api.errors import internal_status, to_status
from plansmith_server.api.handlers import StreamBehavior, UnaryBehavior, wrap_handler
from plansmith_server.errors import PlansmithError
from plansmith_server.telemetry import Telemetry, tracecontext

log = logging.getLogger("plansmith.access")
errlog = logging.getLogger("plansmith.errors")

REQUEST_ID_HEADER = "x-request-id"
MAX_REQUEST_ID = 128

Metadata = Iterable[tuple[str, str | bytes]]
"""A call's invocation metadata (keys in lowercase)."""

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
"""The current call's request id, for logs and error messages."""


def _incoming_request_id(metadata: Metadata) -> str:
    for key, value in metadata:
        if key == REQUEST_ID_HEADER and isinstance(value, str):
            value = value.strip()
            if 0 < len(value) <= MAX_REQUEST_ID and value.isprintable():
                return value
    return os.urandom(16).hex()


_CANCELLED = grpc.StatusCode.CANCELLED
_OK = grpc.StatusCode.OK
_DEADLINE_SLACK = 0.005
"""Seconds: gRPC core ends a call at its deadline give or take its timer's precision."""


def _past_deadline(context: grpc.aio.ServicerContext) -> bool:
    """Whether the call's deadline has passed (a call without one never does)."""
    try:
        remaining = context.time_remaining()
    except Exception:  # the call is being torn down: no deadline to tell
        return False
    return remaining is not None and remaining <= _DEADLINE_SLACK


def _code_after(exc: BaseException | None, context: grpc.aio.ServicerContext) -> grpc.StatusCode:
    if exc is None:
        return context.code() or grpc.StatusCode.OK
    if isinstance(exc, asyncio.CancelledError | GeneratorExit):
        # GeneratorExit: grpc closed a stream's generator because the caller went away.
        # gRPC ends a call whose deadline passed the same way as one its caller cancelled;
        # only the time left tells them apart.
        return grpc.StatusCode.DEADLINE_EXCEEDED if _past_deadline(context) else _CANCELLED
    if isinstance(exc, grpc.aio.AbortError):
        return context.code() or grpc.StatusCode.UNKNOWN
    return grpc.StatusCode.UNKNOWN


class Concern(abc.ABC):
    """One cross-cutting concern: wraps the behavior of each method's handler."""

    @abc.abstractmethod
    def unary(self, method: str, behavior: UnaryBehavior) -> UnaryBehavior:
        """Wraps the behavior of a unary-response call of `method`."""

    @abc.abstractmethod
    def stream(self, method: str, behavior: StreamBehavior) -> StreamBehavior:
        """Wraps the behavior of a server-streaming call of `method`."""


class InterceptorChain(grpc.aio.ServerInterceptor):
    """The server's interceptor: every concern around every method, built once per method
    (handlers are fixed once the server starts; unknown methods are not remembered)."""

    def __init__(self, concerns: Sequence[Concern]) -> None:
        self.concerns = tuple(concerns)
        self._handlers: dict[str, grpc.RpcMethodHandler] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        method = handler_call_details.method
        handler = self._handlers.get(method)
        if handler is not None:
            return handler
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        for concern in reversed(self.concerns):  # the innermost wraps first
            handler = wrap_handler(
                handler,
                functools.partial(concern.unary, method),
                functools.partial(concern.stream, method),
            )
        self._handlers[method] = handler
        return handler


def _split(method: str) -> tuple[str, str]:
    """`/pkg.Service/Method` -> (`pkg.Service`, `Method`)."""
    service, _, name = method.lstrip("/").partition("/")
    return service, name


def _plan_id(request: Any) -> str:
    """The plan a request is about, when it says so directly (for span attributes)."""
    for attr in ("plan_id",):
        value = getattr(request, attr, "")
        if isinstance(value, str) and value:
            return value
    for holder in ("plan", "task"):
        msg = getattr(request, holder, None)
        value = getattr(msg, "id" if holder == "plan" else "plan_id", "") if msg is not None else ""
        if isinstance(value, str) and value:
            return value
    return ""


_NO_CONTEXT = otel_context.Context()


def _call_trace_context(metadata: Metadata) -> otel_context.Context:
    """The call's OpenTelemetry context when no spans are recorded: a non-recording span
    that continues the caller's `traceparent`, or starts a trace (`telemetry.tracecontext`),
    so the call's log lines carry its trace and span ids and whatever the call sends on
    can propagate them."""
    # A call starts with nothing current: no need to copy the current context.
    return trace.set_span_in_context(tracecontext.ContinuedSpan(metadata), _NO_CONTEXT)


class RequestIdConcern(Concern):
    """Assigns the request id (the caller's `x-request-id` or a new one), makes it and the
    call's deadline (`deadlines`: a database statement's timeout follows it) current
    for everything inside, and returns it in the response's trailing metadata (streams:
    in the initial metadata too, so a consumer has it before the first message).

    Unary calls return it in trailers only: initial metadata sent on its own is one more
    batch through gRPC core per call (a tenth of GetTask's rate, docs/performance.md),
    while trailers go out with the status in the same batch as the response.

    With `trace_context` (set when no spans are recorded, so `TracingConcern` is not
    in the chain) it also makes the call's W3C trace context current: from the same read
    of the metadata, which a concern of its own would read again, in one more wrapper."""

    def __init__(self, *, trace_context: bool = False) -> None:
        self.trace_context = trace_context

    def unary(self, method: str, behavior: UnaryBehavior) -> UnaryBehavior:
        trace_context = self.trace_context

        async def wrapped(request: Any, context: grpc.aio.ServicerContext) -> Any:
            metadata = context.invocation_metadata() or ()
            rid = _incoming_request_id(metadata)
            token = request_id_var.set(rid)
            deadline = deadlines.set_remaining(context.time_remaining())
            traced = otel_context.attach(_call_trace_context(metadata)) if trace_context else None
            try:
                context.set_trailing_metadata(((REQUEST_ID_HEADER, rid),))
                return await behavior(request, context)
            finally:
                if traced is not None:
                    otel_context.detach(traced)
                deadlines.call_deadline.reset(deadline)
                request_id_var.reset(token)

        return wrapped

    def stream(self, method: str, behavior: StreamBehavior) -> StreamBehavior:
        trace_context = self.trace_context

        async def wrapped(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            metadata = context.invocation_metadata() or ()
            rid = _incoming_request_id(metadata)
            # Set, never reset: a generator closed by a cancelled call finishes in another
            # context, where reset() raises. The call's task has a context of its own, so
            # the value cannot reach another call. (The same for the trace context.)
            request_id_var.set(rid)
            deadlines.set_remaining(context.time_remaining())
            if trace_context:
                otel_context.attach(_call_trace_context(metadata))
            context.set_trailing_metadata(((REQUEST_ID_HEADER, rid),))
            await context.send_initial_metadata(((REQUEST_ID_HEADER, rid),))
            async for item in behavior(request, context):
                yield item

        return wrapped


class TracingConcern(Concern):
    """A server span per call, continuing the caller's W3C `traceparent` / `baggage`.

    Our own interceptor rather than the contrib one: that one breaks `context.write`
    streams and hides statuses set by `abort_with_status` (see docs/library-notes.md).
    """

    def __init__(self, tracer: trace.Tracer) -> None:
        self.tracer = tracer

    def _start(
        self, names: tuple[str, str], request: Any, context: grpc.aio.ServicerContext
    ) -> Any:
        carrier: dict[str, str] = {}
        for key, value in context.invocation_metadata() or ():
            if isinstance(value, str):
                carrier[key] = value
        service, name = names
        attributes: dict[str, Any] = {
            "rpc.system": "grpc",
            "rpc.service": service,
            "rpc.method": name,
            "plansmith.request_id": request_id_var.get(),
        }
        plan_id = _plan_id(request)
        if plan_id:
            attributes["plansmith.plan_id"] = plan_id
        return self.tracer.start_as_current_span(
            f"{service}/{name}",
            context=propagate.extract(carrier),
            kind=trace.SpanKind.SERVER,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        )

    @staticmethod
    def _finish(
        span: trace.Span, context: grpc.aio.ServicerContext, exc: BaseException | None
    ) -> None:
        code = _code_after(exc, context)
        span.set_attribute("rpc.grpc.status_code", code.value[0])
        if code != grpc.StatusCode.OK:
            details = context.details() if exc is not None else ""
            span.set_status(Status(StatusCode.ERROR, f"{code.name}: {details or ''}".rstrip(": ")))
            if exc is not None and not isinstance(
                exc, grpc.aio.AbortError | asyncio.CancelledError | GeneratorExit
            ):
                span.record_exception(exc)

    def unary(self, method: str, behavior: UnaryBehavior) -> UnaryBehavior:
        names = _split(method)

        async def wrapped(request: Any, context: grpc.aio.ServicerContext) -> Any:
            with self._start(names, request, context) as span:
                exc: BaseException | None = None
                try:
                    return await behavior(request, context)
                except BaseException as e:
                    exc = e
                    raise
                finally:
                    self._finish(span, context, exc)

        return wrapped

    def stream(self, method: str, behavior: StreamBehavior) -> StreamBehavior:
        names = _split(method)

        async def wrapped(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            with self._start(names, request, context) as span:
                exc: BaseException | None = None
                sent = 0
                try:
                    async for item in behavior(request, context):
                        sent += 1
                        yield item
                except BaseException as e:
                    exc = e
                    raise
                finally:
                    span.set_attribute("rpc.plansmith.messages_sent", sent)
                    self._finish(span, context, exc)

        return wrapped


class MetricsConcern(Concern):
    """RPC duration by method and status, calls in flight, open streams; and the recent
    samples behind the status report."""

    def __init__(self, telemetry: Telemetry) -> None:
        self.t = telemetry

    def _recorder(
        self, method: str
    ) -> Callable[[grpc.aio.ServicerContext, float, BaseException | None], None]:
        """Records one finished call of `method`; the attribute sets, one per status
        code, are built once instead of per call."""
        service, name = _split(method)
        by_code: dict[grpc.StatusCode, dict[str, Any]] = {}

        def done(
            context: grpc.aio.ServicerContext, start: float, exc: BaseException | None
        ) -> None:
            code = _code_after(exc, context)
            ms = (time.perf_counter() - start) * 1000
            attributes = by_code.get(code)
            if attributes is None:
                attributes = by_code[code] = {
                    "rpc.service": service,
                    "rpc.method": name,
                    "rpc.grpc.status_code": code.value[0],
                }
            self.t.rpc_duration.record(ms, attributes)
            self.t.stats.record(method, code.name, ms)

        return done

    def unary(self, method: str, behavior: UnaryBehavior) -> UnaryBehavior:
        done = self._recorder(method)

        async def wrapped(request: Any, context: grpc.aio.ServicerContext) -> Any:
            start = time.perf_counter()
            self.t.stats.in_flight += 1
            exc: BaseException | None = None
            try:
                return await behavior(request, context)
            except BaseException as e:
                exc = e
                raise
            finally:
                self.t.stats.in_flight -= 1
                done(context, start, exc)

        return wrapped

    def stream(self, method: str, behavior: StreamBehavior) -> StreamBehavior:
        done = self._recorder(method)

        async def wrapped(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            start = time.perf_counter()
            self.t.stats.in_flight += 1
            self.t.stats.active_streams += 1
            exc: BaseException | None = None
            try:
                async for item in behavior(request, context):
                    yield item
            except BaseException as e:
                exc = e
                raise
            finally:
                self.t.stats.in_flight -= 1
                self.t.stats.active_streams -= 1
                done(context, start, exc)

        return wrapped


class AccessLogConcern(Concern):
    """One log line per call: method, status code, duration, peer, request, trace and span
    ids. Never the payload. Without `every_call`, only calls that did not end OK: a line
    per successful call is what costs a busy server (see docs/performance.md)."""

    def __init__(self, *, every_call: bool = True) -> None:
        self.every_call = every_call

    def _log(
        self,
        method: str,
        context: grpc.aio.ServicerContext,
        start: float,
        exc: BaseException | None,
        peer: str | None,
    ) -> None:
        code = _code_after(exc, context)
        if code is _OK and not self.every_call:
            return
        ms = (time.perf_counter() - start) * 1000
        level = logging.ERROR if code in _SERVER_FAULTS else logging.INFO
        if not log.isEnabledFor(level):
            return
        extra: dict[str, Any] = {
            "rpc_method": method,
            "status_code": code.name,
            "duration_ms": round(ms, 3),
            "request_id": request_id_var.get(),
            # A unary call is still alive here (its status goes out after the handler).
            "peer": context.peer() if peer is None else peer,
        }
        span_ctx = trace.get_current_span().get_span_context()
        if span_ctx.is_valid:
            extra["trace_id"] = format(span_ctx.trace_id, "032x")
            extra["span_id"] = format(span_ctx.span_id, "016x")
        log.log(level, "%s %s %.1fms", method, code.name, ms, extra=extra)

    def unary(self, method: str, behavior: UnaryBehavior) -> UnaryBehavior:
        async def wrapped(request: Any, context: grpc.aio.ServicerContext) -> Any:
            start = time.perf_counter()
            exc: BaseException | None = None
            try:
                return await behavior(request, context)
            except BaseException as e:
                exc = e
                raise
            finally:
                self._log(method, context, start, exc, None)

        return wrapped

    def stream(self, method: str, behavior: StreamBehavior) -> StreamBehavior:
        async def wrapped(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            start = time.perf_counter()
            # Read while the call is alive: after a stream ends, peer() can crash grpc.
            peer = context.peer()
            exc: BaseException | None = None
            try:
                async for item in behavior(request, context):
                    yield item
            except BaseException as e:
                exc = e
                raise
            finally:
                self._log(method, context, start, exc, peer)

        return wrapped


_SERVER_FAULTS = (grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL, grpc.StatusCode.DATA_LOSS)


def status_trailers(status: grpc.Status) -> tuple[tuple[str, str | bytes], ...]:
    """The trailers of an error status: its details and the request id (explicit trailers
    replace those set earlier in the call, the request id among them)."""
    return (*status.trailing_metadata, (REQUEST_ID_HEADER, request_id_var.get()))


async def _abort_for(exc: Exception, context: grpc.aio.ServicerContext) -> None:
    if isinstance(exc, PlansmithError) and exc.code != "INTERNAL":
        status = to_status(exc)
    else:
        rid = request_id_var.get()
        errlog.exception("unexpected error (request id %s)", rid)
        status = internal_status(rid)
    s = rpc_status.to_status(status)
    try:
        await context.abort(s.code, s.details, trailing_metadata=status_trailers(s))
    except grpc.aio.AbortError:
        raise
    except Exception as gone:
        # gRPC could not send the status: the call had already ended (the caller
        # cancelled it or its deadline passed while we worked). That is the caller's
        # cancellation, not a fault of ours.
        raise asyncio.CancelledError("the call ended before its status was sent") from gone


class ErrorMappingConcern(Concern):
    """Maps domain errors to statuses with details; anything else to INTERNAL, logged,
    without leaking exception text."""

    def unary(self, method: str, behavior: UnaryBehavior) -> UnaryBehavior:
        async def wrapped(request: Any, context: grpc.aio.ServicerContext) -> Any:
            try:
                return await behavior(request, context)
            except grpc.aio.AbortError:
                raise
            except Exception as exc:
                await _abort_for(exc, context)

        return wrapped

    def stream(self, method: str, behavior: StreamBehavior) -> StreamBehavior:
        async def wrapped(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            try:
                async for item in behavior(request, context):
                    yield item
            except grpc.aio.AbortError:
                raise
            except Exception as exc:
                await _abort_for(exc, context)

        return wrapped


def chain(
    telemetry: Telemetry,
    *,
    tracing: bool,
    innermost: Sequence[Concern] = (),
    log_every_call: bool = True,
) -> InterceptorChain:
    """The server's interceptor. Without `tracing` no span is recorded, so telemetry off
    costs next to nothing; each call still continues (or starts) a W3C trace context,
    which its log lines carry. `innermost` concerns (load shedding) run inside
    error mapping, so that what they raise is answered like any domain error. Without
    `log_every_call` only calls that did not end OK get an access-log line."""
    concerns: list[Concern] = [RequestIdConcern(trace_context=not tracing)]
    if tracing:
        concerns.append(TracingConcern(telemetry.tracer))
    concerns += [
        MetricsConcern(telemetry),
        AccessLogConcern(every_call=log_every_call),
        ErrorMappingConcern(),
    ]
    return InterceptorChain([*concerns, *innermost])
