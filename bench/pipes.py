"""The two baselines of the end-to-end benchmark, on the platform's own broker and database.

- **bare**: three hops of aiokafka consume -> one MongoDB insert -> produce, offsets committed after
  each message. No transaction, no inbox, no outbox: the limit of any three-hop pipeline here.
- **durable**: the same three hops with Lotse's guarantees: per message one transaction (the
  runtime's ``in_transaction``, majority read and write concern) that looks the event up in an
  inbox, records it there, writes the effect and an outbox row; a relay per hop publishes the
  outbox rows (sent together, then awaited) and marks them published; the consumer commits the
  offset after the transaction. What exactly-once effects cost without anything Lotse adds.

Both get a burst of ``count`` messages and report the rate from the first send to the last
arrival (their capacity) and each message's latency. Their consumers use the services' broker
settings (``consumer_options``) so that a difference in fetch waits is not measured as Lotse's.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from pymongo import AsyncMongoClient
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from lotse_contracts.topics import PARTNER_INBOUND
from lotse_devstack import TopicSpec, ensure_topics
from lotse_runtime.mongo import connect, in_transaction
from lotse_runtime.settings import PlatformSettings

HOPS = 3
# Tansu assigns a new consumer group its partitions a few seconds after it joins: not measured.
GROUP_JOIN_WAIT_SECONDS = 8.0
RELAY_POLL_SECONDS = 0.5
RELAY_BATCH = 500
TIMEOUT_SECONDS = 600.0


@dataclass(frozen=True)
class PipeResult:
    name: str
    messages: int
    rate: float  # messages per second, first send to last arrival
    latencies: list[float]  # seconds, each message's send to its arrival after the last hop


def consumer_options() -> dict[str, Any]:
    """The fetch settings the services' consumers run with (``make_broker``: the platform settings,
    from the same environment): the baselines use the same."""
    default = PlatformSettings.model_fields["consumer_fetch_max_wait_ms"].default
    # The services inherit the benchmark's environment (supervisor.service_environment).
    return {"fetch_max_wait_ms": int(os.environ.get("LOTSE_CONSUMER_FETCH_MAX_WAIT_MS", default))}


Hop = Callable[[AsyncDatabase[dict[str, Any]], bytes, bytes, str], Awaitable[None]]


async def run_pipe(name: str, bootstrap: str, mongo_url: str, count: int) -> PipeResult:
    """``count`` messages through the ``name`` pipe ("bare" or "durable")."""
    run = uuid.uuid4().hex[:8]
    topics = [f"bench.{name}.{run}.{hop}" for hop in range(HOPS + 1)]
    await ensure_topics(bootstrap, [TopicSpec(topic, PARTNER_INBOUND.partitions) for topic in topics])
    client = connect(mongo_url, f"bench-{name}")
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False, acks="all")
    await producer.start()
    databases = [client[f"bench_{name}_{run}_{hop}"] for hop in range(HOPS)]
    hops = [
        asyncio.create_task(_hop(name, bootstrap, client, producer, databases[hop], topics[hop], topics[hop + 1], run))
        for hop in range(HOPS)
    ]
    sink = AIOKafkaConsumer(
        topics[HOPS], bootstrap_servers=bootstrap, group_id=f"bench-{run}-sink", auto_offset_reset="earliest",
        **consumer_options(),
    )  # fmt: skip
    await sink.start()
    try:
        await asyncio.sleep(GROUP_JOIN_WAIT_SECONDS)
        sent_at: dict[int, float] = {}
        for number in range(count):
            sent_at[number] = time.time()
            await producer.send(topics[0], f"{number}".encode(), key=f"k{number}".encode())
        await producer.flush()
        arrived_at: dict[int, float] = {}
        deadline = time.monotonic() + TIMEOUT_SECONDS
        while len(arrived_at) < count and time.monotonic() < deadline:
            batch = await sink.getmany(timeout_ms=1000)
            now = time.time()
            for records in batch.values():
                for record in records:
                    assert record.value is not None
                    arrived_at.setdefault(int(record.value), now)
        for task in hops:
            failure = task.exception() if task.done() else None
            if failure is not None:
                raise failure
        if len(arrived_at) < count:
            raise RuntimeError(f"{name} pipe: {len(arrived_at)} of {count} messages arrived in {TIMEOUT_SECONDS:.0f}s")
    finally:
        for task in hops:
            task.cancel()
        await asyncio.gather(*hops, return_exceptions=True)
        await sink.stop()
        await producer.stop()
        for database in databases:
            await client.drop_database(database.name)
        await client.close()
    first_sent = min(sent_at.values())
    latencies = [arrived_at[number] - sent_at[number] for number in range(count)]
    return PipeResult(name, count, count / (max(arrived_at.values()) - first_sent), latencies)


async def _hop(
    name: str,
    bootstrap: str,
    client: AsyncMongoClient[dict[str, Any]],
    producer: AIOKafkaProducer,
    database: AsyncDatabase[dict[str, Any]],
    source: str,
    target: str,
    run: str,
) -> None:
    consumer = AIOKafkaConsumer(
        source, bootstrap_servers=bootstrap, group_id=f"bench-{run}-{source}", auto_offset_reset="earliest",
        enable_auto_commit=False, **consumer_options(),
    )  # fmt: skip
    await consumer.start()
    relay: asyncio.Task[None] | None = None
    wake = asyncio.Event()
    try:
        if name == "durable":
            await database.inbox.create_index([("consumer", 1), ("event_id", 1)], unique=True)
            await database.outbox.create_index([("published", 1), ("_id", 1)])
            relay = asyncio.create_task(_relay(database, producer, target, wake))
        async for record in consumer:
            assert record.value is not None and record.key is not None
            if name == "bare":
                await database.effects.insert_one({"value": record.value})
                await producer.send_and_wait(target, record.value, key=record.key)
            else:
                await _apply_once(client, database, record.value, record.key, f"{record.partition}-{record.offset}")
                wake.set()
            await consumer.commit()
    finally:
        if relay is not None:
            relay.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await relay
        await consumer.stop()


async def _apply_once(
    client: AsyncMongoClient[dict[str, Any]],
    database: AsyncDatabase[dict[str, Any]],
    value: bytes,
    key: bytes,
    event_id: str,
) -> None:
    """Inbox lookup and record, the effect and the outbox row in one transaction, as a service does."""

    async def work(session: AsyncClientSession) -> None:
        seen = await database.inbox.find_one({"consumer": "hop", "event_id": event_id}, session=session)
        if seen is not None:
            return
        await database.inbox.insert_one({"consumer": "hop", "event_id": event_id}, session=session)
        await database.effects.insert_one({"value": value}, session=session)
        await database.outbox.insert_one({"key": key, "value": value, "published": False}, session=session)

    await in_transaction(client, work)


async def _relay(
    database: AsyncDatabase[dict[str, Any]], producer: AIOKafkaProducer, target: str, wake: asyncio.Event
) -> None:
    """Publish unpublished outbox rows in order: woken by a commit or every poll interval; the
    wake is cleared before the query, so a commit during a pass is never missed."""
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), RELAY_POLL_SECONDS)
        wake.clear()
        rows = await database.outbox.find({"published": False}).sort("_id", 1).limit(RELAY_BATCH).to_list()
        if not rows:
            continue
        sent = [await producer.send(target, row["value"], key=row["key"]) for row in rows]
        await asyncio.gather(*sent)
        await database.outbox.update_many({"_id": {"$in": [row["_id"] for row in rows]}}, {"$set": {"published": True}})
        if len(rows) == RELAY_BATCH:
            wake.set()
