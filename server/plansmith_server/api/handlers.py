"""Building and wrapping gRPC method handlers.

`add_service` registers a servicer from its service descriptor with deserializers that
never fail: a request that does not parse reaches the handler as `MalformedRequest` and
is answered INVALID_ARGUMENT, where grpc itself would answer INTERNAL.
`wrap_handler` lets an interceptor wrap a handler's behavior, whatever its call kind.
A handler may return an `Encoded` response, which is sent as it is.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import message as _message
from google.protobuf import message_factory
from google.protobuf.descriptor import ServiceDescriptor

from plansmith_server.errors import FieldViolation, InvalidArgumentError

UnaryBehavior = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]
StreamBehavior = Callable[[Any, grpc.aio.ServicerContext], AsyncIterator[Any]]


class Encoded:
    """A response already serialized (see `convert.TaskEncodings.listed`): sent as it is.
    A wrapper rather than a bytes subclass, whose construction and conversion back to
    bytes would each copy the whole response (a cached page of 50 tasks is ~16 kB)."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data


def _serializer(cls: type[_message.Message]) -> Callable[[Any], bytes]:
    def serialize(response: Any) -> bytes:
        if response.__class__ is Encoded:
            return response.data
        return cls.SerializeToString(response)

    return serialize


@dataclass(frozen=True)
class MalformedRequest:
    """Stands in for a request whose bytes did not parse."""

    message_type: str
    error: str


def _safe_deserializer(cls: type[_message.Message]) -> Callable[[bytes], Any]:
    def parse(data: bytes) -> Any:
        try:
            return cls.FromString(data)
        except _message.DecodeError as exc:
            return MalformedRequest(cls.DESCRIPTOR.full_name, str(exc))

    return parse


def _reject(req: MalformedRequest) -> InvalidArgumentError:
    return InvalidArgumentError(
        [FieldViolation("", f"the request is not a valid {req.message_type}: {req.error}")],
        reason="MALFORMED_REQUEST",
    )


def add_service(server: grpc.aio.Server, servicer: object, service: ServiceDescriptor) -> None:
    """Registers every method of `service` implemented by `servicer` (a method per RPC)."""
    handlers: dict[str, grpc.RpcMethodHandler] = {}
    for method in service.methods:
        req_cls = message_factory.GetMessageClass(method.input_type)
        resp_cls = message_factory.GetMessageClass(method.output_type)
        fn = getattr(servicer, method.name, None)
        if fn is None:
            continue  # grpc answers UNIMPLEMENTED; tests check every RPC we ship is served
        deser = _safe_deserializer(req_cls)
        if method.server_streaming:
            handlers[method.name] = grpc.unary_stream_rpc_method_handler(
                _guard_stream(fn), deser, _serializer(resp_cls)
            )
        else:
            handlers[method.name] = grpc.unary_unary_rpc_method_handler(
                _guard_unary(fn), deser, _serializer(resp_cls)
            )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(service.full_name, handlers),)
    )


def _guard_unary(fn: UnaryBehavior) -> UnaryBehavior:
    async def behavior(request: Any, context: grpc.aio.ServicerContext) -> Any:
        if isinstance(request, MalformedRequest):
            raise _reject(request)
        return await fn(request, context)

    return behavior


def _guard_stream(fn: StreamBehavior) -> StreamBehavior:
    async def behavior(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        if isinstance(request, MalformedRequest):
            raise _reject(request)
        async for item in fn(request, context):
            yield item

    return behavior


def wrap_handler(
    handler: grpc.RpcMethodHandler,
    unary: Callable[[UnaryBehavior], UnaryBehavior],
    stream: Callable[[StreamBehavior], StreamBehavior],
) -> grpc.RpcMethodHandler:
    """Wraps the behavior of a unary-unary or unary-stream handler.

    A unary-stream behavior written with `context.write` (grpc's own health Watch) is a
    coroutine function, not an async generator; it is wrapped as unary so both styles work.
    Client-streaming kinds are left as they are (we serve none).
    """
    # The ignores: grpc's stubs type RpcMethodHandler for the sync server (its behaviors take
    # a grpc.ServicerContext and return values) and not as the namedtuple it is (_replace).
    if handler.unary_unary is not None:
        return handler._replace(unary_unary=unary(handler.unary_unary))  # type: ignore[attr-defined,arg-type]
    if handler.unary_stream is not None:
        fn = handler.unary_stream
        if inspect.isasyncgenfunction(fn):
            return handler._replace(unary_stream=stream(fn))  # type: ignore[attr-defined,arg-type]
        return handler._replace(unary_stream=unary(fn))  # type: ignore[attr-defined,arg-type]
    return handler
