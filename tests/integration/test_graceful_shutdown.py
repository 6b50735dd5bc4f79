"""Graceful shutdown (issue 9): on SIGTERM a service finishes the message in hand, commits its
offset, stops its relay and exits within a bounded time; work that outlasts the grace is left
uncommitted and done after the restart, once.

The notifications service runs as a real process against the test stack. Its work is held from
outside, with no hook in the service: a proxy in front of MongoDB holds the request that carries
a chosen event id (the handler's first read, in its inbox), and an SMTP server holds its reply to
DATA. Each test sends SIGTERM while that work is held.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import uuid
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiosmtpd.controller import Controller
from pymongo import AsyncMongoClient, MongoClient
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from lotse_contracts import Envelope, TenantOnboarded, VolunteerProfileUpdated, new_event, to_bytes, topic_for
from lotse_devstack import Stack
from lotse_devstack.processes import free_port
from lotse_notifications.store import SENT
from lotse_runtime.mongo import in_transaction
from lotse_runtime.outbox import OUTBOX_COLLECTION, OutboxRelay, append_event, ensure_outbox_indexes
from lotse_runtime.serve import CLOSE_SECONDS
from tests.integration.notifications.support import onboarded, publish, registered
from tests.support.service_process import ServiceProcess
from tests.support.waiting import eventually

# A clean exit: uvicorn finishes its shutdown, then re-raises the SIGTERM it caught.
CLEAN_EXIT = (0, -signal.SIGTERM)
GRACE_SECONDS = 20.0  # long enough that the held work is released well inside it


# --- work held from outside ----------------------------------------------------------------------


class HoldingProxy:
    """Forwards TCP connections to MongoDB; the first client request that carries ``marker``, and
    all after it on that connection, wait for ``release()``. Its own event loop runs in a thread."""

    def __init__(self, target_url: str, marker: bytes) -> None:
        parts = urlsplit(target_url)
        self.target = (parts.hostname or "127.0.0.1", parts.port or 27017)
        self.marker = marker
        self.port = free_port()
        credentials = parts.netloc.rpartition("@")[0]
        netloc = f"{credentials}@127.0.0.1:{self.port}" if credentials else f"127.0.0.1:{self.port}"
        # directConnection: the client talks to the proxy, never to the member address it reports.
        self.url = urlunsplit(parts._replace(netloc=netloc))
        self.held = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._released = asyncio.Event()
        self._writers: set[asyncio.StreamWriter] = set()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="holding-proxy")
        self._thread.start()
        self._server = self._call(asyncio.start_server(self._serve, "127.0.0.1", self.port))

    def release(self) -> None:
        self._loop.call_soon_threadsafe(self._released.set)

    def close(self) -> None:
        if not self._server.is_serving():
            return

        async def close() -> None:
            self._server.close()
            for writer in self._writers:
                writer.transport.abort()  # held requests never reach the server
            connections = asyncio.all_tasks() - {asyncio.current_task()}
            for task in connections:
                task.cancel()
            await asyncio.gather(*connections, return_exceptions=True)

        self._call(close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def _call(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=10)

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        server_reader, server_writer = await asyncio.open_connection(*self.target)
        self._writers.update({client_writer, server_writer})
        await asyncio.gather(
            self._pump(client_reader, server_writer, hold=True),
            self._pump(server_reader, client_writer, hold=False),
            return_exceptions=True,
        )
        for writer in (client_writer, server_writer):
            writer.transport.abort()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, hold: bool) -> None:
        tail = b""
        while data := await reader.read(65536):
            if hold and self.marker in tail + data and not self._released.is_set():
                self.held.set()
                await self._released.wait()
            tail = data[-len(self.marker) :]
            writer.write(data)
            await writer.drain()
        writer.transport.abort()


class HoldingSmtp:
    """An SMTP server that keeps what it receives and answers DATA only once released."""

    def __init__(self, *, released: bool) -> None:
        self.arrived = threading.Event()
        self.released = threading.Event()
        if released:
            self.released.set()
        self.received: list[tuple[list[str], bytes]] = []
        self._controller = Controller(self, hostname="127.0.0.1", port=free_port())
        self.port = self._controller.port

    def __enter__(self) -> HoldingSmtp:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.released.set()
        self._controller.stop()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.arrived.set()
        await asyncio.to_thread(self.released.wait, 60)
        self.received.append((list(envelope.rcpt_tos), bytes(envelope.original_content or b"")))
        return "250 Message accepted for delivery"

    def mails_to(self, address: str) -> int:
        return sum(1 for recipients, _ in self.received if address in recipients)


# --- the service process ---------------------------------------------------------------------------


@dataclass
class Notifications:
    """One run's identity: database, consumer group and tenant, shared by its processes."""

    stack: Stack
    logs: Path
    run: str

    @property
    def tenant(self) -> str:
        return f"g{self.run}"

    @property
    def group(self) -> str:
        return f"notifications-shutdown-{self.run}"

    @property
    def database(self) -> str:
        return f"notifications_shutdown_{self.run}"

    def start(self, name: str, *, mongo_url: str, smtp_port: int, grace: float) -> ServiceProcess:
        settings = {
            "LOTSE_KAFKA_BOOTSTRAP": self.stack.kafka_bootstrap,
            "LOTSE_MONGO_URL": mongo_url,
            "LOTSE_DATABASE": self.database,
            "LOTSE_CONSUMER_GROUP": self.group,
            # The run's own, as its database: another run's processes kept their keys in theirs.
            "LOTSE_PERSON_KEYS_CONSUMER_GROUP": f"{self.group}-keys",
            "LOTSE_TENANT_PATTERN": self.tenant,
            "LOTSE_SMTP_PORT": str(smtp_port),
            "LOTSE_WORKER_POLL_SECONDS": "0.1",
            "LOTSE_SHUTDOWN_GRACE_SECONDS": str(grace),
        }
        return ServiceProcess.start("notifications", settings, self.logs / f"{name}.log")


async def duplicates_suppressed(process: ServiceProcess, group: str) -> float:
    async with httpx.AsyncClient(base_url=process.url, timeout=5) as http:
        text = (await http.get("/metrics")).text
    prefix = f'lotse_duplicates_suppressed_total{{consumer="{group}"}} '
    return sum(float(line.removeprefix(prefix)) for line in text.splitlines() if line.startswith(prefix))


@pytest.fixture
def notifications(stack: Stack, tmp_path: Path) -> Iterator[Notifications]:
    run = Notifications(stack, tmp_path, uuid.uuid4().hex[:8])
    yield run
    client: MongoClient[dict[str, Any]] = MongoClient(stack.mongo_url)
    with client:
        client.drop_database(run.database)


@pytest.fixture
def processes() -> Iterator[list[ServiceProcess]]:
    started: list[ServiceProcess] = []
    yield started
    for process in started:
        process.kill()


async def produce(bootstrap: str, event: Envelope[Any]) -> tuple[TopicPartition, int]:
    """Publish ``event``; return its partition and offset."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False, acks="all")
    await producer.start()
    try:
        sent = await producer.send_and_wait(topic_for(event.type, event.tenant), to_bytes(event), key=event.key)
    finally:
        await producer.stop()
    return TopicPartition(sent.topic, sent.partition), sent.offset


async def committed(bootstrap: str, group: str, partition: TopicPartition) -> int | None:
    """The group's committed offset (the next message it will read); None if it committed none."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        # Named partitions: Tansu fails an OffsetFetch for "all partitions".
        offsets = await admin.list_consumer_group_offsets(group, partitions=[partition])
    finally:
        await admin.close()
    found = offsets.get(partition)
    return found.offset if found is not None and found.offset >= 0 else None


def profile_updated(volunteer: Envelope[Any]) -> Envelope[Any]:
    """A later event on the same key (so the same partition), with no email of its own."""
    data = VolunteerProfileUpdated.example().model_copy(
        update={"volunteer_id": volunteer.data.volunteer_id, "contact": volunteer.data.contact}
    )
    return new_event(data=data, tenant=volunteer.tenant, subject=volunteer.subject, version=2, source="/lotse/registry")


# --- the tests ---------------------------------------------------------------------------------------


async def test_sigterm_finishes_and_commits_the_event_in_hand_and_abandons_one_that_outlasts_the_grace(
    notifications: Notifications, processes: list[ServiceProcess], stack: Stack
) -> None:
    """Three lives of one service: the first finishes its event in hand, the second is cut off
    at the grace, the third handles what the second left. Every event takes effect once."""
    finished = registered(notifications.tenant, channels=("email",))
    cut_off = registered(notifications.tenant, channels=("email",))
    first_gate = HoldingProxy(stack.mongo_url, marker=str(finished.id).encode())
    second_gate = HoldingProxy(stack.mongo_url, marker=str(cut_off.id).encode())
    try:
        with HoldingSmtp(released=True) as smtp:
            # 1. SIGTERM while an event is in hand; it is let finish, then committed.
            first = notifications.start("first", mongo_url=first_gate.url, smtp_port=smtp.port, grace=GRACE_SECONDS)
            processes.append(first)
            await first.ready()
            await publish(stack.kafka_bootstrap, onboarded(notifications.tenant))
            partition, offset = await produce(stack.kafka_bootstrap, finished)
            await eventually(_is_set(first_gate.held), what="the handler to be in hand, held at the database")
            first.popen.send_signal(signal.SIGTERM)
            # The event, with whatever came in the same batch (one transaction): the onboarding before
            # it, and the records of the module's other tests on the shared topics.
            assert (await first.logs("shutdown: consumers stop taking messages"))["in_hand"] >= 1
            first_gate.release()
            assert await first.exits_within(GRACE_SECONDS + CLOSE_SECONDS) in CLEAN_EXIT
            assert first.logged("shutdown: consumers stopped")[0]["abandoned"] == 0
            assert first.logged("shutdown: outbox relay stopped")
            # Committed past the event: the group's next read is after it.
            assert (await committed(stack.kafka_bootstrap, notifications.group, partition) or 0) > offset
            assert _inbox_records(notifications, finished) == 1  # the handler's transaction went through

            # 2. The next life reads on after it, and is cut off at a short grace with an event in hand.
            second = notifications.start("second", mongo_url=second_gate.url, smtp_port=smtp.port, grace=1.0)
            processes.append(second)
            await second.ready()
            await produce(stack.kafka_bootstrap, profile_updated(finished))
            await eventually(_contact_version(notifications, finished, 2), what="the later event on its key to be read")
            assert await duplicates_suppressed(second, notifications.group) == 0  # the first was not seen again
            partition, offset = await produce(stack.kafka_bootstrap, cut_off)
            await eventually(_is_set(second_gate.held), what="the handler to be in hand, held at the database")
            second.popen.send_signal(signal.SIGTERM)  # and the database never answers
            assert await second.exits_within(1.0 + CLOSE_SECONDS) in CLEAN_EXIT
            (abandoned,) = second.logged("shutdown: event in hand abandoned uncommitted, it will be delivered again")
            assert (abandoned["partition"], abandoned["offset"]) == (partition.partition, offset)
            assert (await committed(stack.kafka_bootstrap, notifications.group, partition) or 0) <= offset
            second_gate.close()  # the held request never reaches the database
            assert _inbox_records(notifications, cut_off) == 0

            # 3. After the restart the abandoned event is handled; each welcome email went out once.
            third = notifications.start("third", mongo_url=stack.mongo_url, smtp_port=smtp.port, grace=GRACE_SECONDS)
            processes.append(third)
            await third.ready()
            await eventually(_has_mail(smtp, cut_off), what="the welcome email of the abandoned event")
            await eventually(_has_mail(smtp, finished), what="the welcome email of the finished event")
            assert _inbox_records(notifications, cut_off) == 1
            for volunteer in (finished, cut_off):
                assert smtp.mails_to(volunteer.data.contact.email) == 1
    finally:
        first_gate.close()
        second_gate.close()


async def test_sigterm_lets_the_email_being_sent_finish_and_records_it_as_sent(
    notifications: Notifications, processes: list[ServiceProcess], stack: Stack
) -> None:
    volunteer = registered(notifications.tenant, channels=("email",))
    with HoldingSmtp(released=False) as smtp:
        process = notifications.start("only", mongo_url=stack.mongo_url, smtp_port=smtp.port, grace=GRACE_SECONDS)
        processes.append(process)
        await process.ready()
        await publish(stack.kafka_bootstrap, onboarded(notifications.tenant), volunteer)
        await eventually(_is_set(smtp.arrived), what="the welcome email to be in DATA, held by the server")

        process.popen.send_signal(signal.SIGTERM)
        await process.logs("shutdown: consumers stop taking messages")  # the worker stops along with them
        smtp.released.set()
        assert await process.exits_within(GRACE_SECONDS + CLOSE_SECONDS) in CLEAN_EXIT
        assert process.logged("shutdown: waiting for the deliveries in flight")[0]["in_flight"] == 1
        assert smtp.mails_to(volunteer.data.contact.email) == 1
        # Recorded as sent before the exit, so no restart sends it again when a lease runs out.
        client: MongoClient[dict[str, Any]] = MongoClient(stack.mongo_url)
        with client:
            delivery = client[notifications.database].deliveries.find_one(
                {"trigger_event_id": str(volunteer.id), "channel": "email"}
            )
        assert delivery is not None and delivery["status"] == SENT


async def test_the_outbox_relay_stops_after_the_batch_in_hand_and_marks_it(
    mongo_client: AsyncMongoClient[dict[str, Any]], database: AsyncDatabase[dict[str, Any]]
) -> None:
    await ensure_outbox_indexes(database)

    async def commit(*versions: int) -> None:
        async def work(session: AsyncClientSession) -> None:
            for version in versions:
                data = TenantOnboarded.example()
                event = new_event(data=data, tenant="relay", subject="relay", version=version, source="/lotse/test")
                await append_event(database, session, "test.shutdown.v1", event)

        await in_transaction(mongo_client, work)

    await commit(1, 2, 3)
    publishing, release = asyncio.Event(), asyncio.Event()
    published: list[bytes] = []

    async def acknowledged(value: bytes) -> None:
        await release.wait()  # the broker holds its acknowledgement
        published.append(value)

    async def publish(topic: str, key: bytes, value: bytes | None) -> Awaitable[object]:
        publishing.set()
        return acknowledged(value or b"")

    relay = OutboxRelay(database, publish, name="shutdown", poll_interval=0.05)
    relay.start()
    await asyncio.wait_for(publishing.wait(), timeout=30)
    stopping = asyncio.create_task(relay.stop(grace_seconds=GRACE_SECONDS))
    await commit(4)  # after the stop: left for the next relay
    release.set()
    await asyncio.wait_for(stopping, timeout=GRACE_SECONDS)
    assert len(published) == 3
    pending = await database[OUTBOX_COLLECTION].find({"published_at": None}).to_list()
    assert [entry["version"] for entry in pending] == [4]


def _inbox_records(notifications: Notifications, event: Envelope[Any]) -> int:
    client: MongoClient[dict[str, Any]] = MongoClient(notifications.stack.mongo_url)
    with client:
        return client[notifications.database].inbox.count_documents({"event_id": str(event.id)})


def _is_set(event: threading.Event) -> Any:
    async def probe() -> bool:
        return event.is_set()

    return probe


def _has_mail(smtp: HoldingSmtp, volunteer: Envelope[Any]) -> Any:
    async def probe() -> bool:
        return smtp.mails_to(volunteer.data.contact.email) > 0

    return probe


def _contact_version(notifications: Notifications, volunteer: Envelope[Any], version: int) -> Any:
    async def probe() -> bool:
        client: MongoClient[dict[str, Any]] = MongoClient(notifications.stack.mongo_url)
        with client:
            contact = client[notifications.database].contacts.find_one(
                {"_id": f"{volunteer.tenant}:{volunteer.data.volunteer_id}"}
            )
        return contact is not None and contact.get("version") == version

    return probe
