"""The delivery worker in batches (issue 17), against the real database and SMTP sink: many
deliveries claimed and read in one pass and mailed over one kept SMTP connection, a broken
connection opened again, two workers on one queue, and a delivery that waits for a volunteer
released by the event that brings them."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import UTC, datetime
from functools import partial
from typing import Any

import pytest
from prometheus_client import REGISTRY
from pymongo import AsyncMongoClient, monitoring
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import AutoReconnect

from lotse_contracts import parse_event, topic_for
from lotse_contracts.events.values import Channel
from lotse_devstack import Stack
from lotse_devstack.sms_sink import SmsSink
from lotse_devstack.smtp_sink import SmtpSink
from lotse_notifications.handlers import event_handlers
from lotse_notifications.recipients import Composed
from lotse_notifications.records import Contact, ContactDetails, TenantFacts
from lotse_notifications.settings import NotificationSettings
from lotse_notifications.store import Delivery, Store
from lotse_notifications.worker import DeliveryWorker
from lotse_runtime.consumer import Delivery as Received
from lotse_runtime.unit_of_work import Transaction, UnitOfWork
from tests.integration.notifications.support import mails_to, registered
from tests.support import events
from tests.support.tcp_proxy import TcpProxy
from tests.support.waiting import eventually

TENANT = "batch-town"
SENT_TYPE = "de.lotse.notifications.delivery.sent.v1"


class CommandCount(monitoring.CommandListener):
    """The commands a client sent, by (command, collection)."""

    def __init__(self) -> None:
        self.counted: Counter[tuple[str, str]] = Counter()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        target = event.command.get(event.command_name)
        self.counted[(event.command_name, target if isinstance(target, str) else "")] += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        return None

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        return None


class CountingProxy(TcpProxy):
    """A TCP proxy in front of the SMTP sink that counts the connections made through it, and
    those still open."""

    accepted = 0
    open = 0

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self.open += 1
        try:
            await super()._serve(client_reader, client_writer)
        finally:
            self.open -= 1


@pytest.fixture
def smtp_proxy(smtp_sink: SmtpSink) -> Any:
    proxy = CountingProxy(smtp_sink.smtp_port).start()
    yield proxy
    proxy.stop()


@pytest.fixture
async def store(mongo_client: AsyncMongoClient[dict[str, Any]], database: AsyncDatabase[dict[str, Any]]) -> Store:
    store = Store(database)
    await store.ensure_indexes()
    onboarded = events.tenant_onboarded(
        TENANT, name="Stadt Batch", default_language="de", coordination_email="office@batch.example"
    )
    await UnitOfWork(mongo_client, database).run(partial(store.save_tenant, TenantFacts.from_event(onboarded)))
    return store


def batch_settings(smtp_port: int, **overrides: Any) -> NotificationSettings:
    values: dict[str, Any] = {
        "smtp_port": smtp_port,
        # Long: what these tests see happens on a claim pass or a wake-up, not on a poll.
        "worker_poll_seconds": 30.0,
        "delivery_lease_seconds": 30.0,
        "retry_base_seconds": 0.1,
        "retry_max_seconds": 0.5,
        "weekly_digest": False,
        "reminder_interval_seconds": 600,
    }
    return NotificationSettings(**(values | overrides))


async def add_contact(client: AsyncMongoClient[dict[str, Any]], store: Store, volunteer_id: str) -> str:
    address = f"b{uuid.uuid4().hex[:10]}@example.org"
    contact = Contact(TENANT, volunteer_id, 1, ContactDetails("Bea", address, None, "en", (Channel.EMAIL,)))
    await UnitOfWork(client, store.db).run(partial(store.register_contact, contact))
    return address


async def queue_welcome(client: AsyncMongoClient[dict[str, Any]], store: Store, volunteer_id: str) -> Delivery:
    trigger = str(uuid.uuid4())

    async def work(transaction: Transaction) -> Delivery | None:
        return await store.add_delivery(
            transaction,
            tenant=TENANT,
            trigger_event_id=trigger,
            correlation_id=trigger,
            kind="welcome",
            recipient_kind="volunteer",
            recipient_id=volunteer_id,
            channel=Channel.EMAIL,
            language="en",
            payload={},
        )

    delivery = await UnitOfWork(client, store.db).run(work)
    assert delivery is not None
    return delivery


async def queue_welcomes(
    client: AsyncMongoClient[dict[str, Any]], store: Store, count: int
) -> list[tuple[str, Delivery]]:
    queued = []
    for _ in range(count):
        volunteer_id = str(uuid.uuid4())
        address = await add_contact(client, store, volunteer_id)
        queued.append((address, await queue_welcome(client, store, volunteer_id)))
    return queued


async def all_sent(store: Store, deliveries: list[Delivery]) -> bool:
    ids = [delivery.id for delivery in deliveries]
    return await store.db.deliveries.count_documents({"_id": {"$in": ids}, "status": "sent"}) == len(ids)


async def test_a_batch_is_claimed_read_and_recorded_in_few_round_trips_and_mailed_over_one_connection(
    stack: Stack,
    mongo_client: AsyncMongoClient[dict[str, Any]],
    database: AsyncDatabase[dict[str, Any]],
    store: Store,
    smtp_proxy: CountingProxy,
    smtp_sink: SmtpSink,
) -> None:
    queued = await queue_welcomes(mongo_client, store, 10)
    connections_before = REGISTRY.get_sample_value("lotse_notification_smtp_connections_total") or 0.0
    listener = CommandCount()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        stack.mongo_url, tz_aware=True, event_listeners=[listener]
    )
    worker_store = Store(client[database.name])
    # Never idle long enough to be closed for it: only the shutdown closes the connections.
    settings = batch_settings(smtp_proxy.port, smtp_idle_seconds=600, smtp_connections=2)
    worker = DeliveryWorker(UnitOfWork(client, worker_store.db), worker_store, settings)
    worker.start()
    try:
        await eventually(partial(all_sent, store, [delivery for _, delivery in queued]), what="the batch to be sent")
    finally:
        await worker.stop()
        await client.close()
    for address, _ in queued:
        assert len(await mails_to(smtp_sink, address)) == 1
    assert 1 <= smtp_proxy.accepted <= 2, "ten mails, at most two SMTP connections (the pool), each reused"
    connections = REGISTRY.get_sample_value("lotse_notification_smtp_connections_total") or 0.0
    assert connections - connections_before == smtp_proxy.accepted  # the operators' figure says the same

    async def closed_at_shutdown() -> bool:
        return smtp_proxy.open == 0

    await eventually(closed_at_shutdown, what="the kept connection to be closed at shutdown")
    claims = {found["claimed_by"] for found in await store.db.deliveries.find({}).to_list()}
    assert len(claims) == 1, "all ten claimed in one pass"
    counted = listener.counted
    # What the mails need of the read model read once for the whole batch, in one round trip.
    assert counted[("aggregate", "tenants")] == 1, counted
    assert not {collection for command, collection in counted if command == "find"} & {"contacts", "tenants"}
    # Claimed with one read and one update; the outcomes recorded in a few bulk writes, not ten.
    assert counted[("findAndModify", "deliveries")] == 0, counted
    assert counted[("update", "deliveries")] <= 4 and counted[("insert", "outbox")] <= 3, counted
    assert counted[("commitTransaction", "")] <= 3, counted
    sent = await store.db.outbox.count_documents({"type": SENT_TYPE})
    assert sent == 10


async def test_mails_sent_side_by_side_go_over_several_kept_connections(
    mongo_client: AsyncMongoClient[dict[str, Any]], store: Store, smtp_proxy: CountingProxy, smtp_sink: SmtpSink
) -> None:
    """An SMTP connection carries one mail at a time: mails of one pass go side by side over a pool
    of kept connections (as many as the delivery concurrency), not one after another over one."""
    queued = await queue_welcomes(mongo_client, store, 12)
    settings = batch_settings(smtp_proxy.port, smtp_idle_seconds=600, delivery_concurrency=4)
    worker = DeliveryWorker(UnitOfWork(mongo_client, store.db), store, settings)
    worker.start()
    try:
        await eventually(partial(all_sent, store, [delivery for _, delivery in queued]), what="the batch to be sent")
        assert 1 < smtp_proxy.accepted <= 4, smtp_proxy.accepted
        assert smtp_proxy.open == smtp_proxy.accepted, "each kept open for the next mails"
    finally:
        await worker.stop()
    for address, _ in queued:
        assert len(await mails_to(smtp_sink, address)) == 1

    async def closed_at_shutdown() -> bool:
        return smtp_proxy.open == 0

    await eventually(closed_at_shutdown, what="the kept connections to be closed at shutdown")


async def test_a_broken_smtp_connection_is_opened_again_and_the_mail_sent_on_it(
    mongo_client: AsyncMongoClient[dict[str, Any]], store: Store, smtp_proxy: CountingProxy, smtp_sink: SmtpSink
) -> None:
    worker = DeliveryWorker(UnitOfWork(mongo_client, store.db), store, batch_settings(smtp_proxy.port))
    worker.start()
    try:
        first = await queue_welcomes(mongo_client, store, 1)
        worker.wake()
        await eventually(partial(all_sent, store, [first[0][1]]), what="the first mail to be sent")
        assert smtp_proxy.accepted == 1
        # The kept connection breaks (a server restart, an idle timeout on the way); the proxy
        # takes new connections again at once.
        smtp_proxy.cut()
        smtp_proxy.restore()
        second = await queue_welcomes(mongo_client, store, 1)
        worker.wake()
        await eventually(partial(all_sent, store, [second[0][1]]), what="the second mail to be sent")
    finally:
        await worker.stop()
    assert smtp_proxy.accepted == 2
    (address, delivery) = second[0]
    assert len(await mails_to(smtp_sink, address)) == 1
    found = await store.db.deliveries.find_one({"_id": delivery.id})
    assert found is not None and found["attempts"] == 1, "sent on the new connection, no failed attempt"


async def test_two_workers_on_one_queue_never_send_a_delivery_twice(
    mongo_client: AsyncMongoClient[dict[str, Any]], store: Store, smtp_sink: SmtpSink
) -> None:
    queued = await queue_welcomes(mongo_client, store, 40)
    # Small batches and quick polls, so that the two claim side by side many times.
    settings = batch_settings(smtp_sink.smtp_port, delivery_batch_size=3, worker_poll_seconds=0.01)
    workers = [DeliveryWorker(UnitOfWork(mongo_client, store.db), store, settings) for _ in range(2)]
    for worker in workers:
        worker.start()
    try:
        await eventually(partial(all_sent, store, [delivery for _, delivery in queued]), what="every mail sent")
    finally:
        for worker in workers:
            await worker.stop()
    for address, _ in queued:
        assert len(await mails_to(smtp_sink, address)) == 1, address
    outcomes = [parse_event(bytes(entry["value"])) for entry in await store.db.outbox.find({}).to_list()]
    sent = [str(event.data.delivery_id) for event in outcomes if event.type == SENT_TYPE]
    assert sorted(sent) == sorted(delivery.id for _, delivery in queued)
    owners = {found["claimed_by"].split(":")[0] for found in await store.db.deliveries.find({}).to_list()}
    assert owners <= {worker.owner for worker in workers}


async def test_a_delivery_waiting_for_its_volunteer_is_released_by_the_registration(
    mongo_client: AsyncMongoClient[dict[str, Any]], store: Store, smtp_sink: SmtpSink
) -> None:
    volunteer_id = uuid.uuid4()
    delivery = await queue_welcome(mongo_client, store, str(volunteer_id))
    # Its wait would last minutes: only the registration can make it due now.
    settings = batch_settings(smtp_sink.smtp_port, retry_base_seconds=600, retry_max_seconds=600)
    unit_of_work = UnitOfWork(mongo_client, store.db)
    worker = DeliveryWorker(unit_of_work, store, settings)
    worker.start()
    try:

        async def waiting() -> Any:
            found = await store.db.deliveries.find_one({"_id": delivery.id, "waits": 1})
            return found if found is not None and found["claimed_until"].year == 1970 else None

        parked = await eventually(waiting, what="the delivery to wait for its volunteer")
        assert parked["reason"] == "no_contact"
        assert parked["next_attempt_at"] > datetime.now(UTC)
        assert parked["waiting_for"] == f"{TENANT}:contact:{volunteer_id}"

        registration = registered(TENANT, volunteer_id=volunteer_id, language="en", channels=("email",))
        dispatch = event_handlers(unit_of_work, store, "notifications", queued=worker.wake)
        await dispatch(registration, Received(topic_for(registration.type, TENANT), 0, 0, registration.key))

        released = await store.db.deliveries.find_one({"_id": delivery.id})
        assert released is not None and "waiting_for" not in released
        assert released["next_attempt_at"] <= datetime.now(UTC), "due at once, by the event"

        async def sent() -> Any:
            return await store.db.deliveries.find_one({"_id": delivery.id, "status": "sent"})

        await eventually(sent, what="the released delivery to be sent")
    finally:
        await worker.stop()
    address = registration.data.contact.email
    welcomes = await mails_to(smtp_sink, address, "welcome")
    assert delivery.id in {mail["message_id"].strip("<>").split("@")[0] for mail in welcomes}


async def test_a_volunteer_applied_while_the_message_was_composed_ends_the_wait_at_once(
    mongo_client: AsyncMongoClient[dict[str, Any]], store: Store, smtp_sink: SmtpSink, monkeypatch: Any
) -> None:
    """The registration is applied after the pass read the read model but before the wait is
    recorded: its event found nothing waiting, so the worker itself sees that the volunteer is
    there now and makes the delivery due at once instead of waiting minutes."""
    volunteer_id = str(uuid.uuid4())
    delivery = await queue_welcome(mongo_client, store, volunteer_id)
    real_read = store.read_for_batch
    reads = {"count": 0}
    address = ""

    async def read_then_register(**wanted: Any) -> Any:
        nonlocal address
        found = await real_read(**wanted)
        reads["count"] += 1
        if reads["count"] == 1:  # the pass read without the volunteer; now they arrive
            address = await add_contact(mongo_client, store, volunteer_id)
        return found

    monkeypatch.setattr(store, "read_for_batch", read_then_register)
    settings = batch_settings(smtp_sink.smtp_port, retry_base_seconds=600, retry_max_seconds=600)
    worker = DeliveryWorker(UnitOfWork(mongo_client, store.db), store, settings)
    worker.start()
    try:

        async def sent() -> Any:
            return await store.db.deliveries.find_one({"_id": delivery.id, "status": "sent"})

        done = await eventually(sent, what="the delivery to be sent after its volunteer arrived")
    finally:
        await worker.stop()
    assert done["waits"] == 1 and done["reason"] == "no_contact", "it waited once, then went at once"
    assert len(await mails_to(smtp_sink, address, "welcome")) == 1


async def test_an_idle_smtp_connection_is_closed(
    mongo_client: AsyncMongoClient[dict[str, Any]], store: Store, smtp_proxy: CountingProxy
) -> None:
    settings = batch_settings(smtp_proxy.port, smtp_idle_seconds=0.2)
    worker = DeliveryWorker(UnitOfWork(mongo_client, store.db), store, settings)
    worker.start()
    try:
        (first,) = await queue_welcomes(mongo_client, store, 1)
        worker.wake()
        await eventually(partial(all_sent, store, [first[1]]), what="the first mail to be sent")

        async def closed() -> bool:
            return smtp_proxy.accepted == 1 and smtp_proxy.open == 0

        await eventually(closed, what="the idle connection to be closed while the worker runs")
        (second,) = await queue_welcomes(mongo_client, store, 1)
        worker.wake()
        await eventually(partial(all_sent, store, [second[1]]), what="the second mail to be sent")
        assert smtp_proxy.accepted == 2  # a new connection for the mail after the idle time
    finally:
        await worker.stop()


async def test_a_sent_mail_whose_record_fails_for_a_moment_is_recorded_later_and_not_sent_again(
    mongo_client: AsyncMongoClient[dict[str, Any]], store: Store, smtp_sink: SmtpSink, monkeypatch: Any
) -> None:
    """The database is away for a moment when the outcome of a sent mail is written: the record is
    tried again until it holds, not given up (the lease would then bring the mail back, and it
    would go out again)."""
    ((address, delivery),) = await queue_welcomes(mongo_client, store, 1)
    real_finish = store.finish_many
    failures_left = 3

    async def away_for_a_moment(outcomes: list[tuple[Delivery, Any]], session: AsyncClientSession) -> set[str]:
        nonlocal failures_left
        if failures_left:
            failures_left -= 1
            raise AutoReconnect("connection closed")
        return await real_finish(outcomes, session)

    monkeypatch.setattr(store, "finish_many", away_for_a_moment)
    # A short lease and quick polls: a record given up would see the mail claimed and sent again soon.
    settings = batch_settings(smtp_sink.smtp_port, delivery_lease_seconds=3.0, worker_poll_seconds=0.05)
    worker = DeliveryWorker(UnitOfWork(mongo_client, store.db), store, settings)
    worker.start()
    try:
        await eventually(partial(all_sent, store, [delivery]), what="the mail to be recorded as sent")
    finally:
        await worker.stop()
    assert failures_left == 0
    assert len(await mails_to(smtp_sink, address)) == 1, "sent once, recorded after the database came back"
    found = await store.db.deliveries.find_one({"_id": delivery.id})
    assert found is not None and found["attempts"] == 1
    assert await store.db.outbox.count_documents({"type": SENT_TYPE}) == 1


async def test_an_sms_whose_composing_outlasted_its_lease_is_given_back_not_sent_beside_the_next_claim(
    mongo_client: AsyncMongoClient[dict[str, Any]], store: Store, smtp_sink: SmtpSink, monkeypatch: Any
) -> None:
    """The first attempt's composing lasts until the lease ran out and the delivery was claimed
    again: that attempt must not send any more (the new claim sends), or the SMS goes out twice."""
    token = "sink-token-" + "y" * 24
    volunteer_id = str(uuid.uuid4())
    number = f"+49151{uuid.uuid4().int % 10**8:08d}"
    contact = Contact(TENANT, volunteer_id, 1, ContactDetails("Bea", "bea@example.org", number, "en", (Channel.SMS,)))
    await UnitOfWork(mongo_client, store.db).run(partial(store.register_contact, contact))
    trigger = str(uuid.uuid4())

    async def queue(transaction: Transaction) -> Delivery | None:
        return await store.add_delivery(
            transaction,
            tenant=TENANT,
            trigger_event_id=trigger,
            correlation_id=trigger,
            kind="welcome",
            recipient_kind="volunteer",
            recipient_id=volunteer_id,
            channel=Channel.SMS,
            language="en",
            payload={},
        )

    delivery = await UnitOfWork(mongo_client, store.db).run(queue)
    assert delivery is not None
    with SmsSink(token=token) as sms_sink:
        settings = batch_settings(
            smtp_sink.smtp_port,
            sms_gateway_url=sms_sink.url,
            sms_gateway_token=token,
            delivery_lease_seconds=1.0,
            worker_poll_seconds=0.05,
        )
        worker = DeliveryWorker(UnitOfWork(mongo_client, store.db), store, settings)
        real_compose = worker.composer.compose
        composed_first: list[str | None] = []

        async def slow_first(claimed: Delivery, reads: Any) -> Composed:
            if not composed_first:
                composed_first.append(claimed.claimed_by)

                async def claimed_again() -> Any:
                    found = await store.db.deliveries.find_one({"_id": claimed.id})
                    return found if found is not None and found["claimed_by"] != claimed.claimed_by else None

                await eventually(claimed_again, what="the lease to run out and the delivery to be claimed again")
            return await real_compose(claimed, reads)

        monkeypatch.setattr(worker.composer, "compose", slow_first)
        worker.start()
        try:
            await eventually(partial(all_sent, store, [delivery]), what="the SMS to be recorded as sent")
            # The first attempt has finished too (given back, or sent: then its SMS is in the sink).
            await eventually(lambda: _no_attempts(worker), what="the first attempt to finish")
        finally:
            await worker.stop()
        assert len(sms_sink.messages(number)) == 1, "sent by the second claim only"


async def _no_attempts(worker: DeliveryWorker) -> bool:
    return not worker._in_flight
