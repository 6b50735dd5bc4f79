"""The notifications service's retention rules (``lotse_runtime.retention``): the delivery log,
needs that ended long ago with their proposals, and old inbox records are deleted.

A delivery (e-mail, SMS, in-app, webhook) is kept while it is pending, and once it is finished
(sent, skipped, dead, cancelled) for the delivery log's period, counted from when it finished
(``finished_at``; one finished before that was kept counts from when it was created); then it goes
with its payload (webhook bodies included). What a volunteer's erasure removes at once is removed by the
erasure's handler, not here.

A need closed or cancelled for the period of a closed need (a year by default, when the registry
anonymises its own: the description is the household's words) is deleted with the proposals and
engagements kept to remind of it:
nothing is sent about it any more. It counts from when the registry ended it (``ended_at``); one
that ended before that was recorded is dated when the service starts (``date_undated_ended_needs``).
"""

from __future__ import annotations

from datetime import datetime

from lotse_notifications.settings import NotificationSettings
from lotse_notifications.store import ENDED_AT, ENDED_NEEDS, FINISHED, Store
from lotse_runtime.retention import Action, Period, RetentionJob, RetentionRule, inbox_rule

SERVICE = "notifications"

DELIVERY_LOG = RetentionRule(
    name="notifications_delivery_log",
    collection="deliveries",
    period=Period.DELIVERY_LOG,
    age_field="finished_at",
    action=Action.DELETE,
    description="finished deliveries (e-mail, SMS, in-app, webhook) with their payloads",
    match={"status": {"$in": sorted(FINISHED)}},
)
UNDATED_DELIVERY_LOG = RetentionRule(
    name="notifications_undated_delivery_log",
    collection="deliveries",
    period=Period.DELIVERY_LOG,
    age_field="created_at",
    action=Action.DELETE,
    description="deliveries finished before that time was kept, counted from their creation",
    # None matches an absent field too.
    match={**DELIVERY_LOG.match, "finished_at": None},
)
ENDED_NEEDS_RULE = RetentionRule(
    name="notifications_needs_ended_long_ago",
    collection="needs",
    # The household's words (the description) go when the registry anonymises its own need.
    period=Period.CLOSED_NEEDS,
    age_field=ENDED_AT,
    action=Action.DELETE,
    description="needs closed or cancelled that long ago, with their proposals and engagements (to remind of)",
    match={"status": {"$in": sorted(ENDED_NEEDS)}},
    also=("proposals",),
)
RULES = (DELIVERY_LOG, UNDATED_DELIVERY_LOG, ENDED_NEEDS_RULE, inbox_rule(SERVICE))


def retention_job(store: Store, settings: NotificationSettings) -> RetentionJob:
    async def delete_with_proposals(tenant: str, needs: list[dict[str, object]], now: datetime) -> int:
        return await store.delete_needs_with_proposals(tenant, [str(need["need_id"]) for need in needs])

    return RetentionJob(
        store.db, RULES, settings, service=SERVICE, handlers={ENDED_NEEDS_RULE.name: delete_with_proposals}
    )
