"""What the registry does on each command, shared by the HTTP API and the partner topics.

Each function runs inside one unit of work on a ``CommandScope`` (the tenant's data in that
transaction): it checks the command against the current state (``domain``), writes the new
state and appends the event(s) to the outbox.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

from pydantic import BaseModel

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
    VolunteerCertificateChecked,
    VolunteerCertificateCheckRevoked,
    VolunteerCertificateExpiring,
    VolunteerContactPersonChanged,
    VolunteerErased,
    VolunteerProfileUpdated,
    VolunteerRegistered,
    VolunteerWithdrawn,
)
from lotse_contracts.envelope import Envelope
from lotse_contracts.events.needs import CancellationReason, NeedOutcome
from lotse_contracts.events.values import HomeArea
from lotse_contracts.events.volunteers import CertificateCheck, VolunteerProfile, WithdrawalReason
from lotse_registry import domain
from lotse_registry.domain import CheckStatus, DomainError, NeedStatus, VolunteerStatus
from lotse_registry.places import PostcodePlace
from lotse_registry.store import (
    CERTIFICATE_CHECKS,
    CONSENTS,
    NEEDS,
    ORGANISATIONS,
    PARTNER_REFS,
    POSTCODES,
    STAFF,
    TENANTS,
    VOLUNTEERS,
    CommandScope,
    Document,
    postcode_id,
    staff_document_id,
)
from lotse_runtime.auth import Principal, Role

PROFILE_FIELDS = tuple(VolunteerProfile.model_fields)
NEED_FIELDS = tuple(NeedDetails.model_fields)


def new_id() -> str:
    return str(uuid.uuid4())


async def load(scope: CommandScope, collection: str, document_id: str, what: str) -> Document:
    document = await scope.get(collection, document_id)
    if document is None:
        raise DomainError(404, "Not found", f"no {what} {document_id}")
    return document


async def tenant_settings(scope: CommandScope) -> Document:
    document = await scope.tenant_settings()
    if document is None:
        raise DomainError(404, "Not found", f"no tenant {scope.tenant}")
    return document


# --- tenants ---------------------------------------------------------------------------------


async def onboard_tenant(scope: CommandScope, settings: TenantOnboarded, extra: dict[str, Any]) -> Document:
    if await scope.get(TENANTS, scope.tenant) is not None:
        raise DomainError(409, "Tenant exists", f"tenant {scope.tenant} is already onboarded")
    document = {"_id": scope.tenant, **settings.model_dump(mode="json"), **extra}
    return await scope.create(TENANTS, document, settings)


# --- organisations ---------------------------------------------------------------------------


def _organisation_state(document: Document) -> dict[str, Any]:
    return {
        "organisation_id": document["_id"],
        "name": document["name"],
        "kind": document["kind"],
        "contact_email": document["contact_email"],
        "districts": document["districts"],
    }


async def register_organisation(scope: CommandScope, fields: dict[str, Any]) -> Document:
    await tenant_settings(scope)
    document = {"_id": new_id(), **fields}
    event = OrganisationRegistered.model_validate(_organisation_state(document))
    return await scope.create(ORGANISATIONS, {**document, **_json(event, exclude={"organisation_id"})}, event)


async def update_organisation(
    scope: CommandScope, organisation_id: str, fields: dict[str, Any], *, by: Principal
) -> Document:
    current = await load(scope, ORGANISATIONS, organisation_id, "organisation")
    if not domain.may_set_kind(by, current["kind"], fields["kind"]):
        raise DomainError(
            403, "Forbidden", "body.kind: only coordinators make an organisation the coordination office or unmake it"
        )
    event = OrganisationUpdated.model_validate(_organisation_state({**current, **fields}))
    return await scope.change(ORGANISATIONS, current, _json(event, exclude={"organisation_id"}), event)


async def require_organisation(scope: CommandScope, organisation_id: Any) -> None:
    if organisation_id is not None and not await scope.organisation_exists(str(organisation_id)):
        raise DomainError(422, "Unknown organisation", f"organisation {organisation_id} is not registered here")


# --- volunteers ------------------------------------------------------------------------------


async def _check_skills(scope: CommandScope, skills: list[str], field: str) -> None:
    tenant = await tenant_settings(scope)
    unknown = domain.unknown_skills(skills, tenant.get("extra_skills", []))
    if unknown:
        raise DomainError(422, "Unknown skills", f"{field}: not in the tenant's skill catalogue: {', '.join(unknown)}")


async def placed(scope: CommandScope, home_area: HomeArea) -> HomeArea:
    """The home area with a point: a postcode alone gets its centroid from the tenant's postcode
    table, since matching measures distances between points. An unknown postcode is refused, so
    that no volunteer is stored without a place."""
    if home_area.point is not None or home_area.postcode is None:
        return home_area
    document = await scope.get(POSTCODES, postcode_id(scope.tenant, home_area.postcode))
    if document is None:
        raise DomainError(422, "Unknown postcode", f"postcode not known in {scope.tenant}", field="home_area.postcode")
    return HomeArea(point=PostcodePlace.from_document(document).point, postcode=home_area.postcode)


async def register_volunteer(
    scope: CommandScope,
    volunteer_id: str,
    registration: VolunteerRegistered,
    *,
    registered_via: str,
    consent_proof: dict[str, Any] | None = None,
    cause: Envelope[Any] | None = None,
) -> Document:
    """Register a volunteer with their consent; the consent is also kept as its own record."""
    await _check_skills(scope, registration.skills, "skills")
    await require_organisation(scope, registration.organisation_id)
    registration = registration.model_copy(update={"home_area": await placed(scope, registration.home_area)})
    if await scope.get(VOLUNTEERS, volunteer_id) is not None:
        raise DomainError(409, "Already registered", "this volunteer is already registered")
    data = registration.model_dump(mode="json", exclude={"volunteer_id"})
    document = {
        "_id": volunteer_id,
        **data,
        "status": VolunteerStatus.ACTIVE.value,
        "engagements": [],
        "registered_via": registered_via,
    }
    await scope.insert(
        CONSENTS,
        {
            "_id": new_id(),
            "volunteer_id": volunteer_id,
            **data["consent"],
            "proof": consent_proof,
            "recorded_at": datetime.now(UTC),
            "withdrawn_at": None,
        },
    )
    return await scope.create(VOLUNTEERS, document, registration, cause=cause)


async def update_profile(scope: CommandScope, volunteer: Document, profile: VolunteerProfile) -> Document:
    domain.require_active(volunteer["status"])
    await _check_skills(scope, profile.skills, "skills")
    profile = profile.model_copy(update={"home_area": await placed(scope, profile.home_area)})
    event = VolunteerProfileUpdated.model_validate({"volunteer_id": volunteer["_id"], **profile.model_dump()})
    return await scope.change(VOLUNTEERS, volunteer, profile.model_dump(mode="json"), event)


async def change_availability(scope: CommandScope, volunteer: Document, availability: Availability) -> Document:
    domain.require_active(volunteer["status"])
    event = VolunteerAvailabilityChanged(volunteer_id=volunteer["_id"], availability=availability)
    return await scope.change(VOLUNTEERS, volunteer, {"availability": availability.model_dump(mode="json")}, event)


async def withdraw_volunteer(
    scope: CommandScope, volunteer: Document, reason: WithdrawalReason, *, erasure_requested: bool = False
) -> Document:
    """The volunteer stays registered but is never proposed again."""
    domain.require_active(volunteer["status"])
    now = datetime.now(UTC)
    if reason == WithdrawalReason.CONSENT_WITHDRAWN:
        await scope.update_many(CONSENTS, {"volunteer_id": volunteer["_id"]}, {"$set": {"withdrawn_at": now}})
    event = VolunteerWithdrawn(volunteer_id=volunteer["_id"], reason=reason, erasure_requested=erasure_requested)
    changes = {"status": VolunteerStatus.WITHDRAWN.value, "withdrawal_reason": reason.value, "withdrawn_at": now}
    return await scope.change(VOLUNTEERS, volunteer, changes, event)


async def erase_volunteer(scope: CommandScope, volunteer: Document) -> Document:
    """Remove every personal datum of the volunteer, keep anonymous counts, tell everyone.

    What is left: a tombstone with the (random) id, status and version, so that late events
    about the volunteer are recognised and ignored, and the erasure event in the outbox.
    """
    if volunteer["status"] == VolunteerStatus.ERASED:
        return volunteer
    volunteer_id = volunteer["_id"]
    # Earlier events (registered, profile updated) carry contact data: the outbox entries below
    # this version go after the commit (``scrub_erased_outbox``), published or not.
    scrub_below = volunteer["version"] + 1
    if volunteer["status"] == VolunteerStatus.ACTIVE:
        volunteer = await withdraw_volunteer(
            scope, volunteer, WithdrawalReason.CONSENT_WITHDRAWN, erasure_requested=True
        )
    await scope.delete_many(CONSENTS, {"volunteer_id": volunteer_id})
    await scope.delete_many(CERTIFICATE_CHECKS, {"volunteer_id": volunteer_id})
    await scope.delete_many(PARTNER_REFS, {"aggregate_id": volunteer_id})
    await scope.forget_responses(volunteer_id)
    await scope.update_many(NEEDS, {"committed": volunteer_id}, {"$pull": {"committed": volunteer_id}})
    await scope.increment("volunteers", "erased")
    erased_at = datetime.now(UTC)
    version = volunteer["version"] + 1
    tombstone = {
        "_id": volunteer_id,
        "status": VolunteerStatus.ERASED.value,
        "version": version,
        "created_at": volunteer["created_at"],
        "erased_at": erased_at,
        "outbox_scrub_below": scrub_below,
    }
    await scope.replace(VOLUNTEERS, tombstone)
    await scope.emit(
        VolunteerErased(volunteer_id=volunteer_id, erased_at=erased_at), subject=volunteer_id, version=version
    )
    return {**tombstone, "tenant": scope.tenant}


# --- certificate checks ----------------------------------------------------------------------


def _check_entry(record: Document) -> dict[str, Any]:
    """A check as the volunteer's document keeps it among those in force."""
    return {name: record[name] for name in ("check_id", "kind", "seen_on", "valid_until", "seen_by")}


def _in_force(entries: list[dict[str, Any]]) -> list[CertificateCheck]:
    """The checks in force as the contract has them (no ids, no staff: matching needs neither)."""
    return [
        CertificateCheck.model_validate({name: entry[name] for name in CertificateCheck.model_fields})
        for entry in entries
    ]


async def record_certificate_check(
    scope: CommandScope, volunteer: Document, check: CertificateCheck, *, by: Principal, now: datetime
) -> Document:
    """The office has seen a certificate: keep the check (and, as history, the one it replaces),
    schedule its expiry notices and tell matching which checks are in force."""
    domain.require_active(volunteer["status"])
    # The office's day, not UTC's: after midnight in Berlin the portal offers "today" a day ahead of UTC.
    zone = domain.tenant_zone(await scope.tenant_settings())
    today = now.astimezone(zone).date()
    problem = domain.check_problem(check.seen_on, check.valid_until, today)
    if problem is not None:
        raise problem
    check_id = new_id()
    kind = check.kind.value
    for replaced in [entry for entry in volunteer.get("certificate_checks") or [] if entry["kind"] == kind]:
        changes = {"status": CheckStatus.SUPERSEDED.value, "ended_at": now, "superseded_by": check_id}
        await scope.update_many(
            CERTIFICATE_CHECKS, {"_id": replaced["check_id"]}, {"$set": changes}, subject_id=volunteer["_id"]
        )
    pending = domain.pending_notices(check.valid_until, now, zone)
    record = {
        "_id": check_id,
        "check_id": check_id,
        "volunteer_id": volunteer["_id"],
        **check.model_dump(mode="json"),
        "seen_by": domain.staff_id(by),  # from the token, never typed in
        "seen_by_role": "coordinator" if by.has(Role.COORDINATOR) else "initiative_admin",
        "recorded_at": now,
        "status": CheckStatus.IN_FORCE.value,
        "pending_notices": pending,
        "notices_sent": [],
        "next_notice_at": domain.next_notice_at(check.valid_until, pending, zone),
    }
    await scope.insert(CERTIFICATE_CHECKS, record)
    others = [entry for entry in volunteer.get("certificate_checks") or [] if entry["kind"] != kind]
    entries = sorted([*others, _check_entry(record)], key=lambda entry: str(entry["kind"]))
    event = VolunteerCertificateChecked(volunteer_id=volunteer["_id"], check=check, checks=_in_force(entries))
    return await scope.change(VOLUNTEERS, volunteer, {"certificate_checks": entries}, event)


async def revoke_certificate_check(
    scope: CommandScope,
    volunteer: Document,
    check_id: str,
    reason: domain.RevocationReason,
    *,
    by: Principal,
    now: datetime,
) -> Document:
    """The office takes a check back (seen in error, the certificate withdrawn): it no longer
    counts, its notices stop, and it stays in the history as revoked."""
    record = await scope.get(CERTIFICATE_CHECKS, check_id)
    if record is None or record["volunteer_id"] != volunteer["_id"]:
        raise DomainError(404, "Not found", f"no certificate check {check_id}")
    if record["status"] != CheckStatus.IN_FORCE:
        raise DomainError(409, "Check not in force", f"the check is {record['status']}")
    changes = {
        "status": CheckStatus.REVOKED.value,
        "ended_at": now,
        "revoked_by": domain.staff_id(by),
        "revocation_reason": reason.value,
        "pending_notices": [],
        "next_notice_at": None,
    }
    await scope.update_many(CERTIFICATE_CHECKS, {"_id": check_id}, {"$set": changes}, subject_id=volunteer["_id"])
    entries = [entry for entry in volunteer.get("certificate_checks") or [] if entry["check_id"] != check_id]
    event = VolunteerCertificateCheckRevoked(
        volunteer_id=volunteer["_id"], kind=record["kind"], checks=_in_force(entries)
    )
    return await scope.change(VOLUNTEERS, volunteer, {"certificate_checks": entries}, event)


async def send_expiry_notice(scope: CommandScope, check_id: str, now: datetime) -> bool:
    """The expiry notice of a check that is due now, if any: the event that tells the volunteer
    and the office, and the notice marked sent, in one transaction; False if nothing was due.

    Safe to run again and side by side: what was sent is no longer pending, and two runs at once
    change the same check and volunteer, so one of them fails its write and finds nothing due
    when it is run again."""
    record = await scope.get(CERTIFICATE_CHECKS, check_id)
    if record is None or record["status"] != CheckStatus.IN_FORCE or record.get("next_notice_at") is None:
        return False
    valid_until = date.fromisoformat(record["valid_until"])
    zone = domain.tenant_zone(await scope.tenant_settings())
    decision = domain.notice_now(valid_until, record["pending_notices"], now, zone)
    volunteer = await scope.get(VOLUNTEERS, record["volunteer_id"])
    active = volunteer is not None and volunteer["status"] == VolunteerStatus.ACTIVE
    # A volunteer who left is not reminded of anything.
    send, pending = (decision.send, decision.pending) if active else (None, [])
    changes: dict[str, Any] = {
        "pending_notices": pending,
        "next_notice_at": domain.next_notice_at(valid_until, pending, zone),
    }
    if send is not None:
        changes["notices_sent"] = [*record.get("notices_sent", []), {"weeks_before": send, "sent_at": now}]
    await scope.update_many(CERTIFICATE_CHECKS, {"_id": check_id}, {"$set": changes}, subject_id=record["volunteer_id"])
    if send is None or volunteer is None:
        return False
    event = VolunteerCertificateExpiring(
        volunteer_id=volunteer["_id"], kind=record["kind"], valid_until=valid_until, weeks_before=send
    )
    await scope.change(VOLUNTEERS, volunteer, {}, event)
    return True


# --- the named contact person at the office --------------------------------------------------


async def set_contact_person(scope: CommandScope, volunteer: Document, staff_id: str | None) -> Document:
    """Name the volunteer's contact person at the office (a member of its staff), or none."""
    domain.require_active(volunteer["status"])
    if staff_id is not None and await scope.get(STAFF, staff_document_id(scope.tenant, staff_id)) is None:
        raise DomainError(
            422, "Unknown staff member", f"staff_id: no staff member {staff_id} in {scope.tenant}", field="staff_id"
        )
    if volunteer.get("contact_person_id") == staff_id:
        return volunteer  # nothing changes, nothing to tell
    event = VolunteerContactPersonChanged(volunteer_id=volunteer["_id"], staff_id=staff_id)
    return await scope.change(VOLUNTEERS, volunteer, {"contact_person_id": staff_id}, event)


# --- needs -----------------------------------------------------------------------------------


async def _check_need(scope: CommandScope, details: NeedDetails, stored_district: str | None = None) -> NeedDetails:
    await require_organisation(scope, details.organisation_id)
    await _check_skills(scope, details.required_skills, "required_skills")
    if stored_district is not None and details.place.district == stored_district:
        return details  # unchanged: an edit of something else is no reason to refuse an older district
    return await _in_district(scope, details)


async def _in_district(scope: CommandScope, details: NeedDetails) -> NeedDetails:
    """A need's district is one of the municipality's (its postcode table's), never free text:
    every volunteer of the tenant reads it before committing, so words typed in there ("at the
    Yilmaz family, Hauptstr. 5") would give away what the coarsened place hides. Without a given
    district, the postcode's district from the table. A tenant without a postcode table keeps the
    district as given (nothing to check it against)."""
    districts = await scope.districts()
    place = details.place
    if not districts:
        return details
    if place.district is not None:
        # Written as the table writes it ("mitte " is Mitte): a partner's spelling is no reason to refuse.
        spelled = {district.casefold(): district for district in districts}.get(
            " ".join(place.district.split()).casefold()
        )
        if spelled is None:
            raise DomainError(
                422,
                "Unknown district",
                f"place.district: not a district of {scope.tenant} (its postcode table names them)",
                field="place.district",
            )
        return details.model_copy(update={"place": place.model_copy(update={"district": spelled})})
    row = await scope.get(POSTCODES, postcode_id(scope.tenant, place.postcode)) if place.postcode else None
    if row is None:
        return details
    return details.model_copy(update={"place": place.model_copy(update={"district": row["district"]})})


def _need_data(details: NeedDetails) -> dict[str, Any]:
    return details.model_dump(mode="json", include=set(NEED_FIELDS))


async def open_need(
    scope: CommandScope,
    details: NeedDetails,
    *,
    cause: Envelope[Any] | None = None,
    partner_ref: str | None = None,
    reported_by: dict[str, str] | None = None,
) -> Document:
    details = await _check_need(scope, details)
    need_id = new_id()
    event = NeedOpened.model_validate({"need_id": need_id, **details.model_dump(include=set(NEED_FIELDS))})
    document = {
        "_id": need_id,
        **_need_data(details),
        "status": NeedStatus.OPEN.value,
        "unstaffed": False,
        "committed": [],
        "staffing_version": 0,
        "partner_ref": partner_ref,
        "reported_by": reported_by,  # the partner system and channel; only they change the need
    }
    return await scope.create(NEEDS, document, event, cause=cause)


async def update_need(
    scope: CommandScope, need: Document, details: NeedDetails, *, cause: Envelope[Any] | None = None
) -> Document:
    domain.require_editable_need(need["status"])
    if str(details.organisation_id) != need["organisation_id"]:
        raise DomainError(422, "Owner cannot change", "organisation_id: a need keeps its owning organisation")
    details = await _check_need(scope, details, stored_district=(need.get("place") or {}).get("district"))
    event = NeedUpdated.model_validate({"need_id": need["_id"], **details.model_dump(include=set(NEED_FIELDS))})
    return await scope.change(NEEDS, need, _need_data(details), event, cause=cause)


async def cancel_need(
    scope: CommandScope, need: Document, reason: CancellationReason, *, cause: Envelope[Any] | None = None
) -> Document:
    domain.require_transition(need["status"], NeedStatus.CANCELLED)
    event = NeedCancelled(need_id=need["_id"], reason=reason)
    changes = {"status": NeedStatus.CANCELLED.value, "cancellation_reason": reason.value}
    return await scope.change(NEEDS, need, changes, event, cause=cause)


async def close_need(scope: CommandScope, need: Document, outcome: NeedOutcome) -> Document:
    domain.require_transition(need["status"], NeedStatus.CLOSED)
    event = NeedClosed(need_id=need["_id"], outcome=outcome)
    return await scope.change(NEEDS, need, {"status": NeedStatus.CLOSED.value, "outcome": outcome.value}, event)


def _json(model: BaseModel, exclude: set[str]) -> dict[str, Any]:
    return model.model_dump(mode="json", exclude=exclude)
