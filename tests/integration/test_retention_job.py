"""The runtime's retention job on the real database, with rules of its own: one rule failing for
one tenant does not stop the others, and a run that loses its lease to another replica stops at once
(the other replica, meanwhile, does nothing while the first holds it)."""

from __future__ import annotations

import importlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY
from pymongo.asynchronous.database import AsyncDatabase

from lotse_runtime.outbox import LEASE_COLLECTION, take_lease
from lotse_runtime.retention import Action, Period, RetentionJob, RetentionRule, RetentionSettings, inbox_rule

NOW = datetime(2027, 6, 30, 12, 0, tzinfo=UTC)
FIRST, SECOND = "first-town", "second-town"
SERVICE = "retention-test"
OLD = NOW - timedelta(days=400)

LETTERS = RetentionRule(
    name="retention_test_letters",
    collection="letters",
    period=Period.CLOSED_NEEDS,
    age_field="closed_at",
    action=Action.DELETE,
    description="old letters",
)
RULES = (LETTERS, inbox_rule(SERVICE))


async def _seed(database: AsyncDatabase[dict[str, Any]]) -> None:
    await database.letters.insert_many([{"tenant": tenant, "closed_at": OLD} for tenant in (FIRST, SECOND)])
    await database.inbox.insert_many(
        [{"consumer": "c", "tenant": FIRST, "event_id": "old", "processed_at": OLD}],
    )


async def _tenants_left(database: AsyncDatabase[dict[str, Any]], collection: str) -> list[str]:
    return sorted([row["tenant"] async for row in database[collection].find({})])


async def test_a_step_that_fails_is_counted_and_the_others_still_run(database: AsyncDatabase[dict[str, Any]]) -> None:
    await _seed(database)

    async def delete_but_not_first(tenant: str, letters: list[dict[str, Any]], now: datetime) -> int:
        if tenant == FIRST:
            raise RuntimeError("a record this handler cannot deal with")
        ids = [letter["_id"] for letter in letters]
        return (await database.letters.delete_many({"_id": {"$in": ids}})).deleted_count

    job = RetentionJob(
        database, RULES, RetentionSettings(), service=SERVICE, handlers={LETTERS.name: delete_but_not_first}
    )
    failures = REGISTRY.get_sample_value("lotse_retention_failures_total", {"job": SERVICE}) or 0

    outcomes = {(o.rule, o.tenant) for o in await job.run_once(NOW)}

    assert outcomes == {(LETTERS.name, SECOND), (f"{SERVICE}_inbox", FIRST)}
    assert await _tenants_left(database, "letters") == [FIRST]
    assert await database.inbox.count_documents({}) == 0
    assert REGISTRY.get_sample_value("lotse_retention_failures_total", {"job": SERVICE}) == failures + 1
    assert REGISTRY.get_sample_value("lotse_retention_last_run_timestamp_seconds", {"job": SERVICE}) == NOW.timestamp()


async def test_a_run_that_loses_its_lease_stops_and_the_other_replica_waits_its_turn(
    database: AsyncDatabase[dict[str, Any]],
) -> None:
    await _seed(database)
    settings = RetentionSettings()
    other_replica = RetentionJob(database, RULES, settings, service=SERVICE)
    while_held: list[object] = []

    async def delete_then_lose_the_lease(tenant: str, letters: list[dict[str, Any]], now: datetime) -> int:
        # While this run holds the lease the other replica does nothing, though work is due.
        while_held.append(await other_replica.run_once(NOW))
        ids = [letter["_id"] for letter in letters]
        done = (await database.letters.delete_many({"_id": {"$in": ids}})).deleted_count
        # This replica stalls past its lease; the other takes it over.
        await database[LEASE_COLLECTION].update_one(
            {"_id": f"retention-{SERVICE}"}, {"$set": {"expires_at": NOW.replace(year=2000)}}
        )
        assert await take_lease(database, other_replica.lease_name, other_replica.owner, 300)
        return done

    job = RetentionJob(database, RULES, settings, service=SERVICE, handlers={LETTERS.name: delete_then_lose_the_lease})

    outcomes = await job.run_once(NOW)

    assert while_held == [[]]
    # The first tenant's letters were done before the lease went; nothing after that.
    assert [(o.rule, o.tenant) for o in outcomes] == [(LETTERS.name, FIRST)]
    assert await _tenants_left(database, "letters") == [SECOND]
    assert await database.inbox.count_documents({}) == 1
    # The replica that holds the lease now does the rest.
    assert {(o.rule, o.tenant) for o in await other_replica.run_once(NOW)} == {
        (LETTERS.name, SECOND),
        (f"{SERVICE}_inbox", FIRST),
    }


@pytest.mark.parametrize("service", ["registry", "matching", "notifications"])
async def test_every_rule_of_a_service_has_an_index_for_its_query(
    database: AsyncDatabase[dict[str, Any]], service: str
) -> None:
    rules: tuple[RetentionRule, ...] = importlib.import_module(f"lotse_{service}.retention").RULES
    job = RetentionJob(database, rules, RetentionSettings(), service=service)

    await job.ensure_indexes()

    for rule in rules:
        keys = [
            [name for name, _ in index["key"]]
            for index in (await database[rule.collection].index_information()).values()
        ]
        assert ["tenant", rule.age_field] in keys, f"{rule.name}: no index on tenant and {rule.age_field}"
