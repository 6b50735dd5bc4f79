"""The registry's retention rules (``lotse_runtime.retention``): withdrawn volunteers are erased,
closed and cancelled needs anonymised, old inbox records deleted.

A withdrawn volunteer is erased by the same use case as an erasure on request
(``service.erase_volunteer``): consents, certificate checks, partner references, kept responses
and commitments go, a tombstone stays, and ``VolunteerErased`` tells matching and notifications
to erase their copies. A need keeps what the statistics count (category, district, dates,
volunteers needed, how many committed) and who reported it (``reported_by``: the partner system and
channel, no data about the household); its description, exact place, household reference, the
partner's case id (``partner_ref`` and its ``partner_refs`` row), the languages asked for (they may
hint at the household's origin), the committed volunteers' ids and the schedule's hours go (the
schedule keeps its days).
"""

from __future__ import annotations

from datetime import datetime

from lotse_registry import service
from lotse_registry.domain import NeedStatus, VolunteerStatus
from lotse_registry.settings import RegistrySettings
from lotse_registry.store import (
    NEEDS,
    PARTNER_REFS,
    VOLUNTEERS,
    Document,
    StaleVersion,
    Store,
    TransactionScope,
    in_tenant,
    scrub_erased_outbox,
)
from lotse_runtime.retention import (
    ANONYMISED_AT,
    Action,
    Period,
    RetentionJob,
    RetentionRule,
    coarse_schedule,
    inbox_rule,
)

SERVICE = "registry"

WITHDRAWN_VOLUNTEERS = RetentionRule(
    name="registry_withdrawn_volunteers",
    collection=VOLUNTEERS,
    period=Period.WITHDRAWN_VOLUNTEERS,
    age_field="withdrawn_at",
    action=Action.DELETE,
    description="withdrawn volunteers, erased with their consents, certificate checks and references",
    match={"status": VolunteerStatus.WITHDRAWN.value},
)
CLOSED_NEEDS = RetentionRule(
    name="registry_closed_needs",
    collection=NEEDS,
    period=Period.CLOSED_NEEDS,
    # Set by the closing or cancelling change; a closed need changes no more.
    age_field="updated_at",
    action=Action.ANONYMISE,
    description=(
        "closed and cancelled needs: description, exact place, household and partner references, languages, "
        "committed volunteers and the schedule's hours removed"
    ),
    match={"status": {"$in": [NeedStatus.CLOSED.value, NeedStatus.CANCELLED.value]}},
    unset=("description", "place.point", "place.postcode", "household_ref", "partner_ref", "committed"),
)
RULES = (WITHDRAWN_VOLUNTEERS, CLOSED_NEEDS, inbox_rule(SERVICE))


def retention_job(registry: Store, settings: RegistrySettings) -> RetentionJob:
    async def erase_withdrawn(tenant: str, volunteers: list[Document], now: datetime) -> int:
        erased = 0
        for due in volunteers:

            async def work(scope: TransactionScope, due: Document = due) -> bool:
                # Read again in the transaction: the volunteer may have been erased on request meanwhile.
                volunteer = await scope.get(VOLUNTEERS, due["_id"])
                if volunteer is None or volunteer["status"] != VolunteerStatus.WITHDRAWN:
                    return False
                await service.erase_volunteer(scope, volunteer)
                return True

            try:
                erased += await registry.unit_of_work.run(in_tenant(tenant, work, registry.known))
            except StaleVersion:
                continue  # changed meanwhile: the next run looks again
        # The volunteers' earlier events (with contact data) leave the outbox, as after an erasure on request.
        await scrub_erased_outbox(registry.database)
        return erased

    async def anonymise_closed(tenant: str, needs: list[Document], now: datetime) -> int:
        done = 0
        for need in needs:
            # The partner's case id first: should this stop in between, the need is still due and done again.
            await registry.database[PARTNER_REFS].delete_many(
                {"tenant": tenant, "kind": "need", "aggregate_id": need["_id"]}
            )
            result = await registry.database[NEEDS].update_one(
                CLOSED_NEEDS.base_filter() | {"_id": need["_id"], "tenant": tenant},
                {"$set": anonymised_need(need, now), "$unset": dict.fromkeys(CLOSED_NEEDS.unset, "")},
            )
            done += result.modified_count
        return done

    return RetentionJob(
        registry.database,
        RULES,
        settings,
        service=SERVICE,
        handlers={WITHDRAWN_VOLUNTEERS.name: erase_withdrawn, CLOSED_NEEDS.name: anonymise_closed},
    )


def anonymised_need(need: Document, now: datetime) -> Document:
    """What an anonymised need's kept fields become (``CLOSED_NEEDS.unset`` removes the others)."""
    changes: Document = {"languages": [], "committed_count": len(need.get("committed") or []), ANONYMISED_AT: now}
    if isinstance(need.get("schedule"), dict):
        changes["schedule"] = coarse_schedule(need["schedule"])
    return changes
