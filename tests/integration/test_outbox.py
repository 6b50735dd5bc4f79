"""The outbox relay publishes what was committed, in order per key, and resumes after a crash."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client import REGISTRY
from pymongo import AsyncMongoClient
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from lotse_contracts import Envelope, parse_event
from lotse_runtime.mongo import in_transaction
from lotse_runtime.outbox import (
    LEASE_COLLECTION,
    OUTBOX_COLLECTION,
    OutboxRelay,
    Send,
    append_event,
    ensure_outbox_indexes,
)
from tests.support.events import tenant_onboarded
from tests.support.kafka import create_topics, read_all
from tests.support.waiting import eventually


@pytest.fixture
async def producer(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaProducer]:
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=False, acks="all")
    await producer.start()
    yield producer
    await producer.stop()


@pytest.fixture
def publish(producer: AIOKafkaProducer) -> Send:
    """What a service's relay publishes with: the producer's buffer, then the broker's acknowledgement."""

    async def send(target: str, key: bytes, value: bytes | None) -> Awaitable[object]:
        return await producer.send(target, value, key=key)

    return send


@pytest.fixture
async def topic(kafka_bootstrap: str, unique_name: str) -> str:
    name = f"test.outbox.{unique_name}.v1"
    await create_topics(kafka_bootstrap, name, partitions=3)
    return name


async def commit_events(
    client: AsyncMongoClient[dict[str, Any]],
    database: AsyncDatabase[dict[str, Any]],
    topic: str,
    *events: Envelope[Any],
) -> None:
    async def write(session: AsyncClientSession) -> None:
        for item in events:
            await database.state.update_one(
                {"_id": item.subject}, {"$set": {"version": item.version}}, upsert=True, session=session
            )
            await append_event(database, session, topic, item)

    await in_transaction(client, write)


async def test_committed_events_are_published_in_order_per_key_and_marked(
    mongo_client: AsyncMongoClient[dict[str, Any]],
    database: AsyncDatabase[dict[str, Any]],
    publish: Send,
    kafka_bootstrap: str,
    topic: str,
) -> None:
    await ensure_outbox_indexes(database)
    tenants = ["aachen", "bonn", "celle"]
    for version in range(1, 5):
        await commit_events(mongo_client, database, topic, *(tenant_onboarded(t, version=version) for t in tenants))

    relay = OutboxRelay(database, publish, name="test", poll_interval=0.05)
    relay.start()
    try:
        await eventually(lambda: _no_pending(database), what="every outbox entry to be marked as published")
    finally:
        await relay.stop()

    records = await read_all(kafka_bootstrap, topic, expected=12)
    versions: dict[str, list[int]] = {}
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        parsed = parse_event(record.value)
        assert record.key == parsed.key
        versions.setdefault(parsed.tenant, []).append(parsed.version)
    assert versions == {t: [1, 2, 3, 4] for t in tenants}


async def test_a_relay_that_crashed_before_marking_publishes_after_restart(
    mongo_client: AsyncMongoClient[dict[str, Any]],
    database: AsyncDatabase[dict[str, Any]],
    publish: Send,
    kafka_bootstrap: str,
    topic: str,
) -> None:
    await ensure_outbox_indexes(database)
    first, second = tenant_onboarded("aachen", version=1), tenant_onboarded("aachen", version=2)
    await commit_events(mongo_client, database, topic, first, second)

    async def crash_before_publishing(target: str, key: bytes, value: bytes | None) -> Awaitable[object]:
        raise ConnectionError("broker connection lost")

    crashed = OutboxRelay(database, crash_before_publishing, name="test", poll_interval=0.05, lease_seconds=0.2)
    with pytest.raises(ConnectionError):
        await crashed.publish_pending()
    assert await database[OUTBOX_COLLECTION].count_documents({"published_at": None}) == 2

    restarted = OutboxRelay(database, publish, name="test", poll_interval=0.05)
    restarted.start()
    try:
        await eventually(lambda: _no_pending(database), what="the pending events to be published after restart")
    finally:
        await restarted.stop()
    records = await read_all(kafka_bootstrap, topic, expected=2)
    assert [parse_event(r.value).id for r in records] == [first.id, second.id]


async def test_only_the_lease_holder_publishes(
    database: AsyncDatabase[dict[str, Any]],
) -> None:
    async def publish(target: str, key: bytes, value: bytes | None) -> Awaitable[object]:
        return asyncio.sleep(0)

    holder = OutboxRelay(database, publish, name="registry", lease_seconds=30)
    other = OutboxRelay(database, publish, name="registry", lease_seconds=30)
    assert await holder.hold_lease() is True
    assert await other.hold_lease() is False
    assert await holder.hold_lease() is True


async def test_the_lease_of_a_relay_that_died_passes_to_another_once_it_ran_out(
    database: AsyncDatabase[dict[str, Any]],
) -> None:
    """A replica killed with its lease (no stop, no release) holds up the others only until the
    lease runs out; then another takes it and the dead one's owner id no longer renews it."""

    async def publish(target: str, key: bytes, value: bytes | None) -> Awaitable[object]:
        return asyncio.sleep(0)

    killed = OutboxRelay(database, publish, name="replicas", lease_seconds=1.0)
    survivor = OutboxRelay(database, publish, name="replicas", lease_seconds=1.0)
    assert await killed.hold_lease() is True
    assert await survivor.hold_lease() is False
    await eventually(survivor.hold_lease, timeout=10, what="the survivor to take the dead relay's lease")
    assert await killed.hold_lease() is False


async def test_the_backlog_is_reported_while_the_broker_is_away_and_by_the_lease_holder_only(
    mongo_client: AsyncMongoClient[dict[str, Any]], database: AsyncDatabase[dict[str, Any]], unique_name: str
) -> None:
    """The gauges grow while no event gets out (what an alert on them is for), and a relay whose
    lease another replica took reports 0 instead of the last backlog it saw: summed or maximised
    over the replicas they are the service's backlog."""
    await ensure_outbox_indexes(database)
    name = f"backlog-{unique_name}"

    async def broker_away(target: str, key: bytes, value: bytes | None) -> Awaitable[object]:
        raise ConnectionError("broker away")

    def reported() -> tuple[float | None, float | None]:
        labels = {"relay": name}
        return (
            REGISTRY.get_sample_value("lotse_outbox_backlog_events", labels),
            REGISTRY.get_sample_value("lotse_outbox_oldest_pending_age_seconds", labels),
        )

    await commit_events(
        mongo_client, database, "test.outbox.nowhere.v1", *(tenant_onboarded("aachen", version=v) for v in (1, 2))
    )
    relay = OutboxRelay(database, broker_away, name=name, poll_interval=0.05, lease_seconds=0.6)
    relay.start()
    try:

        async def backlog_shown() -> bool:
            count, age = reported()
            return count == 2 and age is not None and age > 0

        await eventually(backlog_shown, timeout=10, what="the backlog to be reported while the broker is away")
        expires = datetime.now(UTC) + timedelta(minutes=1)
        await database[LEASE_COLLECTION].update_one(
            {"_id": name}, {"$set": {"owner": "another replica", "expires_at": expires}}
        )

        async def nothing_reported() -> bool:
            return reported() == (0, 0)

        await eventually(nothing_reported, timeout=10, what="a relay without the lease to report 0")
    finally:
        await relay.stop()


async def _no_pending(database: AsyncDatabase[dict[str, Any]]) -> bool:
    return await database[OUTBOX_COLLECTION].count_documents({"published_at": None}) == 0


async def test_an_event_committed_during_a_pass_is_published_without_waiting_for_the_poll(
    mongo_client: AsyncMongoClient[dict[str, Any]],
    database: AsyncDatabase[dict[str, Any]],
    publish: Send,
    topic: str,
) -> None:
    """The wake-up of a commit that lands while the relay publishes is not lost: the relay polls
    only every minute here, so the second event is published at once or the wait runs out."""
    await ensure_outbox_indexes(database)
    first, second = tenant_onboarded("aachen", version=1), tenant_onboarded("aachen", version=2)
    await commit_events(mongo_client, database, topic, first)
    relay: OutboxRelay | None = None

    async def commit_while_publishing(target: str, key: bytes, value: bytes | None) -> Awaitable[object]:
        if parse_event(value or b"").id == first.id:
            await commit_events(mongo_client, database, topic, second)
            assert relay is not None
            relay.wake()  # what the unit of work does after its commit
        return await publish(target, key, value)

    relay = OutboxRelay(database, commit_while_publishing, name="test", poll_interval=60)
    relay.start()
    try:
        await eventually(lambda: _no_pending(database), what="the event committed during a pass to be published")
    finally:
        await relay.stop()


async def test_a_pass_hands_over_every_event_before_awaiting_acknowledgements(
    mongo_client: AsyncMongoClient[dict[str, Any]], database: AsyncDatabase[dict[str, Any]], topic: str
) -> None:
    """The broker acknowledges only once all three are in its hands: a relay that awaited each
    acknowledgement before handing over the next would wait for ever."""
    await ensure_outbox_indexes(database)
    await commit_events(mongo_client, database, topic, *(tenant_onboarded(t) for t in ("aachen", "bonn", "celle")))
    handed_over: list[bytes] = []
    all_in_hand = asyncio.Event()

    async def acknowledgement() -> None:
        await all_in_hand.wait()

    async def send(target: str, key: bytes, value: bytes | None) -> Awaitable[object]:
        handed_over.append(key)
        if len(handed_over) == 3:
            all_in_hand.set()
        return acknowledgement()

    relay = OutboxRelay(database, send, name="test")
    assert await asyncio.wait_for(relay.publish_pending(), timeout=30) == 3
    assert await _no_pending(database)


async def test_a_failed_acknowledgement_keeps_later_events_of_its_key_pending(
    mongo_client: AsyncMongoClient[dict[str, Any]], database: AsyncDatabase[dict[str, Any]], topic: str
) -> None:
    await ensure_outbox_indexes(database)
    first, second = tenant_onboarded("aachen", version=1), tenant_onboarded("aachen", version=2)
    other = tenant_onboarded("bonn", version=1)
    await commit_events(mongo_client, database, topic, first, other, second)

    async def refused() -> None:
        raise ConnectionError("broker refused the batch")

    async def accepted() -> None:
        return None

    handed_over: list[str] = []

    async def send(target: str, key: bytes, value: bytes | None) -> Awaitable[object]:
        handed_over.append(str(parse_event(value or b"").id))
        return refused() if parse_event(value or b"").id == first.id else accepted()

    relay = OutboxRelay(database, send, name="test")
    with pytest.raises(ConnectionError):
        await relay.publish_pending()
    pending = await database[OUTBOX_COLLECTION].find({"published_at": None}).sort("version").to_list()
    assert [entry["_id"] for entry in pending] == [str(first.id), str(second.id)]
    # The key's later event never reached the broker ahead of the refused one.
    assert sorted(handed_over) == sorted([str(first.id), str(other.id)])


async def test_a_pass_ends_with_its_deadline_and_marks_what_was_acknowledged(
    mongo_client: AsyncMongoClient[dict[str, Any]], database: AsyncDatabase[dict[str, Any]], topic: str
) -> None:
    """A broker that never acknowledges one key does not keep the pass beyond the end of its
    lease (another replica may publish then); the other key's event is marked."""
    await ensure_outbox_indexes(database)
    stuck, other = tenant_onboarded("aachen"), tenant_onboarded("bonn")
    await commit_events(mongo_client, database, topic, stuck, other)
    never = asyncio.Event()

    async def send(target: str, key: bytes, value: bytes | None) -> Awaitable[object]:
        return never.wait() if parse_event(value or b"").id == stuck.id else asyncio.sleep(0)

    relay = OutboxRelay(database, send, name="test")
    until = asyncio.get_running_loop().time() + 0.5
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(relay.publish_pending(until=until), timeout=30)
    pending = await database[OUTBOX_COLLECTION].find({"published_at": None}).to_list()
    assert [entry["_id"] for entry in pending] == [str(stuck.id)]


async def test_a_busy_relay_writes_its_lease_only_when_a_third_of_it_is_gone(
    database: AsyncDatabase[dict[str, Any]],
) -> None:
    async def send(target: str, key: bytes, value: bytes | None) -> Awaitable[object]:
        return asyncio.sleep(0)

    relay = OutboxRelay(database, send, name="test", lease_seconds=60)
    assert await relay.keep_lease()
    written = await database[LEASE_COLLECTION].find_one({"_id": "test"})
    for _ in range(5):
        assert await relay.keep_lease()
    assert await database[LEASE_COLLECTION].find_one({"_id": "test"}) == written
