"""One codec for what a mutation returns, so its idempotency record can give a retry the
first call's result: JSON-ready dicts derived from the result's dataclass fields.

A field's value is stored by its type: a model with `to_dict`/`from_dict` (Plan, Task) by
those, a nested dataclass as a dict of its fields, tuples as lists, mappings as dicts,
enums by value. A field's metadata can rename its key (`{"key": "rewired"}`, for records
written by release 1) or leave it out (`{"stored": False}`: it is not part of what a retry
gets back); a key missing from an older record decodes to the field's default.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, Generic, Protocol, TypeVar

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class Codec(Protocol[T]):
    """Turns a result into a JSON-ready dict and back."""

    def encode(self, value: T) -> dict[str, Any]: ...

    def decode(self, data: Mapping[str, Any]) -> T: ...


@dataclasses.dataclass(frozen=True)
class FunctionCodec(Generic[T]):
    """A codec of two functions: for records that hold more than a result."""

    encode_fn: Callable[[T], dict[str, Any]]
    decode_fn: Callable[[Mapping[str, Any]], T]

    def encode(self, value: T) -> dict[str, Any]:
        return self.encode_fn(value)

    def decode(self, data: Mapping[str, Any]) -> T:
        return self.decode_fn(data)


class DataclassCodec(Generic[T]):
    """The codec of a dataclass type, from its fields' types (see the module docstring)."""

    def __init__(self, cls: type[T]) -> None:
        if not dataclasses.is_dataclass(cls):
            raise TypeError(f"{cls!r} is not a dataclass")
        self.cls = cls
        hints = typing.get_type_hints(cls)
        self._fields = [
            (
                f.name,
                f.metadata.get("key", f.name),
                _converters(hints[f.name]),
                f.default is not dataclasses.MISSING
                or f.default_factory is not dataclasses.MISSING,
            )
            for f in dataclasses.fields(cls)
            if f.metadata.get("stored", True)
        ]
        self._models = hasattr(cls, "to_dict") and hasattr(cls, "from_dict")

    def encode(self, value: T) -> dict[str, Any]:
        # The ignores: _models says T has to_dict/from_dict, which T's type cannot say.
        if self._models:
            return value.to_dict()  # type: ignore[attr-defined,no-any-return]
        return {key: enc(getattr(value, name)) for name, key, (enc, _), _ in self._fields}

    def decode(self, data: Mapping[str, Any]) -> T:
        if self._models:
            return self.cls.from_dict(data)  # type: ignore[attr-defined,no-any-return]
        kwargs = {}
        for name, key, (_, dec), optional in self._fields:
            if key in data:
                kwargs[name] = dec(data[key])
            elif not optional:
                raise KeyError(key)
        return self.cls(**kwargs)


_CODECS: dict[type[Any], DataclassCodec[Any]] = {}


def codec_for(cls: type[T]) -> DataclassCodec[T]:
    """The codec of a result type (one per type)."""
    # Not functools.cache: its wrapper would type the result DataclassCodec[Any].
    codec = _CODECS.get(cls)
    if codec is None:
        codec = _CODECS[cls] = DataclassCodec(cls)
    return codec


def _same(x: Any) -> Any:
    return x


Converters = tuple[Callable[[Any], Any], Callable[[Any], Any]]


def _converters(tp: Any) -> Converters:
    """(encode, decode) of values of the type `tp`."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        if len(rest) != 1:
            raise TypeError(f"cannot store a value of type {tp!r}")
        enc, dec = _converters(rest[0])
        return (
            lambda v: None if v is None else enc(v),
            lambda d: None if d is None else dec(d),
        )
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            enc, dec = _converters(args[0])
            return (lambda v: [enc(x) for x in v], lambda d: tuple(dec(x) for x in d))
        convs = [_converters(a) for a in args]
        return (
            lambda v: [c[0](x) for c, x in zip(convs, v, strict=True)],
            lambda d: tuple(c[1](x) for c, x in zip(convs, d, strict=True)),
        )
    if origin in (list, typing.List):  # noqa: UP006
        enc, dec = _converters(args[0])
        return (lambda v: [enc(x) for x in v], lambda d: [dec(x) for x in d])
    if origin in (dict, Mapping, typing.Mapping):
        enc, dec = _converters(args[1])
        return (
            lambda v: {k: enc(x) for k, x in v.items()},
            lambda d: {k: dec(x) for k, x in d.items()},
        )
    if isinstance(tp, type):
        if issubclass(tp, enum.Enum):
            return (lambda v: v.value, tp)
        if dataclasses.is_dataclass(tp):
            codec = codec_for(tp)
            return (codec.encode, codec.decode)
        if tp in (str, int, float, bool):
            return (_same, _same)
    if tp is Any:
        return (_same, _same)
    raise TypeError(f"cannot store a value of type {tp!r}")
