"""Certificate checks: the office records that it has seen a volunteer's certificate, or takes
the check back; the volunteer and whoever manages them read the history."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from lotse_contracts import CertificateCheck
from lotse_registry import domain, service
from lotse_registry.api.access import NOT_FOUND, WRITE_REFUSALS, Caller, StoreDep, allow, member
from lotse_registry.api.idempotency import IdempotencyKey
from lotse_registry.api.models import Revocation
from lotse_registry.api.views import as_json
from lotse_registry.api.volunteers import change_volunteer, visible_volunteer
from lotse_registry.store import Document
from lotse_runtime.auth import Role

router = APIRouter(tags=["certificate checks"])

CHECK_FIELDS = (
    "check_id",
    "kind",
    "seen_on",
    "valid_until",
    "seen_by",
    "seen_by_role",
    "recorded_at",
    "status",
    "ended_at",
    "superseded_by",
    "revoked_by",
    "revocation_reason",
    "notices_sent",
)


def check_view(document: Document) -> dict[str, Any]:
    return as_json({name: document.get(name) for name in CHECK_FIELDS})


@router.post(
    "/tenants/{tenant}/volunteers/{volunteer_id}/certificate-checks", status_code=201, responses=WRITE_REFUSALS
)
async def record_check(
    request: Request,
    tenant: str,
    volunteer_id: str,
    body: CertificateCheck,
    principal: Caller,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Record that the office has seen a certificate of the volunteer (coordinators; initiative
    admins for their own organisation's volunteers). Who saw it comes from the token. A check
    replaces the earlier check of the same kind, which stays in the history. Answers with the
    volunteer, whose ``certificate_checks`` now hold it."""
    member(principal, tenant)
    allow(principal, Role.COORDINATOR, Role.INITIATIVE_ADMIN)
    return await change_volunteer(
        request,
        tenant,
        volunteer_id,
        principal,
        lambda scope, v: service.record_certificate_check(scope, v, body, by=principal, now=datetime.now(UTC)),
        permitted=domain.may_check_certificates,
        key=idempotency_key,
        status=201,
    )


@router.get("/tenants/{tenant}/volunteers/{volunteer_id}/certificate-checks", responses=NOT_FOUND)
async def list_checks(registry: StoreDep, tenant: str, volunteer_id: str, principal: Caller) -> dict[str, Any]:
    """Every check of the volunteer, the latest first, with who saw the certificate and what
    became of the check (the volunteer, coordinators, their own organisation's admins)."""
    await visible_volunteer(registry, tenant, volunteer_id, principal)
    return {"items": [check_view(d) for d in await registry.certificate_checks(tenant, volunteer_id)]}


@router.post(
    "/tenants/{tenant}/volunteers/{volunteer_id}/certificate-checks/{check_id}/revocation", responses=WRITE_REFUSALS
)
async def revoke_check(
    request: Request,
    tenant: str,
    volunteer_id: str,
    check_id: str,
    body: Revocation,
    principal: Caller,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Take a check back: the certificate no longer counts for needs that require it, and its
    expiry notices stop (same roles as recording it)."""
    member(principal, tenant)
    allow(principal, Role.COORDINATOR, Role.INITIATIVE_ADMIN)
    return await change_volunteer(
        request,
        tenant,
        volunteer_id,
        principal,
        lambda scope, v: service.revoke_certificate_check(
            scope, v, check_id, body.reason, by=principal, now=datetime.now(UTC)
        ),
        permitted=domain.may_check_certificates,
        key=idempotency_key,
    )
