"""A small bounded least-recently-used map, for caches keyed by (id, version).

Not thread-safe: each cache belongs to one thread (the event loop's). Values are never
invalidated, only evicted: a key that names a version of an entity names content that
never changes, because every change of an entity bumps its version.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class LruCache(Generic[K, V]):
    """At most `maxsize` entries; the least recently used one goes first."""

    def __init__(self, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self.maxsize = maxsize
        self._data: OrderedDict[K, V] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: K) -> V | None:
        value = self._data.get(key)
        if value is None:
            self.misses += 1
            return None
        self._data.move_to_end(key)
        self.hits += 1
        return value

    def get_many(self, keys: Iterable[K]) -> list[V | None]:
        """`get` for each key, in one call (a page of 50 tasks paid 50 method calls)."""
        data, out = self._data, []
        hits = 0
        for key in keys:
            value = data.get(key)
            if value is not None:
                data.move_to_end(key)
                hits += 1
            out.append(value)
        self.hits += hits
        self.misses += len(out) - hits
        return out

    def put(self, key: K, value: V) -> None:
        self._data[key] = value
        self._data.move_to_end(key)
        if len(self._data) > self.maxsize:
            self._data.popitem(last=False)
