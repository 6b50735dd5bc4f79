"""N partner needs through registry, matching and notifications until the proposal emails are in
the SMTP sink, against a bare aiokafka pipe over the same three hops on the same servers.

The platform runs as `lotse up` runs it (separate processes). Both sides get the same burst of N
messages; latency is from publishing a need until its first proposal email arrives (platform) or
until the message leaves the third hop (baseline: consume, write to MongoDB, produce, three
times). Throughput is N over the time until the last one arrived.
"""

from __future__ import annotations

import asyncio
import re
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from pymongo import AsyncMongoClient

from lotse_cli.demo import Demo, TenantReport
from lotse_cli.demo_data import DEMO_TENANTS, demo_needs
from lotse_cli.demo_logins import DemoLogins
from lotse_cli.supervisor import Platform, Ports, running_platform
from lotse_contracts import ReportNeed
from lotse_devstack import TopicSpec, ensure_topics
from lotse_devstack.processes import free_port

NEEDS = 40
MARK = re.compile(r"\[bench-(\d+)\]")
DEADLINE_SECONDS = 600.0


def _percentiles(latencies: list[float]) -> str:
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return f"p50 {statistics.median(ordered) * 1000:7.0f} ms   p99 {p99 * 1000:7.0f} ms"


def _platform_run(platform: Platform) -> tuple[float, list[float]]:
    demo = Demo(platform, DemoLogins(platform.home), lambda line: print(f"  setup: {line}", flush=True))
    report = TenantReport(DEMO_TENANTS[0])
    demo.onboard(report)
    asyncio.run(demo.publish_volunteers([report]))
    demo.wait_for_volunteers(report)
    needs = [
        ReportNeed.model_validate(
            {**need.model_dump(mode="json"), "description": f"{need.description} [bench-{number}]"}
        )
        for number, need in enumerate(demo_needs(report.tenant, NEEDS, report.organisation_ids, demo.today, seed=11))
    ]
    http = httpx.Client(timeout=10)
    seen = {message["id"] for message in http.get(f"{platform.mailbox_url}/messages").json()}
    started = time.monotonic()
    asyncio.run(demo.publish_commands(report.tenant, "bench", needs))
    arrivals: dict[int, float] = {}
    deadline = started + DEADLINE_SECONDS
    # Needs nobody fits get no proposal; wait until the count stops growing for a while.
    quiet_since = time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - quiet_since < 20 and len(arrivals) < NEEDS:
        for summary in http.get(f"{platform.mailbox_url}/messages").json():
            if summary["id"] in seen:
                continue
            seen.add(summary["id"])
            text = http.get(f"{platform.mailbox_url}/messages/{summary['id']}").json().get("text") or ""
            if (match := MARK.search(text)) and int(match.group(1)) not in arrivals:
                arrivals[int(match.group(1))] = time.monotonic()
                quiet_since = time.monotonic()
        time.sleep(0.1)
    latencies = [arrival - started for arrival in arrivals.values()]
    return max(latencies), latencies


async def _baseline_run(bootstrap: str, mongo_url: str) -> tuple[float, list[float]]:
    run = uuid.uuid4().hex[:8]
    topics = [f"bench.pipe.{run}.{hop}" for hop in range(4)]
    await ensure_topics(bootstrap, [TopicSpec(topic, 3) for topic in topics])
    client: AsyncMongoClient = AsyncMongoClient(mongo_url)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False, acks="all")
    await producer.start()

    async def hop(number: int) -> None:
        consumer = AIOKafkaConsumer(
            topics[number], bootstrap_servers=bootstrap, group_id=f"pipe-{run}-{number}",
            auto_offset_reset="earliest", enable_auto_commit=False,
        )  # fmt: skip
        await consumer.start()
        try:
            async for record in consumer:
                await client[f"bench_pipe_{run}"][f"hop{number}"].insert_one({"value": record.value})
                await producer.send_and_wait(topics[number + 1], record.value, key=record.key)
                await consumer.commit()
        finally:
            await consumer.stop()

    hops = [asyncio.create_task(hop(number)) for number in range(3)]
    sink = AIOKafkaConsumer(
        topics[3], bootstrap_servers=bootstrap, group_id=f"pipe-{run}-sink", auto_offset_reset="earliest"
    )
    await sink.start()
    await asyncio.sleep(8)  # Tansu assigns new consumer groups after a few seconds; not measured
    started = time.monotonic()
    for number in range(NEEDS):
        await producer.send_and_wait(topics[0], f"{number}".encode(), key=f"k{number}".encode())
    latencies: list[float] = []
    while len(latencies) < NEEDS:
        await sink.getone()
        latencies.append(time.monotonic() - started)
    for task in hops:
        task.cancel()
    await asyncio.gather(*hops, return_exceptions=True)
    await sink.stop()
    await producer.stop()
    await client.drop_database(f"bench_pipe_{run}")
    await client.close()
    return max(latencies), latencies


def _run() -> None:
    ports = Ports(*(free_port() for _ in range(9)))
    with tempfile.TemporaryDirectory() as state:
        # The demo signs in at the local OpenID provider with its accounts, made before it starts.
        DemoLogins(Path(state).resolve()).ensure()
        with running_platform(
            ports=ports, state_dir=Path(state), tenants=[DEMO_TENANTS[0].slug], echo=None, persistent=False
        ) as platform:
            platform_total, platform_latencies = _platform_run(platform)
            baseline_total, baseline_latencies = asyncio.run(
                _baseline_run(platform.stack.kafka_bootstrap, platform.stack.mongo_url)
            )
    platform_rate = len(platform_latencies) / platform_total
    baseline_rate = len(baseline_latencies) / baseline_total
    print(f"burst of {NEEDS} needs; {len(platform_latencies)} found a volunteer and got a proposal email")
    print(f"bare aiokafka pipe, 3 hops (baseline): {baseline_rate:7.1f} msg/s   {_percentiles(baseline_latencies)}")
    print(f"lotse partner need -> proposal email:  {platform_rate:7.1f} needs/s {_percentiles(platform_latencies)}")
    slower = statistics.median(platform_latencies) / statistics.median(baseline_latencies)
    print(f"ratio to baseline: throughput {platform_rate / baseline_rate:.3f}, p50 latency {slower:.1f}x")


async def main() -> None:
    await asyncio.to_thread(_run)
