"""Throughput of the consumer pipeline (validate, handle, commit per message) against a bare
aiokafka consumer reading the same messages, on the same local broker in the same run."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from lotse_contracts import Envelope, to_bytes
from lotse_devstack import TopicSpec, ensure_topics, running_stack
from lotse_runtime.consumer import Delivery, subscribe_events
from lotse_runtime.kafka import make_broker
from lotse_runtime.settings import PlatformSettings
from tests.support import events

MESSAGES = 2_000


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
