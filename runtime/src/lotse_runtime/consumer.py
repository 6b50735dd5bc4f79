"""Consume contract events: validate, process with bounded retries, dead-letter, then commit.

What others learned the hard way (docs/architecture.md, "Pitfalls"): commit only after a message
is processed or dead-lettered, never rely on nack to keep a failed message, and let one bad
message hold up nothing else. Every message therefore ends in exactly one of three ways before
its offset is committed: processed, dead-lettered with its reason, or (on shutdown) left
uncommitted so that it is delivered again.

Records come in batches (what has arrived, up to ``ConsumerOptions.max_records``): the events of a
batch are applied in one MongoDB transaction (their handlers' units of work join it, see
``lotse_runtime.unit_of_work.Batch``) and the offsets committed once. A failure of an event's own
(poison, ``RejectEvent``, any error that is not the infrastructure's) aborts the batch, which is
then applied one by one on the single-message path, so that only the bad one is dead-lettered; an
outage retries the batch, a few times whole, then in halves (a batch that keeps failing with a
transient error, e.g. past MongoDB's transaction lifetime, gets through in smaller parts; one event
alone waits out an outage without limit). Records of one partition are applied in offset order.

A dead letter copies the record unchanged, unless its personal data must not be copied: a handler
says so with ``RejectEvent(..., redact=True)``, and a type the topic catalogue refuses on the topic
(``Topic.refused_types``) is redacted whatever the failure (invalid data, wrong tenant), even one
no handler saw. The letter then holds the envelope with the data's field names only
(``lotse_contracts.dead_letter.redact_data``).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import random
import weakref
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import structlog
from aiokafka import ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from faststream.kafka import KafkaBroker, KafkaMessage
from faststream.middlewares import AckPolicy
from pydantic import BaseModel

from lotse_contracts import (
    MAX_EVENT_BYTES,
    DeadLetterInfo,
    Envelope,
    EventValidationError,
    dead_letter_topic,
    parse_event,
)
from lotse_contracts.dead_letter import DeadLetterReason, redact_data
from lotse_contracts.topics import refusal
from lotse_runtime import metrics
from lotse_runtime.failures import is_transient
from lotse_runtime.tracing import event_trace_id, processing_span
from lotse_runtime.unit_of_work import Batch, LockBusy

log = structlog.get_logger("lotse.consumer")

# After the grace, a cancelled handler still unwinds (its transaction is aborted); this long at most.
ABANDON_UNWIND_SECONDS = 2.0
# A batch that failed this often with a transient error is applied in halves.
OUTAGE_TRIES_BEFORE_SPLIT = 3


@dataclass(frozen=True)
class Delivery:
    """Where a message came from; handlers use it, e.g. to compare the topic's tenant."""

    topic: str
    partition: int
    offset: int
    key: bytes | None


class RejectEvent(Exception):
    """Raised by a handler for an event that can never be processed (wrong tenant, unknown
    aggregate after its grace period, ...): it is dead-lettered at once, without retries.

    ``redact``: its dead letter must not copy the event's data (personal data Lotse refuses to
    keep in a log); it holds the envelope with the data's field names instead.
    """

    def __init__(self, reason: DeadLetterReason, message: str, *, redact: bool = False) -> None:
        super().__init__(message)
        self.reason = reason
        self.redact = redact


class NotYetArrived(Exception):
    """Raised by a handler for an event that needs something another subscription brings and that
    has not arrived yet (a person's key): the pipeline waits outside any transaction (a batch is
    given up and applied one by one) and tries again, without counting the tries as failures, for
    up to ``patience`` seconds; then the event is dead-lettered with this reason. Events waiting for
    the same thing (the same text) share one patience; an outage starts it over; a stopping
    service leaves the event uncommitted for its next start. The whole subscription waits
    meanwhile (its partitions are committed together), not only the event's key."""

    def __init__(self, message: str, *, patience: float) -> None:
        super().__init__(message)
        self.patience = patience


class PartitionMoved(Exception):
    """The event is no longer this replica's to apply: the group gave its partition (or what the
    partition decides, e.g. matching's tenants) to another replica meanwhile. It is left
    uncommitted, neither retried nor dead-lettered: its new owner reads it from the committed offset.

    A rebalance runs beside the batch in hand (aiokafka calls the listener from its coordinator
    task), so a handler may find this out half way through a batch."""


@dataclass(frozen=True)
class RetryPolicy:
    """Retries in place for errors that may pass (a database failover, a write conflict)."""

    attempts: int = 3
    first_backoff_seconds: float = 0.2
    max_backoff_seconds: float = 5.0

    def backoff(self, attempt: int) -> float:
        ceiling = min(self.max_backoff_seconds, self.first_backoff_seconds * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)


EventHandler = Callable[[Envelope[Any], Delivery], Awaitable[None]]
# From event class to its handler, e.g. ``{NeedOpened: apply_need_opened}``; each handler takes the
# envelope of its own class (``Envelope[NeedOpened]``), so none needs an ``isinstance`` ladder.
HandlerTable = Mapping[type[Any], Callable[[Envelope[Any], Delivery], Awaitable[None]]]
Guard = Callable[[Envelope[Any], Delivery], None]
DeadLetterSink = Callable[[bytes, bytes | None, str, DeadLetterInfo], Awaitable[None]]


async def ignore(event: Envelope[Any], delivery: Delivery) -> None:
    """What a subscription does by default with an event its table does not name: nothing (the
    event is someone else's business; its offset is committed as processed)."""


class Dispatch:
    """The handler of a subscription: picks the handler of the event's class from ``handlers``.

    ``guard`` runs first, for every event (e.g. a partner topic's tenant check; it raises
    ``RejectEvent``); ``unhandled`` takes the events of classes the table does not name.
    """

    def __init__(self, handlers: HandlerTable, *, unhandled: EventHandler = ignore, guard: Guard | None = None) -> None:
        for event_class in handlers:
            if not (inspect.isclass(event_class) and issubclass(event_class, BaseModel)):
                raise TypeError(f"a dispatch table maps event classes to handlers, not {event_class!r}")
        self.handlers = dict(handlers)
        self.unhandled = unhandled
        self.guard = guard

    async def __call__(self, event: Envelope[Any], delivery: Delivery) -> None:
        if self.guard is not None:
            self.guard(event, delivery)
        handler = self.handlers.get(type(event.data), self.unhandled)
        await handler(event, delivery)


@dataclass(frozen=True)
class ConsumerOptions:
    """How records are fetched and batched (from the settings, see ``make_broker``)."""

    max_records: int = 100  # per batch, and so per transaction
    batch_wait_ms: int = 50  # how long to wait for a first record when none is there
    fetch_max_wait_ms: int = 100  # how long the broker holds a fetch open for new records
    lanes: int = 1  # batches of tenants apart applied side by side, each in its own transaction
    session_timeout_ms: int = 6000  # how soon the group gives a silent member's partitions to another

    @property
    def heartbeat_interval_ms(self) -> int:
        return self.session_timeout_ms // 3  # Kafka's advice: at most a third of the session


@dataclass
class ConsumerStats:
    processed: int = 0
    dead_lettered: int = 0
    abandoned: int = 0  # cut off at shutdown, left uncommitted
    batches: int = 0  # committed in one transaction
    replayed: int = 0  # batches aborted by an event's own fault, applied one by one


@dataclass(frozen=True)
class _Record:
    """A record of a batch, parsed."""

    value: bytes
    delivery: Delivery
    event: Envelope[Any]


class EventPipeline:
    """What happens to one raw message, independent of the transport that delivered it."""

    def __init__(
        self,
        consumer: str,
        handler: EventHandler,
        dead_letter: DeadLetterSink,
        retry: RetryPolicy = RetryPolicy(),
    ) -> None:
        self.consumer = consumer
        self.handler = handler
        self.dead_letter = dead_letter
        self.retry = retry
        self.stats = ConsumerStats()
        self.in_hand = 0  # messages received and not yet committed or abandoned
        # Set when the service stops: an event waiting for what another subscription brings is then
        # left for the next start (or another replica), never dead-lettered for a wait that could not end.
        self.stopping = False
        # Since when each missing thing (a NotYetArrived's text: the same key for several events)
        # has been waited for, so that events waiting for the same absent thing share one patience.
        self._waiting_since: dict[str, float] = {}
        # Commits the offset just past a message; set by the transport (see ``_dead_letter``).
        self.commit_through: Callable[[Delivery], Awaitable[None]] | None = None
        # The first offset of each partition left to a new owner (PartitionMoved) in the batch in
        # hand: the batch is then not committed, and the consumer goes back there (``receive``).
        self.moved: dict[tuple[str, int], int] = {}
        self.idle = asyncio.Event()
        self.idle.set()

    @contextlib.contextmanager
    def holding(self, count: int = 1) -> Iterator[None]:
        """Count messages as in hand from their receipt until they are committed or abandoned."""
        self.in_hand += count
        self.idle.clear()
        try:
            yield
        finally:
            self.in_hand -= count
            if self.in_hand == 0:
                self.idle.set()

    async def handle_batch(self, messages: Sequence[tuple[bytes, Delivery]], lanes: int = 1) -> None:
        """Return once every message is processed or dead-lettered; only then may they be committed."""
        if len(messages) == 1:
            await self.handle(*messages[0])
            return
        for _, delivery in messages:
            metrics.MESSAGES_CONSUMED.labels(self.consumer, delivery.topic).inc()
        records: list[_Record] = []
        for value, delivery in messages:
            event = _parse_quietly(value)
            if event is None:
                # Dead letters are the single path's business; a batch with one is rare.
                for value, delivery in messages:
                    await self._handle(value, delivery)
                return
            records.append(_Record(value, delivery, event))
        groups = _lanes(records) if lanes > 1 else [records]
        if len(groups) == 1:
            await self._apply(groups[0])
            return
        limit = asyncio.Semaphore(lanes)

        async def in_lane(group: list[_Record]) -> None:
            async with limit:
                await self._apply(group)

        # A task per lane: each has its own context, and so its own batch.
        await asyncio.gather(*(in_lane(group) for group in groups))

    async def _apply(self, records: list[_Record]) -> None:
        """Apply ``records`` in one transaction; one by one if one of them is at fault. A batch that
        someone waits for gives way after the event in hand (``Batch.contended``), and the rest
        follows as a batch of its own."""
        while records:
            records = await self._apply_until_contended(records)

    async def _apply_until_contended(self, records: list[_Record]) -> list[_Record]:
        """Apply ``records``, or the first of them if the batch gave way; return the others."""
        outage = 0
        rest: list[_Record] = []
        while True:
            batch = Batch([record.event for record in records])
            at: int | None = None
            try:
                async with batch.applying():
                    for at, record in enumerate(records):  # ``at`` names the culprit
                        with processing_span(record.event, self.consumer, record.delivery.topic):
                            await self.handler(record.event, record.delivery)
                            _logger(record.event, record.delivery).info("event processed")
                        if batch.failure is not None:  # a failed unit of work its caller went past
                            raise batch.failure
                        if at + 1 < len(records) and batch.contended():
                            # Someone (a person's request) waits for a lock the batch holds: commit
                            # what is done, and apply the rest after them, as a batch of its own.
                            records, rest = records[: at + 1], records[at + 1 :] + rest
                            break
                    at = None
                    await batch.commit()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - sorted out below
                if is_transient(error) and outage + 1 >= OUTAGE_TRIES_BEFORE_SPLIT:
                    log.warning(
                        "batch keeps failing, applying it in halves",
                        consumer=self.consumer,
                        records=len(records),
                        error=repr(error),
                    )
                    if len(records) == 1:
                        record = records[0]
                        await self._process(record.value, record.delivery, record.event)
                        return rest
                    # In order: the first half is committed before the second is applied.
                    middle = len(records) // 2
                    await self._apply(records[:middle])
                    await self._apply(records[middle:])
                    return rest
                if is_transient(error):
                    outage += 1
                    for record in records:
                        metrics.PROCESSING_RETRIES.labels(self.consumer, record.delivery.topic).inc()
                    log.warning(
                        "infrastructure unavailable, waiting to apply the batch",
                        consumer=self.consumer,
                        records=len(records),
                        tries=outage,
                        error=repr(error),
                    )
                    await asyncio.sleep(self.retry.backoff(min(outage, 6)))
                    continue
                self.stats.replayed += 1
                log.warning(
                    "batch aborted, applying its events one by one",
                    consumer=self.consumer,
                    records=len(records),
                    failed_event=str(records[at].event.id) if at is not None else None,
                    error=repr(error),
                )
                if isinstance(error, LockBusy):
                    at = None  # no event's fault
                for index, record in enumerate(records):
                    await self._process(record.value, record.delivery, record.event, error if index == at else None)
                return rest
            self.stats.batches += 1
            self.stats.processed += len(records)
            for record in records:
                metrics.MESSAGES_PROCESSED.labels(self.consumer, record.delivery.topic).inc()
            return rest

    async def handle(self, value: bytes, delivery: Delivery) -> None:
        """Return once the message is processed or dead-lettered; only then may it be committed."""
        metrics.MESSAGES_CONSUMED.labels(self.consumer, delivery.topic).inc()
        await self._handle(value, delivery)

    async def _handle(self, value: bytes, delivery: Delivery) -> None:
        if len(value) > MAX_EVENT_BYTES:
            await self._dead_letter(
                value,
                delivery,
                DeadLetterReason.TOO_LARGE,
                f"message of {len(value)} bytes exceeds the limit of {MAX_EVENT_BYTES} bytes",
            )
            return
        try:
            event = parse_event(value)
        except EventValidationError as error:
            await self._dead_letter(value, delivery, error.kind, error.reason)
            return
        await self._process(value, delivery, event)

    async def _process(
        self, value: bytes, delivery: Delivery, event: Envelope[Any], failed: Exception | None = None
    ) -> None:
        """Process ``event`` alone, with retries; ``failed``: how it failed in a batch just now (the
        first of its attempts)."""
        bound = _logger(event, delivery)
        attempt = outage = 0
        if isinstance(failed, PartitionMoved):
            self._left(delivery, bound, failed)
            return
        if isinstance(failed, RejectEvent):
            await self._dead_letter(value, delivery, failed.reason, str(failed), redact=failed.redact)
            return
        waits = 0
        if isinstance(failed, NotYetArrived):
            self._waited_since(str(failed))
        elif failed is not None:
            attempt = 1
            metrics.PROCESSING_RETRIES.labels(self.consumer, delivery.topic).inc()
            bound.warning("event processing failed, retrying", attempt=attempt, error=repr(failed))
        while True:
            if waits:
                await asyncio.sleep(self.retry.backoff(min(waits, 6)))
            try:
                with processing_span(event, self.consumer, delivery.topic):
                    await self.handler(event, delivery)
                    bound.info("event processed")  # within the span: the line carries its trace id
            except RejectEvent as error:
                await self._dead_letter(value, delivery, error.reason, str(error), redact=error.redact)
                return
            except asyncio.CancelledError:
                raise
            except PartitionMoved as error:
                self._left(delivery, bound, error)
                return
            except NotYetArrived as error:
                if self.stopping:  # not committed: the next start, or another replica, takes it
                    raise asyncio.CancelledError(f"stopping while the event waits: {error}") from error
                waits += 1
                if asyncio.get_running_loop().time() - self._waited_since(str(error)) >= error.patience:
                    message = f"{error} (waited {error.patience:.0f} s)"
                    await self._dead_letter(value, delivery, DeadLetterReason.PROCESSING_FAILED, message)
                    return
                if waits == 1:
                    bound.info("event waits for what it needs", error=str(error))
                continue
            except Exception as error:  # noqa: BLE001 - any failure is retried, then dead-lettered
                if is_transient(error):
                    # An outage is no time spent waiting for the missing thing: its patience starts over.
                    self._waiting_since.clear()
                    waits = 0
                    metrics.PROCESSING_RETRIES.labels(self.consumer, delivery.topic).inc()
                    # The database or broker is away, not the event at fault: wait for it without
                    # limit (shutdown still interrupts; the event is then delivered again).
                    outage += 1
                    bound.warning("infrastructure unavailable, waiting", tries=outage, error=repr(error))
                    await asyncio.sleep(self.retry.backoff(min(outage, 6)))
                    continue
                attempt += 1
                if attempt >= self.retry.attempts:
                    message = f"processing failed after {attempt} attempts: {type(error).__name__}: {error}"
                    await self._dead_letter(value, delivery, DeadLetterReason.PROCESSING_FAILED, message)
                    return
                metrics.PROCESSING_RETRIES.labels(self.consumer, delivery.topic).inc()
                bound.warning("event processing failed, retrying", attempt=attempt, error=repr(error))
                await asyncio.sleep(self.retry.backoff(attempt))
            else:
                self.stats.processed += 1
                metrics.MESSAGES_PROCESSED.labels(self.consumer, delivery.topic).inc()
                return

    def _left(self, delivery: Delivery, bound: structlog.stdlib.BoundLogger, error: PartitionMoved) -> None:
        where = (delivery.topic, delivery.partition)
        self.moved[where] = min(delivery.offset, self.moved.get(where, delivery.offset))
        bound.info("event left to the new owner of its partition", error=str(error))

    def _waited_since(self, missing: str) -> float:
        """When the wait for ``missing`` began (now, if it did not yet)."""
        now = asyncio.get_running_loop().time()
        # What came meanwhile is not looked for again (an old entry is a wait that ended).
        self._waiting_since = {what: since for what, since in self._waiting_since.items() if now - since < 600}
        return self._waiting_since.setdefault(missing, now)

    async def _dead_letter(
        self, value: bytes, delivery: Delivery, reason: DeadLetterReason, error: str, *, redact: bool = False
    ) -> None:
        redacted = redact or _refused_on_topic(value, delivery.topic)
        if redacted:
            value = redact_data(value)
        info = DeadLetterInfo(
            reason=reason,
            error=error,
            source_topic=delivery.topic,
            source_partition=delivery.partition,
            source_offset=delivery.offset,
            consumer=self.consumer,
            failed_at=datetime.now(UTC),
            redacted=redacted,
        )
        target = dead_letter_topic(delivery.topic)
        attempt = 0
        # The message must not be committed before its dead letter is safe: keep trying.
        while True:
            attempt += 1
            try:
                await self.dead_letter(value, delivery.key, target, info)
                break
            except asyncio.CancelledError:
                raise
            except Exception as failure:  # noqa: BLE001
                log.error("dead-lettering failed, retrying", topic=target, attempt=attempt, error=repr(failure))
                await asyncio.sleep(self.retry.backoff(min(attempt, 6)))
        self.stats.dead_lettered += 1
        if self.commit_through is not None and (delivery.topic, delivery.partition) not in self.moved:
            # Published once: its offset is committed now, not with the rest of its batch, which may
            # take a while one by one (a crash meanwhile would dead-letter it again on redelivery).
            # Every earlier record of its partition is applied by now (in offset order), unless one
            # was left to a new owner (``moved``): committing past it would lose it.
            try:
                await self.commit_through(delivery)
            except asyncio.CancelledError:
                raise
            except Exception as failure:  # noqa: BLE001 - the batch's own commit follows anyway
                log.warning("committing past a dead letter failed", topic=delivery.topic, error=repr(failure))
        metrics.MESSAGES_DEAD_LETTERED.labels(self.consumer, delivery.topic, reason.value).inc()
        log.warning(
            "event dead-lettered",
            topic=delivery.topic,
            partition=delivery.partition,
            offset=delivery.offset,
            dead_letter_topic=target,
            reason=reason.value,
            error=error,
            redacted=redacted,
        )


def _refused_on_topic(value: bytes, topic: str) -> bool:
    """Is the record of a type the catalogue refuses on ``topic`` (for its personal data)? Read from
    the raw JSON, since a record that failed validation has no parsed envelope."""
    try:
        document = json.loads(value)
    except ValueError:
        return False
    event_type = document.get("type") if isinstance(document, dict) else None
    return isinstance(event_type, str) and refusal(topic, event_type) is not None


def _logger(event: Envelope[Any], delivery: Delivery) -> structlog.stdlib.BoundLogger:
    bound: structlog.stdlib.BoundLogger = log.bind(
        tenant=event.tenant,
        event_id=str(event.id),
        event_type=event.type,
        correlation_id=event.correlationid,
        topic=delivery.topic,
    )
    if trace_id := event_trace_id(event):
        # Retries are logged between attempts, outside the span: they still name the trace.
        bound = bound.bind(trace_id=trace_id)
    return bound


def _parse_quietly(value: bytes) -> Envelope[Any] | None:
    if len(value) > MAX_EVENT_BYTES:
        return None
    try:
        return parse_event(value)
    except EventValidationError:
        return None


def _lanes(records: list[_Record]) -> list[list[_Record]]:
    """Records in groups that share no tenant and no partition, each in offset order per partition.

    Tenants are where services keep their state apart (documents, in-memory indexes and their
    locks), so lanes of different tenants neither conflict in the database nor wait for each other.
    """
    by_partition: dict[tuple[str, int], list[_Record]] = {}
    for record in records:
        by_partition.setdefault((record.delivery.topic, record.delivery.partition), []).append(record)
    lanes: list[tuple[set[str], list[_Record]]] = []
    for group in by_partition.values():
        tenants = {record.event.tenant for record in group}
        overlapping = [lane for lane in lanes if lane[0] & tenants]
        merged = (
            tenants.union(*(lane[0] for lane in overlapping)),
            [r for lane in overlapping for r in lane[1]] + group,
        )
        lanes = [lane for lane in lanes if not any(lane is other for other in overlapping)] + [merged]
    return [lane_records for _, lane_records in lanes]


def _record_lag(consumer: str, message: KafkaMessage, topic: str, partition: int, offset: int) -> None:
    client = getattr(message, "consumer", None)
    highwater = client.highwater(TopicPartition(topic, partition)) if client is not None else None
    if highwater is not None:
        metrics.CONSUMER_LAG.labels(consumer, topic, str(partition)).set(max(highwater - offset - 1, 0))


def subscribe_events(
    broker: KafkaBroker,
    handlers: HandlerTable | EventHandler,
    *,
    consumer: str,
    topics: Sequence[str] = (),
    pattern: str | None = None,
    retry: RetryPolicy = RetryPolicy(),
    options: ConsumerOptions | None = None,
    listener: ConsumerRebalanceListener | None = None,
) -> EventPipeline:
    """Subscribe ``handlers`` to contract events on ``topics`` (or a topic ``pattern``).

    ``handlers`` is a dispatch table (from event class to handler; events of other classes are
    ignored) or a ``Dispatch`` that says what else to do. Services subscribe tables; a bare
    handler of every envelope is for the tests and benchmarks of the pipeline itself.

    ``consumer`` is the consumer group id. A new group starts at the earliest offset, so that
    nothing published before its first start is missed. ``options``: by default the broker's
    (``make_broker`` takes them from the settings). ``listener`` is told which partitions the
    group assigns to this replica and takes from it (between two batches, never during one).
    """
    options = options or consumer_options(broker)

    async def publish_dead_letter(value: bytes, key: bytes | None, topic: str, info: DeadLetterInfo) -> None:
        headers = {name: text.decode() for name, text in info.to_headers()}
        await broker.publish(value, topic=topic, key=key, headers=headers)

    handler = Dispatch(handlers) if isinstance(handlers, Mapping) else handlers
    pipeline = EventPipeline(consumer, handler, publish_dead_letter, retry)
    _PIPELINES.setdefault(broker, []).append(pipeline)
    subscriber = broker.subscriber(
        *topics,
        pattern=pattern,
        group_id=consumer,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.MANUAL,
        batch=True,
        max_records=options.max_records,
        batch_timeout_ms=options.batch_wait_ms,
        fetch_max_wait_ms=options.fetch_max_wait_ms,
        session_timeout_ms=options.session_timeout_ms,
        heartbeat_interval_ms=options.heartbeat_interval_ms,
        listener=listener,
    )

    @subscriber
    async def receive(message: KafkaMessage) -> None:
        # A batch subscriber receives the records of one fetch, in offset order per partition.
        records = cast(tuple[ConsumerRecord[Any, Any], ...], message.raw_message)
        if not records:
            return
        deliveries = [
            (record.value or b"", Delivery(record.topic, record.partition, record.offset, record.key))
            for record in records
        ]
        client = getattr(message, "consumer", None)
        if client is not None:

            async def commit_through(delivery: Delivery) -> None:
                await client.commit({TopicPartition(delivery.topic, delivery.partition): delivery.offset + 1})

            pipeline.commit_through = commit_through
        with pipeline.holding(len(records)):
            try:
                pipeline.moved = {}
                await pipeline.handle_batch(deliveries, options.lanes)
                if pipeline.moved:
                    # Part of the batch is another replica's now: commit nothing (what was applied
                    # comes again, and the inbox drops it), and should a partition stay or come back
                    # here, read it again from its first record left, not past it.
                    await _go_back(client, pipeline.moved)
                    return
                # One commit for the batch: the consumer's position on each of its partitions.
                await message.ack()
            except asyncio.CancelledError:
                # Only a stop cancels a handler: the offsets stay uncommitted and the group delivers
                # the batch again, where the inbox keeps each effect to once.
                pipeline.stats.abandoned += len(records)
                for record in records:
                    log.warning(
                        "shutdown: event in hand abandoned uncommitted, it will be delivered again",
                        consumer=consumer,
                        topic=record.topic,
                        partition=record.partition,
                        offset=record.offset,
                    )
                raise
        last = {(record.topic, record.partition): record.offset for record in records}
        for (topic, partition), offset in last.items():
            _record_lag(consumer, message, topic, partition, offset)

    return pipeline


async def _go_back(client: Any, moved: Mapping[tuple[str, int], int]) -> None:
    for (topic, partition), offset in moved.items():
        try:
            client.seek(TopicPartition(topic, partition), offset)
        except Exception as error:  # noqa: BLE001 - not assigned here any more: nothing to go back on
            log.info("partition moved away", topic=topic, partition=partition, error=repr(error))


# The pipelines of each broker, so that a stop can tell what was in hand.
_PIPELINES: weakref.WeakKeyDictionary[KafkaBroker, list[EventPipeline]] = weakref.WeakKeyDictionary()
# The consumer options of each broker, from the service's settings.
_OPTIONS: weakref.WeakKeyDictionary[KafkaBroker, ConsumerOptions] = weakref.WeakKeyDictionary()


def configure_consumers(broker: KafkaBroker, options: ConsumerOptions) -> None:
    """The options of the subscriptions ``subscribe_events`` makes on ``broker`` from now on."""
    _OPTIONS[broker] = options


def consumer_options(broker: KafkaBroker) -> ConsumerOptions:
    """The options ``configure_consumers`` gave ``broker`` (the defaults if none)."""
    return _OPTIONS.get(broker, ConsumerOptions())


async def stop_consuming(broker: KafkaBroker) -> None:
    """Stop taking messages; let each message in hand finish and be committed, within the grace.

    FastStream's subscriber stop does the waiting: it ends the fetch loop, waits up to the broker's
    ``graceful_timeout`` (LOTSE_SHUTDOWN_GRACE_SECONDS, see ``make_broker``) for the handler in hand,
    then cancels it. The aiokafka consumer commits nothing when it stops (auto-commit is off) and
    leaves the group, so another replica takes the partitions at the committed offsets. The
    producer stays open: call ``broker.stop()`` afterwards, once nothing publishes any more.
    """
    pipelines = _PIPELINES.get(broker, [])
    for pipeline in pipelines:
        pipeline.stopping = True
    abandoned_before = sum(pipeline.stats.abandoned for pipeline in pipelines)
    log.info("shutdown: consumers stop taking messages", in_hand=sum(pipeline.in_hand for pipeline in pipelines))
    results = await asyncio.gather(*(subscriber.stop() for subscriber in broker.subscribers), return_exceptions=True)
    for failure in (result for result in results if isinstance(result, BaseException)):
        log.error("shutdown: stopping a consumer failed", error=repr(failure))
    # A handler cancelled at the grace aborts its transaction first; the database client must
    # still be open for that, and broker.stop() would wait a whole grace again for it.
    with contextlib.suppress(TimeoutError):
        unwound = asyncio.gather(*(pipeline.idle.wait() for pipeline in pipelines))
        await asyncio.wait_for(unwound, ABANDON_UNWIND_SECONDS)
    abandoned = sum(pipeline.stats.abandoned for pipeline in pipelines) - abandoned_before
    log.info("shutdown: consumers stopped", abandoned=abandoned)
