"""Volunteers: registration with consent, profile, availability, withdrawal and erasure."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from lotse_contracts import Availability, VolunteerRegistered
from lotse_contracts.events.volunteers import VolunteerProfile, WithdrawalReason
from lotse_registry import domain, service
from lotse_registry.api.access import NOT_FOUND, WRITE_REFUSALS, Caller, StoreDep, allow, member, not_found, registry_of
from lotse_registry.api.idempotency import IdempotencyKey, execute
from lotse_registry.api.models import VolunteerRegistration, Withdrawal
from lotse_registry.api.views import Cursor, Limit, as_json, page
from lotse_registry.domain import VolunteerStatus
from lotse_registry.store import (
    VOLUNTEERS,
    Document,
    Store,
    TenantScope,
    scrub_erased_outbox,
)
from lotse_runtime.auth import Principal, Role
from lotse_runtime.problems import Problem

router = APIRouter(tags=["volunteers"])


def volunteer_view(principal: Principal, document: Document, *, in_list: bool) -> dict[str, Any]:
    return as_json({"_id": document["_id"], **domain.volunteer_view(principal, document, in_list=in_list)})


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

    return await execute(request, tenant, idempotency_key, work, lambda d: volunteer_view(principal, d, in_list=False))


@router.get("/tenants/{tenant}/volunteers", responses=NOT_FOUND)
async def list_volunteers(
    registry: StoreDep,
    tenant: str,
    principal: Caller,
    status: VolunteerStatus | None = None,
    organisation_id: str | None = None,
    skill: str | None = None,
    language: str | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """Volunteers (coordinator: all; initiative admin: its organisation's). Never e-mail addresses."""
    member(principal, tenant)
    allow(principal, Role.COORDINATOR, Role.INITIATIVE_ADMIN)
    query: Document = {}
    if not principal.has(Role.COORDINATOR):
        query["organisation_id"] = principal.organisation
    elif organisation_id:
        query["organisation_id"] = organisation_id
    if status:
        query["status"] = status.value
    if skill:
        query["skills"] = skill
    if language:
        query["languages.language"] = language
    documents = await registry.page(tenant, VOLUNTEERS, query, cursor, limit + 1)
    return page([volunteer_view(principal, d, in_list=True) for d in documents], documents, limit)


async def _visible_volunteer(registry: Store, tenant: str, volunteer_id: str, principal: Principal) -> Document:
    member(principal, tenant)
    allow(principal, Role.VOLUNTEER, Role.COORDINATOR, Role.INITIATIVE_ADMIN)
    document = await registry.read(tenant).get(VOLUNTEERS, volunteer_id)
    if document is None or not domain.may_read_volunteer(principal, document):
        raise not_found("volunteer", volunteer_id)
    return document


@router.get("/tenants/{tenant}/volunteers/{volunteer_id}", responses=NOT_FOUND)
async def get_volunteer(registry: StoreDep, tenant: str, volunteer_id: str, principal: Caller) -> dict[str, Any]:
    """One volunteer with engagements; contact details only for the volunteer, their own
    organisation and the coordination office for volunteers it coordinates."""
    document = await _visible_volunteer(registry, tenant, volunteer_id, principal)
    return volunteer_view(principal, document, in_list=False)


async def _change_volunteer(
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
    await _visible_volunteer(registry_of(request), tenant, volunteer_id, principal)

    async def work(scope: TenantScope) -> Document:
        current = await service.load(scope, VOLUNTEERS, volunteer_id, "volunteer")
        if not permitted(principal, current):
            raise Problem(403, "Forbidden", "you may not do this for this volunteer")
        return await change(scope, current)

    return await execute(
        request, tenant, key, work, lambda d: volunteer_view(principal, d, in_list=False), status=status
    )


@router.put("/tenants/{tenant}/volunteers/{volunteer_id}/profile", responses=WRITE_REFUSALS)
async def update_profile(
    request: Request, tenant: str, volunteer_id: str, body: VolunteerProfile, principal: Caller
) -> JSONResponse:
    return await _change_volunteer(
        request, tenant, volunteer_id, principal, lambda scope, v: service.update_profile(scope, v, body)
    )


@router.put("/tenants/{tenant}/volunteers/{volunteer_id}/availability", responses=WRITE_REFUSALS)
async def change_availability(
    request: Request, tenant: str, volunteer_id: str, body: Availability, principal: Caller
) -> JSONResponse:
    return await _change_volunteer(
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
    return await _change_volunteer(
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
    response = await _change_volunteer(
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
