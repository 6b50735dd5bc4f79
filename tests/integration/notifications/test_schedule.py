"""What notifications sends on its own schedule, against the real database and SMTP sink (no broker
needed): the reminder before an engagement and the daily digest are planned once, whatever
restarts or a second replica do, and sent once by whichever worker comes up."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, time, timedelta
from functools import partial
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from lotse_contracts import NeedStaffed
from lotse_contracts.events.values import Channel
from lotse_devstack.smtp_sink import SmtpSink
from lotse_notifications import catalogue, domain
from lotse_notifications.records import (
    Contact,
    ContactDetails,
    DigestItem,
    MailPreference,
    NeedSnapshot,
    NeedStatus,
    OfficeMail,
    Proposal,
    ProposalStatus,
    TenantFacts,
)
from lotse_notifications.reminders import Planner
from lotse_notifications.settings import NotificationSettings
from lotse_notifications.store import Store
from lotse_notifications.worker import DeliveryWorker
from lotse_runtime.unit_of_work import Transaction, UnitOfWork
from tests.integration.notifications.support import mails_to, wait_for_mail
from tests.support import events
from tests.support.waiting import eventually

TENANT = "schedule-town"
OFFICE = "office@schedule.example"


@pytest.fixture
async def store(mongo_client: AsyncMongoClient[dict[str, Any]], database: AsyncDatabase[dict[str, Any]]) -> Store:
    store = Store(database)
    await store.ensure_indexes()
    onboarded = events.tenant_onboarded(TENANT, name="Stadt Plan", default_language="de", coordination_email=OFFICE)
    await UnitOfWork(mongo_client, database).run(partial(store.save_tenant, TenantFacts.from_event(onboarded)))
    return store


def settings(sink: SmtpSink) -> NotificationSettings:
    return NotificationSettings(
        smtp_port=sink.smtp_port,
        worker_poll_seconds=0.05,
        delivery_lease_seconds=2.0,
        weekly_digest=False,
        # The background pass runs once when a worker starts; the tests call the passes themselves.
        reminder_interval_seconds=3600,
    )


async def volunteer(client: AsyncMongoClient[dict[str, Any]], store: Store, *, share: bool = True) -> Contact:
    volunteer_id = str(uuid.uuid4())
    details = ContactDetails("Wanda", f"w{uuid.uuid4().hex[:10]}@example.org", "+4915112345678", "de", (Channel.EMAIL,))
    contact = Contact(
        TENANT, volunteer_id, 1, details, contact_consent=True, organisation_id=str(uuid.uuid4()), share_consent=share
    )
    await UnitOfWork(client, store.db).run(partial(store.register_contact, contact))
    return contact


async def engagement(
    client: AsyncMongoClient[dict[str, Any]], store: Store, contact: Contact, start: datetime
) -> tuple[str, NeedSnapshot]:
    """An accepted proposal of ``contact`` for a one-off need starting at ``start``, scheduled."""
    window = {"kind": "one_off", "start": start.isoformat(), "end": (start + timedelta(hours=2)).isoformat()}
    opened = events.need_opened(TENANT, schedule=window, description=f"Begleitung {uuid.uuid4().hex[:6]}")
    need_id, snapshot = str(opened.data.need_id), NeedSnapshot.from_event(opened.data)
    proposal_id = str(uuid.uuid4())

    async def work(transaction: Transaction) -> None:
        await store.save_need(TENANT, need_id, 1, transaction, snapshot=snapshot, status=NeedStatus.OPEN)
        accepted = Proposal(TENANT, proposal_id, need_id, contact.volunteer_id, ProposalStatus.ACCEPTED)
        await store.save_proposal(accepted, transaction)
        starts_at, ends_at = domain.engagement_window(snapshot.schedule, "Europe/Berlin", datetime.now(UTC))
        await store.schedule_engagement(TENANT, proposal_id, starts_at, ends_at, transaction)

    await UnitOfWork(client, store.db).run(work)
    return proposal_id, snapshot


def worker(client: AsyncMongoClient[dict[str, Any]], store: Store, sink: SmtpSink) -> DeliveryWorker:
    return DeliveryWorker(UnitOfWork(client, store.db), store, settings(sink))


def planner(client: AsyncMongoClient[dict[str, Any]], store: Store, sink: SmtpSink) -> Planner:
    """A replica's scheduler without its delivery worker (as if the process died before sending)."""
    return Planner(UnitOfWork(client, store.db), store, settings(sink), wake=lambda: None)


async def count(store: Store, kind: str, channel: Channel = Channel.EMAIL) -> int:
    return await store.db.deliveries.count_documents({"tenant": TENANT, "kind": kind, "channel": channel.value})


def stored_mails(sink: SmtpSink, address: str) -> list[Any]:
    return [message.parsed() for message in sink.store.all() if address in message.rcpt_tos]


async def test_a_reminder_planned_before_a_crash_is_sent_once_after_the_restart_and_never_planned_again(
    mongo_client: AsyncMongoClient[dict[str, Any]], store: Store, smtp_sink: SmtpSink
) -> None:
    contact = await volunteer(mongo_client, store)
    assert contact.details is not None
    start = (datetime.now(UTC) + timedelta(hours=3)).replace(microsecond=0)
    await engagement(mongo_client, store, contact, start)

    # The first process plans the reminder, then dies before its worker sends anything.
    assert await planner(mongo_client, store, smtp_sink).plan_due(datetime.now(UTC)) == 1

    restarted = worker(mongo_client, store, smtp_sink)
    restarted.start()
    try:
        assert await restarted.planner.plan_due(datetime.now(UTC)) == 0
        mail = await wait_for_mail(smtp_sink, contact.details.email, catalogue.ENGAGEMENT_REMINDER)
    finally:
        await restarted.stop()
    assert "Erinnerung an Ihren Einsatz" in mail["subject"]

    # And once more after another restart: nothing new is planned or sent.
    again = worker(mongo_client, store, smtp_sink)
    again.start()
    try:
        assert await again.planner.plan_due(datetime.now(UTC)) == 0
    finally:
        await again.stop()
    assert await count(store, catalogue.ENGAGEMENT_REMINDER) == 1
    assert len(await mails_to(smtp_sink, contact.details.email, catalogue.ENGAGEMENT_REMINDER)) == 1

    # The mail carries the calendar entry: text/calendar, the feed's UID, the window in UTC.
    (message,) = stored_mails(smtp_sink, contact.details.email)
    (entry,) = [part for part in message.iter_attachments() if part.get_content_type() == "text/calendar"]
    assert entry.get_param("method") == "PUBLISH" and entry.get_filename() == "lotse-einsatz.ics"
    calendar = entry.get_content()
    calendar = calendar.decode() if isinstance(calendar, bytes) else calendar
    assert "BEGIN:VEVENT" in calendar and "@lotse" in calendar
    assert f"DTSTART:{start.strftime('%Y%m%dT%H%M%SZ')}" in calendar


async def test_two_replicas_planning_at_the_same_moment_plan_each_reminder_once(
    mongo_client: AsyncMongoClient[dict[str, Any]], store: Store, smtp_sink: SmtpSink
) -> None:
    start = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0)
    for _ in range(3):
        await engagement(mongo_client, store, await volunteer(mongo_client, store), start)
    now = datetime.now(UTC)
    first, second = planner(mongo_client, store, smtp_sink), planner(mongo_client, store, smtp_sink)

    planned = await asyncio.gather(first.remind_engagements(now), second.remind_engagements(now))

    assert sum(planned) == 3
    assert await count(store, catalogue.ENGAGEMENT_REMINDER) == 3


async def staffed_item(
    client: AsyncMongoClient[dict[str, Any]], store: Store, contact: Contact, at: datetime
) -> DigestItem:
    need = events.need_opened(TENANT, description=f"Lernhilfe {uuid.uuid4().hex[:6]}")
    staffed = NeedStaffed(need_id=need.data.need_id, volunteer_ids=[uuid.UUID(contact.volunteer_id)])
    payload = domain.staffed_payload(staffed, NeedSnapshot.from_event(need.data))
    item = DigestItem(TENANT, "tenant", TENANT, catalogue.NEED_STAFFED, str(uuid.uuid4()), payload, at)
    await UnitOfWork(client, store.db).run(partial(store.add_digest_item, item))
    return item


async def test_the_daily_digest_goes_once_a_day_at_its_time_and_later_events_wait_for_the_next_one(
    mongo_client: AsyncMongoClient[dict[str, Any]], store: Store, smtp_sink: SmtpSink
) -> None:
    await store.save_mail_preference(
        MailPreference(TENANT, "tenant", TENANT, OfficeMail.DAILY_DIGEST, time(6, 0), datetime.now(UTC))
    )
    contact = await volunteer(mongo_client, store)
    assert contact.details is not None
    now = datetime.now(UTC)
    # Today's digest time in Berlin (UTC+1 or +2), and the days around it.
    _, today = domain.daily_digest_moment(now, "Europe/Berlin", time(6, 0))
    items = [await staffed_item(mongo_client, store, contact, today - timedelta(hours=hours)) for hours in (1, 2)]
    late = await staffed_item(mongo_client, store, contact, today + timedelta(minutes=1))
    first, second = planner(mongo_client, store, smtp_sink), planner(mongo_client, store, smtp_sink)

    assert await first.daily_digests_due(today - timedelta(minutes=1)) == 0  # not its time yet
    planned = await asyncio.gather(first.daily_digests_due(today), second.daily_digests_due(today))
    assert sum(planned) == 1
    assert await first.daily_digests_due(today + timedelta(hours=5)) == 0  # once a day

    sender = worker(mongo_client, store, smtp_sink)
    sender.start()
    try:
        mail = await wait_for_mail(smtp_sink, OFFICE, catalogue.DAILY_DIGEST)
        for item in items:
            assert item.payload["need"]["description"] in mail["text"]
        assert late.payload["need"]["description"] not in mail["text"]
        # Who committed, with the contact data the volunteer agreed to share.
        assert f"- Wanda, {contact.details.email}, +4915112345678" in mail["text"]

        # The next day's digest takes what came after today's digest time.
        assert await sender.planner.daily_digests_due(today + timedelta(days=1)) == 1

        async def two_digests() -> list[dict[str, Any]] | None:
            found = await mails_to(smtp_sink, OFFICE, catalogue.DAILY_DIGEST)
            return found if len(found) == 2 else None

        digests = await eventually(two_digests, what="the next day's digest")
    finally:
        await sender.stop()
    assert late.payload["need"]["description"] in digests[1]["text"]
    # The items went with the digests that took them (short-lived, as the record of processing says).
    assert await store.db.digest_items.count_documents({"tenant": TENANT}) == 0
    # The sent digests age in the delivery log from when they were sent.
    sent = await store.db.deliveries.find({"tenant": TENANT, "status": "sent"}).to_list()
    assert sent and all(delivery["finished_at"] == delivery["sent_at"] for delivery in sent)
    assert await count(store, catalogue.DAILY_DIGEST) == 2


async def test_two_replicas_planning_the_weekly_digest_at_the_same_moment_plan_it_once(
    mongo_client: AsyncMongoClient[dict[str, Any]], store: Store, smtp_sink: SmtpSink
) -> None:
    weekly = settings(smtp_sink).model_copy(update={"weekly_digest": True, "digest_weekday": 0, "digest_hour": 0})
    replicas = [Planner(UnitOfWork(mongo_client, store.db), store, weekly, wake=lambda: None) for _ in range(2)]
    # Monday noon in Berlin: this week's digest is due.
    now = datetime(2026, 11, 30, 11, 0, tzinfo=UTC)

    for _ in range(5):
        await store.db.deliveries.delete_many({"tenant": TENANT, "kind": catalogue.WEEKLY_DIGEST})
        planned = await asyncio.gather(*(replica.digest_due(now) for replica in replicas))
        assert sum(planned) == 1
        assert await count(store, catalogue.WEEKLY_DIGEST) == 1
