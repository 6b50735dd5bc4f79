"""Statistics of a municipality for its coordination office."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from lotse_registry.api.access import NOT_FOUND, Caller, StoreDep, allow, member
from lotse_runtime.auth import Role

router = APIRouter(tags=["statistics"])


@router.get("/tenants/{tenant}/statistics", responses=NOT_FOUND)
async def statistics(registry: StoreDep, tenant: str, principal: Caller) -> dict[str, Any]:
    """Open, staffed and unstaffed needs by category, and volunteer counts (coordinator)."""
    member(principal, tenant)
    allow(principal, Role.COORDINATOR)
    return await registry.statistics(tenant)
