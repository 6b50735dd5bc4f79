"""The consumer's batches on the real broker and database: the records that arrived together are
applied in one transaction, a poison record among them is dead-lettered alone while the others are
applied once, the same event twice in a batch and a batch delivered again change nothing twice, and
records of one key are applied in their order, also with batches split into lanes."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from faststream.kafka import KafkaBroker
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import AutoReconnect, OperationFailure
from pymongo.monitoring import CommandFailedEvent, CommandListener, CommandStartedEvent, CommandSucceededEvent

from lotse_contracts import DeadLetterInfo, Envelope, TenantOnboarded, dead_letter_topic, to_bytes
from lotse_contracts.dead_letter import DeadLetterReason
from lotse_devstack import Stack
from lotse_runtime import unit_of_work
from lotse_runtime.consumer import (
    ConsumerOptions,
    Delivery,
    EventPipeline,
    NotYetArrived,
    PartitionMoved,
    RejectEvent,
    RetryPolicy,
    subscribe_events,
)
from lotse_runtime.inbox import INBOX_COLLECTION, ensure_inbox_index
from lotse_runtime.kafka import make_broker
from lotse_runtime.outbox import OUTBOX_COLLECTION, ensure_outbox_indexes
from lotse_runtime.settings import PlatformSettings
from lotse_runtime.unit_of_work import Transaction, UnitOfWork, current_batch
from tests.support import events
from tests.support.kafka import create_topics, read_all
from tests.support.waiting import eventually

FAST_RETRY = RetryPolicy(attempts=2, first_backoff_seconds=0.01, max_backoff_seconds=0.05)
INBOX = "batch-effects"
ECHO_TOPIC = "test.echo.v1"


class CommandCounter(CommandListener):
    """How often the client sent each command (the tests count commits)."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def started(self, event: CommandStartedEvent) -> None:
        self.counts[event.command_name] = self.counts.get(event.command_name, 0) + 1
        if event.command_name == "find":
            name = f"find {event.command['find']}"
            self.counts[name] = self.counts.get(name, 0) + 1

    def succeeded(self, event: CommandSucceededEvent) -> None:
        pass

    def failed(self, event: CommandFailedEvent) -> None:
        pass


@dataclass
class World:
    client: AsyncMongoClient[dict[str, Any]]
    database: AsyncDatabase[dict[str, Any]]
    commands: CommandCounter
    woken: list[str] = field(default_factory=list)

    def unit_of_work(self) -> UnitOfWork:
        return UnitOfWork(self.client, self.database, wake=lambda: self.woken.append("wake"))

    async def effects(self) -> dict[str, int]:
        """How often each event's effect was applied."""
        return {row["_id"]: row["applied"] async for row in self.database.effects.find()}


@pytest.fixture
async def world(stack: Stack) -> AsyncIterator[World]:
    commands = CommandCounter()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        stack.mongo_url, tz_aware=True, event_listeners=[commands]
    )
    database = client[f"test_{uuid.uuid4().hex[:12]}"]
    await ensure_inbox_index(database)
    await ensure_outbox_indexes(database)
    await database.create_collection("effects")
    await database.create_collection("sequences")
    yield World(client, database, commands)
    await client.drop_database(database.name)
    await client.close()


@pytest.fixture
async def broker(kafka_bootstrap: str) -> AsyncIterator[KafkaBroker]:
    broker = make_broker(PlatformSettings(kafka_bootstrap=kafka_bootstrap), client_id="test-batches")
    yield broker
    await broker.stop()


async def topic_of(kafka_bootstrap: str, partitions: int = 1) -> str:
    name = f"test.batches.{uuid.uuid4().hex[:10]}.v1"
    await create_topics(kafka_bootstrap, name, dead_letter_topic(name), partitions=partitions)
    return name


async def produce_all(bootstrap: str, topic: str, values: list[tuple[bytes, bytes | None]]) -> None:
    """Everything on the topic before the consumer starts, so that it arrives in few batches."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False, acks="all")
    await producer.start()
    try:
        for value, key in values:
            await producer.send(topic, value, key=key)
        await producer.flush()
    finally:
        await producer.stop()


class Applying:
    """A handler as the services have them: its effect, an outbox event and a callback in a unit
    of work with the event's inbox record; events in ``poison`` break it."""

    def __init__(self, world: World, poison: frozenset[str] = frozenset()) -> None:
        self.world = world
        self.poison = poison
        self.unit_of_work = world.unit_of_work()
        self.attempts: dict[str, int] = {}

    async def __call__(self, event: Envelope[Any], delivery: Delivery) -> None:
        event_id, database = str(event.id), self.world.database
        self.attempts[event_id] = self.attempts.get(event_id, 0) + 1

        async def work(transaction: Transaction) -> None:
            session = transaction.session
            await database.effects.update_one({"_id": event_id}, {"$inc": {"applied": 1}}, upsert=True, session=session)
            if event_id in self.poison:
                raise RuntimeError("this event breaks its handler")
            await database.sequences.update_one(
                {"_id": event.key.decode()}, {"$push": {"versions": event.version}}, upsert=True, session=session
            )
            await transaction.append_event(ECHO_TOPIC, events.tenant_onboarded(event.tenant))
            transaction.after_commit(lambda: self.world.woken.append(f"committed {event_id}"))

        await self.unit_of_work.run_once(INBOX, event, work)


async def test_the_records_that_arrived_together_are_applied_in_one_transaction_with_one_inbox_lookup(
    world: World, broker: KafkaBroker, kafka_bootstrap: str
) -> None:
    topic = await topic_of(kafka_bootstrap)
    sent = [events.tenant_onboarded("musterstadt", version=n) for n in range(1, 21)]
    await produce_all(kafka_bootstrap, topic, [(to_bytes(event), event.key) for event in sent])

    pipeline = subscribe_events(broker, Applying(world), consumer="test-one-transaction", topics=[topic])
    await broker.start()

    async def all_applied() -> bool:
        return pipeline.stats.processed == len(sent)

    await eventually(all_applied, what="every event to be applied")
    assert await world.effects() == {str(event.id): 1 for event in sent}
    # Far fewer transactions than events: one per batch, and one inbox lookup and one insert each.
    assert 1 <= pipeline.stats.batches < len(sent) / 2
    assert world.commands.counts["commitTransaction"] == pipeline.stats.batches
    assert world.commands.counts["find inbox"] == pipeline.stats.batches
    assert world.commands.counts["insert"] == 2 * pipeline.stats.batches  # inbox rows, outbox rows
    assert await world.database[INBOX_COLLECTION].count_documents({"consumer": INBOX}) == len(sent)
    assert await world.database[OUTBOX_COLLECTION].count_documents({}) == len(sent)
    # The callbacks ran after the commits, in order, and the relay was woken once per batch.
    assert [entry for entry in world.woken if entry != "wake"] == [f"committed {event.id}" for event in sent]
    assert world.woken.count("wake") == pipeline.stats.batches


async def test_a_poison_event_in_a_batch_is_dead_lettered_alone_and_the_others_are_applied_once(
    world: World, broker: KafkaBroker, kafka_bootstrap: str
) -> None:
    topic = await topic_of(kafka_bootstrap)
    sent = [events.tenant_onboarded("musterstadt", version=n) for n in range(1, 8)]
    poison = sent[3]
    await produce_all(kafka_bootstrap, topic, [(to_bytes(event), event.key) for event in sent])

    handle = Applying(world, poison=frozenset({str(poison.id)}))
    pipeline = subscribe_events(broker, handle, consumer="test-poison", topics=[topic], retry=FAST_RETRY)
    await broker.start()

    (dead,) = await read_all(kafka_bootstrap, dead_letter_topic(topic), expected=1)
    info = DeadLetterInfo.from_headers(dead.headers.items())
    assert dead.value == to_bytes(poison) and info.source_offset == 3
    assert info.reason.value == "processing_failed" and "breaks its handler" in info.error

    async def all_done() -> bool:
        return pipeline.stats.processed + pipeline.stats.dead_lettered == len(sent)

    await eventually(all_done, what="every event to be applied or dead-lettered")
    good = [event for event in sent if event is not poison]
    # The poison's aborted attempts left nothing; every other effect is there once.
    assert await world.effects() == {str(event.id): 1 for event in good}
    assert pipeline.stats.replayed >= 1 and pipeline.stats.dead_lettered == 1
    # The poison had its retry budget in all (the batch's attempt counts as its first).
    assert handle.attempts[str(poison.id)] == FAST_RETRY.attempts
    inbox_ids = {row["event_id"] async for row in world.database[INBOX_COLLECTION].find({"consumer": INBOX})}
    assert inbox_ids == {str(event.id) for event in good}
    assert await world.database[OUTBOX_COLLECTION].count_documents({}) == len(good)
    (sequence,) = await world.database.sequences.find().to_list()
    assert sequence["versions"] == [event.version for event in good]


async def test_an_event_refused_with_redaction_in_a_batch_is_dead_lettered_without_its_data_alone(
    world: World, broker: KafkaBroker, kafka_bootstrap: str
) -> None:
    """``RejectEvent(..., redact=True)`` in a batch: the batch is applied again one by one, the
    refused event is dead-lettered at once (no retries) with its data's field names only."""
    topic = await topic_of(kafka_bootstrap)
    sent = [events.tenant_onboarded("musterstadt", version=n) for n in range(1, 8)]
    refused = sent[3] = events.tenant_onboarded("musterstadt", version=4, coordination_email="jana.privat@example.org")
    await produce_all(kafka_bootstrap, topic, [(to_bytes(event), event.key) for event in sent])
    applying = Applying(world)
    attempts: dict[str, int] = {}

    async def handle(event: Envelope[Any], delivery: Delivery) -> None:
        if event.id == refused.id:
            attempts[str(event.id)] = attempts.get(str(event.id), 0) + 1
            raise RejectEvent(DeadLetterReason.NOT_ALLOWED, "not on this topic", redact=True)
        await applying(event, delivery)

    pipeline = subscribe_events(broker, handle, consumer="test-redacted", topics=[topic], retry=FAST_RETRY)
    await broker.start()

    (dead,) = await read_all(kafka_bootstrap, dead_letter_topic(topic), expected=1)
    info = DeadLetterInfo.from_headers(dead.headers.items())
    assert (info.reason, info.error, info.redacted, info.source_offset) == (
        DeadLetterReason.NOT_ALLOWED,
        "not on this topic",
        True,
        3,
    )
    assert b"jana.privat" not in dead.value and dead.key == refused.key
    letter = json.loads(dead.value)
    assert letter["data"] == sorted(TenantOnboarded.model_fields) and letter["id"] == str(refused.id)

    async def all_done() -> bool:
        return pipeline.stats.processed + pipeline.stats.dead_lettered == len(sent)

    await eventually(all_done, what="every event to be applied or dead-lettered")
    assert await world.effects() == {str(event.id): 1 for event in sent if event is not refused}
    assert pipeline.stats.replayed >= 1 and pipeline.stats.dead_lettered == 1
    assert attempts[str(refused.id)] == 1  # refused in the batch, dead-lettered without another try


async def test_an_event_waiting_for_what_it_needs_waits_outside_the_transaction_and_is_applied_once(
    world: World, broker: KafkaBroker, kafka_bootstrap: str
) -> None:
    """``NotYetArrived`` (a person's key still on its way): the batch is given up, the events before
    the waiting one are applied meanwhile (no transaction is held open for the wait), its tries do
    not count as failures, and once what it needs arrives it is applied once."""
    topic = await topic_of(kafka_bootstrap)
    sent = [events.tenant_onboarded("musterstadt", version=n) for n in range(1, 8)]
    waiting = sent[3]
    await produce_all(kafka_bootstrap, topic, [(to_bytes(event), event.key) for event in sent])
    applying = Applying(world)
    arrived = asyncio.Event()
    tries: list[int] = []

    async def handle(event: Envelope[Any], delivery: Delivery) -> None:
        if event.id == waiting.id and not arrived.is_set():
            tries.append(len(await world.effects()))
            raise NotYetArrived("the key has not arrived", patience=120)
        await applying(event, delivery)

    pipeline = subscribe_events(broker, handle, consumer="test-not-yet", topics=[topic], retry=FAST_RETRY)
    await broker.start()

    async def tried_often() -> bool:
        return len(tries) > FAST_RETRY.attempts + 1

    await eventually(tried_often, what="the event to be tried again and again")
    # Meanwhile the events before it are committed, those after it wait for it (order per key).
    assert set(await world.effects()) == {str(event.id) for event in sent[:3]}
    arrived.set()

    async def all_applied() -> bool:
        return pipeline.stats.processed == len(sent)

    await eventually(all_applied, what="every event to be applied")
    assert await world.effects() == {str(event.id): 1 for event in sent}
    assert pipeline.stats.dead_lettered == 0
    (sequence,) = await world.database.sequences.find().to_list()
    assert sequence["versions"] == [event.version for event in sent]


async def test_an_outage_while_an_event_waits_does_not_use_up_its_patience(
    world: World, broker: KafkaBroker, kafka_bootstrap: str
) -> None:
    """The database away while an event waits for its key (the key's subscription is held up by the
    same outage): the wait starts over once it is back, instead of the event being dead-lettered
    at its first try after the outage."""
    topic = await topic_of(kafka_bootstrap)
    (waiting,) = sent = [events.tenant_onboarded("musterstadt", version=1)]
    await produce_all(kafka_bootstrap, topic, [(to_bytes(event), event.key) for event in sent])
    applying = Applying(world)
    phase = {"now": "waiting"}
    outage_began = [0.0]
    tries: list[str] = []
    patience = 1.0

    async def handle(event: Envelope[Any], delivery: Delivery) -> None:
        tries.append(phase["now"])
        if phase["now"] == "waiting":
            raise NotYetArrived("the key has not arrived", patience=patience)
        if phase["now"] == "outage":
            if asyncio.get_running_loop().time() - outage_began[0] < 2 * patience:
                raise AutoReconnect("the database is away")
            phase["now"] = "back, the key still on its way"
            raise NotYetArrived("the key has not arrived", patience=patience)
        await applying(event, delivery)

    pipeline = subscribe_events(broker, handle, consumer="test-outage-wait", topics=[topic], retry=FAST_RETRY)
    await broker.start()

    async def waited() -> bool:
        return tries.count("waiting") >= 2

    await eventually(waited, what="the event to wait for its key")
    outage_began[0] = asyncio.get_running_loop().time()
    phase["now"] = "outage"

    async def back() -> bool:
        return tries[-1] == "back, the key still on its way"

    await eventually(back, what="the outage to pass")
    phase["now"] = "arrived"

    async def applied() -> bool:
        return pipeline.stats.processed == 1

    await eventually(applied, what="the event to be applied")
    assert pipeline.stats.dead_lettered == 0 and await world.effects() == {str(waiting.id): 1}


async def test_an_event_whose_need_does_not_arrive_in_its_patience_is_dead_lettered_with_the_reason(
    world: World, broker: KafkaBroker, kafka_bootstrap: str
) -> None:
    topic = await topic_of(kafka_bootstrap)
    sent = [events.tenant_onboarded("musterstadt", version=n) for n in range(1, 4)]
    waiting = sent[1]
    await produce_all(kafka_bootstrap, topic, [(to_bytes(event), event.key) for event in sent])
    applying = Applying(world)

    async def handle(event: Envelope[Any], delivery: Delivery) -> None:
        if event.id == waiting.id:
            raise NotYetArrived("the key has not arrived", patience=0.5)
        await applying(event, delivery)

    pipeline = subscribe_events(broker, handle, consumer="test-no-patience", topics=[topic], retry=FAST_RETRY)
    await broker.start()

    (dead,) = await read_all(kafka_bootstrap, dead_letter_topic(topic), expected=1)
    info = DeadLetterInfo.from_headers(dead.headers.items())
    assert dead.value == to_bytes(waiting)
    assert info.reason.value == "processing_failed" and "the key has not arrived (waited" in info.error

    async def all_done() -> bool:
        return pipeline.stats.processed + pipeline.stats.dead_lettered == len(sent)

    await eventually(all_done, what="the others to be applied")
    assert await world.effects() == {str(sent[0].id): 1, str(sent[2].id): 1}


async def test_the_same_event_twice_in_a_batch_and_a_batch_delivered_again_are_applied_once(
    world: World, broker: KafkaBroker, kafka_bootstrap: str
) -> None:
    topic = await topic_of(kafka_bootstrap)
    first, second = events.tenant_onboarded("musterstadt", version=1), events.tenant_onboarded("musterstadt", version=2)
    # A partner replay: the same event id twice, right after each other.
    sent = [first, first, second, first]
    await produce_all(kafka_bootstrap, topic, [(to_bytes(event), event.key) for event in sent])

    pipeline = subscribe_events(broker, Applying(world), consumer="test-twice", topics=[topic])
    await broker.start()

    async def all_processed() -> bool:
        return pipeline.stats.processed == len(sent)

    await eventually(all_processed, what="all four records to be processed")
    assert await world.effects() == {str(first.id): 1, str(second.id): 1}
    assert await world.database[OUTBOX_COLLECTION].count_documents({}) == 2

    # The same records again, as after a crash before the offset commit: a second group, same inbox.
    await broker.stop()
    replay = make_broker(PlatformSettings(kafka_bootstrap=kafka_bootstrap), client_id="test-batches-again")
    pipeline_again = subscribe_events(replay, Applying(world), consumer="test-twice-again", topics=[topic])
    await replay.start()
    try:

        async def replayed() -> bool:
            return pipeline_again.stats.processed == len(sent)

        await eventually(replayed, what="the records delivered again to be processed")
    finally:
        await replay.stop()
    assert await world.effects() == {str(first.id): 1, str(second.id): 1}
    assert await world.database[OUTBOX_COLLECTION].count_documents({}) == 2
    assert await world.database[INBOX_COLLECTION].count_documents({"consumer": INBOX}) == 2


@pytest.mark.parametrize("lanes", [1, 3])
async def test_records_of_one_key_are_applied_in_their_order_also_in_lanes(
    world: World, kafka_bootstrap: str, lanes: int
) -> None:
    topic = await topic_of(kafka_bootstrap, partitions=3)
    # Keys of several tenants, so that lanes have something to apply side by side.
    keys = [(f"tenant-{n % 3}", f"key-{n}") for n in range(6)]
    sent = [
        events.tenant_onboarded(tenant, version=version).model_copy(update={"subject": subject})
        for version in range(1, 11)
        for tenant, subject in keys
    ]
    await produce_all(kafka_bootstrap, topic, [(to_bytes(event), event.key) for event in sent])

    broker = make_broker(PlatformSettings(kafka_bootstrap=kafka_bootstrap), client_id="test-order")
    options = ConsumerOptions(max_records=25, lanes=lanes)
    pipeline = subscribe_events(
        broker, Applying(world), consumer=f"test-order-{lanes}", topics=[topic], options=options
    )
    await broker.start()
    try:

        async def all_applied() -> bool:
            return pipeline.stats.processed == len(sent)

        await eventually(all_applied, what="every event to be applied")
    finally:
        await broker.stop()
    orders = {row["_id"]: row["versions"] async for row in world.database.sequences.find()}
    assert orders == {sent[n].key.decode(): list(range(1, 11)) for n in range(len(keys))}
    assert pipeline.stats.batches < len(sent)


async def test_a_batch_handed_to_the_pipeline_directly_commits_once_per_lane(world: World) -> None:
    """Lanes: records of partitions that share no tenant go side by side, one transaction each."""
    dead: list[bytes] = []

    async def dead_letter(value: bytes, key: bytes | None, topic: str, info: DeadLetterInfo) -> None:
        dead.append(value)

    pipeline = EventPipeline("test-lanes", Applying(world), dead_letter, FAST_RETRY)
    sent = [events.tenant_onboarded(f"tenant-{n % 2}", version=n + 1) for n in range(10)]
    # Partition n % 2 holds tenant n % 2: two lanes.
    batch = [(to_bytes(event), Delivery("test.lanes.v1", n % 2, n // 2, event.key)) for n, event in enumerate(sent)]
    await pipeline.handle_batch(batch, lanes=2)
    assert world.commands.counts["commitTransaction"] == 2
    assert await world.effects() == {str(event.id): 1 for event in sent}
    assert dead == []
    # A partition of both tenants joins the lanes into one.
    world.commands.counts.clear()
    more = [events.tenant_onboarded(f"tenant-{n % 2}", version=20 + n) for n in range(4)]
    batch = [
        (to_bytes(event), Delivery("test.lanes.v1", n % 2 if n < 2 else 2, 100 + n, event.key))
        for n, event in enumerate(more)
    ]
    await pipeline.handle_batch(batch, lanes=2)
    assert world.commands.counts["commitTransaction"] == 1


async def test_the_same_event_twice_in_one_batch_handed_over_directly_is_applied_once(world: World) -> None:
    async def dead_letter(value: bytes, key: bytes | None, topic: str, info: DeadLetterInfo) -> None:
        raise AssertionError("nothing here is dead-lettered")

    pipeline = EventPipeline("test-twice-direct", Applying(world), dead_letter, FAST_RETRY)
    first, second = events.tenant_onboarded("musterstadt", version=1), events.tenant_onboarded("musterstadt", version=2)
    batch = [
        (to_bytes(event), Delivery("test.twice.v1", 0, n, event.key)) for n, event in enumerate([first, first, second])
    ]
    await pipeline.handle_batch(batch)
    assert pipeline.stats.batches == 1 and pipeline.stats.replayed == 0
    assert world.commands.counts["commitTransaction"] == 1
    assert await world.effects() == {str(first.id): 1, str(second.id): 1}
    assert await world.database[INBOX_COLLECTION].count_documents({"consumer": INBOX}) == 2


def direct(sent: list[Envelope[Any]], topic: str = "test.direct.v1") -> list[tuple[bytes, Delivery]]:
    return [(to_bytes(event), Delivery(topic, 0, n, event.key)) for n, event in enumerate(sent)]


async def test_every_abort_hook_runs_and_the_batch_keeps_its_own_error(world: World) -> None:
    """A hook that fails (its index cannot be rebuilt while the database is away) neither stops the
    others nor turns an event's own fault into an outage."""
    dead: list[bytes] = []
    hooks_run: list[str] = []

    async def dead_letter(value: bytes, key: bytes | None, topic: str, info: DeadLetterInfo) -> None:
        dead.append(value)

    async def failing_hook() -> None:
        hooks_run.append("first")
        raise AutoReconnect("the database is away")

    async def second_hook() -> None:
        hooks_run.append("second")

    sent = [events.tenant_onboarded("musterstadt", version=n + 1) for n in range(3)]
    applying = Applying(world, poison=frozenset({str(sent[2].id)}))

    async def handler(event: Envelope[Any], delivery: Delivery) -> None:
        if (batch := current_batch()) is not None:
            batch.on_abort("first", failing_hook)
            batch.on_abort("second", second_hook)
        await applying(event, delivery)

    pipeline = EventPipeline("test-abort-hooks", handler, dead_letter, FAST_RETRY)
    # A deadline: taken for an outage, the batch would be retried for ever.
    await asyncio.wait_for(pipeline.handle_batch(direct(sent)), timeout=60)

    assert hooks_run == ["first", "second"]
    assert pipeline.stats.replayed == 1, "the poison event's own fault, not an outage"
    assert dead == [to_bytes(sent[2])]
    assert await world.effects() == {str(sent[0].id): 1, str(sent[1].id): 1}


async def test_a_batch_that_keeps_failing_transiently_is_applied_in_smaller_parts(world: World) -> None:
    """E.g. a transaction past MongoDB's lifetime limit: the whole batch never passes, its parts do."""

    async def dead_letter(value: bytes, key: bytes | None, topic: str, info: DeadLetterInfo) -> None:
        raise AssertionError("nothing here is dead-lettered")

    applying = Applying(world)

    async def handler(event: Envelope[Any], delivery: Delivery) -> None:
        batch = current_batch()
        if batch is not None and len(batch.events) > 2:
            raise OperationFailure("transaction too large", 10334, {"errorLabels": ["TransientTransactionError"]})
        await applying(event, delivery)

    pipeline = EventPipeline("test-split", handler, dead_letter, FAST_RETRY)
    sent = [events.tenant_onboarded("musterstadt", version=n + 1) for n in range(8)]
    await asyncio.wait_for(pipeline.handle_batch(direct(sent)), timeout=60)

    assert await world.effects() == {str(event.id): 1 for event in sent}
    sequence = await world.database.sequences.find_one({"_id": sent[0].key.decode()})
    assert sequence is not None and sequence["versions"] == list(range(1, 9)), "in their order"


async def test_a_failing_callback_after_the_commit_neither_stops_the_others_nor_replays_the_batch(
    world: World,
) -> None:
    async def dead_letter(value: bytes, key: bytes | None, topic: str, info: DeadLetterInfo) -> None:
        raise AssertionError("nothing here is dead-lettered")

    sent = [events.tenant_onboarded("musterstadt", version=n + 1) for n in range(3)]
    applying = Applying(world)

    def broken() -> None:
        raise RuntimeError("a cache that cannot be cleared")

    async def handler(event: Envelope[Any], delivery: Delivery) -> None:
        async def work(transaction: Transaction) -> None:
            if event.id == sent[0].id:
                transaction.after_commit(broken)

        await applying(event, delivery)
        await world.unit_of_work().run(work)

    pipeline = EventPipeline("test-callbacks", handler, dead_letter, FAST_RETRY)
    await pipeline.handle_batch(direct(sent))

    assert pipeline.stats.batches == 1 and pipeline.stats.replayed == 0
    assert [entry for entry in world.woken if entry.startswith("committed")] == [
        f"committed {event.id}" for event in sent
    ]
    assert "wake" in world.woken


async def test_a_batch_commit_whose_answer_is_lost_still_invalidates_and_wakes(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The commit went through, its answer did not: the replay finds only duplicates, so what must
    follow a commit (cache invalidation, the relay's wake-up) runs on the unknown outcome."""

    async def dead_letter(value: bytes, key: bytes | None, topic: str, info: DeadLetterInfo) -> None:
        raise AssertionError("nothing here is dead-lettered")

    real_commit = unit_of_work._commit
    lost: list[bool] = []

    async def commit_with_lost_answer(session: Any) -> None:
        await real_commit(session)
        if not lost:
            lost.append(True)
            error = AutoReconnect("connection closed before the answer")
            error._add_error_label("UnknownTransactionCommitResult")
            raise error

    monkeypatch.setattr(unit_of_work, "_commit", commit_with_lost_answer)
    sent = [events.tenant_onboarded("musterstadt", version=n + 1) for n in range(2)]
    invalidated: list[str] = []
    units = world.unit_of_work()

    async def handler(event: Envelope[Any], delivery: Delivery) -> None:
        async def work(transaction: Transaction) -> None:
            await world.database.effects.update_one(
                {"_id": str(event.id)}, {"$inc": {"applied": 1}}, upsert=True, session=transaction.session
            )
            await transaction.append_event(ECHO_TOPIC, events.tenant_onboarded(event.tenant))
            transaction.after_commit_or_unknown(lambda: invalidated.append(str(event.id)))

        await units.run_once(INBOX, event, work)

    pipeline = EventPipeline("test-lost-commit", handler, dead_letter, FAST_RETRY)
    await pipeline.handle_batch(direct(sent))

    assert lost and await world.effects() == {str(event.id): 1 for event in sent}
    # The replay one by one finds both applied: only the unknown outcome ran these.
    assert sorted(invalidated) == sorted(str(event.id) for event in sent)
    assert "wake" in world.woken, "the relay is woken for the outbox events the lost commit wrote"


async def test_a_dead_letter_is_committed_at_once_not_with_the_rest_of_its_batch(
    world: World, broker: KafkaBroker, kafka_bootstrap: str
) -> None:
    """While the batch's later events are still being applied one by one, the group's position is
    already past the dead letter: a crash then does not dead-letter it a second time."""
    topic = await topic_of(kafka_bootstrap)
    before, after = events.tenant_onboarded("musterstadt", version=1), events.tenant_onboarded("musterstadt", version=2)
    await produce_all(
        kafka_bootstrap, topic, [(to_bytes(before), before.key), (b"{not json", b"k"), (to_bytes(after), after.key)]
    )
    in_hand, release = asyncio.Event(), asyncio.Event()
    applying = Applying(world)

    async def handle(event: Envelope[Any], delivery: Delivery) -> None:
        if event.id == after.id:
            in_hand.set()
            await release.wait()
        await applying(event, delivery)

    pipeline = subscribe_events(broker, handle, consumer="test-dead-letter-commit", topics=[topic])
    await broker.start()
    await asyncio.wait_for(in_hand.wait(), timeout=60)

    async def committed_past_the_dead_letter() -> bool:
        return await committed_offset(kafka_bootstrap, "test-dead-letter-commit", topic) == 2

    try:
        await eventually(committed_past_the_dead_letter, what="the offset past the dead letter to be committed")
        assert pipeline.stats.dead_lettered == 1
    finally:
        release.set()

    async def all_done() -> bool:
        return pipeline.stats.processed == 2

    await eventually(all_done, what="the event after the dead letter to be applied")
    assert await world.effects() == {str(before.id): 1, str(after.id): 1}


async def committed_offset(bootstrap: str, group: str, topic: str) -> int | None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        # Named partitions: Tansu fails an OffsetFetch for "all partitions".
        partition = TopicPartition(topic, 0)
        found = (await admin.list_consumer_group_offsets(group, partitions=[partition])).get(partition)
    finally:
        await admin.close()
    return found.offset if found is not None and found.offset >= 0 else None


async def test_two_replicas_applying_the_same_batch_at_once_apply_each_event_once(world: World) -> None:
    """During a rebalance the replica that lost a partition may still apply its batch while the
    one that got it applies the same records: the inbox's unique index decides, and the loser's
    retry finds the events done; nothing is dead-lettered."""

    async def dead_letter(value: bytes, key: bytes | None, topic: str, info: DeadLetterInfo) -> None:
        raise AssertionError(f"nothing here is dead-lettered: {info}")

    replicas = [EventPipeline("test-overlap", Applying(world), dead_letter, FAST_RETRY) for _ in range(2)]
    sent: list[Envelope[Any]] = []
    for round_ in range(5):
        batch = [events.tenant_onboarded(f"tenant-{round_}-{n}", version=1) for n in range(8)]
        sent += batch
        await asyncio.wait_for(asyncio.gather(*(replica.handle_batch(direct(batch)) for replica in replicas)), 60)
    assert await world.effects() == {str(event.id): 1 for event in sent}
    assert await world.database[INBOX_COLLECTION].count_documents({"consumer": INBOX}) == len(sent)


async def test_an_event_whose_partition_moved_mid_batch_is_read_again_not_committed_past(
    broker: KafkaBroker, kafka_bootstrap: str
) -> None:
    """A rebalance beside the batch in hand (matching gave up the event's tenant): the event is left
    (PartitionMoved). The partition came back to this consumer here, as it usually does when a
    replica joins: the consumer must read it again from there, never commit past it."""
    topic = await topic_of(kafka_bootstrap)
    sent = [events.tenant_onboarded("musterstadt", version=n) for n in range(1, 11)]
    await produce_all(kafka_bootstrap, topic, [(to_bytes(event), event.key) for event in sent])
    moved_once = str(sent[4].id)
    applied: list[str] = []

    async def handle(event: Envelope[Any], delivery: Delivery) -> None:
        nonlocal moved_once
        if str(event.id) == moved_once:
            moved_once = ""
            raise PartitionMoved("the tenant went to another replica and came back")
        applied.append(str(event.id))

    pipeline = subscribe_events(broker, handle, consumer="test-moved", topics=[topic], retry=FAST_RETRY)
    await broker.start()

    async def every_event_applied() -> bool:
        return set(applied) == {str(event.id) for event in sent}

    await eventually(every_event_applied, what="every event applied, the one left included")
    assert pipeline.stats.dead_lettered == 0
    # What was applied before the moved event in its batch came again (the inbox would drop it).
    assert applied.count(str(sent[4].id)) == 1


async def test_a_batch_gives_way_to_a_request_that_waits_for_its_lock_and_applies_the_rest_after_it(
    world: World,
) -> None:
    """A person's request for a tenant waits for the event in hand, not for the whole batch: the
    batch commits what it has done, the request runs, and the rest follows in order, each once."""
    lock = unit_of_work.WaitedForLock()
    applying = Applying(world)
    request: list[asyncio.Task[int]] = []

    async def holding_the_tenant(event: Envelope[Any], delivery: Delivery) -> None:
        batch = current_batch()
        assert batch is not None
        await batch.hold(lock)  # as matching holds a tenant's index for the rest of its batch
        await applying(event, delivery)
        if delivery.offset == 2:

            async def a_request() -> int:
                async with lock:  # sees what the batch committed before it gave way
                    return len(await world.effects())

            request.append(asyncio.create_task(a_request()))
            await asyncio.sleep(0)  # the request is now waiting for the lock

    async def dead_letter(value: bytes, key: bytes | None, topic: str, info: DeadLetterInfo) -> None:
        raise AssertionError("nothing here is dead-lettered")

    pipeline = EventPipeline("test-give-way", holding_the_tenant, dead_letter, FAST_RETRY)
    sent = [events.tenant_onboarded("musterstadt", version=n + 1) for n in range(10)]
    await pipeline.handle_batch(direct(sent))

    assert await request[0] == 3, "the request ran right after the event in hand, on what was committed"
    assert pipeline.stats.batches == 2 and world.commands.counts["commitTransaction"] == 2
    assert await world.effects() == {str(event.id): 1 for event in sent}
    (sequence,) = [row async for row in world.database.sequences.find()]
    assert sequence["versions"] == list(range(1, 11)), "in their order"
