"""Volunteers: registration with consent, profile, availability, withdrawal and erasure, and the
search the office's console lists them with."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, time
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from lotse_contracts import Availability, VolunteerRegistered
from lotse_contracts.events.values import CertificateKind, Weekday
from lotse_contracts.events.volunteers import VolunteerProfile, WithdrawalReason
from lotse_registry import domain, service
from lotse_registry.api.access import NOT_FOUND, WRITE_REFUSALS, Caller, StoreDep, allow, member, not_found, registry_of
from lotse_registry.api.idempotency import IdempotencyKey, execute
from lotse_registry.api.models import VolunteerRegistration, Withdrawal
from lotse_registry.api.views import Cursor, Limit, as_json, page
from lotse_registry.domain import Circle, LanguageWish, VolunteerSearch, VolunteerStatus
from lotse_registry.store import (
    STAFF,
    VOLUNTEERS,
    Document,
    Store,
    TenantScope,
    scrub_erased_outbox,
)
from lotse_runtime.audit import record_reads
from lotse_runtime.auth import Principal, Role
from lotse_runtime.problems import Problem

router = APIRouter(tags=["volunteers"])


def volunteer_view(
    principal: Principal, document: Document, *, in_list: bool, today: date, with_contact: bool = False
) -> dict[str, Any]:
    view = domain.volunteer_view(principal, document, in_list=in_list, with_contact=with_contact, today=today)
    return as_json({"_id": document["_id"], **view})


async def tenant_today(registry: Store, tenant: str) -> date:
    """Today in the municipality (whether a certificate check still counts is a matter of its day)."""
    return domain.tenant_today(await registry.read(tenant).tenant_settings(), datetime.now(UTC))


# What of a volunteer counts as contact data: whoever receives it is recorded (audit trail).
CONTACT_FIELDS = ("contact.email", "contact.phone", "home_area")


def contact_fields(view: dict[str, Any]) -> set[str]:
    """The contact data a volunteer's view carries (names of fields with a value)."""
    contact = view.get("contact") or {}
    present = {"contact.email": contact.get("email"), "contact.phone": contact.get("phone")}
    present["home_area"] = view.get("home_area")
    return {name for name in CONTACT_FIELDS if present[name]}


async def record_contact_reads(registry: Store, tenant: str, principal: Principal, views: list[dict[str, Any]]) -> None:
    """Record who received which volunteer's contact data; a volunteer reading their own is no
    disclosure and is not recorded."""
    by_fields: dict[frozenset[str], list[str]] = {}
    for view in views:
        fields = contact_fields(view)
        own = principal.has(Role.VOLUNTEER) and principal.volunteer_id == view["volunteer_id"]
        if fields and not own:
            by_fields.setdefault(frozenset(fields), []).append(view["volunteer_id"])
    for read, volunteer_ids in by_fields.items():
        await record_reads(registry.database, tenant, VOLUNTEERS, volunteer_ids, read, subjects=True)


async def volunteer_response(
    request: Request,
    tenant: str,
    key: str | None,
    work: Callable[[TenantScope], Awaitable[Document]],
    principal: Principal,
    *,
    status: int,
) -> JSONResponse:
    """Run a command on a volunteer and answer with the volunteer as the caller sees them; the
    contact data the answer hands to someone else (the office registering or editing the
    volunteer) is recorded like any read of it, a replayed answer too."""
    today = await tenant_today(registry_of(request), tenant)
    response = await execute(
        request, tenant, key, work, lambda d: volunteer_view(principal, d, in_list=False, today=today), status=status
    )
    view = json.loads(bytes(response.body))
    await record_contact_reads(registry_of(request), tenant, principal, [view])
    return response


def staff_view(document: Document | None, staff_id: str) -> dict[str, Any]:
    """A staff member as volunteers and the console see them: how to reach them. A record
    removed meanwhile leaves the id alone."""
    if document is None:
        return {"staff_id": staff_id, "name": None, "email": None, "phone": None}
    return {"staff_id": staff_id, **{name: document.get(name) for name in ("name", "email", "phone")}}


@router.post("/tenants/{tenant}/volunteers", status_code=201, responses=WRITE_REFUSALS)
async def register_volunteer(
    request: Request,
    tenant: str,
    body: VolunteerRegistration,
    principal: Caller,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Register a volunteer with an explicit consent record.

    Self-registration needs a volunteer token of the tenant: its subject (a UUID issued by the
    identity provider) becomes the volunteer id, so the same token later reads and edits the
    profile. Coordinators register volunteers of the municipality and initiative admins those
    of their organisation on the volunteer's behalf; the registry then assigns the id.
    """
    member(principal, tenant)
    allow(principal, Role.VOLUNTEER, Role.COORDINATOR, Role.INITIATIVE_ADMIN)
    organisation_id = str(body.organisation_id) if body.organisation_id else None
    if principal.has(Role.VOLUNTEER):
        volunteer_id = principal.volunteer_id
        via = "self"
    else:
        if not domain.manages_organisation(principal, organisation_id) and not principal.has(Role.COORDINATOR):
            raise Problem(403, "Forbidden", "initiative admins register volunteers of their own organisation")
        volunteer_id, via = service.new_id(), "organisation"
    consent = {**body.consent.model_dump(mode="json"), "given_at": datetime.now(UTC).isoformat()}
    registration = VolunteerRegistered.model_validate(
        {"volunteer_id": volunteer_id, **body.model_dump(exclude={"consent"}), "consent": consent}
    )

    async def work(scope: TenantScope) -> Document:
        return await service.register_volunteer(scope, volunteer_id, registration, registered_via=via)

    return await volunteer_response(request, tenant, idempotency_key, work, principal, status=201)


@router.get("/tenants/{tenant}/volunteers", responses=NOT_FOUND)
async def list_volunteers(
    registry: StoreDep,
    tenant: str,
    principal: Caller,
    status: VolunteerStatus | None = None,
    organisation_id: str | None = None,
    skill: Annotated[list[str], Query(description="Has every skill named (repeat the parameter).")] = [],  # noqa: B006 - FastAPI copies it
    language: Annotated[
        list[str],
        Query(description="Speaks every language named, at least at the level after a colon: ar, ar:b2 (repeatable)."),
    ] = [],  # noqa: B006 - FastAPI copies it
    postcode: Annotated[str | None, Query(pattern=r"^[0-9]{5}$", description="Lives in this postcode.")] = None,
    near_lat: Annotated[float | None, Query(ge=-90, le=90, description="Lives within within_km of this point.")] = None,
    near_lon: Annotated[float | None, Query(ge=-180, le=180, description="Longitude of that point.")] = None,
    within_km: Annotated[float | None, Query(gt=0, le=200, description="Distance from near_lat/near_lon.")] = None,
    available_on: Annotated[Weekday | None, Query(description="Has a weekly slot on this day.")] = None,
    available_at: Annotated[time | None, Query(description="Has a weekly slot at this local time (HH:MM).")] = None,
    certificate_checked: Annotated[
        bool | None, Query(description="Has (true) or has not (false) a certificate the office checked, valid today.")
    ] = None,
    certificate_kind: Annotated[
        CertificateKind | None, Query(description="Narrows certificate_checked to one kind (alone: checked).")
    ] = None,
    contact_person_id: Annotated[str | None, Query(description="Whose contact person at the office this is.")] = None,
    name: Annotated[
        str | None, Query(min_length=1, max_length=80, description="Part of the name (coordinators only).")
    ] = None,
    with_contact: Annotated[
        bool,
        Query(description="Initiative admins: their own volunteers' contact details (e-mail, phone) in the list."),
    ] = False,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """Volunteers (coordinator: all; initiative admin: its organisation's), searched and paged.
    No e-mail addresses, except for an initiative's admins who ask for their own volunteers'
    contact details; names only where the caller may see them, which is also all a name search
    finds."""
    member(principal, tenant)
    allow(principal, Role.COORDINATOR, Role.INITIATIVE_ADMIN)
    if name is not None and not principal.has(Role.COORDINATOR):
        raise Problem(403, "Forbidden", "query.name: searching by name is for coordinators")
    if with_contact and not principal.has(Role.INITIATIVE_ADMIN):
        raise Problem(403, "Forbidden", "query.with_contact: contact details in a list are for initiative admins")
    near = _circle(near_lat, near_lon, within_km)
    if available_at is not None and available_at.tzinfo is not None:
        message = "a local time of the tenant, without an offset"
        errors = [{"field": "query.available_at", "message": message}]
        raise Problem(422, "Invalid request", f"query.available_at: {message}", errors=errors)
    search = VolunteerSearch(
        status=status.value if status else None,
        # Initiative admins see their own organisation's volunteers, whatever they ask for.
        organisation_id=organisation_id if principal.has(Role.COORDINATOR) else principal.organisation,
        skills=tuple(skill),
        languages=tuple(LanguageWish.parse(text) for text in language),
        postcode=postcode,
        near=near,
        available_on=available_on,
        available_at=available_at,
        certificate_checked=certificate_checked,
        certificate_kind=certificate_kind,
        contact_person_id=contact_person_id,
        name=name,
        today=await tenant_today(registry, tenant),
    )
    documents = await registry.search(
        tenant, VOLUNTEERS, search.query(), lambda d: search.accepts(principal, d), cursor, limit + 1
    )
    views = [
        volunteer_view(principal, d, in_list=True, with_contact=with_contact, today=search.today) for d in documents
    ]
    await record_contact_reads(registry, tenant, principal, views[:limit])
    return page(views, documents, limit)


def _circle(lat: float | None, lon: float | None, radius_km: float | None) -> Circle | None:
    given = {"near_lat": lat, "near_lon": lon, "within_km": radius_km}
    if all(value is None for value in given.values()):
        return None
    missing = [name for name, value in given.items() if value is None]
    if missing:
        errors = [
            {"field": f"query.{name}", "message": "give near_lat, near_lon and within_km together"} for name in missing
        ]
        raise Problem(
            422, "Invalid request", f"query.{missing[0]}: give near_lat, near_lon and within_km together", errors=errors
        )
    assert lat is not None and lon is not None and radius_km is not None
    return Circle(lat, lon, radius_km)


async def visible_volunteer(registry: Store, tenant: str, volunteer_id: str, principal: Principal) -> Document:
    member(principal, tenant)
    allow(principal, Role.VOLUNTEER, Role.COORDINATOR, Role.INITIATIVE_ADMIN)
    document = await registry.read(tenant).get(VOLUNTEERS, volunteer_id)
    if document is None or not domain.may_read_volunteer(principal, document):
        raise not_found("volunteer", volunteer_id)
    return document


@router.get("/tenants/{tenant}/volunteers/{volunteer_id}", responses=NOT_FOUND)
async def get_volunteer(registry: StoreDep, tenant: str, volunteer_id: str, principal: Caller) -> dict[str, Any]:
    """One volunteer with engagements, certificate checks and their contact person at the office
    (name and how to reach them); contact details only for the volunteer, their own organisation
    and the coordination office for volunteers it coordinates."""
    document = await visible_volunteer(registry, tenant, volunteer_id, principal)
    view = volunteer_view(principal, document, in_list=False, today=await tenant_today(registry, tenant))
    if document["status"] == VolunteerStatus.ERASED:
        return view  # a tombstone shows nothing but its status
    await record_contact_reads(registry, tenant, principal, [view])
    staff_id = document.get("contact_person_id")
    view["contact_person"] = None
    if staff_id:
        staff_member = await registry.staff_member(tenant, staff_id)
        view["contact_person"] = staff_view(staff_member, staff_id)
        if staff_member is not None:  # the contact person's data, read by someone else
            await record_reads(registry.database, tenant, STAFF, [staff_member["_id"]], {"name", "email", "phone"})
    return view


async def change_volunteer(
    request: Request,
    tenant: str,
    volunteer_id: str,
    principal: Principal,
    change: Callable[[TenantScope, Document], Awaitable[Document]],
    *,
    permitted: Callable[[Principal, Document], bool] = domain.may_edit_volunteer,
    key: str | None = None,
    status: int = 200,
) -> JSONResponse:
    await visible_volunteer(registry_of(request), tenant, volunteer_id, principal)

    async def work(scope: TenantScope) -> Document:
        current = await service.load(scope, VOLUNTEERS, volunteer_id, "volunteer")
        if not permitted(principal, current):
            raise Problem(403, "Forbidden", "you may not do this for this volunteer")
        return await change(scope, current)

    return await volunteer_response(request, tenant, key, work, principal, status=status)


@router.put("/tenants/{tenant}/volunteers/{volunteer_id}/profile", responses=WRITE_REFUSALS)
async def update_profile(
    request: Request, tenant: str, volunteer_id: str, body: VolunteerProfile, principal: Caller
) -> JSONResponse:
    return await change_volunteer(
        request, tenant, volunteer_id, principal, lambda scope, v: service.update_profile(scope, v, body)
    )


@router.put("/tenants/{tenant}/volunteers/{volunteer_id}/availability", responses=WRITE_REFUSALS)
async def change_availability(
    request: Request, tenant: str, volunteer_id: str, body: Availability, principal: Caller
) -> JSONResponse:
    return await change_volunteer(
        request, tenant, volunteer_id, principal, lambda scope, v: service.change_availability(scope, v, body)
    )


@router.post("/tenants/{tenant}/volunteers/{volunteer_id}/withdrawal", responses=WRITE_REFUSALS)
async def withdraw(
    request: Request,
    tenant: str,
    volunteer_id: str,
    body: Withdrawal,
    principal: Caller,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Withdraw consent or leave: the volunteer stays registered but is never proposed again."""
    reason = body.reason
    if principal.has(Role.INITIATIVE_ADMIN) and not principal.has(Role.VOLUNTEER, Role.COORDINATOR):
        reason = WithdrawalReason.REMOVED_BY_ORGANISATION
    return await change_volunteer(
        request,
        tenant,
        volunteer_id,
        principal,
        lambda scope, v: service.withdraw_volunteer(scope, v, reason),
        key=idempotency_key,
    )


@router.post("/tenants/{tenant}/volunteers/{volunteer_id}/erasure", responses=WRITE_REFUSALS)
async def erase(
    request: Request, tenant: str, volunteer_id: str, principal: Caller, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    """Erase every personal datum of the volunteer (the volunteer, or a coordinator on request);
    only anonymous counts stay, and every service is told to erase too."""
    response = await change_volunteer(
        request,
        tenant,
        volunteer_id,
        principal,
        service.erase_volunteer,
        permitted=domain.may_erase_volunteer,
        key=idempotency_key,
    )
    await scrub_erased_outbox(registry_of(request).database)
    return response
