"""Broker-side operations the CLI needs: known tenants, dead-letter records, replays."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import ConsumerRecord

from lotse_contracts import DeadLetterInfo, EventValidationError, TenantOnboarded, parse_event
from lotse_contracts.topics import TENANTS
from lotse_runtime.kafka import client_security
from lotse_runtime.settings import KafkaSettings

READ_IDLE_MS = 1500
Record = ConsumerRecord[bytes, bytes]  # no deserializers: keys and values stay bytes

# The commands report a broker that is away in one line of their own; aiokafka's connection errors
# would otherwise reach stderr through logging's last-resort handler as well.
logging.getLogger("aiokafka").addHandler(logging.NullHandler())


def login() -> dict[str, Any]:
    """The operator's broker login from LOTSE_KAFKA_* (nothing for a PLAINTEXT broker)."""
    return client_security(KafkaSettings())


@dataclass(frozen=True)
class DeadLetter:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    info: DeadLetterInfo | None  # None: a record without dead-letter headers


async def list_topics(bootstrap: str) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="lotse-cli", **login())
    await admin.start()
    try:
        return sorted(await admin.list_topics())
    finally:
        await admin.close()


async def _read_to_end(bootstrap: str, topic: str) -> list[tuple[TopicPartition, list[Record]]]:
    """Every record of ``topic`` from the beginning to its end offsets, without a consumer group."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, client_id="lotse-cli", **login())
    try:
        await consumer.start()
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
        if not partitions:
            return []
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        result: dict[TopicPartition, list[Record]] = {tp: [] for tp in partitions}
        remaining = {tp for tp in partitions if ends[tp] > 0}
        beginnings = await consumer.beginning_offsets(partitions)
        remaining = {tp for tp in remaining if beginnings[tp] < ends[tp]}
        while remaining:
            batches = await consumer.getmany(*remaining, timeout_ms=READ_IDLE_MS)
            if not batches:
                break
            for tp, records in batches.items():
                result[tp].extend(records)
                if records and records[-1].offset + 1 >= ends[tp]:
                    remaining.discard(tp)
        return list(result.items())
    finally:
        await consumer.stop()


async def onboarded_tenants(bootstrap: str) -> list[str]:
    """Tenants announced on the compacted tenants topic, as every service sees them."""
    if TENANTS.name not in await list_topics(bootstrap):
        return []
    tenants: set[str] = set()
    for _, records in await _read_to_end(bootstrap, TENANTS.name):
        for record in records:
            if record.value is None:
                continue  # a tombstone of the compacted topic announces no tenant
            try:
                event = parse_event(record.value)
            except EventValidationError:
                continue  # a broken record on the topic says nothing about tenants
            if isinstance(event.data, TenantOnboarded):
                tenants.add(event.tenant)
    return sorted(tenants)


async def read_dead_letters(bootstrap: str, topic: str) -> list[DeadLetter]:
    letters = []
    for tp, records in await _read_to_end(bootstrap, topic):
        for record in records:
            try:
                info: DeadLetterInfo | None = DeadLetterInfo.from_headers(record.headers)
            except ValueError:
                info = None
            letters.append(DeadLetter(tp.topic, tp.partition, record.offset, record.key, record.value or b"", info))
    return sorted(letters, key=lambda letter: (letter.partition, letter.offset))


async def replay(bootstrap: str, letters: Iterable[DeadLetter]) -> int:
    """Send dead letters back to their source topics unchanged (key, value). Consumers are
    idempotent, so replaying a letter twice does no harm. A redacted letter holds no data to
    replay (its sender must send it again, the way the refusal names) and is passed over."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False, acks="all", **login())
    sent = 0
    try:
        await producer.start()
        for letter in letters:
            if letter.info is None or letter.info.redacted:
                continue
            await producer.send_and_wait(letter.info.source_topic, letter.value, key=letter.key)
            sent += 1
    finally:
        await producer.stop()
    return sent


@dataclass(frozen=True)
class GroupLag:
    group: str
    topic: str
    lag: int


async def consumer_group_lag(bootstrap: str, group_prefixes: Iterable[str]) -> list[GroupLag]:
    """Lag per consumer group and topic (end offset minus committed offset, summed over partitions)
    for the groups whose id starts with one of ``group_prefixes``."""
    prefixes = tuple(group_prefixes)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="lotse-cli", **login())
    await admin.start()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, client_id="lotse-cli", **login())
    try:
        await consumer.start()
        groups = sorted(str(entry[0]) for entry in await admin.list_consumer_groups())
        # Tansu fails an OffsetFetch for "all partitions"; naming them works on every broker.
        partitions = [
            TopicPartition(topic, partition)
            for topic in await admin.list_topics()
            for partition in sorted(consumer.partitions_for_topic(topic) or [])
        ]
        rows: list[GroupLag] = []
        for group in (g for g in groups if g.startswith(prefixes)):
            offsets = await admin.list_consumer_group_offsets(group, partitions=partitions)
            committed = {tp: offset for tp, offset in offsets.items() if offset.offset >= 0}
            if not committed:
                continue
            ends = await consumer.end_offsets(list(committed))
            per_topic: dict[str, int] = {}
            for tp, offset in committed.items():
                per_topic[tp.topic] = per_topic.get(tp.topic, 0) + max(ends[tp] - offset.offset, 0)
            rows.extend(GroupLag(group, topic, lag) for topic, lag in sorted(per_topic.items()))
        return rows
    finally:
        await consumer.stop()
        await admin.close()
