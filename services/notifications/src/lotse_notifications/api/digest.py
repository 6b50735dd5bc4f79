"""The weekly digest of the coordination office, on demand (coordinator)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request

from lotse_notifications.api.access import NOT_FOUND, Coordinator, StoreDep
from lotse_runtime.auth import tenant_of
from lotse_runtime.problems import Problem

router = APIRouter()


@router.post(
    "/digest",
    tags=["digest"],
    status_code=202,
    responses=NOT_FOUND,
    summary="Send this week's digest to the coordination office",
)
async def send_digest(principal: Coordinator, request: Request, store: StoreDep) -> dict[str, Any]:
    tenant_doc = await store.tenant(tenant_of(principal))
    if tenant_doc is None:
        raise Problem(404, "Not found", "the tenant is not known to the notification service yet")
    payload, created = await request.app.state.worker.planner.plan_digest(tenant_doc, datetime.now(UTC))
    return {"week": payload["week"], "digest": payload["digest"], "already_planned": not created}
