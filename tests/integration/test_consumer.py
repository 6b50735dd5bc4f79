"""Contract events over the real broker: validated on arrival, dead-lettered with a reason when
they cannot be processed, and never holding up the messages behind them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from faststream.kafka import KafkaBroker
from prometheus_client import REGISTRY
from pymongo.errors import AutoReconnect

from lotse_contracts import (
    DeadLetterInfo,
    Envelope,
    NeedOpened,
    TenantOnboarded,
    dead_letter_topic,
    to_bytes,
)
from lotse_contracts.dead_letter import DeadLetterReason
from lotse_runtime.consumer import Delivery, RejectEvent, RetryPolicy, subscribe_events
from lotse_runtime.kafka import make_broker
from lotse_runtime.settings import PlatformSettings
from tests.support import events
from tests.support.kafka import create_topics, produce, read_all
from tests.support.waiting import eventually

FAST_RETRY = RetryPolicy(attempts=3, first_backoff_seconds=0.01, max_backoff_seconds=0.05)


@pytest.fixture
async def topic(kafka_bootstrap: str, unique_name: str) -> str:
    name = f"test.{unique_name}.v1"
    await create_topics(kafka_bootstrap, name, dead_letter_topic(name), partitions=1)
    return name


@pytest.fixture
async def broker(kafka_bootstrap: str) -> AsyncIterator[KafkaBroker]:
    broker = make_broker(PlatformSettings(kafka_bootstrap=kafka_bootstrap), client_id="test")
    yield broker
    await broker.stop()


async def test_a_published_envelope_arrives_as_the_validated_model(
    broker: KafkaBroker, kafka_bootstrap: str, topic: str
) -> None:
    received: list[Envelope[Any]] = []

    async def handle(event: Envelope[Any], delivery: Delivery) -> None:
        received.append(event)

    subscribe_events(broker, handle, consumer="test-arrives", topics=[topic], retry=FAST_RETRY)
    await broker.start()
    sent = events.tenant_onboarded("musterstadt")
    await broker.publish(to_bytes(sent), topic=topic, key=sent.key)

    await eventually(lambda: _value(received), what="the event to arrive")
    (event,) = received
    assert isinstance(event.data, TenantOnboarded)
    assert event == sent


async def test_a_dispatch_table_hands_each_event_to_its_class_handler_and_passes_over_the_rest(
    broker: KafkaBroker, kafka_bootstrap: str, topic: str
) -> None:
    received: list[str] = []

    async def need_opened(event: Envelope[NeedOpened], delivery: Delivery) -> None:
        received.append(str(event.data.need_id))

    pipeline = subscribe_events(broker, {NeedOpened: need_opened}, consumer="test-table", topics=[topic])
    await broker.start()
    opened = events.need_opened("musterstadt")
    # A valid event of a class the table does not name is someone else's: processed, not dead-lettered.
    for event in (events.tenant_onboarded("musterstadt"), opened):
        await broker.publish(to_bytes(event), topic=topic, key=event.key)

    async def both_processed() -> bool:
        return pipeline.stats.processed == 2

    await eventually(both_processed, what="both events to be processed")
    assert received == [str(opened.data.need_id)]
    assert pipeline.stats.dead_lettered == 0


async def test_an_invalid_message_is_dead_lettered_with_its_reason_and_the_consumer_goes_on(
    broker: KafkaBroker, kafka_bootstrap: str, topic: str
) -> None:
    received: list[Envelope[Any]] = []

    async def handle(event: Envelope[Any], delivery: Delivery) -> None:
        received.append(event)

    pipeline = subscribe_events(broker, handle, consumer="test-invalid", topics=[topic], retry=FAST_RETRY)
    await broker.start()
    invalid = to_bytes(events.tenant_onboarded("musterstadt")).replace(b'"version":1', b'"version":0')
    assert invalid != to_bytes(events.tenant_onboarded("musterstadt"))
    await produce(kafka_bootstrap, topic, b"{not json", key=b"musterstadt:x")
    await produce(kafka_bootstrap, topic, invalid, key=b"musterstadt:y")
    good = events.tenant_onboarded("musterstadt")
    await produce(kafka_bootstrap, topic, to_bytes(good), key=good.key)

    await eventually(lambda: _value(received), what="the valid event after the invalid ones")
    assert [event.id for event in received] == [good.id]
    dead = await read_all(kafka_bootstrap, dead_letter_topic(topic), expected=2)
    assert [record.value for record in dead] == [b"{not json", invalid]
    assert [record.key for record in dead] == [b"musterstadt:x", b"musterstadt:y"]
    infos = [DeadLetterInfo.from_headers(record.headers.items()) for record in dead]
    assert [info.reason.value for info in infos] == ["malformed_json", "invalid_envelope"]
    assert "version" in infos[1].error
    assert [(i.source_topic, i.source_partition, i.source_offset) for i in infos] == [(topic, 0, 0), (topic, 0, 1)]
    assert {info.consumer for info in infos} == {"test-invalid"}
    assert pipeline.stats.dead_lettered == 2 and pipeline.stats.processed == 1
    labels = {"consumer": "test-invalid", "topic": topic}
    assert REGISTRY.get_sample_value("lotse_messages_consumed_total", labels) == 3
    assert REGISTRY.get_sample_value("lotse_messages_dead_lettered_total", {**labels, "reason": "malformed_json"}) == 1

    async def caught_up() -> bool:
        return REGISTRY.get_sample_value("lotse_consumer_lag_messages", {**labels, "partition": "0"}) == 0

    await eventually(caught_up, what="the lag gauge to show the consumer caught up")


async def test_a_failing_handler_is_retried_then_dead_lettered_and_the_next_message_is_processed(
    broker: KafkaBroker, kafka_bootstrap: str, topic: str
) -> None:
    attempts: dict[str, int] = {}
    processed: list[str] = []
    poison = events.tenant_onboarded("musterstadt")
    rejected = events.tenant_onboarded("musterstadt")
    good = events.tenant_onboarded("musterstadt")

    async def handle(event: Envelope[Any], delivery: Delivery) -> None:
        attempts[str(event.id)] = attempts.get(str(event.id), 0) + 1
        if event.id == poison.id:
            raise RuntimeError("database unavailable")
        if event.id == rejected.id:
            raise RejectEvent(DeadLetterReason.TENANT_MISMATCH, "topic tenant differs from event tenant")
        processed.append(str(event.id))

    subscribe_events(broker, handle, consumer="test-failing", topics=[topic], retry=FAST_RETRY)
    await broker.start()
    for event in (poison, rejected, good):
        await produce(kafka_bootstrap, topic, to_bytes(event), key=event.key)

    await eventually(lambda: _value(processed), what="the good event to be processed")
    assert processed == [str(good.id)]
    assert attempts == {str(poison.id): 3, str(rejected.id): 1, str(good.id): 1}
    dead = await read_all(kafka_bootstrap, dead_letter_topic(topic), expected=2)
    infos = [DeadLetterInfo.from_headers(record.headers.items()) for record in dead]
    assert [info.reason.value for info in infos] == ["processing_failed", "tenant_mismatch"]
    assert "after 3 attempts" in infos[0].error and "database unavailable" in infos[0].error
    assert [record.value for record in dead] == [to_bytes(poison), to_bytes(rejected)]


async def test_an_unavailable_database_is_waited_for_beyond_the_retry_budget_and_nothing_is_dead_lettered(
    broker: KafkaBroker, kafka_bootstrap: str, topic: str
) -> None:
    outage = FAST_RETRY.attempts * 3  # far more failures than a poison event would be allowed
    attempts: list[int] = []
    event = events.tenant_onboarded("musterstadt")
    after = events.tenant_onboarded("musterstadt")
    processed: list[str] = []

    async def handle(received: Envelope[Any], delivery: Delivery) -> None:
        if received.id == event.id and len(attempts) < outage:
            attempts.append(1)
            raise AutoReconnect("connection to the database was reset")
        processed.append(str(received.id))

    subscribe_events(broker, handle, consumer="test-outage", topics=[topic], retry=FAST_RETRY)
    await broker.start()
    for sent in (event, after):
        await produce(kafka_bootstrap, topic, to_bytes(sent), key=sent.key)

    await eventually(lambda: _value(processed[1:]), what="both events to be processed after the outage")
    assert processed == [str(event.id), str(after.id)]
    assert len(attempts) == outage
    assert await read_all(kafka_bootstrap, dead_letter_topic(topic), expected=1, timeout=2) == []


async def test_an_oversized_message_is_dead_lettered_without_parsing(
    broker: KafkaBroker, kafka_bootstrap: str, topic: str
) -> None:
    from lotse_contracts import MAX_EVENT_BYTES

    async def handle(event: Envelope[Any], delivery: Delivery) -> None:
        raise AssertionError("an oversized message must not reach the handler")

    subscribe_events(broker, handle, consumer="test-oversized", topics=[topic], retry=FAST_RETRY)
    await broker.start()
    await produce(kafka_bootstrap, topic, b"x" * (MAX_EVENT_BYTES + 1))

    (dead,) = await read_all(kafka_bootstrap, dead_letter_topic(topic), expected=1)
    info = DeadLetterInfo.from_headers(dead.headers.items())
    assert info.reason.value == "too_large"
    assert len(dead.value) == MAX_EVENT_BYTES + 1


async def _value(items: list[Any]) -> list[Any]:
    return items
