"""Read and write topics in tests without joining a consumer group (which takes seconds).

There is one reader: ``from_beginning`` opens a consumer assigned to every partition of the
topics, at their beginning. ``read_all``, ``read_to_end``, ``record_count`` and the background
readers of the service supports are built on it."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition

from lotse_devstack import TopicSpec, ensure_topics


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: dict[str, bytes]


def record_of(record: ConsumerRecord[bytes, bytes]) -> Record:
    # A tombstone (no value) reads as empty bytes.
    return Record(record.topic, record.partition, record.offset, record.key, record.value or b"", dict(record.headers))


async def create_topics(bootstrap: str, *names: str, partitions: int = 1) -> None:
    await ensure_topics(bootstrap, [TopicSpec(name, partitions) for name in names])


async def produce(bootstrap: str, topic: str, value: bytes, key: bytes | None = None) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


@asynccontextmanager
async def from_beginning(bootstrap: str, topics: list[str]) -> AsyncIterator[AIOKafkaConsumer]:
    """A consumer without a group, assigned every partition of ``topics`` and positioned at their
    beginning (a topic the broker does not know yet counts as one partition)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [
            TopicPartition(topic, partition)
            for topic in topics
            for partition in sorted(consumer.partitions_for_topic(topic) or {0})
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        yield consumer
    finally:
        await consumer.stop()


async def read_all(
    bootstrap: str,
    topic: str,
    *,
    expected: int,
    timeout: float = 30.0,
    key_prefix: bytes = b"",
    settle: float = 0.0,
) -> list[Record]:
    """Read a topic from the beginning until ``expected`` records (with keys starting with
    ``key_prefix``) arrived or the deadline passed; then ``settle`` seconds more, to see whether
    more than expected come."""
    async with from_beginning(bootstrap, [topic]) as consumer:
        records: list[Record] = []
        deadline = time.monotonic() + timeout
        settle_until: float | None = None
        while time.monotonic() < deadline:
            if len(records) >= expected:
                settle_until = settle_until or time.monotonic() + settle
                if time.monotonic() >= settle_until:
                    break
            batches = await consumer.getmany(timeout_ms=200)
            for batch in batches.values():
                records.extend(record_of(r) for r in batch if (r.key or b"").startswith(key_prefix))
        return records


async def read_to_end(bootstrap: str, topics: list[str], timeout: float = 30.0) -> list[Record]:
    """Every record the topics hold now: read from the beginning up to their current end offsets."""
    async with from_beginning(bootstrap, topics) as consumer:
        ends = {tp: end for tp, end in (await consumer.end_offsets(list(consumer.assignment()))).items() if end > 0}
        records: list[Record] = []
        deadline = time.monotonic() + timeout
        while ends:
            if time.monotonic() > deadline:
                raise TimeoutError(f"could not read to the end of {sorted(str(tp) for tp in ends)}")
            batches = await consumer.getmany(*ends, timeout_ms=500)
            for tp, batch in batches.items():
                records.extend(record_of(r) for r in batch)
                if batch and batch[-1].offset + 1 >= ends[tp]:
                    del ends[tp]
        return records


async def record_count(bootstrap: str, topics: list[str]) -> int:
    """How many records the topics hold now."""
    async with from_beginning(bootstrap, topics) as consumer:
        partitions = list(consumer.assignment())
        ends = await consumer.end_offsets(partitions)
        starts = await consumer.beginning_offsets(partitions)
        return sum(ends[tp] - starts[tp] for tp in partitions)
