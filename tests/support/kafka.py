"""Read and write topics in tests without joining a consumer group (which takes seconds)."""

from __future__ import annotations

import time
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


def _record(record: ConsumerRecord[bytes, bytes]) -> Record:
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


async def read_all(bootstrap: str, topic: str, *, expected: int, timeout: float = 30.0) -> list[Record]:
    """Read a topic from the beginning until ``expected`` records arrived or the deadline passed."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or {0})]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        records: list[Record] = []
        deadline = time.monotonic() + timeout
        while len(records) < expected and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=200)
            for batch in batches.values():
                records.extend(_record(r) for r in batch)
        return records
    finally:
        await consumer.stop()


async def read_to_end(bootstrap: str, topics: list[str], timeout: float = 30.0) -> list[Record]:
    """Every record the topics hold now: read from the beginning up to their current end offsets."""
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
        ends = {tp: end for tp, end in (await consumer.end_offsets(partitions)).items() if end > 0}
        records: list[Record] = []
        deadline = time.monotonic() + timeout
        while ends:
            if time.monotonic() > deadline:
                raise TimeoutError(f"could not read to the end of {sorted(str(tp) for tp in ends)}")
            batches = await consumer.getmany(*ends, timeout_ms=500)
            for tp, batch in batches.items():
                records.extend(_record(r) for r in batch)
                if batch and batch[-1].offset + 1 >= ends[tp]:
                    del ends[tp]
        return records
    finally:
        await consumer.stop()
