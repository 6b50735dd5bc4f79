"""The ops commands against the real broker of the test stack."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer
from typer.testing import CliRunner

from lotse_cli.main import app
from lotse_contracts import (
    DeadLetterInfo,
    DeadLetterReason,
    TenantOnboarded,
    dead_letter_topic,
    new_event,
    partner_inbound_topic,
    to_bytes,
)
from lotse_contracts.topics import TENANTS
from lotse_devstack import Stack, TopicSpec, ensure_topics
from lotse_matching.settings import MatchingSettings
from tests.support.kafka import produce, read_all

runner = CliRunner()


def lotse(stack: Stack, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, [*args, "--bootstrap", stack.kafka_bootstrap])
    return result.exit_code, result.output


def test_topics_sync_creates_the_topics_of_onboarded_and_named_tenants(stack: Stack, unique_name: str) -> None:
    onboarded, named = f"on-{unique_name}", f"named-{unique_name}"
    event = new_event(
        data=TenantOnboarded.example(), tenant=onboarded, subject=onboarded, version=1, source="/lotse/registry"
    )
    asyncio.run(ensure_topics(stack.kafka_bootstrap, [TopicSpec(TENANTS.name, TENANTS.partitions)]))
    asyncio.run(produce(stack.kafka_bootstrap, TENANTS.name, to_bytes(event), key=event.key))

    code, output = lotse(stack, "topics", "sync", "--tenant", named)
    assert code == 0, output
    for tenant in (onboarded, named):
        assert f"created  {partner_inbound_topic(tenant)}\n" in output
        assert f"created  {dead_letter_topic(partner_inbound_topic(tenant))}\n" in output

    code, output = lotse(stack, "topics", "sync", "--tenant", named)
    assert code == 0 and "(0 created" in output


def test_topics_sync_refuses_a_malformed_tenant(stack: Stack) -> None:
    code, output = lotse(stack, "topics", "sync", "--tenant", "Bad Name!")
    assert code == 1
    assert "'Bad Name!' is not a tenant slug" in output


def test_dead_letters_are_listed_shown_and_replayed_to_their_source(stack: Stack, unique_name: str) -> None:
    source = f"test.ops.{unique_name}.v1"
    dlq = dead_letter_topic(source)
    asyncio.run(ensure_topics(stack.kafka_bootstrap, [TopicSpec(source, 1), TopicSpec(dlq, 1)]))
    info = DeadLetterInfo(
        reason=DeadLetterReason.TENANT_MISMATCH,
        error="topic tenant aachen differs from event tenant bonn",
        source_topic=source,
        source_partition=0,
        source_offset=7,
        consumer="registry",
        failed_at=datetime.now(UTC),
    )

    async def dead_letter(value: bytes) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=stack.kafka_bootstrap, enable_idempotence=False)
        await producer.start()
        try:
            await producer.send_and_wait(dlq, value, key=b"bonn:1", headers=info.to_headers())
        finally:
            await producer.stop()

    asyncio.run(dead_letter(b'{"first": 1}'))
    asyncio.run(dead_letter(b'{"second": 2}'))

    code, output = lotse(stack, "dlq", "list")
    assert code == 0
    assert any(line.startswith(dlq) and "tenant_mismatch: 2" in line for line in output.splitlines()), output

    code, output = lotse(stack, "dlq", "show", dlq)
    assert code == 0
    assert "reason:  tenant_mismatch" in output and f"from:    {source}[0]@7" in output
    assert "2 record(s)" in output

    code, output = lotse(stack, "dlq", "replay", dlq, "--offset", "1")
    assert code == 0 and "replayed 1 record(s)" in output
    (replayed,) = asyncio.run(read_all(stack.kafka_bootstrap, source, expected=1, timeout=5))
    assert replayed.value == b'{"second": 2}' and replayed.key == b"bonn:1"


def test_dlq_commands_refuse_a_topic_that_is_not_a_dead_letter_topic(stack: Stack) -> None:
    code, output = lotse(stack, "dlq", "replay", "lotse.registry.needs.v1")
    assert code == 1
    assert "is not a dead-letter topic" in output


def test_health_reports_readiness_and_the_lag_of_matchings_consumer_group(stack: Stack, unique_name: str) -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.structs import OffsetAndMetadata

    class Ready(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/ready" else 404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Ready)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    ready_url = f"http://127.0.0.1:{server.server_address[1]}"
    # A group named as matching names its own (lotse-matching...), which `lotse health` must list.
    group = f"{MatchingSettings.model_fields['consumer_group'].default}-{unique_name}"
    topic = f"test.health.{unique_name}.v1"

    async def lag_of_two() -> None:
        await ensure_topics(stack.kafka_bootstrap, [TopicSpec(topic, 1)])
        for value in (b"1", b"2", b"3"):
            await produce(stack.kafka_bootstrap, topic, value)
        consumer = AIOKafkaConsumer(bootstrap_servers=stack.kafka_bootstrap, group_id=group, enable_auto_commit=False)
        await consumer.start()
        try:
            partition = TopicPartition(topic, 0)
            consumer.assign([partition])
            await consumer.commit({partition: OffsetAndMetadata(1, "")})
        finally:
            await consumer.stop()

    asyncio.run(lag_of_two())
    try:
        args = ["--registry", ready_url, "--matching", ready_url, "--notifications", "http://127.0.0.1:9"]
        code, output = lotse(stack, "health", *args)
    finally:
        server.shutdown()

    assert code == 1, output
    lines = output.splitlines()
    assert any(line.startswith("registry") and " ready " in f"{line} " for line in lines), output
    assert any(line.startswith("notifications") and "unreachable" in line for line in lines), output
    assert any(line.startswith(group) and topic in line and line.endswith(" 2") for line in lines), output
