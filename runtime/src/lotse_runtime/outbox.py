"""Transactional outbox: an event is stored in the same transaction as the state change it
describes, and a relay publishes stored events to Kafka, in order per key, at least once.

The relay always finds its work by query (pending = not yet published), so it resumes after
a crash or restart without any history to replay; ``wake()`` only shortens the wait. Events
that were published but not yet marked are published again after a crash: consumers are
idempotent (inbox), so that costs nothing but a duplicate on the wire.

A pass publishes the keys of its batch side by side and the events of one key one after the
other: the next event of a key is handed over only once the broker has acknowledged the one
before, so a key's events never reach the broker out of order, not even when the producer gives
up on one of them (a refused event ends its key's turn in this pass). A batch thus costs about
one round of broker latency per event of its busiest key, not one per event. The lease is
written a third into its term, not on every pass, and a pass ends before the lease does.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from pymongo import ASCENDING, ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError, PyMongoError

from lotse_contracts import Envelope, to_bytes
from lotse_runtime import metrics
from lotse_runtime.tracing import event_trace_context, publishing_span, with_trace_context
from lotse_runtime.wakeup import woken

log = structlog.get_logger("lotse.outbox")

OUTBOX_COLLECTION = "outbox"
LEASE_COLLECTION = "outbox_lease"
PUBLISHED_RETENTION = timedelta(days=7)
# Counting the backlog costs queries; the gauges need not be fresher than this.
BACKLOG_MEASURE_SECONDS = 5.0

# Hand (topic, key, value) to the producer and return its acknowledgement, to be awaited later:
# the producer's ``send`` (aiokafka) or ``publish(..., no_confirm=True)`` (FastStream). A value of
# None is a tombstone (a record without value, which compaction reads as "delete this key").
Send = Callable[[str, bytes, bytes | None], Awaitable[Awaitable[object]]]
TOMBSTONE_TYPE = "tombstone"


async def ensure_outbox_indexes(database: AsyncDatabase[dict[str, Any]]) -> None:
    outbox = database[OUTBOX_COLLECTION]
    await outbox.create_index([("published_at", ASCENDING), ("created_at", ASCENDING)])
    # Published entries are kept a while for operators, then removed by MongoDB itself.
    await outbox.create_index(
        "published_at", expireAfterSeconds=int(PUBLISHED_RETENTION.total_seconds()), name="published_ttl"
    )


async def append_event(
    database: AsyncDatabase[dict[str, Any]], session: AsyncClientSession, topic: str, event: Envelope[Any]
) -> None:
    """Store ``event`` for publication on ``topic``; call inside the state change's transaction."""
    await database[OUTBOX_COLLECTION].insert_one(outbox_entry(topic, event), session=session)


def outbox_entry(topic: str, event: Envelope[Any]) -> dict[str, Any]:
    """The outbox document of ``event`` (a consumer batch writes many with one ``insert_many``)."""
    event = with_trace_context(event)
    return {
        "_id": str(event.id),
        "topic": topic,
        "key": event.key.decode(),
        "value": to_bytes(event),
        "tenant": event.tenant,
        "type": event.type,
        "version": event.version,
        "created_at": datetime.now(UTC),
        "published_at": None,
        # For the relay's span, so that it need not parse the event.
        "trace_context": event_trace_context(event),
    }


def tombstone_entry(topic: str, key: str, tenant: str, version: int) -> dict[str, Any]:
    """The outbox document of a tombstone for ``key`` on a compacted ``topic``, published in order
    with the key's events like any of them."""
    return {
        "_id": uuid.uuid4().hex,
        "topic": topic,
        "key": key,
        "value": None,
        "tenant": tenant,
        "type": TOMBSTONE_TYPE,
        "version": version,
        "created_at": datetime.now(UTC),
        "published_at": None,
        "trace_context": None,
    }


@dataclass
class RelayStats:
    published: int = 0
    passes: int = 0


class OutboxRelay:
    """Publishes pending outbox events. One relay of a service holds the lease at a time, so
    that replicas do not publish the same events side by side."""

    def __init__(
        self,
        database: AsyncDatabase[dict[str, Any]],
        send: Send,
        *,
        name: str,
        batch_size: int = 500,
        poll_interval: float = 0.5,
        lease_seconds: float = 15.0,
    ) -> None:
        """``poll_interval``: how long the relay waits when nobody wakes it. A commit in this
        process wakes it at once; the poll only finds what other replicas of the service committed
        (their relay does not hold the lease), so it bounds their latency, at one query per poll."""
        self.database = database
        self.send = send
        self.name = name
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.lease_seconds = lease_seconds
        self.owner = uuid.uuid4().hex
        # The event loop's time at which the lease is asked again (a third into its term), and by
        # which a pass must be done.
        self._lease_renew_at = 0.0
        self._pass_deadline = 0.0
        self.stats = RelayStats()
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """Tell the relay that events were just committed."""
        self._wake.set()

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name=f"outbox-relay-{self.name}")

    async def stop(self, grace_seconds: float = 5.0) -> None:
        """Stop after the batch in hand, or cut it off after ``grace_seconds``: what is published
        but not marked yet is published again by the next relay (consumers drop the duplicate)."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping = True
        self._wake.set()
        _, unfinished = await asyncio.wait({task}, timeout=grace_seconds)
        if unfinished:
            log.warning("shutdown: outbox relay batch outlasted the grace, cut off", relay=self.name)
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        with contextlib.suppress(PyMongoError):
            await self.database[LEASE_COLLECTION].delete_one({"_id": self.name, "owner": self.owner})
        log.info("shutdown: outbox relay stopped", relay=self.name, published=self.stats.published)

    async def _run(self) -> None:
        last_measured = 0.0
        while not self._stopping:
            published = 0
            holding: bool | None = None  # None: the database did not say
            # Cleared before the query: a commit during the pass wakes the next pass at once.
            self._wake.clear()
            try:
                holding = await self.keep_lease()
                if holding:
                    published = await self.publish_pending(until=self._pass_deadline)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - broker or database away: try again later
                log.warning("outbox relay pass failed", relay=self.name, error=repr(error))
            if holding is False:
                # Another replica publishes and reports: a sum or maximum over the replicas is the
                # backlog, and one that lost the lease does not report what it saw last for ever.
                self._report(0, 0.0)
                last_measured = 0.0
            elif holding and time.monotonic() - last_measured > BACKLOG_MEASURE_SECONDS:
                # Also after a failed pass: a backlog growing while the broker is away must show.
                last_measured = time.monotonic()
                with contextlib.suppress(PyMongoError):
                    self._report(*await self.backlog())
            if published < self.batch_size and not self._stopping:
                await woken(self._wake, self.poll_interval)

    def _report(self, count: int, age: float) -> None:
        metrics.OUTBOX_BACKLOG.labels(self.name).set(count)
        metrics.OUTBOX_OLDEST_AGE.labels(self.name).set(age)

    async def publish_pending(self, until: float | None = None) -> int:
        """Publish one batch of pending events, in order per key, and mark them; return how many.

        ``until`` (the event loop's clock): the pass stops handing over events then, marks what
        was acknowledged and raises ``TimeoutError`` (the relay passes the end of its lease, so
        that no other replica publishes the same events alongside)."""
        outbox = self.database[OUTBOX_COLLECTION]
        # created_at orders transactions; version breaks ties within one aggregate.
        pending = await (
            outbox.find({"published_at": None})
            .sort([("created_at", ASCENDING), ("key", ASCENDING), ("version", ASCENDING)])
            .limit(self.batch_size)
            .to_list()
        )
        self.stats.passes += 1
        if not pending:
            return 0
        by_key: dict[str, list[dict[str, Any]]] = {}
        for entry in pending:
            by_key.setdefault(entry["key"], []).append(entry)
        published_ids: list[str] = []

        async def publish_in_turn(entries: list[dict[str, Any]]) -> None:
            for entry in entries:
                with publishing_span(entry["type"], entry["topic"], entry["_id"], entry.get("trace_context")):
                    value = None if entry["value"] is None else bytes(entry["value"])
                    await (await self.send(entry["topic"], entry["key"].encode(), value))
                published_ids.append(entry["_id"])

        try:
            async with asyncio.timeout_at(until):
                outcomes = await asyncio.gather(
                    *(publish_in_turn(entries) for entries in by_key.values()), return_exceptions=True
                )
        finally:
            # What the broker acknowledged is marked even when the pass is cut off.
            if published_ids:
                await outbox.update_many({"_id": {"$in": published_ids}}, {"$set": {"published_at": datetime.now(UTC)}})
                self.stats.published += len(published_ids)
                metrics.OUTBOX_PUBLISHED.labels(self.name).inc(len(published_ids))
        if failure := next((outcome for outcome in outcomes if isinstance(outcome, BaseException)), None):
            raise failure
        return len(published_ids)

    async def backlog(self) -> tuple[int, float]:
        """Pending events and the age in seconds of the oldest, for metrics and health."""
        outbox = self.database[OUTBOX_COLLECTION]
        count = await outbox.count_documents({"published_at": None})
        oldest = await outbox.find_one({"published_at": None}, sort=[("created_at", ASCENDING)])
        age = (datetime.now(UTC) - oldest["created_at"]).total_seconds() if oldest else 0.0
        return count, age

    async def keep_lease(self) -> bool:
        """Whether this relay holds the lease: asked of the database only when a third of it is
        gone (or it is not ours), so a busy relay does not write its lease on every pass."""
        clock = asyncio.get_running_loop().time
        if clock() < self._lease_renew_at:
            return True
        asked_at = clock()
        if await self.hold_lease():
            self._lease_renew_at = asked_at + self.lease_seconds / 3
            # A pass ends a sixth of the lease before it does: room to mark, and for clock skew.
            self._pass_deadline = asked_at + self.lease_seconds * 5 / 6
            return True
        self._lease_renew_at = 0.0
        return False

    async def hold_lease(self) -> bool:
        return await take_lease(self.database, self.name, self.owner, self.lease_seconds)


async def take_lease(database: AsyncDatabase[dict[str, Any]], name: str, owner: str, seconds: float) -> bool:
    """Take or renew the lease ``name`` for ``owner`` for ``seconds``; False while another owner
    holds it. One lease per job and service (the relay's, the retention job's) in one collection."""
    now = datetime.now(UTC)
    try:
        lease = await database[LEASE_COLLECTION].find_one_and_update(
            {"_id": name, "$or": [{"owner": owner}, {"expires_at": {"$lt": now}}]},
            {"$set": {"owner": owner, "expires_at": now + timedelta(seconds=seconds)}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
    except DuplicateKeyError:
        return False  # another replica holds a live lease
    return bool(lease and lease["owner"] == owner)
