"""The office's day and the volunteer's engagement on the real broker, database, SMTP sink and the
devstack's SMS sink (a stand-in HTTP SMS gateway): the staffed mail names who committed with what
they agreed to share, the confirmation names whom to ask, an engagement is reminded by email
(with its calendar entry) and SMS and thanked after, the office that chose a daily digest gets one
instead of a mail per event, and the office hears once of a volunteer no chosen channel reaches.

One running service for the module, serving only this module's tenants; each test has its own."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio

from lotse_contracts import Envelope, VolunteerPickedNeed, VolunteerProfileUpdated, VolunteerRegistered
from lotse_devstack import Stack
from lotse_devstack.sms_sink import Sms, SmsSink
from lotse_devstack.smtp_sink import SmtpSink
from lotse_notifications import catalogue
from lotse_runtime.auth import Role
from tests.integration.notifications.support import (
    Running,
    mails_to,
    onboarded,
    service_settings,
    serving,
    wait_for_mail,
)
from tests.support import events, tokens
from tests.support.waiting import eventually

pytestmark = pytest.mark.asyncio(loop_scope="module")

SMS_TOKEN = "sms-gateway-token-" + uuid.uuid4().hex
profile_updated = events.Builder(VolunteerProfileUpdated, events.REGISTRY, "volunteer_id")


@pytest.fixture(scope="module")
def sms_sink() -> Iterator[SmsSink]:
    with SmsSink(token=SMS_TOKEN) as sink:
        yield sink


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def service(stack: Stack, smtp_sink: SmtpSink, sms_sink: SmsSink) -> AsyncIterator[Running]:
    prefix = f"f{uuid.uuid4().hex[:6]}"
    settings = service_settings(
        stack,
        smtp_sink,
        prefix,
        retry_base_seconds=0.2,
        retry_max_seconds=1.0,
        delivery_max_attempts=3,
        reminder_interval_seconds=0.3,
        sms_gateway_url=sms_sink.url,
        sms_gateway_token=SMS_TOKEN,
    )
    async with serving(Running, stack, settings, prefix) as running:
        yield running


def initiative(tenant: str) -> Envelope[Any]:
    return events.organisation_registered(
        tenant, name="Willkommen Mitte e. V.", contact_email=f"initiative@{tenant}.example"
    )


def volunteer(
    tenant: str,
    name: str,
    *,
    channels: Sequence[str] = ("email", "in_app"),
    purposes: Sequence[str] = ("matching", "contact"),
    phone: str | None = None,
) -> Envelope[VolunteerRegistered]:
    """A volunteer of an initiative other than the need's owner, with a mailbox and number of their own."""
    example = VolunteerRegistered.example()
    contact = example.contact.model_dump(mode="json") | {
        "display_name": name,
        "email": f"v{uuid.uuid4().hex[:12]}@example.org",
        "phone": phone or f"+49151{uuid.uuid4().int % 10**8:08d}",
        "channels": list(channels),
    }
    consent = example.consent.model_dump(mode="json") | {"purposes": list(purposes)}
    return events.volunteer_registered(tenant, contact=contact, consent=consent, organisation_id=uuid.uuid4())


def initiative_admin(tenant: str, organisation: Envelope[Any]) -> dict[str, str]:
    organisation_id = str(organisation.data.organisation_id)
    token = tokens.issue(str(uuid.uuid4()), [Role.INITIATIVE_ADMIN], tenant=tenant, organisation=organisation_id)
    return {"Authorization": f"Bearer {token}"}


def window(start: datetime, hours: int = 2) -> dict[str, Any]:
    return {"kind": "one_off", "start": start.isoformat(), "end": (start + timedelta(hours=hours)).isoformat()}


async def sms_to(sink: SmsSink, number: str, count: int = 1) -> list[Sms]:
    async def arrived() -> list[Sms] | None:
        found = sink.messages(number)
        return found if len(found) >= count else None

    return await eventually(arrived, what=f"{count} SMS to {number}")


async def test_the_staffed_mail_names_who_committed_with_only_the_contact_data_they_agreed_to_share(
    service: Running, smtp_sink: SmtpSink
) -> None:
    tenant = service.new_tenant()
    owner = initiative(tenant)
    sharing = volunteer(tenant, "Amira", purposes=("matching", "contact", "share_with_organisation"))
    keeping = volunteer(tenant, "Bogdan")
    need = events.need_opened(tenant, organisation_id=owner.data.organisation_id)
    await service.applied(tenant, onboarded(tenant), owner, sharing, keeping, need)
    committed = [sharing.data.volunteer_id, keeping.data.volunteer_id]
    await service.publish(events.need_staffed(tenant, need.data.need_id, volunteer_ids=committed))

    for address in (f"office@{tenant}.example", f"initiative@{tenant}.example"):
        text = (await wait_for_mail(smtp_sink, address, catalogue.NEED_STAFFED))["text"]
        shared = sharing.data.contact
        assert f"- Amira, {shared.email}, {shared.phone}" in text.splitlines(), text
        assert "- Bogdan" in text.splitlines()  # the name, and nothing more
        kept = keeping.data.contact
        assert kept.email not in text and str(kept.phone) not in text
    stored = await service.deliveries(tenant, kind=catalogue.NEED_STAFFED)
    assert stored and all("@" not in str(delivery.get("payload")) for delivery in stored)


async def test_the_confirmation_names_the_needs_organisation_as_the_volunteers_contact(
    service: Running, smtp_sink: SmtpSink
) -> None:
    tenant = service.new_tenant()
    owner = initiative(tenant)
    helper = volunteer(tenant, "Cem", channels=("email",))
    need = events.need_opened(tenant, organisation_id=owner.data.organisation_id)
    await service.applied(tenant, onboarded(tenant), owner, helper, need)
    picked = events.event(
        VolunteerPickedNeed,
        tenant,
        need.data.need_id,
        source=events.MATCHING,
        need_id=need.data.need_id,
        volunteer_id=helper.data.volunteer_id,
    )
    await service.publish(picked)

    mail = await wait_for_mail(smtp_sink, helper.data.contact.email, catalogue.PROPOSAL_ACCEPTED)
    assert f"Willkommen Mitte e. V., initiative@{tenant}.example" in mail["text"]
    assert "So geht es weiter:" in mail["text"] and "Einen Tag vorher erinnern wir Sie" in mail["text"]


async def test_an_engagement_is_reminded_by_email_with_its_calendar_entry_and_by_sms_and_thanked_after(
    service: Running, smtp_sink: SmtpSink, sms_sink: SmsSink
) -> None:
    tenant = service.new_tenant()
    helper = volunteer(tenant, "Dana", channels=("email", "sms"))
    start = (datetime.now(UTC) + timedelta(hours=3)).replace(microsecond=0)
    coming = events.need_opened(tenant, schedule=window(start), description="Begleitung zum Jobcenter")
    past = events.need_opened(tenant, schedule=window(datetime.now(UTC) - timedelta(hours=4)), description="Umzug")
    await service.applied(tenant, onboarded(tenant), helper, coming, past)
    for need in (coming, past):
        proposal = events.match_proposed(tenant, need.data.need_id, volunteer_id=helper.data.volunteer_id)
        accepted = events.proposal_accepted(
            tenant,
            need.data.need_id,
            version=2,
            volunteer_id=helper.data.volunteer_id,
            proposal_id=proposal.data.proposal_id,
        )
        await service.publish(proposal, accepted)

    address, number = helper.data.contact.email, str(helper.data.contact.phone)
    reminder = await wait_for_mail(smtp_sink, address, catalogue.ENGAGEMENT_REMINDER)
    assert "Begleitung zum Jobcenter" in reminder["text"] and "Umzug" not in reminder["text"]
    (message,) = [m.parsed() for m in smtp_sink.store.all() if m.parsed()["Message-ID"] == reminder["message_id"]]
    (entry,) = [part for part in message.iter_attachments() if part.get_content_type() == "text/calendar"]
    calendar = entry.get_content()
    calendar = calendar.decode() if isinstance(calendar, bytes) else calendar
    assert f"UID:{coming.data.need_id}@lotse" in calendar  # the same event as in the calendar feed

    thanks = await wait_for_mail(smtp_sink, address, catalogue.ENGAGEMENT_THANKS)
    assert "Umzug" in thanks["text"] and "vielen Dank für Ihre Hilfe" in thanks["text"]

    texts = [sms.text for sms in await sms_to(sms_sink, number, count=2)]
    assert any(text.startswith(reminder["subject"]) for text in texts), texts
    assert all("/answers/" not in text for text in texts)
    # Each once, whatever the scheduler's passes since.
    assert len(await mails_to(smtp_sink, address, catalogue.ENGAGEMENT_REMINDER)) == 1
    assert len(await mails_to(smtp_sink, address, catalogue.ENGAGEMENT_THANKS)) == 1


async def test_an_office_that_chose_a_daily_digest_gets_one_digest_instead_of_a_mail_per_event(
    service: Running, smtp_sink: SmtpSink
) -> None:
    tenant = service.new_tenant()
    coordinator = service.coordinator(tenant)
    refused = await service.http.put("/mail-preferences/office", json={"delivery": "weekly"}, headers=coordinator)
    assert refused.status_code == 422 and "delivery" in refused.text
    chosen = await service.http.put(
        "/mail-preferences/office", json={"delivery": "daily_digest", "digest_time": "00:00"}, headers=coordinator
    )
    assert chosen.status_code == 200, chosen.text
    assert (await service.http.get("/mail-preferences/office", headers=coordinator)).json()["delivery"] == (
        "daily_digest"
    )
    owner = initiative(tenant)
    need = events.need_opened(tenant, organisation_id=owner.data.organisation_id, description="Kinderbetreuung Kita")
    await service.applied(tenant, onboarded(tenant), owner, need)
    await service.publish(events.need_unstaffed(tenant, need.data.need_id, organisation_id=owner.data.organisation_id))

    # The organisation (which chose nothing) gets its mail; the office's event waits for the digest.
    await wait_for_mail(smtp_sink, f"initiative@{tenant}.example", catalogue.NEED_UNSTAFFED)
    assert await service.deliveries(tenant, kind=catalogue.NEED_UNSTAFFED, recipient_kind="tenant") == []
    assert await service.database.digest_items.count_documents({"tenant": tenant, "digest": None}) == 1

    # Tomorrow at midnight, the tenant's time: the digest.
    planner = service.app.state.worker.planner
    assert await planner.daily_digests_due(datetime.now(UTC) + timedelta(days=1)) >= 1
    digest = await wait_for_mail(smtp_sink, f"office@{tenant}.example", catalogue.DAILY_DIGEST)
    assert "Kinderbetreuung Kita" in digest["text"] and "Ohne genug Engagierte:" in digest["text"]


async def test_an_organisations_choice_is_for_its_own_admins_and_the_coordinators(service: Running) -> None:
    tenant = service.new_tenant()
    owner, other = initiative(tenant), initiative(tenant)
    await service.applied(tenant, onboarded(tenant), owner, other)
    path = f"/mail-preferences/organisations/{owner.data.organisation_id}"
    own_admin = initiative_admin(tenant, owner)
    shown = await service.http.get(path, headers=own_admin)
    assert shown.status_code == 200 and shown.json()["delivery"] == "each_event"
    chosen = await service.http.put(path, json={"delivery": "daily_digest"}, headers=own_admin)
    assert chosen.status_code == 200 and chosen.json()["digest_time"] == "07:00"  # the default time

    other_admin = initiative_admin(tenant, other)
    assert (await service.http.put(path, json={"delivery": "each_event"}, headers=other_admin)).status_code == 404
    assert (await service.http.get(path, headers=service.auth(Role.VOLUNTEER, tenant))).status_code == 403
    elsewhere = service.coordinator(service.new_tenant())
    assert (await service.http.get(path, headers=elsewhere)).status_code == 404
    by_office = await service.http.get(path, headers=service.coordinator(tenant))
    assert by_office.json()["delivery"] == "daily_digest"


async def test_a_volunteer_no_chosen_channel_reaches_is_reported_to_the_office_once(
    service: Running, smtp_sink: SmtpSink, sms_sink: SmsSink
) -> None:
    tenant = service.new_tenant()
    number = f"+49151{uuid.uuid4().int % 10**8:08d}"
    sms_sink.refused.add(number)  # a number that does not exist
    lost = volunteer(tenant, "Emre", channels=("sms",), phone=number)
    await service.applied(tenant, onboarded(tenant), lost)

    office = f"office@{tenant}.example"
    notice = await wait_for_mail(smtp_sink, office, catalogue.VOLUNTEER_UNREACHABLE)
    assert "Emre" in notice["subject"] and "Emre" in notice["text"]
    assert "SMS: Die Adresse oder Nummer wurde abgewiesen." in notice["text"]
    assert number not in notice["text"]  # no consent to share it, and not the office's own volunteer
    welcome = await service.deliveries(tenant, kind=catalogue.WELCOME, channel="sms")
    assert [(d["status"], d["reason"]) for d in welcome] == [("dead", "sms_http_400")]

    # Another update that leaves them unreachable: no second notice.
    contact = lost.data.contact.model_dump(mode="json") | {"display_name": "Emre K."}
    await service.publish(profile_updated(tenant, lost.data.volunteer_id, version=2, contact=contact))

    async def updated() -> bool:
        found = await service.database.contacts.find_one({"_id": f"{tenant}:{lost.data.volunteer_id}"})
        return found is not None and found["version"] == 2

    await eventually(updated, what="the profile update to be applied")
    assert len(await mails_to(smtp_sink, office, catalogue.VOLUNTEER_UNREACHABLE)) == 1
    notices = await service.deliveries(tenant, kind=catalogue.VOLUNTEER_UNREACHABLE)
    assert len(notices) == 1


async def test_sms_is_offered_where_a_gateway_is_configured(service: Running) -> None:
    tenant = service.new_tenant()
    offered = await service.http.get("/channels", headers=service.auth(Role.VOLUNTEER, tenant))
    assert offered.json() == {"channels": ["email", "in_app", "sms"]}
    assert (await service.http.get("/channels")).status_code == 401
