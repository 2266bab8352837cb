"""Server reflection that serves our protos with their comments.

Generated Python descriptors drop the source comments, so grpcurl `describe` would show
bare fields. `scripts/gen_protos.sh` also writes a descriptor set with source info; this
pool answers reflection from it for our files and from the default pool for the rest.
"""

from __future__ import annotations

from importlib import resources
from typing import Any, cast

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection

_DESCRIPTOR_SET = "plansmith_v1.binpb"


class _DocumentedFile:
    """A FileDescriptor whose `CopyToProto` includes source comments when we have them."""

    def __init__(self, fd: Any, protos: dict[str, descriptor_pb2.FileDescriptorProto]) -> None:
        self._fd = fd
        self._protos = protos

    @property
    def name(self) -> str:
        return str(self._fd.name)

    @property
    def dependencies(self) -> list[_DocumentedFile]:
        return [_DocumentedFile(d, self._protos) for d in self._fd.dependencies]

    def CopyToProto(self, proto: descriptor_pb2.FileDescriptorProto) -> None:
        documented = self._protos.get(self.name)
        if documented is not None:
            proto.CopyFrom(documented)
        else:
            self._fd.CopyToProto(proto)


class _DocumentedPool:
    """The default descriptor pool, with file look-ups wrapped by `_DocumentedFile`."""

    def __init__(self, protos: dict[str, descriptor_pb2.FileDescriptorProto]) -> None:
        self._pool = descriptor_pool.Default()
        self._protos = protos

    def FindFileByName(self, name: str) -> _DocumentedFile:
        return _DocumentedFile(self._pool.FindFileByName(name), self._protos)

    def FindFileContainingSymbol(self, symbol: str) -> _DocumentedFile:
        try:
            fd = self._pool.FindFileContainingSymbol(symbol)
        except KeyError:
            fd = self._file_of_method(symbol)
        return _DocumentedFile(fd, self._protos)

    def _file_of_method(self, symbol: str) -> Any:
        """The file of `Package.Service.Method`, which the pool does not index by method
        (so grpcurl `describe` of a method failed with "Symbol not found": grpc/grpc
        issue 34743); raises KeyError as the pool does for anything else unknown."""
        service_name, _, method = symbol.rpartition(".")
        try:
            service = self._pool.FindServiceByName(service_name)
        except KeyError:
            raise KeyError(f"Couldn't find symbol {symbol}") from None
        if method not in service.methods_by_name:
            raise KeyError(f"Couldn't find symbol {symbol}")
        return service.file

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pool, name)


def _load_documented() -> dict[str, descriptor_pb2.FileDescriptorProto]:
    data = resources.files("plansmith.v1").joinpath(_DESCRIPTOR_SET).read_bytes()
    fds = descriptor_pb2.FileDescriptorSet.FromString(data)
    return {f.name: f for f in fds.file}


def enable(server: grpc.aio.Server, service_names: tuple[str, ...]) -> None:
    """Registers reflection for `service_names` (and reflection itself)."""
    reflection.enable_server_reflection(
        (*service_names, reflection.SERVICE_NAME),
        server,
        # Not a DescriptorPool: it answers what reflection asks of one (and delegates the rest).
        pool=cast(descriptor_pool.DescriptorPool, _DocumentedPool(_load_documented())),
    )
