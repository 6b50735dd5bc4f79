"""Tenants: onboarding a municipality (platform admin) and its settings."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from lotse_contracts import TenantOnboarded
from lotse_registry import service
from lotse_registry.api.access import CONFLICTS, NOT_FOUND, Caller, StoreDep, allow, member, not_found
from lotse_registry.api.idempotency import IdempotencyKey, execute
from lotse_registry.api.models import TenantOnboarding
from lotse_registry.api.views import Cursor, Limit, as_json, page
from lotse_registry.store import TENANTS, Document, TenantScope
from lotse_runtime.auth import Role

router = APIRouter(tags=["tenants"])


def tenant_view(document: Document, *, full: bool) -> dict[str, Any]:
    view = {"slug": document["_id"], **as_json(document)}
    if not full:
        for private in ("coordination_email", "coordination_phone"):
            view.pop(private, None)
    return view


@router.post("/tenants", status_code=201, summary="Onboard a municipality (platform admin)", responses=CONFLICTS)
async def onboard_tenant(
    request: Request, body: TenantOnboarding, principal: Caller, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    allow(principal, Role.PLATFORM_ADMIN)
    settings = body.model_dump(exclude={"slug", "default_search_radius_km", "coordination_phone"})
    extra = {"default_search_radius_km": body.default_search_radius_km, "coordination_phone": body.coordination_phone}

    async def work(scope: TenantScope) -> Document:
        return await service.onboard_tenant(scope, TenantOnboarded.model_validate(settings), extra)

    return await execute(request, body.slug, idempotency_key, work, lambda d: tenant_view(d, full=True))


@router.get("/tenants", summary="List tenants (platform admin)")
async def list_tenants(
    registry: StoreDep, principal: Caller, limit: Limit = 50, cursor: Cursor = None
) -> dict[str, Any]:
    allow(principal, Role.PLATFORM_ADMIN)
    documents = await registry.tenants_page(cursor, limit + 1)
    return page([tenant_view(d, full=False) for d in documents], documents, limit)


@router.get("/tenants/{tenant}", summary="A tenant's settings", responses=NOT_FOUND)
async def get_tenant(registry: StoreDep, tenant: str, principal: Caller) -> dict[str, Any]:
    if not principal.has(Role.PLATFORM_ADMIN):
        member(principal, tenant)
    document = await registry.read(tenant).get(TENANTS, tenant)
    if document is None:
        raise not_found("tenant", tenant)
    return tenant_view(document, full=principal.has(Role.PLATFORM_ADMIN, Role.COORDINATOR, Role.INITIATIVE_ADMIN))
