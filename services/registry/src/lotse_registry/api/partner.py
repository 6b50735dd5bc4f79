"""Partner commands over HTTP, for partner systems that cannot speak Kafka.

The same commands as on the partner inbound topic, under the same rules; the partner's token
subject names its system.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from lotse_contracts import CancelNeed, RegisterVolunteer, ReportNeed, UpdateNeed
from lotse_registry.api.access import WRITE_REFUSALS, Caller, allow, member
from lotse_registry.api.idempotency import IdempotencyKey, execute
from lotse_registry.partner import PartnerCommand, apply_command
from lotse_registry.store import Document, TenantScope
from lotse_runtime.auth import Principal, Role

router = APIRouter(tags=["partner commands"], responses=WRITE_REFUSALS)


async def _partner_command(
    request: Request, tenant: str, principal: Principal, command: PartnerCommand, key: str | None, status: int
) -> JSONResponse:
    """The partner's token subject names its system; the same rules as on the inbound topic."""
    member(principal, tenant)
    allow(principal, Role.PARTNER)

    async def work(scope: TenantScope) -> Document:
        result = await apply_command(scope, principal.subject, command, channel="http")
        assert result is not None  # without a sequence number nothing is stale
        return result

    def render(document: Document) -> dict[str, Any]:
        id_field = "volunteer_id" if isinstance(command, RegisterVolunteer) else "need_id"
        return {id_field: document["_id"], "external_ref": command.external_ref, "status": document["status"]}

    return await execute(request, tenant, key, work, render, status=status)


@router.post("/tenants/{tenant}/partner/needs/report", status_code=201)
async def partner_report_need(
    request: Request, tenant: str, body: ReportNeed, principal: Caller, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    return await _partner_command(request, tenant, principal, body, idempotency_key, 201)


@router.post("/tenants/{tenant}/partner/needs/update")
async def partner_update_need(
    request: Request, tenant: str, body: UpdateNeed, principal: Caller, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    return await _partner_command(request, tenant, principal, body, idempotency_key, 200)


@router.post("/tenants/{tenant}/partner/needs/cancel")
async def partner_cancel_need(
    request: Request, tenant: str, body: CancelNeed, principal: Caller, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    return await _partner_command(request, tenant, principal, body, idempotency_key, 200)


@router.post("/tenants/{tenant}/partner/volunteers/register", status_code=201)
async def partner_register_volunteer(
    request: Request, tenant: str, body: RegisterVolunteer, principal: Caller, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    return await _partner_command(request, tenant, principal, body, idempotency_key, 201)
