"""The registry's use cases (service.py) on an in-memory scope: what each command writes, which
events it appends to the outbox with which versions, and what it refuses.

The same commands run on MongoDB and Kafka in tests/integration/registry; here every rule of a
command is checked without them, one command at a time.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from lotse_contracts import (
    Availability,
    NeedCancelled,
    NeedClosed,
    NeedDetails,
    NeedOpened,
    NeedUpdated,
    OrganisationRegistered,
    OrganisationUpdated,
    TenantOnboarded,
    VolunteerAvailabilityChanged,
    VolunteerErased,
    VolunteerProfileUpdated,
    VolunteerRegistered,
    VolunteerWithdrawn,
    topic_for,
)
from lotse_contracts.events.needs import CancellationReason, NeedOutcome
from lotse_contracts.events.volunteers import VolunteerProfile, WithdrawalReason
from lotse_registry import service
from lotse_registry.domain import DomainError, NeedStatus, VolunteerStatus
from lotse_registry.store import (
    CONSENTS,
    COUNTERS,
    IDEMPOTENCY,
    NEEDS,
    ORGANISATIONS,
    PARTNER_REFS,
    POSTCODES,
    SOURCE,
    TENANTS,
    VOLUNTEERS,
    Document,
    StaleVersion,
    postcode_id,
)
from lotse_runtime.auth import Principal, Role
from tests.support import events
from tests.support.events import example_data
from tests.unit.registry.fakes import FakeScope

TENANT = "musterstadt"
CONTACT = VolunteerRegistered.example().contact  # Maria, maria@example.org, +4915112345678


@contextlib.contextmanager
def refused(status: int, detail: str) -> Iterator[None]:
    """The command is refused with ``status``, its detail matching ``detail``."""
    with pytest.raises(DomainError, match=detail) as refusal:
        yield
    assert refusal.value.status == status, refusal.value


async def onboarded(**settings: Any) -> FakeScope:
    scope = FakeScope(TENANT)
    await scope.run(
        lambda s: service.onboard_tenant(s, example_data(TenantOnboarded, **settings), {"default_search_radius_km": 12})
    )
    return scope


def organisation_fields(**overrides: Any) -> dict[str, Any]:
    return example_data(OrganisationRegistered, **overrides).model_dump(mode="json", exclude={"organisation_id"})


async def with_organisation(scope: FakeScope, **overrides: Any) -> str:
    document = await scope.run(lambda s: service.register_organisation(s, organisation_fields(**overrides)))
    return str(document["_id"])


def registration(volunteer_id: str, organisation_id: str | None, **overrides: Any) -> VolunteerRegistered:
    return example_data(VolunteerRegistered, volunteer_id=volunteer_id, organisation_id=organisation_id, **overrides)


async def with_volunteer(scope: FakeScope, organisation_id: str | None = None, **overrides: Any) -> Document:
    volunteer_id = str(uuid.uuid4())
    return await scope.run(
        lambda s: service.register_volunteer(
            s, volunteer_id, registration(volunteer_id, organisation_id, **overrides), registered_via="self"
        )
    )


def details(organisation_id: str, **overrides: Any) -> NeedDetails:
    return example_data(NeedDetails, organisation_id=organisation_id, **overrides)


async def with_need(scope: FakeScope, organisation_id: str, **overrides: Any) -> Document:
    return await scope.run(lambda s: service.open_need(s, details(organisation_id, **overrides)))


async def world() -> tuple[FakeScope, str]:
    """An onboarded tenant with one organisation, its events already counted out."""
    scope = await onboarded()
    organisation_id = await with_organisation(scope)
    scope.outbox.clear()
    return scope, organisation_id


def only_event(scope: FakeScope) -> Any:
    """The one event the last command appended (the outbox was empty before it)."""
    (appended,) = scope.outbox
    assert appended.topic == topic_for(appended.event.type, TENANT)
    assert (appended.event.tenant, appended.event.source) == (TENANT, SOURCE)
    return appended.event


# --- tenants --------------------------------------------------------------------------------------


async def test_onboarding_stores_the_settings_and_appends_tenant_onboarded_once() -> None:
    scope = await onboarded(extra_skills=["bicycle_repair"])

    (tenant,) = scope.documents(TENANTS)
    assert tenant["_id"] == TENANT and tenant["version"] == 1
    assert tenant["extra_skills"] == ["bicycle_repair"] and tenant["default_search_radius_km"] == 12
    event = only_event(scope)
    assert isinstance(event.data, TenantOnboarded)
    assert (event.subject, event.version, event.data.name) == (TENANT, 1, "Stadt Musterstadt")

    with refused(409, "already onboarded"):
        await scope.run(lambda s: service.onboard_tenant(s, TenantOnboarded.example(), {}))
    assert len(scope.outbox) == 1 and len(scope.documents(TENANTS)) == 1


# --- organisations --------------------------------------------------------------------------------


async def test_an_organisation_is_registered_only_in_an_onboarded_tenant() -> None:
    with refused(404, "no tenant"):
        await FakeScope(TENANT).run(lambda s: service.register_organisation(s, organisation_fields()))

    scope = await onboarded()
    scope.outbox.clear()
    organisation_id = await with_organisation(scope, name="Nachbarschaftshilfe Nord", districts=["Nord"])

    (stored,) = scope.documents(ORGANISATIONS)
    assert stored["_id"] == organisation_id and stored["name"] == "Nachbarschaftshilfe Nord"
    event = only_event(scope)
    assert isinstance(event.data, OrganisationRegistered)
    assert (event.subject, event.version) == (organisation_id, 1)
    assert (str(event.data.organisation_id), event.data.districts) == (organisation_id, ["Nord"])


async def test_only_a_coordinator_makes_an_organisation_the_coordination_office() -> None:
    scope, organisation_id = await world()
    current = await service.load(scope, ORGANISATIONS, organisation_id, "organisation")
    office = {**organisation_fields(), "kind": "coordination_office"}
    initiative_admin = Principal("admin", TENANT, frozenset({Role.INITIATIVE_ADMIN}), organisation_id)
    coordinator = Principal("office", TENANT, frozenset({Role.COORDINATOR}))

    with refused(403, "only coordinators"):
        await scope.run(lambda s: service.update_organisation(s, organisation_id, office, by=initiative_admin))
    assert scope.outbox == []

    changed = await scope.run(lambda s: service.update_organisation(s, organisation_id, office, by=coordinator))
    assert changed["kind"] == "coordination_office" and changed["version"] == current["version"] + 1
    event = only_event(scope)
    assert isinstance(event.data, OrganisationUpdated) and event.data.kind == "coordination_office"
    assert event.version == changed["version"]


# --- volunteers -----------------------------------------------------------------------------------


async def test_registering_a_volunteer_keeps_the_consent_as_its_own_record_and_appends_the_registration() -> None:
    scope, organisation_id = await world()
    volunteer_id = str(uuid.uuid4())
    proof = {"document_ref": "consent-scan-17"}

    stored = await scope.run(
        lambda s: service.register_volunteer(
            s, volunteer_id, registration(volunteer_id, organisation_id), registered_via="partner", consent_proof=proof
        )
    )

    assert stored["_id"] == volunteer_id and stored["version"] == 1
    assert (stored["status"], stored["engagements"], stored["registered_via"]) == ("active", [], "partner")
    (consent,) = scope.documents(CONSENTS)
    assert consent["volunteer_id"] == volunteer_id and consent["proof"] == proof
    assert consent["purposes"] == ["matching", "contact"] and consent["withdrawn_at"] is None
    event = only_event(scope)
    assert isinstance(event.data, VolunteerRegistered)
    assert (event.subject, event.version, event.data.contact.email) == (volunteer_id, 1, CONTACT.email)


async def test_a_volunteers_skills_are_checked_against_the_tenants_catalogue() -> None:
    scope, _ = await world()  # the catalogue: the base skills and the tenant's bicycle_repair
    await with_volunteer(scope, skills=["driving", "bicycle_repair"])
    assert len(scope.events(VolunteerRegistered)) == 1

    volunteer_id = str(uuid.uuid4())
    unknown = registration(volunteer_id, None, skills=["driving", "falconry"])
    with refused(422, "^skills: .* catalogue: falconry$"):
        await scope.run(lambda s: service.register_volunteer(s, volunteer_id, unknown, registered_via="self"))

    other = await onboarded(extra_skills=[])
    with refused(422, "bicycle_repair"):
        await with_volunteer(other, skills=["bicycle_repair"])
    assert len(scope.events(VolunteerRegistered)) == 1 and len(scope.documents(VOLUNTEERS)) == 1
    assert len(scope.documents(CONSENTS)) == 1


async def test_a_volunteer_registers_once_and_only_with_an_organisation_of_the_tenant() -> None:
    scope, organisation_id = await world()
    with refused(422, "is not registered here"):
        await with_volunteer(scope, organisation_id=str(uuid.uuid4()))

    first = await with_volunteer(scope, organisation_id)
    again = registration(first["_id"], organisation_id)
    with refused(409, "already registered"):
        await scope.run(lambda s: service.register_volunteer(s, first["_id"], again, registered_via="self"))
    assert len(scope.events(VolunteerRegistered)) == 1 and len(scope.documents(CONSENTS)) == 1


async def test_an_event_caused_by_a_partner_command_stays_in_its_trace() -> None:
    scope, organisation_id = await world()
    command = events.report_need(TENANT, "case-1")

    await scope.run(lambda s: service.open_need(s, details(organisation_id), cause=command))

    event = only_event(scope)
    assert (event.correlationid, event.causationid) == (command.correlationid, str(command.id))


async def test_a_profile_update_is_checked_versioned_and_appended_in_full() -> None:
    scope, _ = await world()
    volunteer = await with_volunteer(scope)
    scope.outbox.clear()
    profile = example_data(VolunteerProfile, skills=["bicycle_repair"], travel_radius_km=25)

    updated = await scope.run(lambda s: service.update_profile(s, volunteer, profile))

    assert updated["version"] == 2 and updated["travel_radius_km"] == 25
    assert (await scope.get(VOLUNTEERS, volunteer["_id"]) or {})["skills"] == ["bicycle_repair"]
    event = only_event(scope)
    assert isinstance(event.data, VolunteerProfileUpdated)
    assert (event.version, event.data.skills, event.data.contact.email) == (2, ["bicycle_repair"], CONTACT.email)

    with refused(422, "falconry"):
        await scope.run(
            lambda s: service.update_profile(s, updated, example_data(VolunteerProfile, skills=["falconry"]))
        )
    # The volunteer as read before the update: someone changed it since.
    with pytest.raises(StaleVersion):
        await scope.run(lambda s: service.update_profile(s, volunteer, profile))
    assert len(scope.outbox) == 1 and (await scope.get(VOLUNTEERS, volunteer["_id"]) or {})["version"] == 2


async def test_availability_changes_are_appended_with_the_next_version() -> None:
    scope, _ = await world()
    volunteer = await with_volunteer(scope)
    scope.outbox.clear()
    availability = example_data(Availability, max_concurrent_engagements=1)

    changed = await scope.run(lambda s: service.change_availability(s, volunteer, availability))

    event = only_event(scope)
    assert isinstance(event.data, VolunteerAvailabilityChanged)
    assert (event.version, event.data.availability.max_concurrent_engagements) == (2, 1)
    assert changed["availability"]["max_concurrent_engagements"] == 1


@pytest.mark.parametrize(
    ("reason", "consent_withdrawn"),
    [(WithdrawalReason.CONSENT_WITHDRAWN, True), (WithdrawalReason.NO_LONGER_AVAILABLE, False)],
)
async def test_a_withdrawn_volunteer_stays_registered_and_a_withdrawn_consent_is_recorded(
    reason: WithdrawalReason, consent_withdrawn: bool
) -> None:
    scope, _ = await world()
    volunteer = await with_volunteer(scope)
    scope.outbox.clear()

    withdrawn = await scope.run(lambda s: service.withdraw_volunteer(s, volunteer, reason))

    assert (withdrawn["status"], withdrawn["withdrawal_reason"], withdrawn["version"]) == ("withdrawn", reason, 2)
    assert (await scope.get(VOLUNTEERS, volunteer["_id"]) or {})["contact"]["email"] == CONTACT.email
    (consent,) = scope.documents(CONSENTS)
    assert (consent["withdrawn_at"] is not None) is consent_withdrawn
    event = only_event(scope)
    assert isinstance(event.data, VolunteerWithdrawn)
    assert (event.version, event.data.reason, event.data.erasure_requested) == (2, reason, False)

    with refused(409, "is withdrawn"):
        await scope.run(lambda s: service.withdraw_volunteer(s, withdrawn, reason))
    with refused(409, "is withdrawn"):
        await scope.run(lambda s: service.update_profile(s, withdrawn, example_data(VolunteerProfile)))
    assert len(scope.outbox) == 1


async def test_erasure_leaves_an_anonymous_tombstone_and_appends_volunteer_erased() -> None:
    scope, organisation_id = await world()
    volunteer = await with_volunteer(scope, organisation_id)
    someone_else = {"display_name": "Olga", "email": "olga@example.org", "phone": "+4915199999999"}
    other = await with_volunteer(scope, organisation_id, contact=CONTACT.model_copy(update=someone_else))
    volunteer_id = volunteer["_id"]
    need = await with_need(scope, organisation_id)
    await scope.update_many(NEEDS, {"_id": need["_id"]}, {"$set": {"committed": [volunteer_id, other["_id"]]}})
    await scope.insert(PARTNER_REFS, {"_id": "volunteer:ref-1", "kind": "volunteer", "aggregate_id": volunteer_id})
    await scope.insert(IDEMPOTENCY, {"_id": "key-1", "resource_id": volunteer_id, "body": {"email": CONTACT.email}})
    await scope.insert(IDEMPOTENCY, {"_id": "key-2", "resource_id": other["_id"]})
    scope.outbox.clear()

    tombstone = await scope.run(lambda s: service.erase_volunteer(s, volunteer))

    # An active volunteer is withdrawn first (erasure requested), then erased: versions 2 and 3.
    withdrawn, erased = scope.events()
    assert isinstance(withdrawn.data, VolunteerWithdrawn) and withdrawn.data.erasure_requested
    assert withdrawn.data.reason == WithdrawalReason.CONSENT_WITHDRAWN and withdrawn.version == 2
    assert isinstance(erased.data, VolunteerErased)
    assert (erased.subject, erased.version, str(erased.data.volunteer_id)) == (volunteer_id, 3, volunteer_id)
    stored = await scope.get(VOLUNTEERS, volunteer_id)
    # Outbox entries below version 2 (the registration) carry contact data: scrubbed after the commit.
    assert stored is not None and stored == tombstone and stored["outbox_scrub_below"] == 2
    assert set(stored) == {"_id", "tenant", "status", "version", "created_at", "erased_at", "outbox_scrub_below"}
    assert (stored["status"], stored["version"]) == (VolunteerStatus.ERASED, 3)
    # Nothing of theirs is left beside the tombstone; the other volunteer keeps everything.
    assert [c["volunteer_id"] for c in scope.documents(CONSENTS)] == [other["_id"]]
    assert scope.documents(PARTNER_REFS) == []
    assert [record["_id"] for record in scope.documents(IDEMPOTENCY)] == ["key-2"]
    assert (await scope.get(NEEDS, need["_id"]) or {})["committed"] == [other["_id"]]
    assert not [datum for datum in ("Maria", CONTACT.email, "+4915112345678") if datum in repr(scope.collections)]
    assert (await scope.get(COUNTERS, f"{TENANT}:volunteers") or {})["erased"] == 1

    # Erasing again (a repeated request) changes nothing and appends nothing.
    assert await scope.run(lambda s: service.erase_volunteer(s, stored)) == stored
    assert len(scope.outbox) == 2 and (await scope.get(COUNTERS, f"{TENANT}:volunteers") or {})["erased"] == 1


async def test_erasing_a_withdrawn_volunteer_appends_only_the_erasure() -> None:
    scope, _ = await world()
    volunteer = await with_volunteer(scope)
    withdrawn = await scope.run(
        lambda s: service.withdraw_volunteer(s, volunteer, WithdrawalReason.NO_LONGER_AVAILABLE)
    )
    scope.outbox.clear()

    await scope.run(lambda s: service.erase_volunteer(s, withdrawn))

    event = only_event(scope)
    assert isinstance(event.data, VolunteerErased) and event.version == 3
    # What was appended up to the withdrawal carries contact data: scrubbed after the commit.
    assert (await scope.get(VOLUNTEERS, volunteer["_id"]) or {})["outbox_scrub_below"] == 3
    assert scope.documents(CONSENTS) == []


# --- needs ----------------------------------------------------------------------------------------


async def test_opening_a_need_stores_it_open_and_appends_need_opened() -> None:
    scope, organisation_id = await world()
    reporter = {"subject": "case-management", "channel": "kafka"}

    need = await scope.run(
        lambda s: service.open_need(s, details(organisation_id), partner_ref="case-1", reported_by=reporter)
    )

    assert (need["status"], need["version"], need["committed"], need["unstaffed"]) == ("open", 1, [], False)
    assert (need["partner_ref"], need["reported_by"], need["household_ref"]) == ("case-1", reporter, "hh-7f3k9q2a")
    event = only_event(scope)
    assert isinstance(event.data, NeedOpened)
    assert (event.subject, event.version, str(event.data.need_id)) == (need["_id"], 1, need["_id"])
    assert event.data.description == NeedDetails.example().description


@pytest.mark.parametrize(
    ("known_organisation", "skills", "detail"),
    [
        (False, ["accompaniment"], "is not registered here"),
        (True, ["accompaniment", "falconry"], "^required_skills: .* catalogue: falconry$"),
    ],
)
async def test_a_need_of_an_unknown_organisation_or_with_skills_outside_the_catalogue_is_refused(
    known_organisation: bool, skills: list[str], detail: str
) -> None:
    scope, organisation_id = await world()
    owner = organisation_id if known_organisation else str(uuid.uuid4())
    with refused(422, detail):
        await with_need(scope, owner, required_skills=skills)
    assert scope.outbox == [] and scope.documents(NEEDS) == []


async def test_a_need_update_keeps_its_owner_and_is_appended_with_the_next_version() -> None:
    scope, organisation_id = await world()
    need = await with_need(scope, organisation_id)
    other_organisation = await with_organisation(scope, name="Tafel Mitte")
    scope.outbox.clear()

    updated = await scope.run(
        lambda s: service.update_need(s, need, details(organisation_id, description="Begleitung zum Jobcenter."))
    )

    assert (updated["version"], updated["description"]) == (2, "Begleitung zum Jobcenter.")
    event = only_event(scope)
    assert isinstance(event.data, NeedUpdated)
    assert (event.version, event.data.description) == (2, "Begleitung zum Jobcenter.")

    with refused(422, "keeps its owning organisation"):
        await scope.run(lambda s: service.update_need(s, updated, details(other_organisation)))
    with pytest.raises(StaleVersion):
        await scope.run(lambda s: service.update_need(s, need, details(organisation_id)))
    assert len(scope.outbox) == 1


async def test_a_cancelled_need_is_over() -> None:
    scope, organisation_id = await world()
    need = await with_need(scope, organisation_id)
    scope.outbox.clear()

    cancelled = await scope.run(lambda s: service.cancel_need(s, need, CancellationReason.SOLVED_OTHERWISE))

    assert (cancelled["status"], cancelled["cancellation_reason"], cancelled["version"]) == (
        NeedStatus.CANCELLED,
        "solved_otherwise",
        2,
    )
    event = only_event(scope)
    assert isinstance(event.data, NeedCancelled)
    assert (event.version, event.data.reason) == (2, CancellationReason.SOLVED_OTHERWISE)
    with refused(409, "cannot become cancelled"):
        await scope.run(lambda s: service.cancel_need(s, cancelled, CancellationReason.DUPLICATE))
    with refused(409, "cannot be changed"):
        await scope.run(lambda s: service.update_need(s, cancelled, details(organisation_id)))
    with refused(409, "cannot become closed"):
        await scope.run(lambda s: service.close_need(s, cancelled, NeedOutcome.FULFILLED))
    assert len(scope.outbox) == 1


async def test_a_closed_need_records_its_outcome() -> None:
    scope, organisation_id = await world()
    need = await with_need(scope, organisation_id)
    scope.outbox.clear()

    closed = await scope.run(lambda s: service.close_need(s, need, NeedOutcome.PARTIALLY_FULFILLED))

    assert (closed["status"], closed["outcome"], closed["version"]) == (NeedStatus.CLOSED, "partially_fulfilled", 2)
    event = only_event(scope)
    assert isinstance(event.data, NeedClosed)
    assert (event.version, event.data.outcome) == (2, NeedOutcome.PARTIALLY_FULFILLED)
    with refused(409, "cannot become cancelled"):
        await scope.run(lambda s: service.cancel_need(s, closed, CancellationReason.OTHER))
    with pytest.raises(StaleVersion):
        await scope.run(lambda s: service.close_need(s, need, NeedOutcome.FULFILLED))
    assert len(scope.outbox) == 1


# --- a need's district -------------------------------------------------------------------------


async def with_postcode_table(scope: FakeScope) -> None:
    """Two postcodes of the tenant, each with its district (as ``replace_postcodes`` stores them)."""
    rows = [
        {"_id": postcode_id(TENANT, postcode), "postcode": postcode, "lat": 52.5, "lon": 13.4, "district": district}
        for postcode, district in (("12345", "Mitte"), ("12347", "Nord"))
    ]

    async def insert(s: FakeScope) -> None:
        for row in rows:
            await s.insert(POSTCODES, row)

    await scope.run(insert)


def placed_at(postcode: str | None, district: str | None) -> dict[str, Any]:
    return {"place": {"point": {"lat": 52.5, "lon": 13.4}, "postcode": postcode, "district": district}}


async def test_a_need_names_a_district_of_the_postcode_table_or_is_refused() -> None:
    scope, organisation_id = await world()
    await with_postcode_table(scope)

    need = await with_need(scope, organisation_id, **placed_at("12345", "Nord"))
    assert need["place"]["district"] == "Nord"
    # Volunteers read the district before they commit: it is no field for words about the household.
    with refused(422, "place.district: not a district of musterstadt"):
        await with_need(scope, organisation_id, **placed_at("12345", "bei Familie Yilmaz, Hauptstr. 5"))
    with refused(422, "place.district"):
        await scope.run(
            lambda s: service.update_need(
                s, need, details(organisation_id, **placed_at("12345", "Hinterhof links, 2. Stock"))
            )
        )
    assert [event.data.place.district for event in scope.events(NeedOpened)] == ["Nord"]


async def test_a_district_is_taken_as_the_table_spells_it_and_an_older_one_stays_through_other_edits() -> None:
    scope, organisation_id = await world()
    older = await with_need(scope, organisation_id, **placed_at("12345", "Altstadt"))  # before the table
    await with_postcode_table(scope)
    # A partner's spelling: a case or a space of its own is no reason to refuse the need.
    need = await with_need(scope, organisation_id, **placed_at("12345", " mitte "))
    assert need["place"]["district"] == "Mitte"
    # The need from before the table keeps its district through an edit of something else.
    edited = await scope.run(
        lambda s: service.update_need(
            s, older, details(organisation_id, volunteers_needed=2, **placed_at("12345", "Altstadt"))
        )
    )
    assert (edited["volunteers_needed"], edited["place"]["district"]) == (2, "Altstadt")


async def test_a_need_without_a_district_gets_its_postcodes_and_a_tenant_without_a_table_keeps_its_own() -> None:
    scope, organisation_id = await world()
    await with_postcode_table(scope)
    need = await with_need(scope, organisation_id, **placed_at("12347", None))
    assert need["place"]["district"] == "Nord"
    assert scope.events(NeedOpened)[-1].data.place.district == "Nord"
    elsewhere = await with_need(scope, organisation_id, **placed_at("99999", None))
    assert elsewhere["place"]["district"] is None  # a postcode outside the table: nothing to take

    without_table, other_organisation = await world()
    kept = await with_need(without_table, other_organisation, **placed_at("12345", "Altstadt"))
    assert kept["place"]["district"] == "Altstadt"
