"""Outcomes back in: matching's events show each need's staffing and each volunteer's engagements.

Matching numbers its events per need (the envelope version); the registry keeps the last
version it applied per need and ignores anything older, and the inbox ignores repeats.
Staffing is matching's fact, not a registry change, so it publishes no registry event.
"""

from __future__ import annotations

from typing import Any

import structlog

from lotse_contracts import (
    Envelope,
    NeedStaffed,
    NeedUnstaffed,
    ProposalAccepted,
    VolunteerPickedNeed,
    VolunteerSteppedBack,
)
from lotse_registry.domain import NeedStatus, VolunteerStatus
from lotse_registry.store import NEEDS, VOLUNTEERS, Registry, TenantScope, TransactionScope
from lotse_runtime.consumer import Delivery
from lotse_runtime.inbox import record_once

log = structlog.get_logger("lotse.registry.outcomes")

APPLIED = (NeedStaffed, NeedUnstaffed, ProposalAccepted, VolunteerPickedNeed, VolunteerSteppedBack)


def outcome_handler(registry: Registry, consumer: str) -> Any:
    async def handle(event: Envelope[Any], delivery: Delivery) -> None:
        if not isinstance(event.data, APPLIED):
            return  # proposals, declines, expiries: matching's and notifications' business

        async def work(scope: TransactionScope) -> None:
            if not await record_once(
                scope.database, scope.session, consumer=consumer, event_id=str(event.id), tenant=event.tenant
            ):
                return
            await apply_outcome(scope, event)

        await registry.run(event.tenant, work)

    return handle


async def apply_outcome(scope: TenantScope, event: Envelope[Any]) -> None:
    data = event.data
    need_id = str(data.need_id)
    need = await scope.get(NEEDS, need_id)
    if need is None:
        # Not a need of this registry (or of a tenant it does not hold): nothing to show.
        log.info("outcome for an unknown need ignored", tenant=scope.tenant, event_type=event.type)
        return
    if event.version <= need.get("staffing_version", 0):
        log.info("older outcome ignored", tenant=scope.tenant, event_type=event.type, version=event.version)
        return
    changes: dict[str, Any] = {"staffing_version": event.version}
    committed = list(need.get("committed", []))
    over = need["status"] in {NeedStatus.CLOSED, NeedStatus.CANCELLED}
    if isinstance(data, NeedStaffed):
        listed = [str(volunteer) for volunteer in data.volunteer_ids]
        erased = await _erased(scope, listed)
        committed = [volunteer for volunteer in listed if volunteer not in erased]
        for volunteer_id in committed:
            await _engagement(scope, volunteer_id, need_id, add=True)
        changes.update(unstaffed=False, unstaffed_reason=None)
        if need["status"] == NeedStatus.OPEN:
            changes["status"] = NeedStatus.STAFFED.value
    elif isinstance(data, NeedUnstaffed):
        if not over:
            changes.update(unstaffed=True, unstaffed_reason=data.reason.value)
    elif isinstance(data, ProposalAccepted | VolunteerPickedNeed):
        volunteer_id = str(data.volunteer_id)
        if await _engagement(scope, volunteer_id, need_id, add=True) and volunteer_id not in committed:
            committed.append(volunteer_id)
    elif isinstance(data, VolunteerSteppedBack):
        volunteer_id = str(data.volunteer_id)
        committed = [other for other in committed if other != volunteer_id]
        await _engagement(scope, volunteer_id, need_id, add=False)
        if need["status"] == NeedStatus.STAFFED and len(committed) < need["volunteers_needed"]:
            changes["status"] = NeedStatus.OPEN.value
    changes["committed"] = committed
    await scope.update(NEEDS, need_id, {"$set": changes})


async def _engagement(scope: TenantScope, volunteer_id: str, need_id: str, *, add: bool) -> bool:
    """Record or remove the engagement; False for a volunteer the registry does not (or no
    longer, after erasure) hold, whose id then stays out of the need as well."""
    volunteer = await scope.get(VOLUNTEERS, volunteer_id)
    if volunteer is None or volunteer["status"] == VolunteerStatus.ERASED:
        return False
    operator = "$addToSet" if add else "$pull"
    await scope.update(VOLUNTEERS, volunteer_id, {operator: {"engagements": need_id}})
    return True


async def _erased(scope: TenantScope, volunteer_ids: list[str]) -> set[str]:
    query = {"_id": {"$in": volunteer_ids}, "status": VolunteerStatus.ERASED.value}
    erased = await scope.find(VOLUNTEERS, query, projection={"_id": 1})
    return {document["_id"] for document in erased}
