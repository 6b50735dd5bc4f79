"""The runtime's unit of work in memory, for the services' use-case unit tests.

``MemoryUnitOfWork.run`` does what ``lotse_runtime.unit_of_work.UnitOfWork.run`` does, on a fake
store instead of a MongoDB transaction: the body gets a ``Transaction`` whose ``record_once`` is
the inbox (keyed as the real one: consumer, tenant, event id) and whose ``append_event`` is the
outbox; after a commit the callbacks run, then the wake-up if events were appended. It is all or
nothing, as a transaction is: when the body raises, the store is put back as it was (its
``snapshot``/``restore``) and nothing it recorded or appended stays.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from lotse_contracts import Envelope
from lotse_runtime.memo import tick
from lotse_runtime.unit_of_work import Transaction, UnitOfWork

T = TypeVar("T")
InboxKey = tuple[str, str, str]  # consumer, tenant, event id: the runtime inbox's unique key


class Restorable(Protocol):
    """A fake store whose whole state can be saved and put back."""

    def snapshot(self) -> Any: ...

    def restore(self, snapshot: Any) -> None: ...


@dataclass(frozen=True)
class Appended:
    """An event appended to the outbox, with the topic the relay will publish it on."""

    topic: str
    event: Envelope[Any]


class MemoryTransaction(Transaction):
    """One attempt of a unit of work. It has no database and no session: fakes never ask."""

    def __init__(self, inbox: set[InboxKey]) -> None:
        self.batch = None
        self.started = tick()
        self.events = []
        self.callbacks = []
        self.on_outcome = []
        self.inbox = inbox
        self.recorded: set[InboxKey] = set()
        self.appended: list[Appended] = []

    async def record_once(self, consumer: str, event: Envelope[Any]) -> bool:
        entry = (consumer, event.tenant, str(event.id))
        if entry in self.inbox or entry in self.recorded:
            return False
        self.recorded.add(entry)
        return True

    async def append_event(self, topic: str, event: Envelope[Any]) -> None:
        self.events.append(event)
        self.appended.append(Appended(topic, event))


class MemoryUnitOfWork(UnitOfWork):
    """Units of work on ``store``; ``inbox`` and ``outbox`` hold what committed units recorded
    and appended, ``wakes`` counts the commits that appended events (the relay's wake-ups)."""

    def __init__(self, store: Restorable, wake: Callable[[], None] = lambda: None) -> None:
        # No client and no database: the state is the store's.
        self.store = store
        self.wake = wake
        self.inbox: set[InboxKey] = set()
        self.outbox: list[Appended] = []
        self.wakes = 0

    async def run(self, work: Callable[[Transaction], Awaitable[T]]) -> T:
        saved = self.store.snapshot()
        transaction = MemoryTransaction(self.inbox)
        try:
            result = await work(transaction)
        except BaseException:
            self.store.restore(saved)
            raise
        self.inbox |= transaction.recorded
        self.outbox.extend(transaction.appended)
        for callback in transaction.callbacks:
            callback()
        if transaction.events:
            self.wakes += 1
            self.wake()
        return result
