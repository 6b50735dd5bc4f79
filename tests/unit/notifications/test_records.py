"""The read model's records against the documents as the service has stored them so far: each
shape reads into its record and writes back unchanged, and a record built from its event writes
the document the earlier code wrote. The expected documents are spelled out here, as that code
built them, so that a change to a record cannot quietly change what is stored."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any

import pytest

from lotse_contracts import MatchProposed, NeedOpened, OrganisationRegistered, TenantOnboarded, VolunteerRegistered
from lotse_contracts.events.values import Channel, OptionalMessageKind, QuietHours
from lotse_contracts.events.volunteers import VolunteerContact
from lotse_notifications.records import (
    Contact,
    ContactDetails,
    Need,
    NeedSnapshot,
    NeedStatus,
    Organisation,
    Proposal,
    ProposalStatus,
    TenantFacts,
    Webhook,
)
from tests.support import events

TENANT = "musterstadt"
NOW = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)


def contact_fields(data: VolunteerRegistered) -> dict[str, Any]:
    contact = data.contact
    return {
        "volunteer_id": str(data.volunteer_id),
        "display_name": contact.display_name,
        "email": contact.email,
        "phone": contact.phone,
        "preferred_language": contact.preferred_language,
        "channels": [channel.value for channel in contact.channels],
        "quiet_hours": contact.quiet_hours.model_dump(mode="json") if contact.quiet_hours else None,
        "opted_out_of": [kind.value for kind in contact.opted_out_of],
        "active": True,
    }


def need_fields(data: NeedOpened) -> dict[str, Any]:
    return {
        "organisation_id": str(data.organisation_id),
        "category": data.category.value,
        "description": data.description,
        "district": data.place.district,
        "schedule": data.schedule.model_dump(mode="json"),
        "volunteers_needed": data.volunteers_needed,
        "certificate_required": data.certificate_required.value if data.certificate_required else None,
    }


def assert_round_trip(record_type: Any, document: Mapping[str, Any]) -> Any:
    record = record_type.from_document(document)
    assert record.to_document() == document
    return record


def test_a_tenant_document_as_onboarding_stored_it() -> None:
    onboarded = events.tenant_onboarded(TENANT, version=2, extra_skills=["bicycle_repair"])
    document = {"_id": TENANT, "tenant": TENANT, "version": 2, **onboarded.data.model_dump(mode="json")}
    facts = assert_round_trip(TenantFacts, document)
    assert facts == TenantFacts.from_event(onboarded)
    assert (facts.name, facts.timezone, facts.extra_skills) == (
        "Stadt Musterstadt",
        "Europe/Berlin",
        ("bicycle_repair",),
    )


def test_an_organisation_document_as_registration_stored_it() -> None:
    registered = events.organisation_registered(TENANT, kind="coordination_office", districts=["Mitte"])
    data: OrganisationRegistered = registered.data
    document = {
        "_id": f"{TENANT}:{data.organisation_id}",
        "tenant": TENANT,
        "version": 1,
        **data.model_dump(mode="json"),
    }
    organisation = assert_round_trip(Organisation, document)
    assert organisation == Organisation.from_event(registered)
    assert organisation.kind == "coordination_office" and organisation.districts == ("Mitte",)


@pytest.mark.parametrize(
    ("contact_overrides", "consent", "organisation_id"),
    [
        ({}, ["matching", "contact"], None),
        (
            {
                "channels": ["in_app"],
                "phone": None,
                "quiet_hours": {"start": "21:00:00", "end": "07:00:00"},
                "opted_out_of": ["welcome", "proposal_reminder"],
            },
            ["matching"],
            "3f2b6c1e-8d4a-4a57-9b0e-2c6f1d7a9e01",
        ),
    ],
)
def test_a_contact_document_as_registration_stored_it(
    contact_overrides: dict[str, Any], consent: list[str], organisation_id: str | None
) -> None:
    example = VolunteerRegistered.example()
    contact = example.contact.model_dump(mode="json") | contact_overrides
    registered = events.volunteer_registered(
        TENANT,
        version=3,
        contact=contact,
        consent=example.consent.model_dump(mode="json") | {"purposes": consent},
        organisation_id=organisation_id,
    )
    data = registered.data
    volunteer_id = str(data.volunteer_id)
    document = {
        "_id": f"{TENANT}:{volunteer_id}",
        "tenant": TENANT,
        "version": 3,
        **contact_fields(data),
        "contact_consent": "contact" in consent,
        "organisation_id": organisation_id,
    }
    record = assert_round_trip(Contact, document)
    built = Contact(
        TENANT,
        volunteer_id,
        3,
        ContactDetails.from_contract(data.contact),
        contact_consent="contact" in consent,
        organisation_id=organisation_id,
    )
    assert record == built and built.to_document() == document
    assert record.details is not None and record.details.channels == tuple(Channel(c) for c in contact["channels"])
    assert record.details.opted_out_of == tuple(OptionalMessageKind(kind) for kind in contact.get("opted_out_of", []))


def test_a_contact_document_of_a_profile_update_read_before_the_registration() -> None:
    registered = events.volunteer_registered(TENANT, version=2)
    data = registered.data
    # The profile update's fields alone: no consent and no organisation yet.
    document = {"_id": f"{TENANT}:{data.volunteer_id}", "tenant": TENANT, "version": 2, **contact_fields(data)}
    record = assert_round_trip(Contact, document)
    assert record.contact_consent is None and record.organisation_id is None and record.active


def test_a_withdrawn_contact_and_an_erased_one() -> None:
    data = events.volunteer_registered(TENANT).data
    document = {
        "_id": f"{TENANT}:{data.volunteer_id}",
        "tenant": TENANT,
        "version": 1,
        **contact_fields(data),
        "contact_consent": True,
        "organisation_id": None,
        "active": False,
    }
    assert not assert_round_trip(Contact, document).active
    tombstone = {
        "_id": f"{TENANT}:{data.volunteer_id}",
        "tenant": TENANT,
        "volunteer_id": str(data.volunteer_id),
        "erased": True,
        "version": 4,
    }
    erased = assert_round_trip(Contact, tombstone)
    assert erased.erased and erased == Contact.tombstone(TENANT, str(data.volunteer_id), 4)


def test_quiet_hours_read_as_the_contract_value() -> None:
    contact = VolunteerRegistered.example().contact.model_dump() | {
        "quiet_hours": {"start": "22:00:00", "end": "06:30:00"}
    }
    data = events.volunteer_registered(TENANT, contact=contact).data
    details = ContactDetails.from_document(contact_fields(data))
    assert details.quiet_hours == QuietHours.model_validate({"start": "22:00:00", "end": "06:30:00"})


@pytest.mark.parametrize(
    "need_overrides",
    [
        {},
        {
            "certificate_required": None,
            "place": {"point": {"lat": 52.5, "lon": 13.4}},
            "schedule": {
                "kind": "weekly",
                "slots": [{"weekday": "tuesday", "start": "16:00:00", "end": "19:00:00"}],
                "starts_on": "2026-12-01",
            },
        },
    ],
)
def test_need_documents_in_each_shape_the_events_leave(need_overrides: dict[str, Any]) -> None:
    opened = events.need_opened(TENANT, version=2, **need_overrides)
    need_id, snapshot = str(opened.data.need_id), need_fields(opened.data)
    head = {"_id": f"{TENANT}:{need_id}", "tenant": TENANT}
    shapes = [
        # opened (status and staffing flag only if no staffing event said otherwise)
        head | {"version": 2, "need_id": need_id, **snapshot, "status": "open", "unstaffed": False},
        # a staffing event read first, then its status
        head | {"staffing_version": 3, "need_id": need_id},
        head | {"staffing_version": 3, "need_id": need_id, "status": "staffed", "unstaffed": False},
        # then the need arrived, and was cancelled
        head
        | {"staffing_version": 3, "need_id": need_id, "status": "staffed", "unstaffed": False, "version": 2}
        | snapshot,
        head
        | {"version": 4, "need_id": need_id, **snapshot, "status": "cancelled", "unstaffed": True}
        | {"cancellation_reason": "duplicate", "staffing_version": 5},
        # cancelled before it was ever read
        head | {"version": 3, "need_id": need_id, "status": "cancelled", "cancellation_reason": "no_longer_needed"},
    ]
    for document in shapes:
        assert_round_trip(Need, document)
    opened_need = Need.from_document(shapes[0])
    assert opened_need.snapshot == NeedSnapshot.from_event(opened.data)
    assert opened_need.status is NeedStatus.OPEN and opened_need.unstaffed is False
    assert Need.from_document(shapes[1]).snapshot is None


def test_proposal_documents_of_a_match_and_of_a_picked_need() -> None:
    proposed = events.match_proposed(TENANT, expires_at=NOW)
    data: MatchProposed = proposed.data
    proposal_id = str(data.proposal_id)
    payload = {"need_id": str(data.need_id), "need": None, "proposal_id": proposal_id, "expires_at": NOW.isoformat()}
    matched = {
        "_id": f"{TENANT}:{proposal_id}",
        "tenant": TENANT,
        "proposal_id": proposal_id,
        "need_id": str(data.need_id),
        "volunteer_id": str(data.volunteer_id),
        "status": "open",
        "expires_at": NOW,
        "reminded": False,
        "correlation_id": proposed.correlationid,
        "payload": payload,
    }
    record = assert_round_trip(Proposal, matched)
    assert record.status is ProposalStatus.OPEN and record.reminded is False
    picked_id = f"picked-{data.need_id}-{data.volunteer_id}"
    picked = {
        "_id": f"{TENANT}:{picked_id}",
        "tenant": TENANT,
        "proposal_id": picked_id,
        "need_id": str(data.need_id),
        "volunteer_id": str(data.volunteer_id),
        "status": "accepted",
    }
    assert assert_round_trip(Proposal, picked).expires_at is None


def test_a_webhook_document() -> None:
    for event_types, opted_in in (([], []), (["de.lotse.matching.need.staffed.v1"], ["volunteer_ids"])):
        document = {
            "_id": "b5f0c3c2-54e2-4b7e-9a57-0e5c1d0f3a11",
            "tenant": TENANT,
            "url": "https://partner.example/hook",
            "secret": "s" * 32,
            "event_types": event_types,
            "created_at": NOW,
            "fields": opted_in,
        }
        hook = assert_round_trip(Webhook, document)
        assert hook.forwards("de.lotse.matching.need.staffed.v1")
        assert hook.forwards("de.lotse.registry.need.opened.v1") is not bool(event_types)
    # Webhooks registered before the opt-in existed get the default projection.
    older = {"_id": "a1", "tenant": TENANT, "url": "https://partner.example/hook", "secret": "s" * 32}
    assert Webhook.from_document({**older, "event_types": [], "created_at": NOW}).fields == frozenset()


@pytest.mark.parametrize(
    ("record", "contract", "own"),
    [
        (TenantFacts, TenantOnboarded, {"tenant", "version"}),
        (Organisation, OrganisationRegistered, {"tenant", "version"}),
        (ContactDetails, VolunteerContact, set()),
    ],
)
def test_a_record_keeps_every_field_its_event_carries(record: Any, contract: Any, own: set[str]) -> None:
    """The documents held every field of these events; a field added to the contract belongs in
    the record too, or it would silently stop being stored."""
    assert {field.name for field in fields(record)} - own == set(contract.model_fields)
