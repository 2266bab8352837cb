"""Iterators over every item of a list call, following `next_page_token` (AIP-158).

`iter_plans()` / `iter_tasks()` return these: iterate them for items, or call `pages()`
for whole responses. Pages are fetched lazily, one at a time, as the loop needs them;
`total_size` is known after the first page.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, Generic, TypeVar

__all__ = ["AsyncPager", "Pager"]

T = TypeVar("T")


class AsyncPager(Generic[T]):
    """`async for item in pager`: every item of every page."""

    def __init__(self, fetch: Callable[[str], Awaitable[Any]], items_field: str) -> None:
        self._fetch = fetch
        self._field = items_field
        self.total_size: int | None = None
        """Items matching the filters over all pages (known after the first page)."""

    async def pages(self) -> AsyncIterator[Any]:
        """Each list response in turn."""
        token = ""
        while True:
            response = await self._fetch(token)
            self.total_size = response.total_size
            yield response
            token = response.next_page_token
            if not token:
                return

    async def _items(self) -> AsyncIterator[T]:
        async for page in self.pages():
            for item in getattr(page, self._field):
                yield item

    def __aiter__(self) -> AsyncIterator[T]:
        return self._items()

    async def to_list(self) -> list[T]:
        """All items, fetching every page."""
        return [item async for item in self]


class Pager(Generic[T]):
    """`for item in pager`: every item of every page."""

    def __init__(self, fetch: Callable[[str], Any], items_field: str) -> None:
        self._fetch = fetch
        self._field = items_field
        self.total_size: int | None = None
        """Items matching the filters over all pages (known after the first page)."""

    def pages(self) -> Iterator[Any]:
        """Each list response in turn."""
        token = ""
        while True:
            response = self._fetch(token)
            self.total_size = response.total_size
            yield response
            token = response.next_page_token
            if not token:
                return

    def __iter__(self) -> Iterator[T]:
        for page in self.pages():
            yield from getattr(page, self._field)

    def to_list(self) -> list[T]:
        """All items, fetching every page."""
        return list(self)
