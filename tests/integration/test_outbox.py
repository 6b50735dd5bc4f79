"""The outbox relay publishes what was committed, in order per key, and resumes after a crash."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from pymongo import AsyncMongoClient
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from lotse_contracts import Envelope, parse_event
from lotse_runtime.mongo import in_transaction
from lotse_runtime.outbox import OUTBOX_COLLECTION, OutboxRelay, Publish, append_event, ensure_outbox_indexes
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
def publish(producer: AIOKafkaProducer) -> Publish:
    """What a service's relay publishes with: the producer, acknowledged by the broker."""

    async def send(target: str, key: bytes, value: bytes) -> None:
        await producer.send_and_wait(target, value, key=key)

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
    publish: Publish,
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
    publish: Publish,
    kafka_bootstrap: str,
    topic: str,
) -> None:
    await ensure_outbox_indexes(database)
    first, second = tenant_onboarded("aachen", version=1), tenant_onboarded("aachen", version=2)
    await commit_events(mongo_client, database, topic, first, second)

    async def crash_before_publishing(target: str, key: bytes, value: bytes) -> None:
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
    async def publish(target: str, key: bytes, value: bytes) -> None:
        return None

    holder = OutboxRelay(database, publish, name="registry", lease_seconds=30)
    other = OutboxRelay(database, publish, name="registry", lease_seconds=30)
    assert await holder.hold_lease() is True
    assert await other.hold_lease() is False
    assert await holder.hold_lease() is True


async def _no_pending(database: AsyncDatabase[dict[str, Any]]) -> bool:
    return await database[OUTBOX_COLLECTION].count_documents({"published_at": None}) == 0
