"""Rarely changing data held in memory for a few seconds instead of a round trip (issue 17).

A service reads some documents (a tenant's facts, an organisation) for nearly every event. A
``Memo`` keeps what was read, and only what is committed, and never longer than ``seconds``
(another replica's change goes unseen here at most that long). Within this process a change is
seen at once, whatever reads race with it:

- Every key has a generation: ``forget`` moves it. A read takes a ``ticket`` before it starts and
  its value is stored only if the key's generation did not move since (a read that began before
  a change cannot put the old value back after the change forgot it).
- A read made inside a transaction is stored only once that transaction has committed, and only
  if the key did not change since the transaction began (``Transaction.started``): its snapshot
  may be older than what is committed by then, and a transaction that is aborted leaves nothing.
- A transaction that changes a key (``changing``) never takes that key from memory: another
  reader may meanwhile have stored the committed value its own change replaces. The key is
  forgotten again once the change commits.
"""

from __future__ import annotations

import itertools
import math
import time
import weakref
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from pymongo.asynchronous.client_session import AsyncClientSession

    from lotse_runtime.unit_of_work import Transaction

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

# How long another replica's change may go unseen here.
MEMO_SECONDS = 5.0
FOREVER = math.inf  # for what never changes once it exists (an organisation's existence)

_ticks = itertools.count(1)


def tick() -> int:
    """The next value of the process's one generation counter (strictly increasing)."""
    return next(_ticks)


class Memo(Generic[K, V]):
    """Committed values by key, each for ``seconds`` after it was stored; ``copy`` (if given) is
    applied on the way in and out, for mutable values."""

    def __init__(
        self,
        seconds: float = MEMO_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        copy: Callable[[V], V] | None = None,
    ) -> None:
        self.seconds = seconds
        self.clock = clock
        self.copy = copy
        self._entries: dict[K, tuple[float, V]] = {}
        self._changed: dict[K, int] = {}  # the generation: the tick of the key's last change
        # The keys each open transaction changes (by session: a consumer batch's units share one).
        self._changing: weakref.WeakKeyDictionary[AsyncClientSession, set[K]] = weakref.WeakKeyDictionary()

    def get(self, key: K, transaction: Transaction | None = None) -> V | None:
        """The value in memory, or None: none stored, expired, or ``transaction`` changes ``key``."""
        if transaction is not None and key in self._changing.get(transaction.session, ()):
            return None
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, value = entry
        if self.clock() >= expires:
            del self._entries[key]
            return None
        return self.copy(value) if self.copy is not None else value

    def ticket(self) -> int:
        """Taken before a read outside any transaction; handed to ``put`` with what it read."""
        return tick()

    def put(self, key: K, value: V, since: int) -> bool:
        """Store ``value`` read after ``since``, unless ``key`` changed since then."""
        if self._changed.get(key, 0) >= since:
            return False
        stored = self.copy(value) if self.copy is not None else value
        self._entries[key] = (self.clock() + self.seconds, stored)
        return True

    def remember(self, key: K, value: V, since: int, transaction: Transaction | None) -> None:
        """Store what a read found: at once outside a transaction (``since`` its ticket), inside
        one after its commit and only if ``key`` did not change since the transaction began."""
        if transaction is None:
            self.put(key, value, since)
            return
        if key in self._changing.get(transaction.session, ()):
            return  # its own change, not committed yet
        started = transaction.started
        kept = self.copy(value) if self.copy is not None else value

        def once_committed() -> None:
            self.put(key, kept, started)

        transaction.after_commit(once_committed)

    def forget(self, key: K) -> None:
        """``key`` changed (committed, or about to be): drop it, and every read begun before."""
        self._changed[key] = tick()
        self._entries.pop(key, None)

    def changing(self, key: K, transaction: Transaction) -> None:
        """``transaction`` changes ``key``: it reads the key from the database from now on, and the
        key is forgotten now and once the change is committed."""
        self._changing.setdefault(transaction.session, set()).add(key)
        self.forget(key)
        transaction.after_commit(lambda: self.forget(key))
