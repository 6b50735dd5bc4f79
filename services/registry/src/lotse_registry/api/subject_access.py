"""Everything the registry holds about one volunteer (DSGVO Art. 15), for the volunteer and the
office: the shape and who may ask are ``lotse_runtime.subject_access``'s."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from fastapi import APIRouter

from lotse_registry.api.access import NOT_FOUND, Caller, StoreDep
from lotse_registry.store import STAFF, VOLUNTEERS
from lotse_runtime.audit import act_as, current_actor, record_reads
from lotse_runtime.problems import problem_responses
from lotse_runtime.subject_access import (
    SUBJECT_ACCESS_PATH,
    RequestDate,
    Section,
    SubjectAccess,
    may_ask,
    office_request,
    section,
)

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


@router.get(SUBJECT_ACCESS_PATH, responses={**NOT_FOUND, **problem_responses(422)})
async def subject_access(
    registry: StoreDep,
    tenant: str,
    volunteer_id: str,
    principal: Caller,
    request_date: RequestDate = None,
) -> RegistrySubjectAccess:
    """Everything the registry holds about the volunteer, one section per collection. The office
    states the written request it answers; its export is recorded in the audit trail."""
    may_ask(principal, tenant, volunteer_id)
    request = office_request(principal, volunteer_id, request_date)
    held = await registry.held_about_volunteer(tenant, volunteer_id)
    export = RegistrySubjectAccess(
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
        outbox=section(
            "The events about the volunteer, as published to the other services.",
            held.outbox,
            secrets=("value.data.wrapped_key",),  # the person's key, in the event that hands it out
        ),
        person_key=section(
            "The key the personal fields of the volunteer's events are sealed with (destroyed on erasure).",
            held.person_key,
            secrets=("wrapped_key",),
        ),
        audit=section("Who changed or read the volunteer's data, and when (not the values).", held.audit),
    )
    if request is not None:
        # Someone other than the person received all of it: recorded as a read of each section
        # shown, the route's action naming the export and its written request.
        actor = current_actor()
        act_as(replace(actor, action=f"{actor.action or 'GET ' + SUBJECT_ACCESS_PATH} ({request.describe()})"))
        shown = {name for name in COLLECTIONS if getattr(export, name).records}
        await record_reads(registry.database, tenant, VOLUNTEERS, [volunteer_id], shown, subjects=True)
        if held.contact_person:
            staff_id = held.contact_person[0]["_id"]
            await record_reads(registry.database, tenant, STAFF, [staff_id], {"name", "email", "phone"})
    return export
