"""Throughput of the consumer pipeline (validate, handle, commit) against a bare aiokafka consumer
reading the same messages, on the same local broker in the same run; then the pipeline with a
durable handler (effect, inbox record and outbox event in a unit of work) one message at a time,
in batches, and in batches split into lanes that are applied side by side."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from lotse_contracts import Envelope, to_bytes
from lotse_devstack import TopicSpec, ensure_topics, running_stack
from lotse_runtime.consumer import ConsumerOptions, Delivery, subscribe_events
from lotse_runtime.inbox import ensure_inbox_index
from lotse_runtime.kafka import make_broker
from lotse_runtime.mongo import connect
from lotse_runtime.outbox import ensure_outbox_indexes
from lotse_runtime.settings import PlatformSettings
from lotse_runtime.unit_of_work import Transaction, UnitOfWork
from tests.support import events

MESSAGES = 2_000
DURABLE_MESSAGES = 1_000
DURABLE_PARTITIONS = 4
DURABLE_TENANTS = 8
IDLE_MESSAGES = 15


async def _fill(bootstrap: str, topic: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False, linger_ms=5)
    await producer.start()
    try:
        for i in range(MESSAGES):
            event = events.tenant_onboarded("musterstadt", version=i + 1)
            await producer.send(topic, to_bytes(event), key=event.key)
        await producer.flush()
    finally:
        await producer.stop()


async def _bare(bootstrap: str, topic: str) -> float:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id="bench-bare",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        seen = 0
        started: float | None = None
        while seen < MESSAGES:
            record = await consumer.getone()
            started = started or time.perf_counter()
            assert record.value is not None
            json.loads(record.value)
            await consumer.commit()
            seen += 1
        assert started is not None
        return seen / (time.perf_counter() - started)
    finally:
        await consumer.stop()


async def _pipeline(bootstrap: str, topic: str) -> float:
    broker = make_broker(PlatformSettings(kafka_bootstrap=bootstrap), client_id="bench")
    done = asyncio.Event()
    marks: list[float] = []

    async def handle(event: Envelope[Any], delivery: Delivery) -> None:
        marks.append(time.perf_counter())
        if len(marks) == MESSAGES:
            done.set()

    subscribe_events(broker, handle, consumer="bench-pipeline", topics=[topic])
    await broker.start()
    try:
        await asyncio.wait_for(done.wait(), timeout=300)
    finally:
        await broker.stop()
    return (len(marks) - 1) / (marks[-1] - marks[0])


async def _fill_tenants(bootstrap: str, topic: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False, linger_ms=5)
    await producer.start()
    try:
        for i in range(DURABLE_MESSAGES):
            event = events.tenant_onboarded(f"tenant-{i % DURABLE_TENANTS}", version=i + 1)
            await producer.send(topic, to_bytes(event), key=event.key)
        await producer.flush()
    finally:
        await producer.stop()


async def _durable(
    bootstrap: str, mongo_url: str, topic: str, name: str, options: ConsumerOptions
) -> tuple[float, float]:
    """The pipeline with a handler as the services have one: a document changed, the inbox record
    and an outbox event in one unit of work."""
    broker = make_broker(PlatformSettings(kafka_bootstrap=bootstrap, mongo_url=mongo_url), client_id="bench")
    client = connect(mongo_url, "bench")
    database = client[f"bench_{name}"]
    await client.drop_database(database.name)
    await ensure_inbox_index(database)
    await ensure_outbox_indexes(database)
    unit_of_work = UnitOfWork(client, database)
    done = asyncio.Event()
    marks: list[float] = []

    async def handle(event: Envelope[Any], delivery: Delivery) -> None:
        async def work(transaction: Transaction) -> None:
            await database.tenants.update_one(
                {"_id": event.tenant}, {"$inc": {"events": 1}}, upsert=True, session=transaction.session
            )
            await transaction.append_event("bench.echo.v1", event)

        await unit_of_work.run_once(name, event, work)
        marks.append(time.perf_counter())
        if len(marks) == DURABLE_MESSAGES:
            done.set()

    pipeline = subscribe_events(broker, handle, consumer=f"bench-{name}", topics=[topic], options=options)
    await broker.start()
    try:
        await asyncio.wait_for(done.wait(), timeout=600)
    finally:
        await broker.stop()
        await client.drop_database(database.name)
        await client.close()
    # A batch of one record takes the single-message path and counts as no batch.
    per_transaction = DURABLE_MESSAGES / pipeline.stats.batches if pipeline.stats.batches else 1.0
    return (len(marks) - 1) / (marks[-1] - marks[0]), per_transaction


async def _idle_latency(bootstrap: str, topic: str, fetch_max_wait_ms: int) -> tuple[float, float]:
    """One message at a time into an idle consumer: median and worst seconds from send to handler."""
    broker = make_broker(PlatformSettings(kafka_bootstrap=bootstrap), client_id="bench")
    arrived = asyncio.Event()

    async def handle(event: Envelope[Any], delivery: Delivery) -> None:
        arrived.set()

    options = ConsumerOptions(fetch_max_wait_ms=fetch_max_wait_ms)
    subscribe_events(broker, handle, consumer=f"bench-idle-{fetch_max_wait_ms}", topics=[topic], options=options)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False)
    await broker.start()
    await producer.start()
    latencies: list[float] = []
    try:
        for i in range(IDLE_MESSAGES + 1):
            arrived.clear()
            event = events.tenant_onboarded("musterstadt", version=i + 1)
            started = time.perf_counter()
            await producer.send_and_wait(topic, to_bytes(event), key=event.key)
            await asyncio.wait_for(arrived.wait(), timeout=60)
            if i:  # the first waits for the group to be joined
                latencies.append(time.perf_counter() - started)
            await asyncio.sleep(0.2)  # idle again: the consumer waits in a fetch
    finally:
        await producer.stop()
        await broker.stop()
    return statistics.median(latencies), max(latencies)


async def main() -> None:
    with running_stack() as stack:
        topic = "bench.consumer.v1"
        await ensure_topics(stack.kafka_bootstrap, [TopicSpec(topic, 1), TopicSpec(f"{topic}.dlq", 1)])
        await _fill(stack.kafka_bootstrap, topic)
        bare = await _bare(stack.kafka_bootstrap, topic)
        pipeline = await _pipeline(stack.kafka_bootstrap, topic)
        print(f"backend: {stack.backend}, {MESSAGES} messages, commit after each message")
        print(f"bare aiokafka consume+commit (baseline): {bare:>8,.0f} msg/s")
        ratio = pipeline / bare
        print(f"lotse consumer pipeline:                 {pipeline:>8,.0f} msg/s   ratio to baseline {ratio:.2f}")

        durable_topic = "bench.consumer.durable.v1"
        specs = [TopicSpec(durable_topic, DURABLE_PARTITIONS), TopicSpec(f"{durable_topic}.dlq", DURABLE_PARTITIONS)]
        await ensure_topics(stack.kafka_bootstrap, specs)
        await _fill_tenants(stack.kafka_bootstrap, durable_topic)
        print(
            f"durable handler (effect + inbox + outbox in a unit of work), {DURABLE_MESSAGES} messages, "
            f"{DURABLE_PARTITIONS} partitions, {DURABLE_TENANTS} tenants:"
        )
        variants = {
            "one by one (max_records=1)": ConsumerOptions(max_records=1),
            "batches of up to 100, one transaction": ConsumerOptions(max_records=100, lanes=1),
            "batches of up to 100, 4 lanes": ConsumerOptions(max_records=100, lanes=4),
        }
        # The machine is shared and the embedded servers noisy: each variant 3 times, the median shown.
        rates: dict[str, list[float]] = {label: [] for label in variants}
        sizes: dict[str, float] = {}
        for run in range(3):
            for n, (label, options) in enumerate(variants.items()):
                name = f"durable{run}{n}"
                rate, sizes[label] = await _durable(
                    stack.kafka_bootstrap, stack.mongo_url, durable_topic, name, options
                )
                rates[label].append(rate)
        for label, measured in rates.items():
            rate = statistics.median(measured)
            runs = ", ".join(f"{each:,.0f}" for each in measured)
            print(
                f"  {label + ':':<40} {rate:>8,.0f} msg/s   ratio to bare {rate / bare:.2f}"
                f"   ({runs}; {sizes[label]:.0f} records per transaction)"
            )

        idle_topic = "bench.consumer.idle.v1"
        await ensure_topics(stack.kafka_bootstrap, [TopicSpec(idle_topic, 1), TopicSpec(f"{idle_topic}.dlq", 1)])
        print(f"idle consumer, one message at a time ({IDLE_MESSAGES}), send to handler:")
        for wait_ms in (500, 100, 20):
            median, worst = await _idle_latency(stack.kafka_bootstrap, idle_topic, wait_ms)
            print(f"  fetch_max_wait_ms {wait_ms:>4}: median {median * 1000:6.1f} ms, worst {worst * 1000:6.1f} ms")
