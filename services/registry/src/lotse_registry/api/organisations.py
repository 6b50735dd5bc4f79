"""Organisations: initiatives, round tables, coordination offices and welfare associations."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from lotse_registry import domain, service
from lotse_registry.api.access import NOT_FOUND, WRITE_REFUSALS, Caller, StoreDep, allow, member, not_found
from lotse_registry.api.idempotency import IdempotencyKey, execute
from lotse_registry.api.models import OrganisationBody
from lotse_registry.api.views import Cursor, Limit, as_json, page
from lotse_registry.store import ORGANISATIONS, Document
from lotse_runtime.auth import Role

router = APIRouter(tags=["organisations"])


def organisation_view(document: Document, *, in_list: bool) -> dict[str, Any]:
    view = {"organisation_id": document["_id"], **as_json(document)}
    if in_list:
        view.pop("contact_email", None)
    return view


@router.post("/tenants/{tenant}/organisations", status_code=201, responses=WRITE_REFUSALS)
async def register_organisation(
    request: Request, tenant: str, body: OrganisationBody, principal: Caller, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    """Register an initiative, round table, coordination office or welfare association (coordinator)."""
    member(principal, tenant)
    allow(principal, Role.COORDINATOR)
    fields = body.model_dump(mode="json")
    return await execute(
        request,
        tenant,
        idempotency_key,
        lambda scope: service.register_organisation(scope, fields),
        lambda d: organisation_view(d, in_list=False),
    )


@router.get("/tenants/{tenant}/organisations", responses=NOT_FOUND)
async def list_organisations(
    registry: StoreDep,
    tenant: str,
    principal: Caller,
    kind: str | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """Organisations of the tenant, without contact addresses (any member of the tenant)."""
    member(principal, tenant)
    query: Document = {"kind": kind} if kind else {}
    documents = await registry.page(tenant, ORGANISATIONS, query, cursor, limit + 1)
    return page([organisation_view(d, in_list=True) for d in documents], documents, limit)


@router.get("/tenants/{tenant}/organisations/{organisation_id}", responses=NOT_FOUND)
async def get_organisation(registry: StoreDep, tenant: str, organisation_id: str, principal: Caller) -> dict[str, Any]:
    member(principal, tenant)
    document = await registry.read(tenant).get(ORGANISATIONS, organisation_id)
    if document is None:
        raise not_found("organisation", organisation_id)
    return organisation_view(document, in_list=not principal.has(Role.COORDINATOR, Role.INITIATIVE_ADMIN))


@router.put("/tenants/{tenant}/organisations/{organisation_id}", responses=WRITE_REFUSALS)
async def update_organisation(
    request: Request, tenant: str, organisation_id: str, body: OrganisationBody, principal: Caller
) -> JSONResponse:
    """Change an organisation (coordinator, or the organisation's own initiative admin)."""
    member(principal, tenant)
    allow(principal, Role.COORDINATOR, Role.INITIATIVE_ADMIN)
    if not domain.manages_organisation(principal, organisation_id):
        raise not_found("organisation", organisation_id)
    fields = body.model_dump(mode="json")
    return await execute(
        request,
        tenant,
        None,
        lambda scope: service.update_organisation(scope, organisation_id, fields, by=principal),
        lambda d: organisation_view(d, in_list=False),
        status=200,
    )
