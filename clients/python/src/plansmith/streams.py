"""Server-streaming calls that resume after a transport failure and never leak a call.

`AsyncResumableStream` (grpc.aio) and `ResumableStream` (sync grpc) sit above the stub
and own each call they open:

- A retryable failure (per the `RetryPolicy`, within the overall deadline) reopens the
  stream. Before any message arrived the same request is sent again; after some did,
  `resume(request, last_message)` builds the request that continues after the last
  message (for example by setting a resume token). Without `resume`, a stream that
  already delivered messages is not reopened (that would deliver them twice). For
  streams that replay from the start (a deterministic, idempotent request), pass a
  `resume` that returns the request as it is and `seen(last, message)` telling which
  replayed messages were already delivered (e.g. by sequence number): they are skipped.
- Each opening is admitted by the target's circuit breaker; the first message (or a clean
  end) counts as a success, a transport failure before it as a failure.
- Leaving the stream early cancels the call: use it as a context manager, or call
  `aclose()` / `close()`. (Breaking out of a `for` loop over a gRPC call does not cancel
  it by itself.) A stream dropped without closing cancels its call when collected.
- Every opening sends the same `x-request-id`.

- `seen` may raise instead: a reopened stream that cannot continue the one delivered so
  far without mixing two of the server's answers (StreamGeneratePlan after a model made a
  new plan) ends with `StreamNotResumableError`, and its call is cancelled.

Retrying a stream inside an interceptor would leave the caller holding the first call
(wrong status, a `cancel()` that misses the retried call), which is why this lives here.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, Generic, TypeVar

import grpc

from plansmith.breaker import Admission, CircuitBreaker
from plansmith.errors import PlansmithError, from_rpc_error
from plansmith.interceptors._common import REQUEST_ID_HEADER, new_correlation_id, rpc_method
from plansmith.interceptors.metadata import request_id_var
from plansmith.retry import Clock, OnRetry, RetryPolicies, RetryPolicy, RetryState, RetryStats

__all__ = ["AsyncResumableStream", "ResumableStream", "StreamNotResumableError"]


class StreamNotResumableError(PlansmithError):
    """A broken stream was reopened, but the server's answer is not the one already partly
    delivered (a model backend started a new generation because the first one never
    finished): continuing would mix two plans. Nothing more is delivered; call again for a
    fresh stream. `status_code` is UNAVAILABLE (the failure that broke the stream)."""

    def __init__(self, message: str = "", **kwargs: Any) -> None:
        kwargs.setdefault("status_code", grpc.StatusCode.UNAVAILABLE)
        kwargs.setdefault("reason", "STREAM_NOT_RESUMABLE")
        super().__init__(message, **kwargs)


Req = TypeVar("Req")
Resp = TypeVar("Resp")

_DEFAULT_POLICY = RetryPolicies().read


class _StreamBase(Generic[Req, Resp]):
    def __init__(
        self,
        method: Any,
        request: Req,
        *,
        resume: Callable[[Req, Resp], Req] | None = None,
        seen: Callable[[Resp, Resp], bool] | None = None,
        policy: RetryPolicy | None = _DEFAULT_POLICY,
        breaker: CircuitBreaker | None = None,
        timeout: float | None = None,
        metadata: Sequence[tuple[str, str]] = (),
        clock: Clock | None = None,
        jitter: Callable[[], float] | None = None,
        stats: RetryStats | None = None,
        on_retry: OnRetry | None = None,
    ) -> None:
        self._method = method
        self._request = request
        self._resume = resume
        self._seen = seen
        self._breaker = breaker
        self._clock = clock or Clock()
        self.method_name = rpc_method(method)
        self.request_id = request_id_var.get() or new_correlation_id()
        """The `x-request-id` every opening of the stream sends."""
        md = [(k, v) for k, v in metadata if k != REQUEST_ID_HEADER]
        self._metadata = (*md, (REQUEST_ID_HEADER, self.request_id))
        self._state = RetryState(
            policy or RetryPolicy(max_retries=0),
            method=self.method_name,
            timeout=timeout,
            clock=self._clock,
            jitter=random.random if jitter is None else jitter,
            stats=stats,
            on_retry=on_retry,
        )
        self._call: Any = None
        self._admission: Admission | None = None
        self._last: Resp | None = None
        self._received = 0
        self._received_this_call = 0
        self._closed = False
        self._last_error: PlansmithError | None = None

    @property
    def received(self) -> int:
        """Messages delivered so far, over all openings."""
        return self._received

    @property
    def openings(self) -> int:
        """How many times the call was opened (1 + resumptions)."""
        return self._state.attempts

    def _open(self) -> None:
        timeout = self._state.start_attempt(self._last_error)
        if self._breaker is not None:
            self._admission = self._breaker.admit()
        self._received_this_call = 0
        try:
            self._call = self._method(self._request, timeout=timeout, metadata=self._metadata)
        except BaseException as exc:
            self._settle(exc)
            raise

    def _settle(self, error: BaseException | None) -> None:
        """Reports the opening's outcome to the breaker, once."""
        admission, self._admission = self._admission, None
        if admission is not None and self._breaker is not None:
            self._breaker.record(admission, error)

    def _deliver(self, msg: Resp) -> bool:
        """Accounts for a received message; False when it repeats one already delivered."""
        if self._admission is not None:
            self._settle(None)
        if self._seen is not None and self._last is not None and self._seen(self._last, msg):
            return False
        if self._received_this_call == 0:
            self._state.retries = 0  # progress: a later failure gets the full budget again
        self._received_this_call += 1
        self._received += 1
        self._last = msg
        return True

    def _finish(self) -> None:
        """The call ended cleanly: a success for the breaker and the retry counters; the
        stream is over."""
        self._settle(None)
        self._state.succeeded()
        self._call = None
        self._closed = True

    def _on_error(self, exc: grpc.RpcError) -> float:
        """After a failed opening: the wait before reopening, or raises the final error."""
        self._call = None
        error = from_rpc_error(exc, method=self.method_name, request_id=self.request_id)
        self._settle(error)
        self._last_error = error
        if self._received_this_call or self._received:
            if self._resume is None:
                self._closed = True
                raise error
            if self._received_this_call:
                # _last is a message: one was received on this call.
                self._request = self._resume(self._request, self._last)  # type: ignore[arg-type]
        try:
            return self._state.failed(error)
        except BaseException:
            self._closed = True
            raise

    def _cancel(self) -> None:
        self._closed = True
        call, self._call = self._call, None
        admission, self._admission = self._admission, None
        if admission is not None and self._breaker is not None:
            self._breaker.record(admission, asyncio.CancelledError())
        if call is not None:
            call.cancel()

    def __del__(self) -> None:
        call = getattr(self, "_call", None)
        if call is not None:
            try:
                call.cancel()
            except Exception:  # pragma: no cover - interpreter shutdown
                pass


class AsyncResumableStream(_StreamBase[Req, Resp]):
    """A server stream over a `grpc.aio` unary-stream method that resumes and cleans up.

    `method` is the stub's method (e.g. `stub.StreamGeneratePlan`); iterate with
    `async for` inside `async with`.
    """

    def __aiter__(self) -> AsyncResumableStream[Req, Resp]:
        return self

    async def __anext__(self) -> Resp:
        while True:
            if self._closed:
                raise StopAsyncIteration
            if self._call is None:
                self._open()
            try:
                msg: Resp = await self._call.read()
            except grpc.RpcError as exc:
                delay = self._on_error(exc)
                await self._clock.async_sleep(delay)
                continue
            except BaseException:
                self._cancel()
                raise
            if msg is grpc.aio.EOF:
                self._finish()
                raise StopAsyncIteration
            try:
                fresh = self._deliver(msg)
            except BaseException:
                self._cancel()
                raise
            if fresh:
                return msg

    async def aclose(self) -> None:
        """Stops the stream, cancelling the call if it is still open."""
        self._cancel()

    async def __aenter__(self) -> AsyncResumableStream[Req, Resp]:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class ResumableStream(_StreamBase[Req, Resp]):
    """A server stream over a sync grpc unary-stream method that resumes and cleans up.

    Iterate with `for` inside `with`.
    """

    def __iter__(self) -> ResumableStream[Req, Resp]:
        return self

    def __next__(self) -> Resp:
        while True:
            if self._closed:
                raise StopIteration
            if self._call is None:
                self._open()
            try:
                msg: Resp = next(self._call)
            except StopIteration:
                self._finish()
                raise
            except grpc.RpcError as exc:
                delay = self._on_error(exc)
                self._clock.sleep(delay)
                continue
            except BaseException:
                self._cancel()
                raise
            try:
                fresh = self._deliver(msg)
            except BaseException:
                self._cancel()
                raise
            if fresh:
                return msg

    def close(self) -> None:
        """Stops the stream, cancelling the call if it is still open."""
        self._cancel()

    def __enter__(self) -> ResumableStream[Req, Resp]:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
