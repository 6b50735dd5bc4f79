"""Needs: opened, changed, cancelled and closed by the coordination office or an initiative."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from lotse_contracts import NeedDetails
from lotse_contracts.events.needs import NeedCategory
from lotse_registry import domain, service
from lotse_registry.api.access import NOT_FOUND, WRITE_REFUSALS, Caller, StoreDep, allow, member, not_found
from lotse_registry.api.idempotency import IdempotencyKey, execute
from lotse_registry.api.models import NeedCancellation, NeedClosing
from lotse_registry.api.views import Cursor, Limit, as_json, page
from lotse_registry.domain import NeedStatus
from lotse_registry.store import NEEDS, Document, TenantScope
from lotse_runtime.auth import Principal, Role
from lotse_runtime.problems import Problem

router = APIRouter(tags=["needs"])


def need_view(principal: Principal, document: Document) -> dict[str, Any]:
    return as_json({"_id": document["_id"], **domain.need_view(principal, document)})


@router.post("/tenants/{tenant}/needs", status_code=201, responses=WRITE_REFUSALS)
async def open_need(
    request: Request, tenant: str, body: NeedDetails, principal: Caller, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    """Open a need (coordinator, or an initiative admin for its own organisation)."""
    member(principal, tenant)
    allow(principal, Role.COORDINATOR, Role.INITIATIVE_ADMIN)
    if not domain.may_manage_need(principal, str(body.organisation_id)):
        raise Problem(403, "Forbidden", "initiative admins open needs of their own organisation")
    return await execute(
        request,
        tenant,
        idempotency_key,
        lambda scope: service.open_need(scope, body),
        lambda d: need_view(principal, d),
    )


@router.get("/tenants/{tenant}/needs", responses=NOT_FOUND)
async def list_needs(
    registry: StoreDep,
    tenant: str,
    principal: Caller,
    status: NeedStatus | None = None,
    category: NeedCategory | None = None,
    organisation_id: str | None = None,
    unstaffed: bool | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """Needs: coordinators and partners all, initiative admins their organisation's, volunteers
    the open ones (to pick one themselves)."""
    member(principal, tenant)
    allow(principal, Role.COORDINATOR, Role.INITIATIVE_ADMIN, Role.VOLUNTEER, Role.PARTNER)
    query: Document = {}
    if status:
        query["status"] = status.value
    if category:
        query["category"] = category.value
    if organisation_id:
        query["organisation_id"] = organisation_id
    if unstaffed is not None:
        query["unstaffed"] = unstaffed
    if not principal.has(Role.COORDINATOR, Role.PARTNER):
        if principal.has(Role.INITIATIVE_ADMIN):
            query["organisation_id"] = principal.organisation
        else:
            query["status"] = NeedStatus.OPEN.value
    documents = await registry.page(tenant, NEEDS, query, cursor, limit + 1)
    return page([need_view(principal, d) for d in documents], documents, limit)


@router.get("/tenants/{tenant}/needs/{need_id}", responses=NOT_FOUND)
async def get_need(registry: StoreDep, tenant: str, need_id: str, principal: Caller) -> dict[str, Any]:
    member(principal, tenant)
    document = await registry.read(tenant).get(NEEDS, need_id)
    if document is None or not domain.may_read_need(principal, document):
        raise not_found("need", need_id)
    return need_view(principal, document)


async def _change_need(
    request: Request,
    tenant: str,
    need_id: str,
    principal: Principal,
    change: Callable[[TenantScope, Document], Awaitable[Document]],
    key: str | None = None,
) -> JSONResponse:
    member(principal, tenant)
    allow(principal, Role.COORDINATOR, Role.INITIATIVE_ADMIN)

    async def work(scope: TenantScope) -> Document:
        need = await scope.get(NEEDS, need_id)
        if need is None or not domain.may_manage_need(principal, need["organisation_id"]):
            raise not_found("need", need_id)
        return await change(scope, need)

    return await execute(request, tenant, key, work, lambda d: need_view(principal, d), status=200)


@router.put("/tenants/{tenant}/needs/{need_id}", responses=WRITE_REFUSALS)
async def update_need(
    request: Request, tenant: str, need_id: str, body: NeedDetails, principal: Caller
) -> JSONResponse:
    return await _change_need(
        request, tenant, need_id, principal, lambda scope, need: service.update_need(scope, need, body)
    )


@router.post("/tenants/{tenant}/needs/{need_id}/cancellation", responses=WRITE_REFUSALS)
async def cancel_need(
    request: Request,
    tenant: str,
    need_id: str,
    body: NeedCancellation,
    principal: Caller,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    return await _change_need(
        request,
        tenant,
        need_id,
        principal,
        lambda scope, need: service.cancel_need(scope, need, body.reason),
        idempotency_key,
    )


@router.post("/tenants/{tenant}/needs/{need_id}/closing", responses=WRITE_REFUSALS)
async def close_need(
    request: Request,
    tenant: str,
    need_id: str,
    body: NeedClosing,
    principal: Caller,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    return await _change_need(
        request,
        tenant,
        need_id,
        principal,
        lambda scope, need: service.close_need(scope, need, body.outcome),
        idempotency_key,
    )
