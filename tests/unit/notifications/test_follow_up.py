"""The office's day and the volunteer's engagement, through the real dispatch table on the
in-memory store (fakes.py): who a staffed need's mail names and what it shows of them, the daily
digest instead of a mail per event, the reminder before an engagement and the thanks after it
(planned once, cancelled when the engagement no longer happens), and word to the office when a
volunteer can be reached on none of the chosen channels. Sending and the scheduler's passes run
against the real database and SMTP sink (tests/integration/notifications/test_follow_up.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar

from lotse_contracts import (
    Envelope,
    NeedCancelled,
    NeedClosed,
    NeedUpdated,
    ProposalDeclined,
    VolunteerPickedNeed,
    VolunteerProfileUpdated,
    VolunteerRegistered,
)
from lotse_contracts.events.notifications import RecipientKind
from lotse_contracts.events.values import Channel, OneOffWindow, WeeklyRecurrence
from lotse_notifications import catalogue, domain, ical, service
from lotse_notifications.channels import SMS_MAX_CHARS, sms_text
from lotse_notifications.domain import SharedPerson
from lotse_notifications.records import Contact, ContactDetails, DigestItem, MailPreference, OfficeMail
from lotse_notifications.store import CANCELLED, PENDING, SKIPPED, Delivery
from lotse_notifications.templates import Rendered
from tests.support import events
from tests.unit.notifications.fakes import Notifications

TENANT = "musterstadt"
OFFICE = "ehrenamt@musterstadt.example"
BERLIN = ZoneInfo("Europe/Berlin")

need_updated = events.Builder(NeedUpdated, events.REGISTRY, "need_id")
need_closed = events.Builder(NeedClosed, events.REGISTRY, "need_id")
need_cancelled = events.Builder(NeedCancelled, events.REGISTRY, "need_id")
proposal_declined = events.Builder(ProposalDeclined, events.MATCHING, "need_id", "proposal_id")
volunteer_picked_need = events.Builder(VolunteerPickedNeed, events.MATCHING, "need_id")
profile_updated = events.Builder(VolunteerProfileUpdated, events.REGISTRY, "volunteer_id")


def registration(
    *,
    channels: Iterable[str] = ("email", "in_app"),
    purposes: Iterable[str] = ("matching", "contact"),
    phone: str | None = "+4915112345678",
    organisation_id: uuid.UUID | None = None,
    name: str = "Maria",
) -> Envelope[VolunteerRegistered]:
    example = VolunteerRegistered.example()
    contact = example.contact.model_dump(mode="json") | {
        "display_name": name,
        "email": f"v{uuid.uuid4().hex[:10]}@example.org",
        "phone": phone,
        "channels": list(channels),
    }
    consent = example.consent.model_dump(mode="json") | {"purposes": list(purposes)}
    return events.volunteer_registered(TENANT, contact=contact, consent=consent, organisation_id=organisation_id)


def one_off(start: datetime, hours: int = 2) -> dict[str, Any]:
    return {"kind": "one_off", "start": start.isoformat(), "end": (start + timedelta(hours=hours)).isoformat()}


@pytest.fixture
async def town() -> Notifications:
    notifications = Notifications()
    await notifications.consume(events.tenant_onboarded(TENANT, default_language="de", coordination_email=OFFICE))
    return notifications


def of_kind(notifications: Notifications, kind: str) -> list[Delivery]:
    return [d for d in notifications.store.deliveries if d.kind == kind]


def contact(
    *,
    share: bool | None = False,
    consent: bool | None = True,
    organisation_id: str | None = None,
    channels: tuple[Channel, ...] = (Channel.EMAIL,),
    phone: str | None = "+4915112345678",
    failed: tuple[Channel, ...] = (),
) -> Contact:
    details = ContactDetails("Maria", "maria@example.org", phone, "de", channels)
    return Contact(
        TENANT,
        "v1",
        1,
        details,
        contact_consent=consent,
        organisation_id=organisation_id,
        share_consent=share,
        failed_channels=failed,
    )


# --- who accepted, and what the office or the organisation may read of them -------------------------

FULL = SharedPerson("Maria", "maria@example.org", "+4915112345678")
NAME_ONLY = SharedPerson("Maria")


@pytest.mark.parametrize(
    ("known", "recipient", "shown"),
    [
        # Consent to pass the contact data on: the need's organisation and the office see it.
        (contact(share=True, organisation_id="other"), ("organisation", "owner"), FULL),
        (contact(share=True, organisation_id="other"), ("tenant", TENANT), FULL),
        # Without it: the name, except where the registry shows the contact anyway.
        (contact(organisation_id="other"), ("organisation", "owner"), NAME_ONLY),
        (contact(organisation_id="other"), ("tenant", TENANT), NAME_ONLY),
        (contact(organisation_id="owner"), ("organisation", "owner"), FULL),  # their own organisation
        (contact(organisation_id=None), ("tenant", TENANT), FULL),  # the office coordinates them itself
        (contact(organisation_id=None), ("organisation", "owner"), NAME_ONLY),
        # No consent to be contacted: never the contact data.
        (contact(share=True, consent=False, organisation_id="owner"), ("organisation", "owner"), NAME_ONLY),
        # Only a profile update read so far: what the registration said is not known yet.
        (contact(share=None, consent=None), ("tenant", TENANT), NAME_ONLY),
        (Contact.tombstone(TENANT, "v1", 3), ("tenant", TENANT), None),
        (None, ("tenant", TENANT), None),
    ],
)
def test_what_the_office_and_the_organisation_may_read_of_a_volunteer(
    known: Contact | None, recipient: tuple[str, str], shown: SharedPerson | None
) -> None:
    assert domain.shared_with(known, *recipient) == shown


async def test_the_consent_to_share_is_kept_from_the_registration(town: Notifications) -> None:
    sharing, keeping = registration(purposes=("contact", "share_with_organisation")), registration()
    await town.consume(sharing, keeping)
    shares = await town.store.contact(TENANT, str(sharing.data.volunteer_id))
    keeps = await town.store.contact(TENANT, str(keeping.data.volunteer_id))
    assert shares is not None and shares.share_consent is True
    assert keeps is not None and keeps.share_consent is False


async def test_the_staffed_mail_names_who_committed_by_id_in_its_payload(town: Notifications) -> None:
    need = events.need_opened(TENANT)
    first, second = uuid.uuid4(), uuid.uuid4()
    await town.consume(need, events.need_staffed(TENANT, need.data.need_id, volunteer_ids=[first, second]))
    (to_office, to_owner) = of_kind(town, catalogue.NEED_STAFFED)
    for delivery in (to_office, to_owner):
        assert (delivery.payload or {})["volunteer_ids"] == [str(first), str(second)]
        assert "@" not in str(delivery.payload)  # names and addresses are read when it is sent


# --- a daily digest instead of a mail per event -------------------------------------------------------


def prefers_digest(notifications: Notifications, recipient_kind: str, recipient_id: str) -> None:
    notifications.store.set_preference(
        MailPreference(TENANT, recipient_kind, recipient_id, OfficeMail.DAILY_DIGEST, time(7, 30), datetime.now(UTC))
    )


async def test_an_office_that_chose_the_daily_digest_gets_no_mail_per_event_and_the_owner_still_does(
    town: Notifications,
) -> None:
    need = events.need_opened(TENANT)
    organisation = str(need.data.organisation_id)
    prefers_digest(town, RecipientKind.TENANT.value, TENANT)
    staffed = events.need_staffed(TENANT, need.data.need_id, version=3)
    unstaffed = events.need_unstaffed(TENANT, need.data.need_id, version=2, organisation_id=organisation)
    declined = proposal_declined(TENANT, need.data.need_id, version=1, reason="too_far")
    await town.consume(need, declined, unstaffed, staffed)

    mailed = [(d.kind, d.recipient_kind) for d in town.store.deliveries]
    assert sorted(mailed) == [(catalogue.NEED_STAFFED, "organisation"), (catalogue.NEED_UNSTAFFED, "organisation")]
    kept = {(item.kind, item.recipient_kind, item.recipient_id) for item in town.store.digest_items}
    assert kept == {
        (catalogue.PROPOSAL_DECLINED, "tenant", TENANT),
        (catalogue.NEED_UNSTAFFED, "tenant", TENANT),
        (catalogue.NEED_STAFFED, "tenant", TENANT),
    }
    by_kind = {item.kind: item.payload for item in town.store.digest_items}
    assert by_kind[catalogue.PROPOSAL_DECLINED]["reason"] == "too_far"
    assert by_kind[catalogue.NEED_STAFFED]["volunteer_ids"] == [str(v) for v in staffed.data.volunteer_ids]


async def test_declines_are_kept_only_for_those_who_chose_a_digest_and_a_redelivery_keeps_nothing_twice(
    town: Notifications,
) -> None:
    need = events.need_opened(TENANT)
    declined = proposal_declined(TENANT, need.data.need_id, version=1)
    await town.consume(need, declined)
    assert town.store.digest_items == [] and town.store.deliveries == []  # matching asks someone else

    prefers_digest(town, RecipientKind.ORGANISATION.value, str(need.data.organisation_id))
    again = proposal_declined(TENANT, need.data.need_id, version=2, reason=None)
    await town.consume(again, again)
    (item,) = town.store.digest_items
    assert (item.recipient_kind, item.kind, item.payload["reason"]) == ("organisation", "proposal_declined", None)


def test_a_daily_digest_lists_its_events_oldest_first_and_counts_what_it_leaves_out() -> None:
    start = datetime(2026, 11, 24, 6, tzinfo=UTC)
    items = [
        DigestItem(
            TENANT,
            "tenant",
            TENANT,
            catalogue.NEED_STAFFED,
            f"t{n}",
            {"need_id": f"n{n}"},
            start + timedelta(minutes=n),
        )
        for n in reversed(range(domain.DAILY_DIGEST_ITEMS + 3))
    ]
    payload = domain.daily_digest_payload(items, date(2026, 11, 24))
    assert payload["day"] == "2026-11-24" and payload["more"] == 3
    assert [item["need_id"] for item in payload["items"][:2]] == ["n0", "n1"]
    assert len(payload["items"]) == domain.DAILY_DIGEST_ITEMS


@pytest.mark.parametrize(
    ("now", "day", "due_at"),
    [
        # Winter: Berlin is UTC+1; summer: UTC+2. The digest time is the tenant's wall clock.
        ("2026-11-24T05:59:00+00:00", "2026-11-24", "2026-11-24T06:30:00+00:00"),
        ("2026-07-01T23:30:00+00:00", "2026-07-02", "2026-07-02T05:30:00+00:00"),
    ],
)
def test_the_daily_digest_is_due_at_its_local_time(now: str, day: str, due_at: str) -> None:
    today, moment = domain.daily_digest_moment(datetime.fromisoformat(now), "Europe/Berlin", time(7, 30))
    assert today.isoformat() == day and moment == datetime.fromisoformat(due_at)


# --- engagements: a reminder before, thanks after ---------------------------------------------------


async def accepted(
    notifications: Notifications, schedule: dict[str, Any], **registered: Any
) -> tuple[Envelope[Any], Envelope[Any], Envelope[Any]]:
    """A volunteer, a need with ``schedule`` and the volunteer's acceptance of its proposal."""
    volunteer = registration(**registered)
    need = events.need_opened(TENANT, schedule=schedule)
    proposed = events.match_proposed(TENANT, need.data.need_id, version=1, volunteer_id=volunteer.data.volunteer_id)
    yes = events.proposal_accepted(
        TENANT,
        need.data.need_id,
        version=2,
        volunteer_id=volunteer.data.volunteer_id,
        proposal_id=proposed.data.proposal_id,
    )
    await notifications.consume(volunteer, need, proposed, yes)
    return volunteer, need, yes


async def test_an_accepted_proposal_is_scheduled_and_reminded_once_per_start_on_each_channel(
    town: Notifications,
) -> None:
    start = (datetime.now(UTC) + timedelta(hours=5)).replace(microsecond=0)
    _, need, yes = await accepted(town, one_off(start), channels=("email", "in_app", "sms"))
    engagement = town.store.proposal(TENANT, str(yes.data.proposal_id))
    assert engagement is not None
    assert (engagement.starts_at, engagement.ends_at) == (start, start + timedelta(hours=2))
    assert engagement.start_reminder_due is True and engagement.thanks_due is True

    reminded = await town.unit_of_work.run(lambda tx: service.remind(town.store, engagement, tx))
    again = await town.unit_of_work.run(lambda tx: service.remind(town.store, engagement, tx))
    assert (reminded, again) == (True, False)
    reminders = of_kind(town, catalogue.ENGAGEMENT_REMINDER)
    assert {d.channel for d in reminders} == {Channel.EMAIL, Channel.IN_APP, Channel.SMS}
    assert {d.status for d in reminders} == {PENDING}
    payload = reminders[0].payload or {}
    assert payload == {
        "need_id": str(need.data.need_id),
        "need": None,  # read when it is sent: the need as it is then
        "proposal_id": str(yes.data.proposal_id),
        "starts_at": start.isoformat(),
    }


async def test_a_need_moved_to_another_day_is_reminded_again_and_an_unchanged_update_is_not(
    town: Notifications,
) -> None:
    start = (datetime.now(UTC) + timedelta(hours=5)).replace(microsecond=0)
    _, need, yes = await accepted(town, one_off(start))
    engagement = town.store.proposal(TENANT, str(yes.data.proposal_id))
    assert engagement is not None
    await town.unit_of_work.run(lambda tx: service.remind(town.store, engagement, tx))

    same = dict(need.data.model_dump(mode="json")) | {"description": "Neue Beschreibung"}
    await town.consume(need_updated(TENANT, need.data.need_id, version=2, **same))
    unchanged = town.store.proposal(TENANT, str(yes.data.proposal_id))
    assert unchanged is not None and unchanged.start_reminder_due is False

    later = start + timedelta(days=1)
    moved = dict(need.data.model_dump(mode="json")) | {"schedule": one_off(later)}
    await town.consume(need_updated(TENANT, need.data.need_id, version=3, **moved))
    rescheduled = town.store.proposal(TENANT, str(yes.data.proposal_id))
    assert rescheduled is not None and rescheduled.starts_at == later and rescheduled.start_reminder_due is True
    assert await town.unit_of_work.run(lambda tx: service.remind(town.store, rescheduled, tx))
    starts = {(d.payload or {})["starts_at"] for d in of_kind(town, catalogue.ENGAGEMENT_REMINDER)}
    assert starts == {start.isoformat(), later.isoformat()}


async def test_an_engagement_accepted_before_its_need_was_read_is_scheduled_when_the_need_arrives(
    town: Notifications,
) -> None:
    start = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    volunteer = registration()
    need = events.need_opened(TENANT, schedule=one_off(start))
    picked = volunteer_picked_need(TENANT, need.data.need_id, volunteer_id=volunteer.data.volunteer_id)
    await town.consume(volunteer, picked)
    proposal_id = f"picked-{need.data.need_id}-{volunteer.data.volunteer_id}"
    early = town.store.proposal(TENANT, proposal_id)
    assert early is not None and early.starts_at is None

    await town.consume(need)
    known = town.store.proposal(TENANT, proposal_id)
    assert known is not None and known.starts_at == start and known.start_reminder_due is True


async def test_stepping_back_cancels_that_volunteers_queued_reminder_only(town: Notifications) -> None:
    start = (datetime.now(UTC) + timedelta(hours=5)).replace(microsecond=0)
    staying, need, stays = await accepted(town, one_off(start))
    leaving = registration()
    proposed = events.match_proposed(TENANT, need.data.need_id, version=3, volunteer_id=leaving.data.volunteer_id)
    goes = events.proposal_accepted(
        TENANT,
        need.data.need_id,
        version=4,
        volunteer_id=leaving.data.volunteer_id,
        proposal_id=proposed.data.proposal_id,
    )
    await town.consume(leaving, proposed, goes)
    for yes in (stays, goes):
        engagement = town.store.proposal(TENANT, str(yes.data.proposal_id))
        assert engagement is not None
        await town.unit_of_work.run(partial(service.remind, town.store, engagement))

    await town.consume(
        events.volunteer_stepped_back(TENANT, need.data.need_id, version=5, volunteer_id=leaving.data.volunteer_id)
    )
    status = {(d.recipient_id, d.status, d.reason) for d in of_kind(town, catalogue.ENGAGEMENT_REMINDER)}
    assert status == {
        (str(staying.data.volunteer_id), PENDING, None),
        (str(leaving.data.volunteer_id), CANCELLED, "volunteer_stepped_back"),
    }
    gone = town.store.proposal(TENANT, str(goes.data.proposal_id))
    assert gone is not None and gone.status == "stepped_back"  # no thanks for it either


async def test_a_cancelled_need_cancels_its_queued_reminders(town: Notifications) -> None:
    start = (datetime.now(UTC) + timedelta(hours=5)).replace(microsecond=0)
    _, need, yes = await accepted(town, one_off(start))
    engagement = town.store.proposal(TENANT, str(yes.data.proposal_id))
    assert engagement is not None
    await town.unit_of_work.run(lambda tx: service.remind(town.store, engagement, tx))
    await town.consume(need_cancelled(TENANT, need.data.need_id, version=2))
    assert {(d.status, d.reason) for d in of_kind(town, catalogue.ENGAGEMENT_REMINDER)} == {
        (CANCELLED, "need_cancelled")
    }
    assert of_kind(town, catalogue.ENGAGEMENT_THANKS) == []


async def test_a_need_closed_as_done_thanks_once_and_the_schedule_thanks_no_more(town: Notifications) -> None:
    weekly = {
        "kind": "weekly",
        "slots": [{"weekday": "tuesday", "start": "16:00:00", "end": "18:00:00"}],
        "starts_on": (datetime.now(UTC) - timedelta(days=30)).date().isoformat(),
    }
    volunteer, need, yes = await accepted(town, weekly)
    engagement = town.store.proposal(TENANT, str(yes.data.proposal_id))
    assert engagement is not None and engagement.ends_at is None  # open-ended: the close ends it

    await town.consume(need_closed(TENANT, need.data.need_id, version=2, outcome="fulfilled"))
    thanks = of_kind(town, catalogue.ENGAGEMENT_THANKS)
    assert {(d.recipient_id, d.channel, d.status) for d in thanks} == {
        (str(volunteer.data.volunteer_id), Channel.EMAIL, PENDING),
        (str(volunteer.data.volunteer_id), Channel.IN_APP, PENDING),
    }
    assert not await town.unit_of_work.run(lambda tx: service.thank(town.store, engagement, tx))
    assert len(of_kind(town, catalogue.ENGAGEMENT_THANKS)) == 2


async def test_a_need_closed_as_not_fulfilled_thanks_nobody_and_cancels_what_was_queued(town: Notifications) -> None:
    start = (datetime.now(UTC) + timedelta(hours=5)).replace(microsecond=0)
    _, need, yes = await accepted(town, one_off(start))
    engagement = town.store.proposal(TENANT, str(yes.data.proposal_id))
    assert engagement is not None
    await town.unit_of_work.run(lambda tx: service.remind(town.store, engagement, tx))
    await town.consume(need_closed(TENANT, need.data.need_id, version=2, outcome="not_fulfilled"))
    assert of_kind(town, catalogue.ENGAGEMENT_THANKS) == []
    assert {d.status for d in of_kind(town, catalogue.ENGAGEMENT_REMINDER)} == {CANCELLED}


@pytest.mark.parametrize(
    ("after", "starts_at", "ends_at"),
    [
        # Before the first Tuesday: that Tuesday, 16:00 in Berlin (UTC+1 in winter).
        ("2026-11-30T12:00:00+00:00", "2026-12-01T15:00:00+00:00", "2027-03-30T16:00:00+00:00"),
        # During the first occurrence: the next one.
        ("2026-12-01T15:30:00+00:00", "2026-12-08T15:00:00+00:00", "2027-03-30T16:00:00+00:00"),
        # In summer the slot stays at 16:00 local time: 14:00 UTC.
        ("2027-03-29T00:00:00+00:00", "2027-03-30T14:00:00+00:00", "2027-03-30T16:00:00+00:00"),
        # Over: nothing to remind of, the end as it was.
        ("2027-04-01T00:00:00+00:00", None, "2027-03-30T16:00:00+00:00"),
    ],
)
def test_a_weekly_engagement_starts_at_its_next_occurrence_and_ends_after_its_last(
    after: str, starts_at: str | None, ends_at: str
) -> None:
    schedule = WeeklyRecurrence.model_validate(
        {
            "kind": "weekly",
            "slots": [{"weekday": "tuesday", "start": "16:00:00", "end": "18:00:00"}],
            "starts_on": "2026-12-01",
            "ends_on": "2027-03-31",
        }
    )
    start, end = domain.engagement_window(schedule, "Europe/Berlin", datetime.fromisoformat(after))
    assert start == (datetime.fromisoformat(starts_at) if starts_at else None)
    assert end == datetime.fromisoformat(ends_at)


# --- the calendar entry ------------------------------------------------------------------------------


def test_the_reminders_calendar_entry_of_a_one_off_need_is_its_window_with_the_feeds_uid() -> None:
    window = OneOffWindow.model_validate(one_off(datetime(2026, 12, 3, 9, tzinfo=BERLIN), hours=3))
    need = {"schedule": window.model_dump(mode="json"), "description": "Begleitung zum Amt", "district": "Mitte"}
    document = ical.engagement_calendar("n-1", need, "Begleitung zu Behörden", "Europe/Berlin", datetime.now(UTC))
    (event,) = Calendar.from_ical(document).walk("VEVENT")
    assert str(event["uid"]) == "n-1@lotse"  # the same event as in the volunteer's calendar feed
    assert event.decoded("dtstart") == datetime(2026, 12, 3, 8, tzinfo=UTC)
    assert event.decoded("dtend") == datetime(2026, 12, 3, 11, tzinfo=UTC)
    assert str(event["summary"]) == "Begleitung zu Behörden: Begleitung zum Amt"
    assert str(event["location"]) == "Mitte"
    assert str(Calendar.from_ical(document)["method"]) == "PUBLISH"


def test_the_reminders_calendar_entry_of_a_weekly_need_repeats_in_the_tenants_zone_until_its_last_day() -> None:
    need = {
        "schedule": {
            "kind": "weekly",
            "slots": [
                {"weekday": "tuesday", "start": "16:00:00", "end": "18:00:00"},
                {"weekday": "thursday", "start": "16:00:00", "end": "18:00:00"},
            ],
            "starts_on": "2026-12-02",
            "ends_on": "2027-03-31",
        },
        "description": "Hausaufgabenhilfe",
        "district": None,
    }
    document = ical.engagement_calendar("n-2", need, "Lernhilfe", "Europe/Berlin", datetime.now(UTC))
    calendar = Calendar.from_ical(document)
    (event,) = calendar.walk("VEVENT")
    assert event.decoded("dtstart") == datetime(2026, 12, 3, 16, tzinfo=BERLIN)  # the first Thursday
    rule: Any = event["RRULE"]
    assert rule["FREQ"] == ["WEEKLY"] and rule["BYDAY"] == ["TU", "TH"]
    assert rule["UNTIL"] == [datetime(2027, 3, 31, 21, 59, 59, tzinfo=UTC)]
    assert [str(zone["tzid"]) for zone in calendar.walk("VTIMEZONE")] == ["Europe/Berlin"]
    assert "location" not in event


# --- channels that exist ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("known", "sms_gateway", "problems"),
    [
        (contact(channels=(Channel.SMS,)), False, {Channel.SMS: "sms_unavailable"}),
        (contact(channels=(Channel.SMS,), phone=None), True, {Channel.SMS: "no_phone"}),
        (contact(channels=(Channel.SMS,)), True, None),
        (contact(channels=(Channel.EMAIL, Channel.SMS)), False, None),
        (contact(channels=(Channel.EMAIL,), consent=False), False, {Channel.EMAIL: "no_contact_consent"}),
        (
            contact(channels=(Channel.EMAIL, Channel.SMS), failed=(Channel.EMAIL,)),
            False,
            {Channel.EMAIL: "bounced", Channel.SMS: "sms_unavailable"},
        ),
        (contact(channels=(Channel.EMAIL, Channel.IN_APP), failed=(Channel.EMAIL,)), False, None),  # in-app works
    ],
)
def test_who_cannot_be_reached_on_any_chosen_channel(
    known: Contact, sms_gateway: bool, problems: dict[Channel, str] | None
) -> None:
    assert domain.unreachable(known, sms_gateway=sms_gateway) == problems


async def test_a_volunteer_who_chose_only_sms_without_a_gateway_is_reported_to_the_office_once(
    town: Notifications,
) -> None:
    volunteer = registration(channels=("sms",))
    await town.consume(volunteer, volunteer)
    (notice,) = of_kind(town, catalogue.VOLUNTEER_UNREACHABLE)
    assert (notice.recipient_kind, notice.recipient_id, notice.channel, notice.status) == (
        "tenant",
        TENANT,
        Channel.EMAIL,
        PENDING,
    )
    assert notice.payload == {
        "volunteer_id": str(volunteer.data.volunteer_id),
        "problems": [{"channel": "sms", "problem": "sms_unavailable"}],
    }
    # The welcome is queued by SMS too (the worker records why it cannot go).
    welcome = {d.channel: d.status for d in of_kind(town, catalogue.WELCOME)}
    assert welcome == {Channel.EMAIL: SKIPPED, Channel.IN_APP: SKIPPED, Channel.SMS: PENDING}

    # Still unreachable after another update: no second notice.
    contact_data = volunteer.data.contact.model_dump(mode="json") | {"display_name": "Maria M."}
    await town.consume(profile_updated(TENANT, volunteer.data.volunteer_id, version=2, contact=contact_data))
    assert len(of_kind(town, catalogue.VOLUNTEER_UNREACHABLE)) == 1


async def test_a_volunteer_reachable_again_and_then_lost_again_is_reported_again(town: Notifications) -> None:
    volunteer = registration(channels=("sms",))
    await town.consume(volunteer)
    reachable = volunteer.data.contact.model_dump(mode="json") | {"channels": ["sms", "email"]}
    await town.consume(profile_updated(TENANT, volunteer.data.volunteer_id, version=2, contact=reachable))
    known = await town.store.contact(TENANT, str(volunteer.data.volunteer_id))
    assert known is not None and known.unreachable_reported is False
    lost = volunteer.data.contact.model_dump(mode="json") | {"channels": ["sms"]}
    await town.consume(profile_updated(TENANT, volunteer.data.volunteer_id, version=3, contact=lost))
    assert len(of_kind(town, catalogue.VOLUNTEER_UNREACHABLE)) == 2


async def test_with_a_gateway_sms_counts_and_a_new_address_clears_a_refused_one() -> None:
    notifications = Notifications(sms_gateway=True)
    await notifications.consume(events.tenant_onboarded(TENANT, coordination_email=OFFICE))
    volunteer = registration(channels=("sms", "email"))
    await notifications.consume(volunteer)
    assert of_kind(notifications, catalogue.VOLUNTEER_UNREACHABLE) == []

    volunteer_id = str(volunteer.data.volunteer_id)
    known = await notifications.store.contact(TENANT, volunteer_id)
    assert known is not None
    notifications.store.memory.contacts[(TENANT, volunteer_id)] = Contact(
        **(known.__dict__ | {"failed_channels": (Channel.EMAIL, Channel.SMS)})
    )
    new_mail = volunteer.data.contact.model_dump(mode="json") | {"email": "neu@example.org"}
    await notifications.consume(profile_updated(TENANT, volunteer.data.volunteer_id, version=2, contact=new_mail))
    updated = await notifications.store.contact(TENANT, volunteer_id)
    assert updated is not None and updated.failed_channels == (Channel.SMS,)  # the number did not change


def test_an_sms_says_what_the_message_is_about_and_where_to_read_it_within_three_parts() -> None:
    rendered = Rendered("engagement_reminder", "de", "Erinnerung an Ihren Einsatz: Lernhilfe", "lang " * 500, "")
    assert sms_text(rendered, "Einzelheiten in Lotse.") == (
        "Erinnerung an Ihren Einsatz: Lernhilfe\nEinzelheiten in Lotse."
    )
    long = Rendered("x", "de", "Betreff " * 100, "", "")
    assert len(sms_text(long, "mehr")) == SMS_MAX_CHARS


@pytest.mark.parametrize(
    ("channel", "code", "refused"),
    [
        (Channel.EMAIL, "recipient_refused", True),
        (Channel.EMAIL, "smtp_550", True),
        (Channel.EMAIL, "smtp_unavailable", False),  # our mail server is away: not the person's address
        (Channel.EMAIL, "smtp_451", False),
        (Channel.SMS, "sms_http_400", True),
        (Channel.SMS, "sms_http_401", False),  # our token: not the person's number
        (Channel.SMS, "sms_timeout", False),
        (Channel.IN_APP, "recipient_refused", False),
    ],
)
def test_only_a_refused_address_counts_as_a_channel_that_failed_for_good(
    channel: Channel, code: str, refused: bool
) -> None:
    assert domain.refuses_address(channel, code) is refused
