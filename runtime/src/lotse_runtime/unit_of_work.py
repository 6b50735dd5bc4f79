"""The one way a service changes its state: a unit of work in one MongoDB transaction.

A unit holds the transaction's session and records what belongs with the effect, in the same
transaction: the inbox record of a consumed event (``record_once``), the events that describe the
change (``append_event``, the transactional outbox) and what may happen only once the change is
committed (``after_commit``: in-memory indexes, waking a worker). After the commit the callbacks
run in order, then, if the unit appended events, the service's ``wake`` (its outbox relay).

The model is cosmicpython's unit of work, with one difference: the body is a function, not the
block of an ``async with``. PyMongo's ``with_transaction`` runs the body again on a transient
error (a write conflict, a failover), so the body must be something it can call again; each run
gets a fresh ``Transaction``, and only the run that committed leaves callbacks behind.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pymongo import AsyncMongoClient
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from lotse_contracts import Envelope
from lotse_runtime import inbox, outbox
from lotse_runtime.mongo import in_transaction

T = TypeVar("T")
Document = dict[str, Any]


def _nothing() -> None:
    return None


class Transaction:
    """One attempt of a unit of work: its session, inbox, outbox and after-commit callbacks."""

    def __init__(self, database: AsyncDatabase[Document], session: AsyncClientSession) -> None:
        self.database = database
        self.session = session
        self.events: list[Envelope[Any]] = []
        self.callbacks: list[Callable[[], None]] = []

    async def record_once(self, consumer: str, event: Envelope[Any]) -> bool:
        """Record ``event`` in the inbox of ``consumer``; False if it was recorded before (a
        duplicate, whose effect is already there: change nothing then)."""
        return await inbox.record_once(
            self.database, self.session, consumer=consumer, event_id=str(event.id), tenant=event.tenant
        )

    async def append_event(self, topic: str, event: Envelope[Any]) -> None:
        """Store ``event`` in the outbox, for the relay to publish on ``topic`` after the commit."""
        await outbox.append_event(self.database, self.session, topic, event)
        self.events.append(event)

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once the transaction is committed (never if it is aborted)."""
        self.callbacks.append(callback)


class UnitOfWork:
    """A service's units of work on its database; ``wake`` is called after a commit that
    appended events (the outbox relay's early wake-up)."""

    def __init__(
        self,
        client: AsyncMongoClient[Document],
        database: AsyncDatabase[Document],
        *,
        wake: Callable[[], None] = _nothing,
    ) -> None:
        self.client = client
        self.database = database
        self.wake = wake

    async def run(self, work: Callable[[Transaction], Awaitable[T]]) -> T:
        """Run ``work`` in one transaction, then its after-commit callbacks and the wake-up."""
        committed: list[Transaction] = []

        async def attempt(session: AsyncClientSession) -> T:
            transaction = Transaction(self.database, session)
            committed[:] = [transaction]  # fresh per attempt: PyMongo may run the body again
            return await work(transaction)

        result = await in_transaction(self.client, attempt)
        (transaction,) = committed
        for callback in transaction.callbacks:
            callback()
        if transaction.events:
            self.wake()
        return result

    async def run_once(
        self, consumer: str, event: Envelope[Any], work: Callable[[Transaction], Awaitable[object]]
    ) -> bool:
        """Apply a consumed ``event`` once: its inbox record and ``work`` in one transaction.
        False (and ``work`` not run) for a duplicate."""

        async def once(transaction: Transaction) -> bool:
            if not await transaction.record_once(consumer, event):
                return False
            await work(transaction)
            return True

        return await self.run(once)
