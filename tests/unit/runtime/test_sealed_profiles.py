"""Issue 18, erasure reaches every copy: a volunteer event's whole profile (skills, languages,
availability...) and a proposal's fit (score, reasons, distance) go sealed with the volunteer's key,
open as the plain events readers know, and the sealed copies of earlier versions still open."""

from __future__ import annotations

import json
from typing import Any
from uuid import uuid4

import pytest

from lotse_contracts import (
    Envelope,
    MatchFit,
    MatchProposed,
    MatchProposedSealed,
    VolunteerAvailabilityChanged,
    VolunteerAvailabilityChangedSealed,
    VolunteerPersonalData,
    VolunteerProfile,
    VolunteerProfileUpdated,
    VolunteerProfileUpdatedFullySealed,
    VolunteerRegistered,
    VolunteerRegisteredFullySealed,
    VolunteerRegisteredSealed,
    VolunteerRegistration,
    new_event,
    parse_event,
    to_bytes,
)
from lotse_runtime.sealed import SealingError, new_data_key, open_sealed, seal, sealed_part

TENANT = "musterstadt"


def _wire(event: Envelope[Any]) -> Envelope[Any]:
    """The event as a reader gets it from the topic."""
    return parse_event(to_bytes(event))


def test_a_registration_carries_only_the_volunteer_id_readable_and_opens_whole() -> None:
    plain = VolunteerRegistered.example()
    subject = str(plain.volunteer_id)
    key_id, data_key = new_data_key()
    registration = VolunteerRegistration.model_validate(plain.model_dump(exclude={"volunteer_id"}))
    data = VolunteerRegisteredFullySealed(
        volunteer_id=plain.volunteer_id,
        profile=seal(registration, key_id=key_id, data_key=data_key, tenant=TENANT, subject=subject),
    )
    event = new_event(data=data, tenant=TENANT, subject=subject, version=1, source="/lotse/registry")

    wire = to_bytes(event)
    assert sorted(json.loads(wire)["data"]) == ["profile", "volunteer_id"]
    for value in ("translation", '"ar"', "tuesday", "extended_police_certificate", "2026-01"):
        assert value.encode() not in wire, value
    received = _wire(event)
    assert sealed_part(received) == (subject, data.profile)
    opened = open_sealed(received, data_key)
    assert opened.type == VolunteerRegistered.event_type and opened.id == event.id
    assert opened.data == plain
    _, other_key = new_data_key()
    with pytest.raises(SealingError):
        open_sealed(received, other_key)


def test_a_profile_update_opens_with_its_key_and_only_in_its_own_volunteers_event() -> None:
    plain = VolunteerProfileUpdated.example()
    subject = str(plain.volunteer_id)
    key_id, data_key = new_data_key()
    profile = VolunteerProfile.model_validate(plain.model_dump(exclude={"volunteer_id"}))
    sealed = seal(profile, key_id=key_id, data_key=data_key, tenant=TENANT, subject=subject)
    data = VolunteerProfileUpdatedFullySealed(volunteer_id=plain.volunteer_id, profile=sealed)
    event = new_event(data=data, tenant=TENANT, subject=subject, version=2, source="/lotse/registry")

    assert open_sealed(_wire(event), data_key).data == plain
    # Copied into another volunteer's event (another message key), it does not open.
    other = uuid4()
    copied = new_event(
        data=VolunteerProfileUpdatedFullySealed(volunteer_id=other, profile=sealed),
        tenant=TENANT,
        subject=str(other),
        version=2,
        source="/lotse/registry",
    )
    with pytest.raises(SealingError):
        open_sealed(copied, data_key)


def test_an_availability_change_opens_with_its_key() -> None:
    plain = VolunteerAvailabilityChanged.example()
    subject = str(plain.volunteer_id)
    key_id, data_key = new_data_key()
    sealed = seal(plain.availability, key_id=key_id, data_key=data_key, tenant=TENANT, subject=subject)
    data = VolunteerAvailabilityChangedSealed(volunteer_id=plain.volunteer_id, availability=sealed)
    event = new_event(data=data, tenant=TENANT, subject=subject, version=3, source="/lotse/registry")

    assert b"weekly_slots" not in to_bytes(event)
    opened = open_sealed(_wire(event), data_key)
    assert opened.type == VolunteerAvailabilityChanged.event_type and opened.data == plain


def test_an_earlier_sealed_version_still_opens_as_before() -> None:
    plain = VolunteerRegistered.example()
    subject = str(plain.volunteer_id)
    key_id, data_key = new_data_key()
    personal = VolunteerPersonalData(contact=plain.contact, home_area=plain.home_area)
    data = VolunteerRegisteredSealed.model_validate(
        {
            **plain.model_dump(exclude={"contact", "home_area"}),
            "personal": seal(personal, key_id=key_id, data_key=data_key, tenant=TENANT, subject=subject),
        }
    )
    event = new_event(data=data, tenant=TENANT, subject=subject, version=1, source="/lotse/registry")

    assert sealed_part(event) == (subject, data.personal)
    assert open_sealed(_wire(event), data_key).data == plain


def _proposal() -> tuple[MatchProposed, Envelope[Any], bytes]:
    plain = MatchProposed.example().model_copy(
        update={"reasons": [*MatchProposed.example().reasons], "distance_km": 1.5, "score": 0.7}
    )
    key_id, data_key = new_data_key()
    need_id = str(plain.need_id)
    fit = MatchFit(score=plain.score, reasons=plain.reasons, distance_km=plain.distance_km)
    data = MatchProposedSealed(
        need_id=plain.need_id,
        volunteer_id=plain.volunteer_id,
        proposal_id=plain.proposal_id,
        organisation_id=plain.organisation_id,
        fit=seal(fit, key_id=key_id, data_key=data_key, tenant=TENANT, subject=need_id),
        expires_at=plain.expires_at,
    )
    return plain, new_event(data=data, tenant=TENANT, subject=need_id, version=1, source="/lotse/matching"), data_key


def test_a_proposal_names_no_reason_and_opens_with_the_volunteers_key() -> None:
    plain, event, data_key = _proposal()

    wire = to_bytes(event)
    assert not {"reasons", "score", "distance_km"} & set(json.loads(wire)["data"])
    assert plain.reasons[0].detail.encode() not in wire
    received = _wire(event)
    part = sealed_part(received)
    assert part is not None and part[0] == str(plain.volunteer_id), "the volunteer's key, not the need's"
    opened = open_sealed(received, data_key)
    assert opened.type == MatchProposed.event_type and opened.id == event.id
    assert opened.data == plain


def test_a_proposal_made_as_the_volunteer_was_erased_has_nothing_to_open() -> None:
    _, event, _ = _proposal()
    erased = event.model_copy(update={"data": event.data.model_copy(update={"fit": None})})

    assert sealed_part(_wire(erased)) is None
