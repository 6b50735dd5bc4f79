"""Everything the registry holds about one volunteer (DSGVO Art. 15), for the volunteer and the
office: the shape and who may ask are ``lotse_runtime.subject_access``'s."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter

from lotse_registry.api.access import NOT_FOUND, Caller, StoreDep
from lotse_runtime.subject_access import SUBJECT_ACCESS_PATH, Section, SubjectAccess, may_ask, section

router = APIRouter(tags=["volunteers"])


class RegistrySubjectAccess(SubjectAccess):
    volunteer: Section
    consents: Section
    certificate_checks: Section
    contact_person: Section
    partner_references: Section
    idempotency_records: Section
    outbox: Section
    person_key: Section
    audit: Section


# Which collection each section shows, and why a collection naming volunteers is none.
COLLECTIONS = {
    "volunteer": "volunteers",
    "consents": "consents",
    "certificate_checks": "certificate_checks",
    "contact_person": "staff",
    "partner_references": "partner_refs",
    "idempotency_records": "idempotency",
    "outbox": "outbox",
    "person_key": "person_keys",
    "audit": "audit",
}
NOT_SECTIONS = {"inbox": "ids of the events processed, nothing about anyone"}


@router.get(SUBJECT_ACCESS_PATH, responses=NOT_FOUND)
async def subject_access(
    registry: StoreDep, tenant: str, volunteer_id: str, principal: Caller
) -> RegistrySubjectAccess:
    """Everything the registry holds about the volunteer, one section per collection."""
    may_ask(principal, tenant, volunteer_id)
    held = await registry.held_about_volunteer(tenant, volunteer_id)
    return RegistrySubjectAccess(
        service="registry",
        tenant=tenant,
        volunteer_id=volunteer_id,
        produced_at=datetime.now(UTC),
        volunteer=section("The profile: contact details, skills, languages, availability, status.", held.volunteer),
        consents=section("Each consent given, with its version, and when it was withdrawn.", held.consents),
        certificate_checks=section(
            "The office's checks of certificates, the history included.", held.certificate_checks
        ),
        contact_person=section("The person at the coordination office who is the contact person.", held.contact_person),
        partner_references=section(
            "The reference of a partner system that registered the volunteer.", held.partner_refs
        ),
        idempotency_records=section(
            "Answers kept for a day so that a repeated request changes nothing.",
            held.idempotency,
            secrets=("fingerprint",),
        ),
        outbox=section("The events about the volunteer, as published to the other services.", held.outbox),
        person_key=section(
            "The key the personal fields of the volunteer's events are sealed with (destroyed on erasure).",
            held.person_key,
            secrets=("wrapped_key",),
        ),
        audit=section("Who changed or read the volunteer's data, and when (not the values).", held.audit),
    )
