"""A small bounded least-recently-used map, for caches keyed by a version: (id, version)
of a task, (query, revision) of a page of a plan's tasks; and for the store's lookups,
kept until the next commit.

Not thread-safe: a cache used from more than one thread needs its owner's lock. Entries
keyed by a version are never invalidated, only evicted: a key that names a version names
content that never changes, because every change bumps the version. The lookups, keyed
by id alone, are dropped all at once (`clear`) when the database changes.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from itertools import repeat
from operator import is_not
from typing import Any, Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


BLOCK = 4096


def blocks(size: int) -> int:
    """A weight for an entry of `size` bytes (or characters): one, plus one per full 4 KiB.
    A cache bounded in this weight holds as many typical entries as its bound, and a few
    huge ones (the largest plan the API accepts holds a few MB) cannot make it hold
    gigabytes."""
    return 1 + size // BLOCK


def all_present(values: Sequence[Any]) -> bool:
    """No None among `values`, checked in C (`None not in values` calls each value's
    `__eq__`, a Python function for dataclasses, several times slower)."""
    return all(map(is_not, values, repeat(None)))


class LruCache(Generic[K, V]):
    """At most `maxsize` entries, or with `weight`, entries weighing at most `maxsize` in
    all (tasks and plans by `blocks` of their size, pages by their tasks'); the
    least recently used go first. An entry's weight is taken once, when it is put."""

    def __init__(self, maxsize: int, *, weight: Callable[[V], int] | None = None) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self.maxsize = maxsize
        self._data: OrderedDict[K, V] = OrderedDict()
        self._weight = weight
        self._weights: dict[K, int] = {}  # each entry's, with `weight`
        self.weight = 0
        """The entries' weights summed (with `weight`)."""
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._data)

    @property
    def size(self) -> int:
        """What the cache holds, in `maxsize`'s unit: entries, or their weights summed."""
        return self.weight if self._weight is not None else len(self._data)

    def get(self, key: K, *, count_miss: bool = True) -> V | None:
        """The value, or None; `count_miss=False` for a first try whose miss the caller
        counts when it looks again (so that a miss is counted once)."""
        value = self._data.get(key)
        if value is None:
            if count_miss:
                self.misses += 1
            return None
        self._data.move_to_end(key)
        self.hits += 1
        return value

    def get_many(self, keys: Sequence[K]) -> list[V | None]:
        """`get` for each key, in one call (a page of 50 tasks paid 50 method calls).
        When every key is there (a page served again), both passes run in C."""
        data = self._data
        out = list(map(data.get, keys))
        if all_present(out):
            deque(map(data.move_to_end, keys), maxlen=0)
            self.hits += len(out)
            return out
        hits = 0
        for key, value in zip(keys, out, strict=True):
            if value is not None:
                data.move_to_end(key)
                hits += 1
        self.hits += hits
        self.misses += len(out) - hits
        return out

    def clear(self) -> None:
        """Drops every entry (the counts of hits and misses stay)."""
        self._data.clear()
        self._weights.clear()
        self.weight = 0

    def put(self, key: K, value: V) -> None:
        data = self._data
        weigh = self._weight
        if weigh is None:
            data[key] = value
            data.move_to_end(key)
            if len(data) > self.maxsize:
                data.popitem(last=False)
            return
        weights = self._weights
        if data.pop(key, None) is not None:
            self.weight -= weights.pop(key)
        w = weigh(value)
        if w > self.maxsize:
            return  # it would push out everything else and still not fit
        data[key] = value
        weights[key] = w
        self.weight += w
        while self.weight > self.maxsize:
            self.weight -= weights.pop(data.popitem(last=False)[0])
