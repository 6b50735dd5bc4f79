"""The office's staff and each volunteer's named contact person ("Lotse") among them.

Staff are not volunteers and have no events: a coordinator enters their own record (name, work
e-mail, phone) under the id of their token's subject, and coordinators name one of them as a
volunteer's contact person. The volunteer's event carries only the staff id.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from lotse_registry import domain, service
from lotse_registry.api.access import NOT_FOUND, WRITE_REFUSALS, Caller, StoreDep, allow, member, not_found
from lotse_registry.api.models import ContactPerson, StaffMember
from lotse_registry.api.volunteers import change_volunteer, staff_view
from lotse_registry.domain import DomainError
from lotse_registry.store import STAFF, Document
from lotse_runtime.audit import record_reads
from lotse_runtime.auth import Role

router = APIRouter(tags=["staff"])


def _staff(document: Document) -> dict[str, Any]:
    return staff_view(document, document["staff_id"])


@router.put("/tenants/{tenant}/staff/me", responses=NOT_FOUND)
async def enter_myself(registry: StoreDep, tenant: str, body: StaffMember, principal: Caller) -> dict[str, Any]:
    """A coordinator enters or changes their own staff record: how volunteers reach them."""
    member(principal, tenant)
    allow(principal, Role.COORDINATOR)
    document = await registry.put_staff(tenant, domain.staff_id(principal), body.model_dump(mode="json"))
    return _staff(document)


@router.get("/tenants/{tenant}/staff", responses=NOT_FOUND)
async def list_staff(registry: StoreDep, tenant: str, principal: Caller) -> dict[str, Any]:
    """The office's staff by name and how to reach them (coordinators); who received another
    staff member's e-mail and phone is recorded (audit trail)."""
    member(principal, tenant)
    allow(principal, Role.COORDINATOR)
    documents = await registry.staff(tenant)
    mine = domain.staff_id(principal)
    by_fields: dict[frozenset[str], list[str]] = {}
    for document in documents:
        shown = frozenset(name for name in ("name", "email", "phone") if document.get(name))
        if shown & {"email", "phone"} and document["staff_id"] != mine:
            by_fields.setdefault(shown, []).append(document["_id"])
    for fields, staff_ids in by_fields.items():
        await record_reads(registry.database, tenant, STAFF, staff_ids, fields)
    return {"items": [_staff(document) for document in documents]}


@router.delete("/tenants/{tenant}/staff/{staff_id}", status_code=204, responses=WRITE_REFUSALS)
async def remove_staff(registry: StoreDep, tenant: str, staff_id: str, principal: Caller) -> None:
    """Remove a staff member who left (coordinators); refused with 409 while they are still
    someone's contact person: name another one first."""
    member(principal, tenant)
    allow(principal, Role.COORDINATOR)
    outcome = await registry.remove_staff(tenant, staff_id)
    if outcome is None:
        raise not_found("staff member", staff_id)
    if outcome > 0:
        raise DomainError(
            409, "Still a contact person", f"the staff member is the contact person of {outcome} volunteer(s)"
        )


@router.put("/tenants/{tenant}/volunteers/{volunteer_id}/contact-person", responses=WRITE_REFUSALS)
async def name_contact_person(
    request: Request, tenant: str, volunteer_id: str, body: ContactPerson, principal: Caller
) -> JSONResponse:
    """Name the volunteer's contact person at the office, or none (coordinators)."""
    member(principal, tenant)
    allow(principal, Role.COORDINATOR)
    staff_id = str(body.staff_id) if body.staff_id else None
    return await change_volunteer(
        request,
        tenant,
        volunteer_id,
        principal,
        lambda scope, v: service.set_contact_person(scope, v, staff_id),
        permitted=lambda caller, _: domain.may_name_contact_person(caller),
    )
