"""The notifications retention job on the real database: finished deliveries older than the
delivery log's period (the tenant's own, where it has one), needs that ended long ago with their
proposals, and old inbox records go; pending deliveries and younger records stay; a second run and
a second replica change nothing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import REGISTRY
from pymongo.asynchronous.database import AsyncDatabase

from lotse_notifications.records import NeedStatus, scoped_id
from lotse_notifications.retention import RULES, retention_job
from lotse_notifications.settings import NotificationSettings
from lotse_notifications.store import Store
from lotse_runtime.outbox import LEASE_COLLECTION
from lotse_runtime.retention import RULES_COLLECTION
from lotse_runtime.unit_of_work import UnitOfWork
from tests.support.waiting import eventually

NOW = datetime(2027, 6, 30, 12, 0, tzinfo=UTC)
TOWN, PATIENT_TOWN = "retention-town", "patient-town"


def _delivery(tenant: str, status: str, days_old: int) -> dict[str, Any]:
    return {
        "_id": str(uuid.uuid4()),
        "key": uuid.uuid4().hex,
        "tenant": tenant,
        "kind": "webhook",
        "channel": "webhook",
        "recipient_kind": "webhook",
        "recipient_id": "hook-1",
        "payload": {"body": "an event with a volunteer id"},
        "status": status,
        "created_at": NOW - timedelta(days=days_old),
        **({} if status == "pending" else {"finished_at": NOW - timedelta(days=days_old)}),
    }


async def test_the_job_deletes_the_old_delivery_log_and_inbox_only(database: AsyncDatabase[dict[str, Any]]) -> None:
    store = Store(database)
    await store.ensure_indexes()
    old_sent, old_dead = _delivery(TOWN, "sent", 100), _delivery(TOWN, "dead", 100)
    still_pending, recent = _delivery(TOWN, "pending", 100), _delivery(TOWN, "sent", 30)
    kept_longer = _delivery(PATIENT_TOWN, "sent", 100)  # this tenant keeps its log 120 days
    # The log ages from when a delivery finished: one retried for long and dead a month ago stays.
    finished_lately = {**_delivery(TOWN, "dead", 100), "finished_at": NOW - timedelta(days=30)}
    # Finished before that time was kept: it ages from its creation.
    undated = {key: value for key, value in _delivery(TOWN, "sent", 100).items() if key != "finished_at"}
    await database.deliveries.insert_many(
        [old_sent, old_dead, still_pending, recent, kept_longer, finished_lately, undated]
    )
    await database.inbox.insert_many(
        [
            # The dedup window: 58 days with the topics of today (30 + 14 and a week's segment to each).
            {"consumer": "n", "tenant": TOWN, "event_id": "old", "processed_at": NOW - timedelta(days=59)},
            {"consumer": "n", "tenant": TOWN, "event_id": "new", "processed_at": NOW - timedelta(days=57)},
        ]
    )
    settings = NotificationSettings(retention_tenants={PATIENT_TOWN: {"delivery_log_days": 120}})
    job, other_replica = retention_job(store, settings), retention_job(store, settings)
    before = REGISTRY.get_sample_value("lotse_retention_deleted_total", {"rule": "notifications_delivery_log"}) or 0

    outcomes = {(o.rule, o.tenant): o.done for o in await job.run_once(NOW)}

    assert outcomes == {
        ("notifications_delivery_log", TOWN): 2,
        ("notifications_undated_delivery_log", TOWN): 1,
        ("notifications_inbox", TOWN): 1,
    }
    left = {document["_id"] async for document in database.deliveries.find({})}
    assert left == {still_pending["_id"], recent["_id"], kept_longer["_id"], finished_lately["_id"]}
    assert [row["event_id"] async for row in database.inbox.find({})] == ["new"]
    after = REGISTRY.get_sample_value("lotse_retention_deleted_total", {"rule": "notifications_delivery_log"})
    assert after == before + 2
    # Idempotent, and one replica at a time: the other finds the lease taken, even with work due.
    assert await job.run_once(NOW) == []
    assert await other_replica.run_once(NOW + timedelta(days=30)) == []
    # A month later the other tenant's longer period is over too (the recent delivery is 60 days old).
    assert {(o.rule, o.tenant) for o in await job.run_once(NOW + timedelta(days=30))} == {
        ("notifications_delivery_log", PATIENT_TOWN),
        ("notifications_inbox", TOWN),
    }
    assert finished_lately["_id"] in {document["_id"] async for document in database.deliveries.find({})}
    assert recent["_id"] in {document["_id"] async for document in database.deliveries.find({})}


async def _gone(database: AsyncDatabase[dict[str, Any]], delivery_id: str) -> bool | None:
    return await database.deliveries.find_one({"_id": delivery_id}) is None or None


async def test_the_started_job_runs_at_once_under_its_lease_and_gives_it_back_when_stopped(
    database: AsyncDatabase[dict[str, Any]],
) -> None:
    store = Store(database)
    await store.ensure_indexes()
    old = _delivery(TOWN, "sent", 400)  # 400 days before NOW: over 90 days before the real now too
    await database.deliveries.insert_one(old)
    job = retention_job(store, NotificationSettings())

    job.start()
    try:
        await eventually(lambda: _gone(database, old["_id"]), what="the old delivery deleted by the started job")
        lease = await database[LEASE_COLLECTION].find_one({"_id": "retention-notifications"})
        assert lease is not None and lease["owner"] == job.owner
        assert await database[RULES_COLLECTION].count_documents({"service": "notifications"}) == len(RULES)
        # The started job made the indexes its queries need.
        indexes = [
            [name for name, _ in index["key"]] for index in (await database.deliveries.index_information()).values()
        ]
        assert ["tenant", "finished_at"] in indexes
    finally:
        await job.stop()
    assert await database[LEASE_COLLECTION].find_one({"_id": "retention-notifications"}) is None


def _need(key: str, status: str, ended_days_ago: int | None) -> dict[str, Any]:
    ended = {} if ended_days_ago is None else {"ended_at": NOW - timedelta(days=ended_days_ago)}
    return {
        "_id": scoped_id(TOWN, key),
        "tenant": TOWN,
        "need_id": key,
        "version": 3,
        "status": status,
        "description": "Begleitung zur Ausländerbehörde, Familie in der Hauptstraße",
        **ended,
    }


async def test_needs_that_ended_long_ago_go_with_their_proposals_and_the_others_stay(
    database: AsyncDatabase[dict[str, Any]],
) -> None:
    store = Store(database)
    await store.ensure_indexes()
    # The registry's need.closed: notifications dates the end when it applies it.
    await UnitOfWork(database.client, database).run(
        lambda transaction: store.save_need(TOWN, "closed-now", 2, transaction, status=NeedStatus.CLOSED)
    )
    dated = await database.needs.find_one({"_id": scoped_id(TOWN, "closed-now")})
    assert dated is not None and dated["ended_at"] is not None
    # Matching's word that it is staffed comes after (another topic): the need stays ended, so due.
    await UnitOfWork(database.client, database).run(
        lambda transaction: store.set_staffing(
            TOWN, "closed-now", transaction, status=NeedStatus.STAFFED, unstaffed=False
        )
    )
    still = await database.needs.find_one({"_id": scoped_id(TOWN, "closed-now")})
    assert still is not None and still["status"] == NeedStatus.CLOSED
    await database.needs.insert_many(
        [
            _need("long-ago", "cancelled", 400),
            _need("lately", "closed", 30),
            _need("still-open", "open", None),
            _need("ended-before-dates-were-kept", "closed", None),
        ]
    )
    await database.proposals.insert_many(
        [
            {"_id": scoped_id(TOWN, f"p{n}"), "tenant": TOWN, "need_id": need, "volunteer_id": f"v{n}"}
            for n, need in enumerate(["long-ago", "long-ago", "still-open", "lately"])
        ]
    )
    # At start: a need that ended before its end was recorded is dated now (then kept a year).
    assert await store.date_undated_ended_needs() == 1
    assert await store.date_undated_ended_needs() == 0

    outcomes = {(o.rule, o.tenant): o.done for o in await retention_job(store, NotificationSettings()).run_once(NOW)}

    assert outcomes == {("notifications_needs_ended_long_ago", TOWN): 1}
    left = {document["need_id"] async for document in database.needs.find({})}
    assert left == {"closed-now", "lately", "still-open", "ended-before-dates-were-kept"}
    assert sorted([row["need_id"] async for row in database.proposals.find({})]) == ["lately", "still-open"]
