"""What the registry does on each command, shared by the HTTP API and the partner topics.

Each function runs inside one unit of work on a ``CommandScope`` (the tenant's data in that
transaction): it checks the command against the current state (``domain``), writes the new
state and appends the event(s) to the outbox.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
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
    VolunteerErased,
    VolunteerProfileUpdated,
    VolunteerRegistered,
    VolunteerWithdrawn,
)
from lotse_contracts.envelope import Envelope
from lotse_contracts.events.needs import CancellationReason, NeedOutcome
from lotse_contracts.events.values import HomeArea
from lotse_contracts.events.volunteers import VolunteerProfile, WithdrawalReason
from lotse_registry import domain
from lotse_registry.domain import DomainError, NeedStatus, VolunteerStatus
from lotse_registry.places import PostcodePlace
from lotse_registry.store import (
    CONSENTS,
    NEEDS,
    ORGANISATIONS,
    PARTNER_REFS,
    POSTCODES,
    TENANTS,
    VOLUNTEERS,
    CommandScope,
    Document,
    postcode_id,
)
from lotse_runtime.auth import Principal

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
    return await load(scope, TENANTS, scope.tenant, "tenant")


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
    if organisation_id is not None and await scope.get(ORGANISATIONS, str(organisation_id)) is None:
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


# --- needs -----------------------------------------------------------------------------------


async def _check_need(scope: CommandScope, details: NeedDetails) -> None:
    await require_organisation(scope, details.organisation_id)
    await _check_skills(scope, details.required_skills, "required_skills")


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
    await _check_need(scope, details)
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
    await _check_need(scope, details)
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
