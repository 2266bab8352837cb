"""The one path of every write: a mutation is a small synchronous function of a `Writing`
(its write transaction) that returns its result and its change records; the runner around
it does what every write needs, in the same transaction and one hand-off to the database:

- the idempotency record: a request_id seen before returns the first call's result
  (decoded by the mutation's codec) without running the mutation again, and a new one is
  recorded with the result;
- the etag check (`Writing.check_etag`, against the etag the caller sent);
- the plan's revision: bumped once (`Writing.next_revision`) by a mutation that changes a
  plan, so every change of a plan or its tasks moves it;
- the change log: the records the mutation returns, appended under that revision.

A failed mutation changes nothing; `Store.subscribe_commits` hears of each revision once
it is committed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from plansmith_server.domain.codec import Codec
from plansmith_server.domain.models import ChangeRecord, Plan, Task
from plansmith_server.domain.store import IdempotencyRecord, Store, WriteTx
from plansmith_server.errors import EtagMismatchError, IdempotencyKeyReusedError

R = TypeVar("R")


def now_us() -> int:
    return time.time_ns() // 1000


def new_id(prefix: str) -> str:
    """`prefix`_ and 80 random bits in hex (as the first 20 hex digits of a uuid4 were,
    without building the UUID)."""
    return f"{prefix}_{os.urandom(10).hex()}"


@dataclass(frozen=True)
class Mutation:
    """Who asked for a mutation, for idempotency: the key and a hash of the request."""

    request_id: str = ""
    fingerprint: str = ""


NO_MUTATION = Mutation()
"""A mutation without a request_id (no idempotency)."""


@dataclass(frozen=True)
class Applied(Generic[R]):
    """What a mutation did: its result, and the change records of the plan whose revision
    it took (`Writing.next_revision` or `Writing.new_plan`)."""

    result: R
    changes: Sequence[ChangeRecord] = ()


class Writing:
    """A mutation's write transaction (`tx`), its time (`ts`, µs) and the runner's part."""

    __slots__ = ("_etag", "plan_id", "revision", "ts", "tx")

    def __init__(self, tx: WriteTx, ts: int, etag: str = "") -> None:
        self.tx = tx
        self.ts = ts
        self._etag = etag
        self.plan_id = ""
        self.revision = 0

    def check_etag(self, kind: str, current: Plan | Task) -> None:
        """Raises EtagMismatchError if the caller sent an etag and `current` has another."""
        if self._etag and self._etag != current.etag:
            raise EtagMismatchError(kind, current.id, current.etag)

    def next_revision(self, plan_id: str) -> int:
        """The revision this mutation gives the plan (bumped on the first call)."""
        if self.plan_id != plan_id:
            self._one_plan(plan_id)
            self.revision = self.tx.bump_revision(plan_id, self.ts)
        return self.revision

    def new_plan(self, plan_id: str) -> int:
        """Says the mutation creates the plan: its changes are its first revision."""
        self._one_plan(plan_id)
        self.revision = 1
        return 1

    def _one_plan(self, plan_id: str) -> None:
        if self.plan_id:
            raise RuntimeError(f"a mutation changes one plan: {self.plan_id}, not {plan_id}")
        self.plan_id = plan_id


Body = Callable[[Writing], Applied[R]]


class MutationRunner:
    """Runs mutations over a store (see the module docstring)."""

    def __init__(self, store: Store, clock: Callable[[], int] = now_us) -> None:
        self.store = store
        self.clock = clock

    async def run(
        self,
        method: str,
        m: Mutation,
        body: Body[R],
        codec: Codec[R],
        *,
        etag: str = "",
        bulk: bool = False,
    ) -> R:
        """Runs `body` in one write transaction, once per request_id; `bulk` says it may
        touch many rows (see `Store.write`)."""
        return await self.store.write(self.transaction(method, m, body, codec, etag), bulk=bulk)

    def transaction(
        self, method: str, m: Mutation, body: Body[R], codec: Codec[R], etag: str = ""
    ) -> Callable[[WriteTx], R]:
        """The whole mutation as one function of a write transaction."""

        def run(tx: WriteTx) -> R:
            if m.request_id:
                record = tx.get_idempotency(m.request_id)
                if record is not None:
                    _check_same_request(record, method, m)
                    return codec.decode(record.response)
            w = Writing(tx, self.clock(), etag)
            applied = body(w)
            if applied.changes:
                if not w.plan_id:
                    raise RuntimeError(f"{method}: change records without a plan revision")
                tx.append_changes(w.plan_id, w.revision, applied.changes, w.ts)
            elif w.plan_id:
                raise RuntimeError(f"{method}: a new revision of {w.plan_id} without changes")
            if m.request_id:
                tx.put_idempotency(
                    IdempotencyRecord(
                        m.request_id, method, m.fingerprint, codec.encode(applied.result), w.ts
                    )
                )
            return applied.result

        return run

    async def replay(self, method: str, m: Mutation, codec: Codec[R]) -> R | None:
        """The recorded result of an earlier call with this request_id, or None.

        For mutations that do slow work before their transaction (planning): a retry must
        not redo it, nor fail preconditions that the first call itself changed.
        """
        if not m.request_id:
            return None
        record = await self.store.read(lambda tx: tx.get_idempotency(m.request_id))
        if record is None:
            return None
        _check_same_request(record, method, m)
        return codec.decode(record.response)


def _check_same_request(record: IdempotencyRecord, method: str, m: Mutation) -> None:
    if record.method != method or record.fingerprint != m.fingerprint:
        raise IdempotencyKeyReusedError(m.request_id, record.method)
