"""The MongoDB round trips of a partner need's path, handler by handler (issue 17).

Each service's Kafka handlers run here as the consumer runs them (its dispatch table, its unit
of work with the inbox record, on the real database), with a client that counts the commands
it sends. The bounds are what the handlers cost today: a new round trip on the need's path
fails one of these tests, and whoever adds it decides whether to lower the cost elsewhere or to
raise the bound with a reason. The consumer's own work (batches, offsets) is not counted here.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from lotse_contracts import (
    Envelope,
    OrganisationUpdated,
    TenantOnboarded,
    VolunteerPickedNeed,
    VolunteerRegistered,
    partner_inbound_topic,
    topic_for,
)
from lotse_contracts.events.values import Channel
from lotse_devstack import Stack
from lotse_devstack.smtp_sink import SmtpSink
from lotse_matching.handlers import registry_handlers
from lotse_matching.service import Matching
from lotse_matching.store import Store as MatchingStore
from lotse_notifications import catalogue
from lotse_notifications.domain import NEED_REFERENCE, reference_key
from lotse_notifications.handlers import event_handlers
from lotse_notifications.records import MailPreference, NewDelivery, OfficeMail
from lotse_notifications.settings import NotificationSettings
from lotse_notifications.store import Store as NotificationStore
from lotse_notifications.worker import DeliveryWorker
from lotse_registry import service
from lotse_registry.handlers import outcome_handlers, partner_handlers
from lotse_registry.store import Store as RegistryStore
from lotse_registry.store import ensure_indexes, in_tenant
from lotse_runtime.consumer import Delivery, Dispatch
from lotse_runtime.outbox import OUTBOX_COLLECTION
from lotse_runtime.sealed import KeyEncryptionKey, Keyring, NoKeyring, SealedSource
from lotse_runtime.unit_of_work import Batch, UnitOfWork
from tests.integration.matching import support as matching_support
from tests.integration.notifications import support as notification_support
from tests.integration.registry.support import need_body, organisation_body, tenant_body, volunteer_body
from tests.support import events
from tests.support.round_trips import CommandCounter, Commands, counting_client
from tests.support.waiting import eventually

VOLUNTEER_PICKED_NEED = events.Builder(VolunteerPickedNeed, events.MATCHING, "need_id")
ORGANISATION_UPDATED = events.Builder(OrganisationUpdated, events.REGISTRY, "organisation_id")


class Measured:
    """A database of its own on a counting client."""

    def __init__(self, stack: Stack) -> None:
        self.client, self.counter = counting_client(stack.mongo_url)
        self.name = f"round_trips_{uuid.uuid4().hex[:10]}"
        self.database = self.client[self.name]


@pytest.fixture
async def measured(stack: Stack) -> AsyncIterator[Measured]:
    running = Measured(stack)
    yield running
    await running.client.drop_database(running.name)
    await running.client.close()


async def deliver(dispatch: Dispatch, event: Envelope[Any], topic: str | None = None) -> None:
    """Hand ``event`` to the dispatch table as the consumer does."""
    delivery = Delivery(topic=topic or topic_for(event.type, event.tenant), partition=0, offset=0, key=event.key)
    await dispatch(event, delivery)


async def counted(
    counter: CommandCounter, dispatch: Dispatch, event: Envelope[Any], topic: str | None = None
) -> Commands:
    with counter.measure() as commands:
        await deliver(dispatch, event, topic)
    print(f"{event.type}: {commands.summary()}")  # the figures for the table (pytest -s)
    return commands


async def counted_batch(
    counter: CommandCounter, dispatch: Dispatch, batch_events: list[Envelope[Any]], what: str
) -> Commands:
    """Hand ``batch_events`` to the dispatch table as one consumer batch, counting its commands."""
    batch = Batch(batch_events)
    with counter.measure() as commands:
        async with batch.applying():
            for event in batch_events:
                await deliver(dispatch, event)
            await batch.commit()
    print(f"{len(batch_events)} {what} in one batch: {commands.summary()}")
    return commands


async def notifications_on(
    measured: Measured, keyring: SealedSource = NoKeyring()
) -> tuple[NotificationStore, UnitOfWork, Dispatch]:
    """Notifications' store (its indexes made), units of work and dispatch table on the counting client."""
    store = NotificationStore(measured.database)
    await store.ensure_indexes()
    unit_of_work = UnitOfWork(measured.client, store.db)
    dispatch = event_handlers(unit_of_work, store, "notifications", queued=lambda: None, keyring=keyring)
    return store, unit_of_work, dispatch


async def a_town_with_volunteers(dispatch: Dispatch) -> tuple[str, uuid.UUID, list[Envelope[VolunteerRegistered]]]:
    """A new municipality with an initiative and three registered volunteers, as notifications knows them."""
    tenant, organisation = f"rt-{uuid.uuid4().hex[:8]}", uuid.uuid4()
    await deliver(dispatch, notification_support.onboarded(tenant))
    await deliver(dispatch, notification_support.organisation_registered(tenant, organisation))
    volunteers = [notification_support.registered(tenant) for _ in range(3)]
    for registration in volunteers:
        await deliver(dispatch, registration)
    return tenant, organisation, volunteers


# --- registry: a partner's ReportNeed --------------------------------------------------------


async def test_a_partner_need_costs_the_registry_few_round_trips(measured: Measured) -> None:
    database, counter = measured.database, measured.counter
    await ensure_indexes(database)
    registry = RegistryStore(measured.client, database, key_encryption_key=KeyEncryptionKey(secrets.token_urlsafe(32)))
    tenant = f"rt-{uuid.uuid4().hex[:8]}"
    settings = tenant_body(tenant)
    onboarding = TenantOnboarded.model_validate(
        {k: v for k, v in settings.items() if k in TenantOnboarded.model_fields}
    )

    async def onboard(scope: Any) -> Any:
        return await service.onboard_tenant(scope, onboarding, {})

    await registry.unit_of_work.run(in_tenant(tenant, onboard))

    async def add_organisation(scope: Any) -> Any:
        return await service.register_organisation(scope, organisation_body())

    organisation = (await registry.unit_of_work.run(in_tenant(tenant, add_organisation)))["_id"]
    dispatch = partner_handlers(registry, "registry.partner")
    topic = partner_inbound_topic(tenant)

    def report(ref: str) -> Envelope[Any]:
        body = need_body(organisation, required_skills=["accompaniment", "bicycle_repair"])
        return events.report_need(tenant, ref, **{k: v for k, v in body.items() if k != "household_ref"})

    first = await counted(counter, dispatch, report("case-1"), topic)
    steady = [await counted(counter, dispatch, report(f"case-{n}"), topic) for n in range(2, 5)]
    reported = report("case-9")
    await deliver(dispatch, reported, topic)
    duplicate = await counted(counter, dispatch, reported, topic)

    assert await database.needs.count_documents({"tenant": tenant}) == 5
    assert await database[OUTBOX_COLLECTION].count_documents({"tenant": tenant, "type": {"$regex": "need.opened"}}) == 5
    # The inbox (a lookup and the record), the partner's reference, the need, its outbox entry,
    # the reference, the audit trail's entries (one insert per unit of work), the commit; the
    # tenant, its organisation and its districts (its postcode table's) are read once, then known.
    assert first.round_trips <= 11, first.names
    for commands in steady:
        assert commands.round_trips <= 8, commands.names
        assert commands.transactions == 1
    assert duplicate.round_trips <= 2, duplicate.names  # the inbox finds it; nothing else is read

    # Matching's word back: a volunteer committed to one of the needs.
    volunteer_id = str(uuid.uuid4())
    body = volunteer_body(organisation)
    body["consent"] |= {"given_at": datetime.now(UTC).isoformat()}
    registration = VolunteerRegistered.model_validate({"volunteer_id": volunteer_id, **body})

    async def register(scope: Any) -> Any:
        return await service.register_volunteer(scope, volunteer_id, registration, registered_via="test")

    await registry.unit_of_work.run(in_tenant(tenant, register))
    need = await database.needs.find_one({"tenant": tenant, "partner_ref": "case-2"})
    assert need is not None
    accepted = events.proposal_accepted(tenant, need["_id"], version=3, volunteer_id=volunteer_id)
    outcome = await counted(counter, Dispatch(outcome_handlers(registry, "registry.outcomes")), accepted)

    volunteer = await database.volunteers.find_one({"_id": volunteer_id})
    assert volunteer is not None and volunteer["engagements"] == [need["_id"]]
    committed = await database.needs.find_one({"_id": need["_id"]})
    assert committed is not None and committed["committed"] == [volunteer_id]
    # The inbox (lookup and record), the need, the engagement written unless the volunteer was
    # erased (one conditional update), the need's staffing, the audit trail's entries, the commit.
    assert outcome.round_trips <= 7, outcome.names


# --- matching: NeedOpened --------------------------------------------------------------------


async def test_an_opened_need_costs_matching_few_round_trips(stack: Stack, measured: Measured) -> None:
    database, counter = measured.database, measured.counter
    settings = matching_support.service_settings(stack, measured.name, database=measured.name)
    store = MatchingStore(database)
    await store.ensure_indexes()
    # The keyring as in production: the round reads its volunteers' keys to seal the proposals.
    keyring = Keyring(database, KeyEncryptionKey("a-key-encryption-key-of-thirty-two-chars"))
    matching = Matching(settings, measured.client, store, person_keys=keyring)
    await matching.load()
    dispatch = registry_handlers(matching)
    tenant = f"rt-{uuid.uuid4().hex[:8]}"
    await deliver(dispatch, matching_support.tenant_event(tenant, "ar"))
    for km in (1.0, 2.0, 3.0, 4.0):
        await deliver(dispatch, matching_support.registered(tenant, km_north=km))

    one = await counted(counter, dispatch, matching_support.opened(tenant, needed=1))
    three = await counted(counter, dispatch, matching_support.opened(tenant, needed=3))

    proposals = await database.proposals.count_documents({"tenant": tenant})
    assert proposals == 3 + 3  # k = 3 asked at a time, whether one volunteer is needed or three
    # The inbox (lookup and record), the need (a replay?), the three proposals in one write, the
    # need, the volunteers' keys in one read (to seal the proposals), the MatchProposed events in
    # one outbox write, the audit entries in one write, the commit.
    for commands in (one, three):
        assert commands.round_trips <= 9, commands.names
        assert commands.names.count("update") == 2, commands.names  # proposals, need
        assert commands.transactions == 1


# --- notifications: MatchProposed ------------------------------------------------------------


async def test_a_proposal_costs_notifications_few_round_trips(measured: Measured) -> None:
    database, counter = measured.database, measured.counter
    _, _, dispatch = await notifications_on(measured)
    tenant, organisation, volunteers = await a_town_with_volunteers(dispatch)
    need_ids = [uuid.uuid4() for _ in range(3)]
    opened = [events.need_opened(tenant, need_id, organisation_id=organisation) for need_id in need_ids]
    need_commands = [await counted(counter, dispatch, need) for need in opened]

    proposals: list[Commands] = []
    for need_id in need_ids:
        for version, registration in enumerate(volunteers, start=2):
            proposed = notification_support.proposed(tenant, need_id, registration.data.volunteer_id, version=version)
            proposals.append(await counted(counter, dispatch, proposed))

    # The first volunteer says yes to each need, which is then staffed: the office is told.
    outcomes: list[Commands] = []
    for need_id in need_ids:
        proposal = await database.proposals.find_one({"tenant": tenant, "need_id": str(need_id)})
        assert proposal is not None
        yes = events.proposal_accepted(
            tenant, need_id, version=5, volunteer_id=proposal["volunteer_id"], proposal_id=proposal["proposal_id"]
        )
        staffed = events.need_staffed(tenant, need_id, version=6, volunteer_ids=[proposal["volunteer_id"]])
        outcomes += [await counted(counter, dispatch, yes), await counted(counter, dispatch, staffed)]

    # Every proposal mailed and put in the inbox of the app, as the volunteers chose.
    queued = await database.deliveries.count_documents({"tenant": tenant, "kind": catalogue.MATCH_PROPOSED})
    assert queued == 2 * len(proposals)
    # Every event partners may receive reads the tenant's webhooks (once per transaction, so once
    # per consumer batch; here every event is a transaction of its own): never from memory, since
    # one added on another replica must get the events from then on.
    # The inbox (lookup and record), the webhooks, the need (one read decides the version, the
    # status and whether staffing events came first), the need written, the deliveries waiting
    # for it released, the commit.
    for commands in need_commands[1:]:
        assert commands.round_trips <= 7, commands.names
    # The inbox (lookup and record), the webhooks, the staffing version advanced and the need
    # read in one command, the proposal, the contact, both channels' deliveries in one write, the
    # commit; the tenant comes from memory.
    for commands in proposals[1:]:
        assert commands.round_trips <= 8, commands.names
        assert commands.transactions == 1
    # Each with the webhooks. An acceptance: the inbox (lookup and record), staffing, the proposal's status, the
    # contact, the deliveries, the engagement's schedule (read and written), the commit. A
    # staffed need: the inbox, staffing, the need's state, the office's and the organisation's
    # mails in one write, the commit; the organisation and both mailboxes' digest choice come
    # from memory after the first.
    accepted_commands, staffed_commands = outcomes[2::2], outcomes[3::2]
    for commands in accepted_commands:
        assert commands.round_trips <= 10, commands.names
    for commands in staffed_commands:
        assert commands.round_trips <= 7, commands.names
    office = await database.deliveries.count_documents({"tenant": tenant, "kind": catalogue.NEED_STAFFED})
    assert office == 2 * len(need_ids)  # the office and the organisation, once per need


async def test_the_sealed_proposals_of_a_batch_read_their_keys_and_contacts_once(measured: Measured) -> None:
    database, counter = measured.database, measured.counter
    keyring = Keyring(database, KeyEncryptionKey("a-key-encryption-key-of-thirty-two-chars"))
    _, _, dispatch = await notifications_on(measured, keyring)
    tenant, organisation, volunteers = await a_town_with_volunteers(dispatch)
    opened = events.need_opened(tenant, organisation_id=organisation)
    await deliver(dispatch, opened)
    need_id = opened.data.need_id
    proposals = [
        await notification_support.sealed_proposal(keyring, tenant, need_id, registration.data.volunteer_id, version)
        for version, registration in enumerate(volunteers, start=2)
    ]

    # The need's proposals, taken by the consumer at once.
    commands = await counted_batch(counter, dispatch, proposals, "sealed proposals")

    stored = await database.proposals.find({"tenant": tenant}).to_list()
    assert len(stored) == 3 and all(proposal["payload"]["reasons"] for proposal in stored)  # opened
    queued = await database.deliveries.count_documents({"tenant": tenant, "kind": catalogue.MATCH_PROPOSED})
    assert queued == 2 * len(proposals)
    # The batch's inbox lookup, the webhooks, the volunteers' keys and their contacts: each once
    # for the batch, not once per proposal (3 + 2 x 3 = 9 before).
    assert commands.names.count("find") == 4, commands.names
    # Per proposal: the staffing version and the need, the proposal, the deliveries; then the
    # inbox records and the commit.
    assert commands.round_trips <= 4 + 3 * len(proposals) + 2, commands.names


async def test_the_needs_of_a_batch_release_what_waits_for_them_in_one_write(measured: Measured) -> None:
    database, counter = measured.database, measured.counter
    store, unit_of_work, dispatch = await notifications_on(measured)
    tenant, organisation = f"rt-{uuid.uuid4().hex[:8]}", uuid.uuid4()
    await deliver(dispatch, notification_support.onboarded(tenant))
    await deliver(dispatch, notification_support.organisation_registered(tenant, organisation))
    opened = [events.need_opened(tenant, organisation_id=organisation) for _ in range(3)]
    # A proposal mail that came before its need: the worker waits for the need (``NotYet``).
    need_id = str(opened[1].data.need_id)
    payload = {"need_id": need_id}
    waiting = NewDelivery(
        tenant, need_id, need_id, catalogue.MATCH_PROPOSED, "volunteer", "v-1", Channel.EMAIL, "de", payload
    )
    (queued,) = await unit_of_work.run(lambda transaction: store.add_deliveries(transaction, [waiting]))
    later = datetime.now(UTC) + timedelta(hours=1)
    wait = {"waiting_for": reference_key(tenant, NEED_REFERENCE, need_id), "next_attempt_at": later}
    await database.deliveries.update_one({"_id": queued.id}, {"$set": wait})

    commands = await counted_batch(counter, dispatch, opened, "needs opened")  # the consumer took them at once

    released = await database.deliveries.find_one({"_id": queued.id})
    assert released is not None and "waiting_for" not in released and released["next_attempt_at"] < later
    # Each need written, and what waits for any of them released once for the batch (6 before).
    assert commands.names.count("update") == len(opened) + 1, commands.names


async def test_a_worker_pass_that_finds_nothing_due_costs_one_round_trip(measured: Measured) -> None:
    store = NotificationStore(measured.database)
    await store.ensure_indexes()
    unit_of_work = UnitOfWork(measured.client, store.db)
    tenant, lease = f"rt-{uuid.uuid4().hex[:8]}", timedelta(seconds=30)

    # A poll, or a wake-up after a commit that queued nothing: the read, no transaction (2 before).
    with measured.counter.measure() as idle:
        assert await store.claim_due("worker:1", lease, 10) == []
    assert idle.names == ["find"], idle.names

    def mail(volunteer_id: str) -> NewDelivery:
        trigger = str(uuid.uuid4())
        return NewDelivery(tenant, trigger, trigger, "welcome", "volunteer", volunteer_id, Channel.EMAIL, "de", {})

    queued = [mail(f"v-{n}") for n in range(3)]
    await unit_of_work.run(lambda transaction: store.add_deliveries(transaction, queued))
    with measured.counter.measure() as busy:
        claimed = await store.claim_due("worker:2", lease, 10)
    assert len(claimed) == 3 and {delivery.claimed_by for delivery in claimed} == {"worker:2"}
    # The read, the claim (one conditional update for all), its commit: as many as before.
    assert busy.names == ["find", "update", "commitTransaction"], busy.names
    with measured.counter.measure() as again:
        assert await store.claim_due("worker:3", lease, 10) == []  # claimed: not due for another
    assert again.names == ["find"], again.names


async def test_proposal_mails_cost_the_delivery_worker_round_trips_per_pass_not_per_delivery(
    stack: Stack, measured: Measured, monkeypatch: pytest.MonkeyPatch
) -> None:
    database, counter = measured.database, measured.counter
    store, unit_of_work, dispatch = await notifications_on(measured)
    tenant, organisation, volunteers = await a_town_with_volunteers(dispatch)
    for _ in range(3):  # three needs, each proposed to the three volunteers: 9 mails, 9 in-app messages
        opened = events.need_opened(tenant, organisation_id=organisation)
        await deliver(dispatch, opened)
        for version, registration in enumerate(volunteers, start=2):
            volunteer_id = registration.data.volunteer_id
            await deliver(
                dispatch, notification_support.proposed(tenant, opened.data.need_id, volunteer_id, version=version)
            )
    proposals = {"tenant": tenant, "kind": catalogue.MATCH_PROPOSED}
    queued = await database.deliveries.count_documents(proposals | {"status": "pending"})

    # Looked at on a client of its own: the test's reads are not the worker's cost.
    looking: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.mongo_url, tz_aware=True)

    async def sent() -> bool:
        done = await looking[measured.name].deliveries.count_documents(proposals | {"status": "sent"})
        return done == queued

    with SmtpSink() as sink:
        settings = NotificationSettings(
            smtp_port=sink.smtp_port,
            worker_poll_seconds=30.0,  # one pass claims them all; no poll comes while they are sent
            delivery_lease_seconds=30.0,
            weekly_digest=False,
            answer_link_secret=notification_support.ANSWER_LINK_SECRET,
            answer_link_base_url="https://matching.lotse.example",
        )
        worker = DeliveryWorker(unit_of_work, store, settings)

        async def no_reminders() -> None:  # the reminders' scans are not the deliveries' cost
            return None

        monkeypatch.setattr(worker.planner, "run_periodically", no_reminders)
        with counter.measure() as commands:
            worker.start()
            try:
                await eventually(sent, what="the proposal mails to be sent")
            finally:
                await worker.stop()
                await looking.close()
    print(f"{queued} proposal deliveries sent: {commands.summary()}")

    assert queued == 2 * 9
    # One pass: the due ones read and claimed (find, update, commit), what the messages need read
    # in one aggregate; the outcomes recorded in groups (each: the marks, the outbox, the in-app
    # messages, the commit). Nothing per delivery.
    assert commands.names.count("find") == 1 and commands.names.count("aggregate") == 1, commands.names
    # How many groups depends on how the sends interleave (most often 1: 8 round trips for 18).
    groups = commands.transactions - 1
    assert groups >= 1 and commands.names.count("update") == 1 + groups, commands.names
    assert commands.round_trips <= 4 + 4 * groups, commands.names


async def test_a_delivery_whose_key_exists_is_left_as_it_is(measured: Measured) -> None:
    store = NotificationStore(measured.database)
    await store.ensure_indexes()
    unit_of_work = UnitOfWork(measured.client, store.db)
    tenant, trigger = f"rt-{uuid.uuid4().hex[:8]}", str(uuid.uuid4())

    def mail(channel: Channel, payload: dict[str, Any]) -> NewDelivery:
        return NewDelivery(
            tenant, trigger, trigger, catalogue.MATCH_PROPOSED, "volunteer", "v-1", channel, "de", payload
        )

    first = [mail(Channel.EMAIL, {"n": 1}), mail(Channel.IN_APP, {"n": 1})]
    added = await unit_of_work.run(lambda transaction: store.add_deliveries(transaction, first))
    again = [mail(Channel.EMAIL, {"n": 2}), mail(Channel.SMS, {"n": 2})]
    with measured.counter.measure() as commands:
        added_again = await unit_of_work.run(lambda transaction: store.add_deliveries(transaction, again))

    assert [delivery.channel for delivery in added] == [Channel.EMAIL, Channel.IN_APP]
    assert [delivery.channel for delivery in added_again] == [Channel.SMS]
    stored = {doc["channel"]: doc["payload"] for doc in await store.db.deliveries.find({"tenant": tenant}).to_list()}
    assert stored == {"email": {"n": 1}, "in_app": {"n": 1}, "sms": {"n": 2}}  # the first email untouched
    assert commands.names == ["update", "commitTransaction"], commands.names


async def test_a_tenant_changed_by_its_event_is_not_served_from_memory(measured: Measured) -> None:
    store, _, dispatch = await notifications_on(measured)
    tenant = f"rt-{uuid.uuid4().hex[:8]}"
    await deliver(dispatch, notification_support.onboarded(tenant, default_language="de"))
    assert (facts := await store.tenant(tenant)) is not None and facts.default_language == "de"
    with measured.counter.measure() as commands:
        assert await store.tenant(tenant) == facts
    assert commands.names == []  # from memory

    await deliver(dispatch, events.tenant_onboarded(tenant, version=2, default_language="en"))

    assert (changed := await store.tenant(tenant)) is not None and changed.default_language == "en"


async def test_a_need_read_after_its_engagement_schedules_it_and_one_read_first_looks_for_none(
    measured: Measured,
) -> None:
    store, _, dispatch = await notifications_on(measured)
    tenant = f"rt-{uuid.uuid4().hex[:8]}"
    await deliver(dispatch, notification_support.onboarded(tenant))
    volunteer = notification_support.registered(tenant)
    await deliver(dispatch, volunteer)
    start = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    window = {"kind": "one_off", "start": start.isoformat(), "end": (start + timedelta(hours=2)).isoformat()}
    late, first = (events.need_opened(tenant, schedule=window) for _ in range(2))
    picked = VOLUNTEER_PICKED_NEED(tenant, late.data.need_id, volunteer_id=volunteer.data.volunteer_id)
    await deliver(dispatch, picked)  # matching's topic was read before the registry's

    await deliver(dispatch, late)
    with measured.counter.measure() as commands:
        await deliver(dispatch, first)

    engagement = await store.db.proposals.find_one({"tenant": tenant, "need_id": str(late.data.need_id)})
    assert engagement is not None and engagement["starts_at"] == start
    need = await store.need(tenant, str(late.data.need_id))
    assert need is not None and need.snapshot is not None and need.staffing_version == 1
    # The inbox's lookup, the webhooks and the need: a need no staffing event came for has no
    # engagement to look for.
    assert commands.names.count("find") == 3, commands.names


async def test_an_organisation_and_a_digest_choice_changed_here_are_not_served_from_memory(measured: Measured) -> None:
    store, unit_of_work, dispatch = await notifications_on(measured)
    tenant, organisation_id = f"rt-{uuid.uuid4().hex[:8]}", uuid.uuid4()
    await deliver(dispatch, notification_support.organisation_registered(tenant, organisation_id))
    before = await store.organisation(tenant, str(organisation_id))
    assert before is not None and before.contact_email == f"initiative@{tenant}.example"
    moved = ORGANISATION_UPDATED(tenant, organisation_id, version=2, contact_email=f"new@{tenant}.example")
    await deliver(dispatch, moved)
    after = await store.organisation(tenant, str(organisation_id))
    assert after is not None and after.contact_email == f"new@{tenant}.example"

    async def choice(transaction: Any) -> MailPreference | None:
        return await store.mail_preference(tenant, "tenant", tenant, transaction)

    assert await unit_of_work.run(choice) is None  # and kept as such
    digest = MailPreference(tenant, "tenant", tenant, OfficeMail.DAILY_DIGEST, time(7, 0), datetime.now(UTC))
    await store.save_mail_preference(digest)
    chosen = await unit_of_work.run(choice)
    assert chosen is not None and chosen.delivery is OfficeMail.DAILY_DIGEST
