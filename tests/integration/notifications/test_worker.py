"""The delivery worker against the real database and SMTP sink (no broker needed): the durable
queue, and the one at-least-once window that SMTP leaves open, made visible."""

from __future__ import annotations

import uuid
from functools import partial
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from lotse_contracts import parse_event
from lotse_contracts.events.values import Channel
from lotse_devstack.processes import free_port
from lotse_devstack.smtp_sink import SmtpSink
from lotse_notifications.records import Contact, ContactDetails, TenantFacts
from lotse_notifications.settings import NotificationSettings
from lotse_notifications.store import Delivery, Store
from lotse_notifications.worker import DeliveryWorker
from lotse_runtime.unit_of_work import Transaction, UnitOfWork
from tests.integration.notifications.support import mails_to
from tests.support import events
from tests.support.waiting import eventually

TENANT = "worker-town"


@pytest.fixture
async def store(mongo_client: AsyncMongoClient[dict[str, Any]], database: AsyncDatabase[dict[str, Any]]) -> Store:
    store = Store(database)
    await store.ensure_indexes()
    onboarded = events.tenant_onboarded(
        TENANT, name="Stadt Worker", default_language="de", coordination_email="office@worker.example"
    )
    await UnitOfWork(mongo_client, database).run(partial(store.save_tenant, TenantFacts.from_event(onboarded)))
    return store


def worker_settings(sink: SmtpSink, **overrides: Any) -> NotificationSettings:
    values: dict[str, Any] = {
        "smtp_port": sink.smtp_port,
        "worker_poll_seconds": 0.05,
        "delivery_lease_seconds": 1.0,
        "retry_base_seconds": 0.1,
        "retry_max_seconds": 0.5,
        "weekly_digest": False,
        "reminder_interval_seconds": 60,
    }
    return NotificationSettings(**(values | overrides))


async def queue_welcome(client: AsyncMongoClient[dict[str, Any]], store: Store) -> tuple[str, Delivery]:
    volunteer_id = str(uuid.uuid4())
    address = f"w{uuid.uuid4().hex[:10]}@example.org"
    contact = Contact(TENANT, volunteer_id, 1, ContactDetails("Wanda", address, None, "en", (Channel.EMAIL,)))
    await UnitOfWork(client, store.db).run(partial(store.register_contact, contact))
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
    again = await UnitOfWork(client, store.db).run(work)
    assert again is None  # the delivery key admits one queue entry per (event, recipient, channel)
    return address, delivery


async def test_a_queued_delivery_is_sent_once_when_a_worker_comes_up(
    mongo_client: AsyncMongoClient[dict[str, Any]], store: Store, smtp_sink: SmtpSink
) -> None:
    address, delivery = await queue_welcome(mongo_client, store)
    worker = DeliveryWorker(UnitOfWork(mongo_client, store.db), store, worker_settings(smtp_sink))
    worker.start()
    try:

        async def sent() -> Any:
            found = await store.db.deliveries.find_one({"_id": delivery.id})
            return found if found is not None and found["status"] == "sent" else None

        done = await eventually(sent, what="the queued delivery to be sent")
    finally:
        await worker.stop()
    (mail,) = await mails_to(smtp_sink, address)
    assert done["attempts"] == 1 and done["language"] == "en"
    assert mail["subject"] == "Welcome, Wanda!"
    outcome = await store.db.outbox.find_one({"type": "de.lotse.notifications.delivery.sent.v1"})
    assert outcome is not None and outcome["key"] == f"{TENANT}:{delivery.id}"


async def test_a_send_whose_mark_is_lost_is_sent_again_with_the_same_message_id(
    mongo_client: AsyncMongoClient[dict[str, Any]], store: Store, smtp_sink: SmtpSink, monkeypatch: Any
) -> None:
    """The documented at-least-once window of SMTP: the server accepted the mail, then the process
    failed before marking it sent (here: every record of the first claim fails, as if the database
    stayed away until the lease was over; the worker tries again until then, then gives up). The
    lease runs out, the mail goes again, under the same Message-ID."""
    address, delivery = await queue_welcome(mongo_client, store)
    real_finish = store.finish_many
    first_claim: list[str | None] = []

    async def finish_or_crash(outcomes: list[tuple[Delivery, Any]], session: Any) -> set[str]:
        if not first_claim:
            first_claim.append(outcomes[0][0].claimed_by)
        if outcomes[0][0].claimed_by == first_claim[0]:
            raise ConnectionError("process died before the mark was committed")
        return await real_finish(outcomes, session)

    monkeypatch.setattr(store, "finish_many", finish_or_crash)
    worker = DeliveryWorker(UnitOfWork(mongo_client, store.db), store, worker_settings(smtp_sink))
    worker.start()
    try:

        async def sent() -> Any:
            found = await store.db.deliveries.find_one({"_id": delivery.id})
            return found if found is not None and found["status"] == "sent" else None

        await eventually(sent, what="the delivery to be sent after its lease ran out")
    finally:
        await worker.stop()
    mails = await mails_to(smtp_sink, address)
    assert len(mails) == 2
    assert {mail["message_id"] for mail in mails} == {f"<{delivery.id}@notifications.lotse>"}


async def test_an_unreachable_smtp_server_is_retried_then_dead_lettered_without_the_address_in_log_or_event(
    mongo_client: AsyncMongoClient[dict[str, Any]], store: Store, smtp_sink: SmtpSink
) -> None:
    address, delivery = await queue_welcome(mongo_client, store)
    # A port where nothing listens: retried with backoff, then dead-lettered with its reason.
    settings = worker_settings(smtp_sink, smtp_port=free_port(), delivery_max_attempts=3)
    worker = DeliveryWorker(UnitOfWork(mongo_client, store.db), store, settings)
    worker.start()
    try:

        async def dead() -> Any:
            found = await store.db.deliveries.find_one({"_id": delivery.id})
            return found if found is not None and found["status"] == "dead" else None

        found = await eventually(dead, what="the delivery to be dead-lettered")
    finally:
        await worker.stop()
    assert found["attempts"] == 3 and found["reason"] == "smtp_unavailable"
    failed = await store.db.outbox.find({"type": "de.lotse.notifications.delivery.failed.v1"}).to_list()
    retries = sorted(parse_event(bytes(entry["value"])).data.will_retry for entry in failed)
    assert retries == [False, True, True]
    assert address not in str(found) and all(address.encode() not in bytes(entry["value"]) for entry in failed)


async def test_what_is_queued_for_an_erased_volunteer_is_cancelled_reported_and_never_sent(
    mongo_client: AsyncMongoClient[dict[str, Any]], store: Store, smtp_sink: SmtpSink
) -> None:
    address, delivery = await queue_welcome(mongo_client, store)

    async def erase(transaction: Transaction) -> None:
        await store.erase_volunteer(TENANT, delivery.recipient_id, 2, transaction)

    await UnitOfWork(mongo_client, store.db).run(erase)
    worker = DeliveryWorker(UnitOfWork(mongo_client, store.db), store, worker_settings(smtp_sink))
    worker.start()
    try:
        # A second delivery, queued after the erasure, shows the worker ran: it is skipped at send time.
        trigger = str(uuid.uuid4())

        async def queue_late(transaction: Transaction) -> Any:
            return await store.add_delivery(
                transaction,
                tenant=TENANT,
                trigger_event_id=trigger,
                correlation_id=trigger,
                kind="welcome",
                recipient_kind="volunteer",
                recipient_id=delivery.recipient_id,
                channel=Channel.EMAIL,
                language="en",
                payload={},
            )

        late = await UnitOfWork(mongo_client, store.db).run(queue_late)
        worker.wake()

        async def skipped() -> Any:
            found = await store.db.deliveries.find_one({"_id": late.id})
            return found if found is not None and found["status"] == "skipped" else None

        assert (await eventually(skipped, what="the late delivery to be skipped"))["reason"] == "no_contact"
    finally:
        await worker.stop()
    cancelled = await store.db.deliveries.find_one({"_id": delivery.id})
    assert cancelled is not None and cancelled["status"] == "cancelled" and cancelled["reason"] == "volunteer_erased"
    assert await mails_to(smtp_sink, address) == []
    failed = [parse_event(bytes(e["value"])) for e in await store.db.outbox.find({}).to_list()]
    codes = {(str(e.data.delivery_id), e.data.error_code) for e in failed if e.type.endswith("failed.v1")}
    assert (delivery.id, "volunteer_erased") in codes and (late.id, "no_contact") in codes


async def test_a_message_for_a_volunteer_who_never_appears_is_skipped_after_the_grace_period(
    mongo_client: AsyncMongoClient[dict[str, Any]], store: Store, smtp_sink: SmtpSink
) -> None:
    trigger = str(uuid.uuid4())

    async def queue(transaction: Transaction) -> Any:
        return await store.add_delivery(
            transaction,
            tenant=TENANT,
            trigger_event_id=trigger,
            correlation_id=trigger,
            kind="welcome",
            recipient_kind="volunteer",
            recipient_id=str(uuid.uuid4()),
            channel=Channel.EMAIL,
            language="de",
            payload={},
        )

    delivery = await UnitOfWork(mongo_client, store.db).run(queue)
    settings = worker_settings(smtp_sink, reference_grace_seconds=1.0)
    worker = DeliveryWorker(UnitOfWork(mongo_client, store.db), store, settings)
    worker.start()
    try:

        async def skipped() -> Any:
            found = await store.db.deliveries.find_one({"_id": delivery.id})
            return found if found is not None and found["status"] == "skipped" else None

        found = await eventually(skipped, what="the delivery to be given up")
    finally:
        await worker.stop()
    assert found["reason"] == "no_contact" and found["waits"] >= 1 and found["attempts"] == 1
    (event,) = [parse_event(bytes(e["value"])) for e in await store.db.outbox.find({}).to_list()]
    assert event.data.error_code == "no_contact" and event.data.will_retry is False
