"""The registry's retention job on its real database: it erases the withdrawn volunteers whose
period is over (through the erasure use case, so the others hear of it), anonymises old closed
needs and deletes old inbox records; nothing else, and nothing more on a second run."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY

from lotse_runtime.auth import Role
from lotse_runtime.retention import RetentionJob
from tests.integration.registry.conftest import RunningRegistry
from tests.integration.registry.support import add_organisation, need_body, onboard, volunteer_body

pytestmark = pytest.mark.asyncio(loop_scope="module")

NOW = datetime.now(UTC).replace(microsecond=0)


def _deleted(rule: str) -> float:
    return REGISTRY.get_sample_value("lotse_retention_deleted_total", {"rule": rule}) or 0.0


async def _volunteer(registry: RunningRegistry, tenant: str, organisation_id: str) -> str:
    volunteer_id = str(uuid.uuid4())
    response = await registry.http.post(
        f"/tenants/{tenant}/volunteers",
        json=volunteer_body(organisation_id),
        headers=registry.auth(Role.VOLUNTEER, tenant=tenant, subject=volunteer_id),
    )
    assert response.status_code == 201, response.text
    return volunteer_id


async def _withdraw(registry: RunningRegistry, tenant: str, volunteer_id: str) -> None:
    response = await registry.http.post(
        f"/tenants/{tenant}/volunteers/{volunteer_id}/withdrawal",
        json={"reason": "no_longer_available"},
        headers=registry.auth(Role.VOLUNTEER, tenant=tenant, subject=volunteer_id),
    )
    assert response.status_code == 200, response.text


async def _cancelled_need(registry: RunningRegistry, tenant: str, organisation_id: str) -> str:
    coordinator = registry.auth(Role.COORDINATOR, tenant=tenant)
    response = await registry.http.post(
        f"/tenants/{tenant}/needs", json=need_body(organisation_id), headers=coordinator
    )
    assert response.status_code == 201, response.text
    need_id: str = response.json()["need_id"]
    response = await registry.http.post(
        f"/tenants/{tenant}/needs/{need_id}/cancellation", json={"reason": "duplicate"}, headers=coordinator
    )
    assert response.status_code == 200, response.text
    return need_id


async def _age(registry: RunningRegistry, collection: str, document_id: Any, field: str, days: int) -> None:
    """Date a record back, as if it had happened ``days`` before the job's now."""
    result = await registry.database[collection].update_one(
        {"_id": document_id}, {"$set": {field: NOW - timedelta(days=days)}}
    )
    assert result.matched_count == 1


async def test_the_job_removes_what_is_due_and_nothing_else(registry: RunningRegistry) -> None:
    tenant = await onboard(registry)
    organisation_id = await add_organisation(registry, tenant)
    long_gone, recently_gone, active = [await _volunteer(registry, tenant, organisation_id) for _ in range(3)]
    for volunteer_id in (long_gone, recently_gone):
        await _withdraw(registry, tenant, volunteer_id)
    await _age(registry, "volunteers", long_gone, "withdrawn_at", 200)
    await _age(registry, "volunteers", recently_gone, "withdrawn_at", 170)
    old_need, recent_need = [await _cancelled_need(registry, tenant, organisation_id) for _ in range(2)]
    await _age(registry, "needs", old_need, "updated_at", 400)
    # As a partner system's report and matching's staffing leave them on the need.
    partner_volunteer = str(uuid.uuid4())
    await registry.database["needs"].update_one(
        {"_id": old_need},
        {
            "$set": {
                "partner_ref": "case-4711",
                "reported_by": {"system": "fallakte", "channel": "http"},
                "committed": [partner_volunteer],
            }
        },
    )
    await registry.database["partner_refs"].insert_many(
        [
            {
                "_id": f"{tenant}:n",
                "tenant": tenant,
                "kind": "need",
                "external_ref": "case-4711",
                "aggregate_id": old_need,
            },
            {
                "_id": f"{tenant}:r",
                "tenant": tenant,
                "kind": "need",
                "external_ref": "case-1",
                "aggregate_id": recent_need,
            },
        ]
    )
    inbox = registry.database["inbox"]
    await inbox.insert_many(
        [
            {"consumer": "test", "tenant": tenant, "event_id": "old", "processed_at": NOW - timedelta(days=60)},
            {"consumer": "test", "tenant": tenant, "event_id": "new", "processed_at": NOW - timedelta(days=20)},
        ]
    )
    job: RetentionJob = registry.app.state.retention  # the app's own job: it holds the lease
    erased_before = _deleted("registry_withdrawn_volunteers")

    due = {(d.rule, d.tenant): d for d in await job.due(NOW)}
    assert due[("registry_withdrawn_volunteers", tenant)].count == 1
    assert due[("registry_closed_needs", tenant)].count == 1
    assert due[("registry_inbox", tenant)].count == 1

    outcomes = {(o.rule, o.tenant): o.done for o in await job.run_once(NOW)}
    assert outcomes == {
        ("registry_withdrawn_volunteers", tenant): 1,
        ("registry_closed_needs", tenant): 1,
        ("registry_inbox", tenant): 1,
    }
    volunteers = registry.database["volunteers"]
    erased = await volunteers.find_one({"_id": long_gone})
    assert erased is not None and erased["status"] == "erased" and "contact" not in erased
    assert await registry.database["consents"].count_documents({"volunteer_id": long_gone}) == 0
    # The erasure event is on its way to matching and notifications, which erase their copies.
    erasure = await registry.database["outbox"].find_one(
        {"key": f"{tenant}:{long_gone}", "type": "de.lotse.registry.volunteer.erased.v1"}
    )
    assert erasure is not None
    assert (
        await registry.database["outbox"].count_documents(
            {"key": f"{tenant}:{long_gone}", "type": "de.lotse.registry.volunteer.registered.v1"}
        )
        == 0
    )
    kept = await volunteers.find_one({"_id": recently_gone})
    assert kept is not None and kept["status"] == "withdrawn" and kept["contact"]["email"] == "maria@example.org"
    still = await volunteers.find_one({"_id": active})
    assert still is not None and still["status"] == "active"

    needs = registry.database["needs"]
    anonymised = await needs.find_one({"_id": old_need})
    assert anonymised is not None
    assert "description" not in anonymised and "household_ref" not in anonymised
    assert anonymised["place"] == {"district": "Mitte"}
    # Nothing left that leads back to the household or the volunteers: the partner's case id, the
    # languages asked for, the volunteers' ids, the appointment's hours.
    assert "partner_ref" not in anonymised and "committed" not in anonymised and anonymised["committed_count"] == 1
    assert anonymised["languages"] == []
    assert anonymised["schedule"] == {
        "kind": "one_off",
        "start": "2026-12-03T00:00:00+01:00",
        "end": "2026-12-04T00:00:00+01:00",
    }
    assert anonymised["reported_by"] == {"system": "fallakte", "channel": "http"}  # a system, not a person
    assert [row["aggregate_id"] async for row in registry.database["partner_refs"].find({"tenant": tenant})] == [
        recent_need
    ]
    assert anonymised["category"] == "accompaniment_to_authorities" and anonymised["status"] == "cancelled"
    untouched = await needs.find_one({"_id": recent_need})
    assert untouched is not None and untouched["description"] and untouched["place"]["point"]
    assert [row["event_id"] async for row in inbox.find({"tenant": tenant})] == ["new"]
    assert _deleted("registry_withdrawn_volunteers") == erased_before + 1

    # Idempotent: a second run (a restart, another replica after the lease) finds nothing to do.
    assert await job.run_once(NOW) == []
    assert not [d for d in await job.due(NOW) if d.tenant == tenant]
