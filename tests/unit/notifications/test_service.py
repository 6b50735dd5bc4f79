"""What each registry and matching event changes in notifications, through the real dispatch table
on an in-memory store (fakes.py): the read model, the deliveries it queues (or skips, with the
reason and a NotificationFailed in the outbox) and what goes to partners' webhooks. Sending is the
worker's part and is tested against the real database and SMTP sink (tests/integration)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from typing import Any, cast

import pytest

from lotse_contracts import (
    Envelope,
    NeedCancelled,
    NeedClosed,
    NeedStaffed,
    NotificationFailed,
    ProposalDeclined,
    VolunteerErased,
    VolunteerPickedNeed,
    VolunteerProfileUpdated,
    VolunteerRegistered,
    VolunteerWithdrawn,
    topic_for,
)
from lotse_contracts.events.needs import CancellationReason
from lotse_contracts.events.values import Channel
from lotse_notifications import catalogue
from lotse_notifications.partner_events import PartnerField
from lotse_notifications.records import NeedSnapshot, NeedStatus, ProposalStatus
from lotse_notifications.store import CANCELLED, PENDING, SKIPPED, Delivery
from tests.support import events
from tests.unit.notifications.fakes import Notifications

TENANT = "musterstadt"
PERSON = (Channel.EMAIL, Channel.IN_APP)
OFFICE = "ehrenamt@musterstadt.example"

# Builders for the events tests/support/events.py has none for yet, on the same contract examples.
volunteer_profile_updated = events.Builder(VolunteerProfileUpdated, events.REGISTRY, "volunteer_id")
volunteer_withdrawn = events.Builder(VolunteerWithdrawn, events.REGISTRY, "volunteer_id")
volunteer_erased = events.Builder(VolunteerErased, events.REGISTRY, "volunteer_id")
need_cancelled = events.Builder(NeedCancelled, events.REGISTRY, "need_id")
need_closed = events.Builder(NeedClosed, events.REGISTRY, "need_id")
proposal_declined = events.Builder(ProposalDeclined, events.MATCHING, "need_id", "proposal_id")
volunteer_picked_need = events.Builder(VolunteerPickedNeed, events.MATCHING, "need_id")


def registration(
    volunteer_id: uuid.UUID | None = None,
    *,
    version: int = 1,
    language: str = "de",
    channels: Iterable[str] = ("email", "in_app"),
    purposes: Iterable[str] = ("matching", "contact"),
    opted_out_of: Iterable[str] = (),
) -> Envelope[VolunteerRegistered]:
    example = VolunteerRegistered.example()
    contact = example.contact.model_dump(mode="json") | {
        "email": f"v{uuid.uuid4().hex[:10]}@example.org",
        "preferred_language": language,
        "channels": list(channels),
        "opted_out_of": list(opted_out_of),
    }
    consent = example.consent.model_dump(mode="json") | {"purposes": list(purposes)}
    return events.volunteer_registered(TENANT, volunteer_id, version=version, contact=contact, consent=consent)


@pytest.fixture
async def town() -> Notifications:
    """Notifications that know the municipality (German by default) and nothing else yet."""
    notifications = Notifications()
    await notifications.consume(events.tenant_onboarded(TENANT, default_language="de", coordination_email=OFFICE))
    return notifications


def to(notifications: Notifications, recipient_id: Any, kind: str | None = None) -> dict[Channel, Delivery]:
    """The deliveries for one recipient (of one kind), by channel."""
    found = [d for d in notifications.store.deliveries if d.recipient_id == str(recipient_id)]
    by_channel = {d.channel: d for d in found if kind is None or d.kind == kind}
    assert len(by_channel) == len([d for d in found if kind is None or d.kind == kind]), "one per channel"
    return by_channel


def failures(notifications: Notifications) -> list[NotificationFailed]:
    """The NotificationFailed events in the outbox, each checked to go to its tenant's topic."""
    found = []
    for appended in notifications.outbox:
        assert appended.topic == topic_for(appended.event.type, appended.event.tenant)
        if isinstance(appended.event.data, NotificationFailed):
            found.append(appended.event.data)
    return found


def recipients(deliveries: Iterable[Delivery]) -> set[tuple[str, str, Channel]]:
    return {(d.recipient_kind, d.recipient_id, d.channel) for d in deliveries}


# --- volunteers -----------------------------------------------------------------------------------


async def test_a_registered_volunteer_is_welcomed_on_each_chosen_channel_in_their_language(
    town: Notifications,
) -> None:
    registered = registration(language="uk")
    await town.consume(registered)

    contact = await town.store.contact(TENANT, str(registered.data.volunteer_id))
    assert contact is not None and contact.details is not None
    assert contact.details.email == registered.data.contact.email and contact.contact_consent is True
    assert contact.organisation_id == str(registered.data.organisation_id) and contact.active
    welcome = to(town, registered.data.volunteer_id, catalogue.WELCOME)
    assert set(welcome) == {Channel.EMAIL, Channel.IN_APP}
    for delivery in welcome.values():
        assert (delivery.recipient_kind, delivery.status, delivery.language) == ("volunteer", PENDING, "uk")
        assert delivery.trigger_event_id == str(registered.id) and delivery.payload == {}
    assert failures(town) == []
    assert town.queued == 2  # the worker is woken after each committed event


async def test_without_consent_to_be_contacted_the_welcome_email_is_skipped_and_reported(
    town: Notifications,
) -> None:
    registered = registration(purposes=["matching"])
    await town.consume(registered)

    welcome = to(town, registered.data.volunteer_id, catalogue.WELCOME)
    assert (welcome[Channel.EMAIL].status, welcome[Channel.EMAIL].reason) == (SKIPPED, "no_contact_consent")
    assert welcome[Channel.EMAIL].payload is None
    assert (welcome[Channel.IN_APP].status, welcome[Channel.IN_APP].reason) == (PENDING, None)
    (failed,) = failures(town)
    assert str(failed.delivery_id) == welcome[Channel.EMAIL].id
    assert (failed.error_code, failed.attempts, failed.will_retry) == ("no_contact_consent", 1, False)
    assert (failed.recipient_id, failed.channel, failed.template) == (
        str(registered.data.volunteer_id),
        Channel.EMAIL,
        catalogue.WELCOME,
    )
    assert str(failed.trigger_event_id) == str(registered.id)


async def test_channels_not_chosen_and_kinds_opted_out_of_are_skipped_as_opted_out(town: Notifications) -> None:
    registered = registration(channels=["in_app"], opted_out_of=["welcome"])
    await town.consume(registered)

    welcome = to(town, registered.data.volunteer_id, catalogue.WELCOME)
    assert {channel: (d.status, d.reason) for channel, d in welcome.items()} == {
        Channel.EMAIL: (SKIPPED, "opted_out"),
        Channel.IN_APP: (SKIPPED, "opted_out"),
    }
    assert sorted(failed.error_code for failed in failures(town)) == ["opted_out", "opted_out"]


async def test_a_redelivered_event_changes_nothing(town: Notifications) -> None:
    registered = registration(purposes=["matching"])
    await town.consume(registered, registered)

    assert len(to(town, registered.data.volunteer_id)) == 2
    assert len(failures(town)) == 1
    assert town.queued == 2  # onboarding and the registration; the duplicate committed nothing


async def test_a_profile_update_changes_the_details_and_keeps_what_the_registration_said(
    town: Notifications,
) -> None:
    registered = registration(purposes=["matching"])
    volunteer_id = registered.data.volunteer_id
    contact = registered.data.contact.model_dump(mode="json") | {"email": "neu@example.org", "preferred_language": "ar"}
    updated = volunteer_profile_updated(TENANT, volunteer_id, version=2, contact=contact)
    stale = volunteer_profile_updated(TENANT, volunteer_id, version=1, contact=contact | {"email": "alt@example.org"})
    await town.consume(registered, updated, stale)

    known = await town.store.contact(TENANT, str(volunteer_id))
    assert known is not None and known.details is not None
    assert (known.details.email, known.details.preferred_language, known.version) == ("neu@example.org", "ar", 2)
    assert known.contact_consent is False and known.organisation_id == str(registered.data.organisation_id)
    assert len(to(town, volunteer_id)) == 2  # the welcome only: profile updates send nothing


async def test_a_withdrawn_volunteer_gets_nothing_more(town: Notifications) -> None:
    registered = registration()
    volunteer_id = registered.data.volunteer_id
    withdrawn = volunteer_withdrawn(TENANT, volunteer_id, version=2, erasure_requested=False)
    await town.consume(registered, withdrawn)

    contact = await town.store.contact(TENANT, str(volunteer_id))
    assert contact is not None and not contact.active and not contact.erased
    welcome = to(town, volunteer_id, catalogue.WELCOME)
    assert {(d.status, d.reason) for d in welcome.values()} == {(CANCELLED, "volunteer_withdrawn")}
    assert [(f.error_code, f.attempts) for f in failures(town)] == [("volunteer_withdrawn", 1)] * 2

    await town.consume(events.match_proposed(TENANT, version=1, volunteer_id=volunteer_id))
    proposal = to(town, volunteer_id, catalogue.MATCH_PROPOSED)
    assert {(d.status, d.reason) for d in proposal.values()} == {(SKIPPED, "volunteer_withdrawn")}


async def test_erasure_leaves_a_tombstone_that_a_replayed_registration_cannot_overwrite(town: Notifications) -> None:
    registered = registration()
    volunteer_id = registered.data.volunteer_id
    proposed = events.match_proposed(TENANT, version=1, volunteer_id=volunteer_id)
    await town.consume(registered, proposed, volunteer_erased(TENANT, volunteer_id, version=3))

    contact = await town.store.contact(TENANT, str(volunteer_id))
    assert contact is not None and contact.erased and contact.details is None and contact.version == 3
    assert town.store.proposal(TENANT, str(proposed.data.proposal_id)) is None
    kinds = {(d.kind, d.channel) for d in town.store.deliveries}
    assert kinds == {(kind, channel) for kind in (catalogue.WELCOME, catalogue.MATCH_PROPOSED) for channel in PERSON}
    assert all((d.status, d.reason, d.payload) == (CANCELLED, "volunteer_erased", None) for d in town.store.deliveries)
    assert sorted(f.error_code for f in failures(town)) == ["volunteer_erased"] * 4

    # An older registration read again (a replay, another event id) brings nothing back.
    await town.consume(registration(volunteer_id, version=1))
    assert (await town.store.contact(TENANT, str(volunteer_id))) == contact
    assert len(town.store.deliveries) == 4


# --- needs and proposals --------------------------------------------------------------------------


async def test_a_proposal_reaches_the_volunteer_with_the_need_and_is_kept_for_the_reminder(
    town: Notifications,
) -> None:
    need = events.need_opened(TENANT)
    registered = registration()
    proposed = events.match_proposed(TENANT, need.data.need_id, version=1, volunteer_id=registered.data.volunteer_id)
    await town.consume(need, registered, proposed)

    snapshot = NeedSnapshot.from_event(need.data)
    known = await town.store.need(TENANT, str(need.data.need_id))
    assert known is not None and (known.snapshot, known.status, known.unstaffed) == (snapshot, NeedStatus.OPEN, False)
    proposal = town.store.proposal(TENANT, str(proposed.data.proposal_id))
    assert proposal is not None and proposal.status is ProposalStatus.OPEN and proposal.reminded is False
    assert proposal.expires_at == proposed.data.expires_at and proposal.correlation_id == proposed.correlationid
    offered = to(town, registered.data.volunteer_id, catalogue.MATCH_PROPOSED)
    assert set(offered) == {Channel.EMAIL, Channel.IN_APP}
    for delivery in offered.values():
        payload = delivery.payload or {}
        assert payload["need"] == snapshot.to_document() and payload["proposal_id"] == str(proposed.data.proposal_id)
        assert "accept_url" not in payload  # the links are signed into the mail when it is sent
    assert proposal.payload == offered[Channel.EMAIL].payload


async def test_staffing_events_read_before_the_need_are_kept_when_it_arrives(town: Notifications) -> None:
    need = events.need_opened(TENANT)
    need_id = need.data.need_id
    registered = registration()
    await town.consume(registered, events.match_proposed(TENANT, need_id, volunteer_id=registered.data.volunteer_id))

    # The need is unknown: the payload leaves it to the worker, the read model knows only the staffing.
    offered = to(town, registered.data.volunteer_id, catalogue.MATCH_PROPOSED)
    assert all((d.payload or {})["need"] is None for d in offered.values())
    early = await town.store.need(TENANT, str(need_id))
    assert early is not None and (early.staffing_version, early.snapshot, early.status) == (1, None, None)

    await town.consume(events.need_staffed(TENANT, need_id, version=2))
    # Whose need it is is not known yet: the worker resolves the owner when it sends.
    assert recipients(town.store.deliveries[-2:]) == {
        ("tenant", TENANT, Channel.EMAIL),
        ("need_owner", str(need_id), Channel.EMAIL),
    }

    await town.consume(need)
    known = await town.store.need(TENANT, str(need_id))
    assert known is not None and known.status is NeedStatus.STAFFED and known.unstaffed is False
    assert known.snapshot == NeedSnapshot.from_event(need.data) and known.version == 1


async def test_a_staffed_need_is_reported_to_the_office_and_its_owner_unless_they_share_a_mailbox(
    town: Notifications,
) -> None:
    initiative = events.organisation_registered(TENANT, contact_email="kontakt@initiative.example")
    office = events.organisation_registered(TENANT, kind="coordination_office", contact_email=OFFICE)
    their_need = events.need_opened(TENANT, organisation_id=initiative.data.organisation_id)
    office_need = events.need_opened(TENANT, organisation_id=office.data.organisation_id)
    await town.consume(initiative, office, their_need, office_need)

    staffed = events.need_staffed(TENANT, their_need.data.need_id, volunteer_ids=[uuid.uuid4(), uuid.uuid4()])
    await town.consume(staffed)
    reported = [d for d in town.store.deliveries if d.trigger_event_id == str(staffed.id)]
    assert recipients(reported) == {
        ("tenant", TENANT, Channel.EMAIL),
        ("organisation", str(initiative.data.organisation_id), Channel.EMAIL),
    }
    assert {(d.kind, d.language, d.status) for d in reported} == {(catalogue.NEED_STAFFED, "de", PENDING)}
    payload = reported[0].payload or {}
    assert payload["committed"] == 2 and payload["need"] == NeedSnapshot.from_event(their_need.data).to_document()

    own = events.need_staffed(TENANT, office_need.data.need_id)
    await town.consume(own)
    reported = [d for d in town.store.deliveries if d.trigger_event_id == str(own.id)]
    assert recipients(reported) == {("tenant", TENANT, Channel.EMAIL)}  # one mailbox, one mail


async def test_an_unstaffed_need_is_escalated_and_marked_for_the_digest(town: Notifications) -> None:
    need = events.need_opened(TENANT)
    unstaffed = events.need_unstaffed(
        TENANT, need.data.need_id, organisation_id=need.data.organisation_id, volunteers_needed=3
    )
    await town.consume(need, unstaffed)

    known = await town.store.need(TENANT, str(need.data.need_id))
    assert known is not None and known.unstaffed is True and known.status is NeedStatus.OPEN
    escalated = [d for d in town.store.deliveries if d.kind == catalogue.NEED_UNSTAFFED]
    assert recipients(escalated) == {
        ("tenant", TENANT, Channel.EMAIL),
        ("organisation", str(need.data.organisation_id), Channel.EMAIL),
    }
    payload = escalated[0].payload or {}
    assert (payload["reason"], payload["committed"], payload["needed"]) == ("all_declined", 0, 3)


async def test_a_staffing_event_older_than_the_last_one_applied_is_ignored(town: Notifications) -> None:
    need = events.need_opened(TENANT)
    registered = registration()
    late = events.match_proposed(TENANT, need.data.need_id, version=2, volunteer_id=registered.data.volunteer_id)
    await town.consume(need, registered, events.need_unstaffed(TENANT, need.data.need_id, version=3), late)

    assert town.store.proposal(TENANT, str(late.data.proposal_id)) is None
    assert to(town, registered.data.volunteer_id, catalogue.MATCH_PROPOSED) == {}


async def test_cancelling_a_need_tells_the_engaged_volunteers_and_withdraws_their_proposals(
    town: Notifications,
) -> None:
    need = events.need_opened(TENANT)
    need_id = need.data.need_id
    offered, accepted, declined, picker, stepped_back = (registration() for _ in range(5))
    volunteer = {
        name: r.data.volunteer_id
        for name, r in zip(
            ("offered", "accepted", "declined", "picker", "stepped_back"),
            (offered, accepted, declined, picker, stepped_back),
            strict=True,
        )
    }
    proposals = {
        name: events.match_proposed(TENANT, need_id, version=number, volunteer_id=volunteer[name])
        for number, name in enumerate(("offered", "accepted", "declined", "stepped_back"), start=1)
    }
    await town.consume(need, offered, accepted, declined, picker, stepped_back, *proposals.values())
    await town.consume(
        events.proposal_accepted(
            TENANT,
            need_id,
            version=5,
            volunteer_id=volunteer["accepted"],
            proposal_id=proposals["accepted"].data.proposal_id,
        ),
        proposal_declined(
            TENANT,
            need_id,
            version=6,
            volunteer_id=volunteer["declined"],
            proposal_id=proposals["declined"].data.proposal_id,
        ),
        volunteer_picked_need(TENANT, need_id, version=7, volunteer_id=volunteer["picker"]),
        events.volunteer_stepped_back(TENANT, need_id, version=8, volunteer_id=volunteer["stepped_back"]),
    )
    assert set(to(town, volunteer["picker"], catalogue.PROPOSAL_ACCEPTED)) == {Channel.EMAIL, Channel.IN_APP}

    cancelled = need_cancelled(TENANT, need_id, version=2, reason="duplicate")
    await town.consume(cancelled)

    known = await town.store.need(TENANT, str(need_id))
    assert known is not None and known.status is NeedStatus.CANCELLED
    assert known.cancellation_reason is CancellationReason.DUPLICATE
    told = [d for d in town.store.deliveries if d.trigger_event_id == str(cancelled.id)]
    assert recipients(told) == {
        ("volunteer", str(volunteer[name]), channel)
        for name in ("offered", "accepted", "picker")
        for channel in (Channel.EMAIL, Channel.IN_APP)
    }
    assert all(
        d.kind == catalogue.NEED_CANCELLED
        and d.payload == {"need_id": str(need_id), "need": NeedSnapshot.from_event(need.data).to_document()}
        for d in told
    )
    statuses = {}
    for name in ("offered", "accepted", "declined", "stepped_back"):
        proposal = town.store.proposal(TENANT, str(proposals[name].data.proposal_id))
        assert proposal is not None
        statuses[name] = proposal.status
    assert statuses == {
        "offered": ProposalStatus.WITHDRAWN,
        "accepted": ProposalStatus.WITHDRAWN,
        "declined": ProposalStatus.DECLINED,
        "stepped_back": ProposalStatus.STEPPED_BACK,
    }

    # The same cancellation again, as an older event with another id: nobody is told twice.
    before = len(town.store.deliveries)
    await town.consume(need_cancelled(TENANT, need_id, version=2))
    assert len(town.store.deliveries) == before


async def test_a_closed_need_ends_its_open_proposals_without_a_message(town: Notifications) -> None:
    need = events.need_opened(TENANT)
    registered = registration()
    proposed = events.match_proposed(TENANT, need.data.need_id, volunteer_id=registered.data.volunteer_id)
    await town.consume(need, registered, proposed)
    before = len(town.store.deliveries)

    await town.consume(need_closed(TENANT, need.data.need_id, version=2))

    known = await town.store.need(TENANT, str(need.data.need_id))
    assert known is not None and known.status is NeedStatus.CLOSED
    proposal = town.store.proposal(TENANT, str(proposed.data.proposal_id))
    assert proposal is not None and proposal.status is ProposalStatus.WITHDRAWN  # so no reminder follows
    assert len(town.store.deliveries) == before


# --- partners and tenants -------------------------------------------------------------------------


async def test_need_and_matching_events_go_to_partners_webhooks_without_answer_links(town: Notifications) -> None:
    every_event = town.store.add_webhook(TENANT)
    staffed_only = town.store.add_webhook(TENANT, NeedStaffed.event_type)
    elsewhere = town.store.add_webhook("celle")
    need = events.need_opened(TENANT)
    registered = registration()
    proposed = events.match_proposed(
        TENANT,
        need.data.need_id,
        volunteer_id=registered.data.volunteer_id,
        accept_url="https://lotse.example/answers/secret?choice=accept",
    )
    staffed = events.need_staffed(TENANT, need.data.need_id, version=2)
    await town.consume(registered, need, proposed, staffed)

    forwarded = [d for d in town.store.deliveries if d.channel is Channel.WEBHOOK]
    assert {(d.recipient_id, d.payload["event_type"] if d.payload else None) for d in forwarded} == {
        (every_event.id, need.type),
        (every_event.id, proposed.type),
        (every_event.id, staffed.type),
        (staffed_only.id, staffed.type),
    }
    assert elsewhere.id not in {d.recipient_id for d in forwarded}
    assert {(d.recipient_kind, d.kind, d.status) for d in forwarded} == {("partner", "webhook_event", PENDING)}
    (proposal_body,) = [
        json.loads((d.payload or {})["body"]) for d in forwarded if d.trigger_event_id == str(proposed.id)
    ]
    assert proposal_body["id"] == str(proposed.id) and proposal_body["subject"] == str(need.data.need_id)
    assert "accept_url" not in proposal_body["data"] and "answers/secret" not in json.dumps(proposal_body)


async def test_partners_get_a_projection_without_people_unless_their_contract_needs_the_ids(
    town: Notifications,
) -> None:
    plain = town.store.add_webhook(TENANT)
    answering = town.store.add_webhook(TENANT, fields=frozenset({PartnerField.VOLUNTEER_IDS}))
    need = events.need_opened(TENANT)
    registered = registration()
    volunteer_id = str(registered.data.volunteer_id)
    proposed = events.match_proposed(TENANT, need.data.need_id, volunteer_id=registered.data.volunteer_id)
    staffed = events.need_staffed(TENANT, need.data.need_id, version=2, volunteer_ids=[registered.data.volunteer_id])
    await town.consume(registered, need, proposed, staffed)

    def body(hook_id: str, event_type: str) -> dict[str, Any]:
        (found,) = [
            json.loads((d.payload or {})["body"])
            for d in town.store.deliveries
            if d.recipient_id == hook_id and d.payload and d.payload["event_type"] == event_type
        ]
        return cast(dict[str, Any], found)

    # The log keeps only what the partner gets: nothing about the volunteer, never the reasons.
    proposal = body(plain.id, proposed.type)
    assert proposal["data"] == {
        "need_id": str(need.data.need_id),
        "organisation_id": str(proposed.data.organisation_id),
        "expires_at": proposed.data.expires_at.isoformat().replace("+00:00", "Z"),
    }
    assert proposal["dataschema"] == f"https://schemas.lotse.de/webhooks/{proposed.type}.json"
    assert body(plain.id, staffed.type)["data"] == {"need_id": str(need.data.need_id), "volunteers_committed": 1}
    everything_plain = json.dumps([d.payload for d in town.store.deliveries if d.recipient_id == plain.id])
    assert volunteer_id not in everything_plain and str(proposed.data.proposal_id) not in everything_plain
    assert proposed.data.reasons[0].detail not in everything_plain
    # A partner that answers for the volunteers it registered gets the ids it answers with.
    answered = body(answering.id, proposed.type)["data"]
    assert (answered["proposal_id"], answered["volunteer_id"]) == (str(proposed.data.proposal_id), volunteer_id)
    assert "reasons" not in answered and "score" not in answered and "distance_km" not in answered
    assert body(answering.id, staffed.type)["data"]["volunteer_ids"] == [volunteer_id]
    # Need events go as the registry published them.
    assert body(plain.id, need.type)["data"]["description"] == need.data.description


async def test_events_of_tenants_outside_the_pattern_are_left_to_their_own_deployment() -> None:
    notifications = Notifications(tenant_pattern="musterstadt|celle")
    await notifications.consume(
        events.tenant_onboarded("bonn"), events.volunteer_registered("bonn"), events.tenant_onboarded("celle")
    )

    assert await notifications.store.tenant("bonn") is None and await notifications.store.tenant("celle") is not None
    assert notifications.store.deliveries == []
    assert len(notifications.unit_of_work.inbox) == 1  # bonn's events are not even recorded as read
