"""The fault-test proxy really forwards, really cuts, and a Kafka client survives the cut."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from lotse_devstack import TopicSpec, ensure_topics, running_stack
from lotse_devstack.processes import free_port
from tests.support.kafka import read_all
from tests.support.tcp_proxy import TcpProxy


async def test_a_producer_behind_the_proxy_delivers_after_the_connection_is_cut_and_restored(tmp_path: Path) -> None:
    broker_port = free_port()
    proxy = TcpProxy(broker_port).start()
    try:
        with running_stack(kafka_port=broker_port, kafka_advertised_port=proxy.port, log_dir=tmp_path) as stack:
            if stack.backend != "embedded":
                pytest.skip("only the embedded broker can be told to advertise the proxy")
            await ensure_topics(stack.kafka_bootstrap, [TopicSpec("proxy.test.v1", 1)])
            producer = AIOKafkaProducer(
                bootstrap_servers=stack.kafka_bootstrap, enable_idempotence=False, acks="all", request_timeout_ms=5000
            )
            await producer.start()
            try:
                await producer.send_and_wait("proxy.test.v1", b"before")
                proxy.cut()
                pending = asyncio.ensure_future(producer.send_and_wait("proxy.test.v1", b"during"))
                await asyncio.sleep(0.5)  # the cut lasts a while: the send must wait, not fail at once
                assert not pending.done()
                proxy.restore()
                await asyncio.wait_for(pending, timeout=30)
            finally:
                await producer.stop()
            records = await read_all(stack.kafka_bootstrap, "proxy.test.v1", expected=2)
            assert [r.value for r in records] == [b"before", b"during"]
            assert proxy.cuts == 1
    finally:
        proxy.stop()
