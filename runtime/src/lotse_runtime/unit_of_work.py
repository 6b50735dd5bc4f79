"""The one way a service changes its state: a unit of work in one MongoDB transaction.

A unit holds the transaction's session and records what belongs with the effect, in the same
transaction: the inbox record of a consumed event (``record_once``), the events that describe the
change (``append_event``, the transactional outbox) and what may happen only once the change is
committed (``after_commit``: in-memory indexes, waking a worker). A check that must still hold at
the commit (``before_commit``: matching's fencing of a replica that lost its tenants) is written
last, just before the commit. Changes the work noted with
``audit`` are written to the audit trail (``lotse_runtime.audit``) in the same transaction when
the work is done, so that no change commits without its entry. After the commit the callbacks
run in order, then, if the unit appended events, the service's ``wake`` (its outbox relay).

The model is cosmicpython's unit of work, with one difference: the body is a function, not the
block of an ``async with``. PyMongo's ``with_transaction`` runs the body again on a transient
error (a write conflict, a failover), so the body must be something it can call again; each run
gets a fresh ``Transaction``, and only the run that committed leaves callbacks behind.

Inside a consumer batch (``Batch``, set up by the consumer for the records it took at once) a
unit of work opens no transaction of its own: it joins the batch's. Its inbox records come from
one lookup for the whole batch and are written with the batch's outbox events by one
``insert_many`` each at the end; its callbacks and the wake-up run once the batch has committed.
If one unit fails, the whole batch is aborted (the consumer then applies its events one by one).
A batch that holds a lock someone waits for (``contended``) is committed early, after the event
in hand, and the consumer applies the rest as a batch of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Sequence
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import structlog
from pymongo import AsyncMongoClient
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

from lotse_contracts import Envelope
from lotse_runtime import audit, inbox, outbox
from lotse_runtime.memo import tick
from lotse_runtime.mongo import in_transaction

if TYPE_CHECKING:  # sealed imports the consumer, which imports this module
    from lotse_runtime.sealed import KeyEncryptionKey

log = structlog.get_logger("lotse.unit_of_work")
T = TypeVar("T")
Document = dict[str, Any]
# A last write before a commit that raises if the change may no longer commit (``before_commit``).
Guard = Callable[[AsyncClientSession], Awaitable[None]]


def _nothing() -> None:
    return None


def _run_callbacks(callbacks: Sequence[Callable[[], None]], when: str) -> None:
    """Run each callback; one that fails is logged and the others still run. The change they
    follow is committed (or may be): a failure here must never make it applied again."""
    for callback in callbacks:
        try:
            callback()
        except Exception as error:  # noqa: BLE001 - logged; what is committed stays committed
            log.error("after-commit callback failed", when=when, callback=repr(callback), error=repr(error))


class WaitedForLock(asyncio.Lock):
    """An asyncio lock that counts who waits for it, so that a consumer batch holding it can give
    way (``Batch.contended``): a person's request for a tenant then waits for one event of the
    batch, not for all of them."""

    def __init__(self) -> None:
        super().__init__()
        self.waiting = 0

    async def acquire(self) -> Literal[True]:
        self.waiting += 1
        try:
            return await super().acquire()
        finally:
            self.waiting -= 1


class LockBusy(Exception):
    """A lock a batch asked for without waiting is held elsewhere: the batch is applied one by one
    instead (taking it late, out of order, and waiting could deadlock with another batch)."""


class Transaction:
    """One attempt of a unit of work: its session, inbox, outbox and after-commit callbacks."""

    def __init__(
        self,
        database: AsyncDatabase[Document],
        session: AsyncClientSession,
        batch: Batch | None = None,
        key_encryption_key: KeyEncryptionKey | None = None,
    ) -> None:
        self.database = database
        self.session = session
        self.batch = batch
        # The unit of work's, for a service that seals personal fields with per-person keys.
        self.key_encryption_key = key_encryption_key
        # Before anything of the transaction was read (see ``memo``): a batch's, or this attempt's.
        self.started = batch.started if batch is not None else tick()
        self.events: list[Envelope[Any]] = []
        self.callbacks: list[Callable[[], None]] = []
        self.on_outcome: list[Callable[[], None]] = []
        self.guards: dict[Hashable, Guard] = {}
        self.audit_notes: dict[tuple[str, str, str], audit.AuditNote] = {}

    def audit(
        self,
        tenant: str,
        operation: audit.Operation,
        resource_type: str,
        resource_id: str,
        fields: set[str],
        *,
        subject_id: str | None = None,
    ) -> None:
        """Note a change for the audit trail: its entry is written in this transaction when the
        unit's work is done (one per resource, the fields of every change to it together).
        ``subject_id``: the volunteer or need the change is about, where known."""
        key = (tenant, resource_type, resource_id)
        note = self.audit_notes.get(key)
        if note is None:
            self.audit_notes[key] = audit.AuditNote(
                tenant, operation, resource_type, resource_id, set(fields), subject_id
            )
            return
        note.fields |= fields
        note.subject_id = note.subject_id or subject_id
        if operation is audit.Operation.DELETE:
            note.operation = operation

    async def record_once(self, consumer: str, event: Envelope[Any]) -> bool:
        """Record ``event`` in the inbox of ``consumer``; False if it was recorded before (a
        duplicate, whose effect is already there: change nothing then)."""
        if self.batch is not None:
            return await self.batch.record_once(self.database, consumer, event)
        return await inbox.record_once(
            self.database, self.session, consumer=consumer, event_id=str(event.id), tenant=event.tenant
        )

    async def append_event(self, topic: str, event: Envelope[Any]) -> None:
        """Store ``event`` in the outbox, for the relay to publish on ``topic`` after the commit."""
        if self.batch is not None:
            self.batch.append_event(self.database, topic, event)
        else:
            await outbox.append_event(self.database, self.session, topic, event)
        self.events.append(event)

    async def append_events(self, entries: Sequence[tuple[str, Envelope[Any]]]) -> None:
        """Store several events (topic, event) in the outbox with one write, e.g. the outcomes a
        worker records together."""
        if self.batch is not None:
            for topic, event in entries:
                self.batch.append_event(self.database, topic, event)
        elif entries:
            rows = [outbox.outbox_entry(topic, event) for topic, event in entries]
            await self.database[outbox.OUTBOX_COLLECTION].insert_many(rows, session=self.session)
        self.events.extend(event for _, event in entries)

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once the transaction is committed (never if it is aborted)."""
        self.callbacks.append(callback)

    def after_commit_or_unknown(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once the transaction is committed, and also when its commit's outcome is
        unknown (the answer lost): for callbacks that only drop cached state or wake a worker."""
        self.callbacks.append(callback)
        self.on_outcome.append(callback)

    def before_commit(self, key: Hashable, guard: Guard) -> None:
        """Await ``guard`` with the session as the transaction's last step before its commit (once
        per ``key``, also in a batch): a write that raises if the change may no longer commit. Last,
        so that a writer outside that conflicts with it waits for this commit only briefly."""
        if self.batch is not None:
            self.batch.before_commit(key, guard)
        else:
            self.guards.setdefault(key, guard)


class UnitOfWork:
    """A service's units of work on its database; ``wake`` is called after a commit that
    appended events (the outbox relay's early wake-up)."""

    def __init__(
        self,
        client: AsyncMongoClient[Document],
        database: AsyncDatabase[Document],
        *,
        wake: Callable[[], None] = _nothing,
        key_encryption_key: KeyEncryptionKey | None = None,
    ) -> None:
        self.client = client
        self.database = database
        self.wake = wake
        self.key_encryption_key = key_encryption_key

    async def run(self, work: Callable[[Transaction], Awaitable[T]]) -> T:
        """Run ``work`` in one transaction, then its after-commit callbacks and the wake-up (inside
        a consumer batch: in the batch's transaction, the callbacks after the batch's commit)."""
        batch = current_batch()
        if batch is not None:
            return await batch.join(self, work)
        committed: list[Transaction] = []

        async def attempt(session: AsyncClientSession) -> T:
            transaction = Transaction(self.database, session, key_encryption_key=self.key_encryption_key)
            committed[:] = [transaction]  # fresh per attempt: PyMongo may run the body again
            result = await work(transaction)
            await audit.write_notes(self.database, session, list(transaction.audit_notes.values()))
            for guard in transaction.guards.values():
                await guard(session)
            return result

        result = await in_transaction(self.client, attempt)
        (transaction,) = committed
        wakes = [self.wake] if transaction.events else []
        _run_callbacks([*transaction.callbacks, *wakes], "commit")
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


_BATCH: ContextVar[Batch | None] = ContextVar("lotse_consumer_batch", default=None)
# As many times as PyMongo's with_transaction tries a commit whose outcome it did not hear.
COMMIT_TRIES = 3


def current_batch() -> Batch | None:
    """The consumer batch this task applies, if any (a task started from a handler inherits the
    context, but not a batch that has ended)."""
    batch = _BATCH.get()
    return batch if batch is not None and batch.open else None


class Batch:
    """One transaction for the events a consumer took at once; the units of work of their
    handlers join it. One attempt: after a failure the consumer makes a new one (or goes one by one).

    A service that keeps state in memory can hold a lock for the rest of the batch (``hold``) and
    undo what it changed there when the batch is abandoned (``on_abort``). A commit whose outcome
    is unknown (its answer lost) counts as abandoned and maybe committed: the abort hooks run (they
    rebuild from the database, whichever way it went), and so do the callbacks that only invalidate
    or wake (``after_commit_or_unknown``) and the wake-ups.
    """

    def __init__(self, events: Sequence[Envelope[Any]]) -> None:
        self.events = list(events)
        self.started = tick()  # before its transaction begins (see ``memo``)
        self.open = True
        self.failure: BaseException | None = None  # a unit that failed, even if its caller went on
        self._client: AsyncMongoClient[Document] | None = None
        self._session: AsyncClientSession | None = None
        self._committed = False
        self._outcome_unknown = False
        self._on_outcome: list[Callable[[], None]] = []
        self._callbacks: list[Callable[[], None]] = []
        self._wakes: list[Callable[[], None]] = []
        self._databases: dict[str, AsyncDatabase[Document]] = {}
        self._inbox_rows: dict[str, list[Document]] = {}
        self._outbox_rows: dict[str, list[Document]] = {}
        self._recorded: dict[tuple[str, str], set[tuple[str, str]]] = {}  # (database, consumer): (tenant, id)
        self._looked_up: dict[tuple[str, str], set[tuple[str, str]]] = {}
        self._held: list[asyncio.Lock] = []
        self._abort_hooks: dict[Hashable, Callable[[], Awaitable[None]]] = {}
        self._guards: dict[Hashable, Guard] = {}

    @contextlib.asynccontextmanager
    async def applying(self) -> AsyncIterator[Batch]:
        """The batch as the units of work of this task see it; abandoned unless ``commit`` ran."""
        token = _BATCH.set(self)
        try:
            yield self
        finally:
            _BATCH.reset(token)
            try:
                if not self._committed:
                    # Never raises: the error that abandoned the batch is the one the consumer sees.
                    await self._abandon()
            finally:
                self.open = False
                for lock in reversed(self._held):
                    lock.release()
                self._held.clear()
                if self._session is not None:
                    await self._session.end_session()

    def holds(self, lock: asyncio.Lock) -> bool:
        return any(held is lock for held in self._held)

    async def hold(self, lock: asyncio.Lock, *, wait: bool = True) -> None:
        """Take ``lock`` until the batch ends (once, however often asked); without ``wait``, raise
        ``LockBusy`` if someone else has it."""
        if self.holds(lock):
            return
        if not wait and lock.locked():
            raise LockBusy("a lock the batch needs late is held elsewhere")
        await lock.acquire()
        self._held.append(lock)

    def contended(self) -> bool:
        """Whether someone waits for a lock the batch holds (only ``WaitedForLock``s can tell)."""
        return any(isinstance(lock, WaitedForLock) and lock.waiting > 0 for lock in self._held)

    def on_abort(self, key: Hashable, hook: Callable[[], Awaitable[None]]) -> bool:
        """Run ``hook`` (once per ``key``) if the batch is abandoned, after its transaction is aborted
        (every hook runs, also after another failed). True if ``key`` is new to the batch."""
        if key in self._abort_hooks:
            return False
        self._abort_hooks[key] = hook
        return True

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once the batch is committed (not if its outcome is unknown)."""
        self._callbacks.append(callback)

    def before_commit(self, key: Hashable, guard: Guard) -> None:
        """Await ``guard`` (once per ``key``) after the batch's rows are written, before its commit."""
        self._guards.setdefault(key, guard)

    async def join(self, unit: UnitOfWork, work: Callable[[Transaction], Awaitable[T]]) -> T:
        session = await self._session_on(unit.client)
        self._databases.setdefault(unit.database.name, unit.database)
        transaction = Transaction(unit.database, session, self, unit.key_encryption_key)
        try:
            result = await work(transaction)
            await audit.write_notes(unit.database, session, list(transaction.audit_notes.values()))
        except BaseException as error:
            self.failure = self.failure or error
            raise
        self._callbacks.extend(transaction.callbacks)
        self._on_outcome.extend(transaction.on_outcome)
        if transaction.events and not any(wake is unit.wake for wake in self._wakes):
            self._wakes.append(unit.wake)
        return result

    async def record_once(self, database: AsyncDatabase[Document], consumer: str, event: Envelope[Any]) -> bool:
        assert self._session is not None
        key = (database.name, consumer)
        recorded = self._recorded.setdefault(key, set())
        looked_up = self._looked_up.setdefault(key, set())
        pair = (event.tenant, str(event.id))
        if pair not in looked_up:
            # The first record of this consumer looks up the whole batch at once.
            wanted = {(each.tenant, str(each.id)) for each in self.events} | {pair}
            wanted -= looked_up
            recorded |= await inbox.recorded_among(database, self._session, consumer=consumer, events=wanted)
            looked_up |= wanted
        if pair in recorded:  # before this batch, or earlier in it (the same event twice)
            inbox.duplicate_ignored(consumer, pair[1], pair[0])
            return False
        recorded.add(pair)
        self._inbox_rows.setdefault(database.name, []).append(inbox.inbox_row(consumer, pair[1], pair[0]))
        return True

    def append_event(self, database: AsyncDatabase[Document], topic: str, event: Envelope[Any]) -> None:
        self._outbox_rows.setdefault(database.name, []).append(outbox.outbox_entry(topic, event))

    async def commit(self) -> None:
        """Write the batch's inbox and outbox rows, commit, then run the callbacks and wake-ups."""
        if self.failure is not None:
            raise self.failure
        session = self._session
        if session is not None:
            for name, database in self._databases.items():
                if rows := self._inbox_rows.get(name):
                    await database[inbox.INBOX_COLLECTION].insert_many(rows, session=session)
                if rows := self._outbox_rows.get(name):
                    await database[outbox.OUTBOX_COLLECTION].insert_many(rows, session=session)
            for guard in self._guards.values():
                await guard(session)
            try:
                await _commit(session)
            except PyMongoError as error:
                # Maybe committed: ``applying`` runs what must follow either way.
                self._outcome_unknown = error.has_error_label("UnknownTransactionCommitResult")
                raise
        self._committed = True
        _run_callbacks([*self._callbacks, *self._wakes], "batch commit")

    async def _session_on(self, client: AsyncMongoClient[Document]) -> AsyncClientSession:
        if self._session is None:
            self._client = client
            self._session = client.start_session()
            await self._session.start_transaction(
                read_concern=ReadConcern("majority"), write_concern=WriteConcern("majority")
            )
        elif client is not self._client:
            raise RuntimeError("the units of work of one consumer batch must share one MongoDB client")
        return self._session

    async def _abandon(self) -> None:
        if self._session is not None and self._session.in_transaction and not self._outcome_unknown:
            with contextlib.suppress(PyMongoError):  # the server drops it anyway when the session ends
                await self._session.abort_transaction()
        # Every hook runs, also after one failed (each undoes its own part of the batch).
        for key, hook in self._abort_hooks.items():
            try:
                await hook()
            except Exception as error:  # noqa: BLE001 - logged; the batch's own error is what counts
                log.error("abort hook of a batch failed", hook=repr(key), error=repr(error))
        if self._outcome_unknown:
            _run_callbacks([*self._on_outcome, *self._wakes], "batch commit of unknown outcome")


async def _commit(session: AsyncClientSession) -> None:
    for attempt in range(1, COMMIT_TRIES + 1):
        try:
            await session.commit_transaction()
            return
        except PyMongoError as error:
            # A commit whose answer was lost may be tried again (MongoDB keeps it to once).
            if attempt == COMMIT_TRIES or not error.has_error_label("UnknownTransactionCommitResult"):
                raise
