"""The registry's retention rules (``lotse_runtime.retention``): withdrawn volunteers are erased,
closed and cancelled needs anonymised, old inbox records deleted.

A withdrawn volunteer is erased by the same use case as an erasure on request
(``service.erase_volunteer``): consents, certificate checks, partner references, kept responses
and commitments go, a tombstone stays, and ``VolunteerErased`` tells matching and notifications
to erase their copies. A need keeps what the statistics count (category, district, dates,
volunteers needed and committed); its description, exact place and household reference go.
"""

from __future__ import annotations

from datetime import datetime

from lotse_registry import service
from lotse_registry.domain import NeedStatus, VolunteerStatus
from lotse_registry.settings import RegistrySettings
from lotse_registry.store import (
    NEEDS,
    VOLUNTEERS,
    Document,
    StaleVersion,
    Store,
    TransactionScope,
    in_tenant,
    scrub_erased_outbox,
)
from lotse_runtime.retention import Action, Period, RetentionJob, RetentionRule, inbox_rule

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
    description="closed and cancelled needs: description, exact place and household reference removed",
    match={"status": {"$in": [NeedStatus.CLOSED.value, NeedStatus.CANCELLED.value]}},
    unset=("description", "place.point", "place.postcode", "household_ref"),
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

    return RetentionJob(
        registry.database,
        RULES,
        settings,
        service=SERVICE,
        handlers={WITHDRAWN_VOLUNTEERS.name: erase_withdrawn},
    )
