"""The notifications service's retention rules (``lotse_runtime.retention``): the delivery log and
old inbox records are deleted.

A delivery (e-mail, SMS, in-app, webhook) is kept while it is pending, and once it is finished
(sent, skipped, dead, cancelled) for the delivery log's period, counted from when it finished
(``finished_at``; one finished before that was kept counts from when it was created); then it goes
with its payload (webhook bodies included). What a volunteer's erasure removes at once is removed by the
erasure's handler, not here.
"""

from __future__ import annotations

from lotse_notifications.settings import NotificationSettings
from lotse_notifications.store import FINISHED, Store
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
RULES = (DELIVERY_LOG, UNDATED_DELIVERY_LOG, inbox_rule(SERVICE))


def retention_job(store: Store, settings: NotificationSettings) -> RetentionJob:
    return RetentionJob(store.db, RULES, settings, service=SERVICE)
