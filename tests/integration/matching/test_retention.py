"""Matching's retention job on the real database: the proposals of a need closed longer ago than
the period lose their reasons, distance and score (their status stays, for the statistics), the
need's copy its description and exact place; younger and open needs keep everything; the records
still read as matching's records; a second run changes nothing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from lotse_contracts.events.needs import NeedDetails
from lotse_matching.retention import DESCRIPTION_REMOVED, retention_job
from lotse_matching.settings import MatchingSettings
from lotse_matching.store import NeedRecord, Proposal, Store
from lotse_runtime.retention import coarse_schedule
from tests.support import events

NOW = datetime(2027, 6, 30, 12, 0, tzinfo=UTC)
TENANT = "retention-town"


def _need(status: str, closed_days_ago: int | None) -> dict[str, Any]:
    need_id = str(uuid.uuid4())
    details = events.example_data(NeedDetails).model_dump(mode="json")
    staffing: dict[str, Any] = {
        "version": 3,
        "state": "closed" if closed_days_ago is not None else "open",
        "committed": [],
        "opened_at": NOW - timedelta(days=500),
        "escalate_at": NOW - timedelta(days=490),
        "escalate_reason": "no_candidates",
        "escalated": False,
    }
    if closed_days_ago is not None:
        staffing["closed_at"] = NOW - timedelta(days=closed_days_ago)
    return {
        "_id": f"{TENANT}:{need_id}",
        "tenant": TENANT,
        "need_id": need_id,
        "version": 4,
        "status": status,
        "details": details,
        "staffing": staffing,
    }


def _proposal(need: dict[str, Any], status: str) -> dict[str, Any]:
    return {
        "_id": str(uuid.uuid4()),
        "tenant": TENANT,
        "need_id": need["need_id"],
        "volunteer_id": str(uuid.uuid4()),
        "kind": "proposal",
        "status": status,
        "score": 0.9,
        "reasons": [{"code": "language", "detail": "speaks ar (native)"}],
        "distance_km": 2.4,
        "proposed_at": NOW - timedelta(days=480),
        "expires_at": NOW - timedelta(days=477),
        "answered_at": NOW - timedelta(days=479),
        "answered_via": "volunteer_app",
    }


async def test_the_job_anonymises_the_proposals_of_old_closed_needs_only(
    database: AsyncDatabase[dict[str, Any]],
) -> None:
    store = Store(database)
    await store.ensure_indexes()
    old, recent, still_open = _need("closed", 400), _need("cancelled", 100), _need("open", None)
    # Closed before the closing date was recorded: it ages from its opening (500 days ago).
    undated, undated_recent = _need("closed", None), _need("cancelled", None)
    undated_recent["staffing"]["opened_at"] = NOW - timedelta(days=100)
    await database.needs.insert_many([old, recent, still_open, undated, undated_recent])
    proposals = [_proposal(old, "accepted"), _proposal(old, "declined"), _proposal(recent, "accepted")]
    proposals.append(_proposal(still_open, "open"))
    await database.proposals.insert_many(proposals)
    job = retention_job(store, MatchingSettings())

    expected = {("matching_proposals_of_closed_needs", 1), ("matching_proposals_of_undated_closed_needs", 1)}
    assert {(d.rule, d.count) for d in await job.due(NOW)} == expected
    outcomes = {(o.rule, o.tenant): o.done for o in await job.run_once(NOW)}

    assert outcomes == {(rule, TENANT): count for rule, count in expected}
    by_need: dict[str, list[Proposal]] = {}
    async for document in database.proposals.find({}):
        proposal = Proposal.from_document(document)
        by_need.setdefault(proposal.need_id, []).append(proposal)
    assert sorted(p.status.value for p in by_need[old["need_id"]]) == ["accepted", "declined"]
    assert all(not p.reasons and p.distance_km is None and p.score is None for p in by_need[old["need_id"]])
    for kept in (recent, still_open):
        assert all(p.reasons and p.distance_km == 2.4 for p in by_need[kept["need_id"]])
    anonymised = await database.needs.find_one({"_id": old["_id"]})
    assert anonymised is not None
    record = NeedRecord.from_document(anonymised)
    assert record.anonymised_at == NOW and record.to_document()["anonymised_at"] == NOW
    assert record.details["description"] == DESCRIPTION_REMOVED
    assert "household_ref" not in record.details and "postcode" not in record.details["place"]
    original = old["details"]["place"]["point"]
    assert record.details["place"]["point"] == {axis: round(value, 2) for axis, value in original.items()}
    assert record.details["place"]["district"] == old["details"]["place"]["district"]
    # The languages asked for go, the schedule keeps its days only, and it still reads as a need's details.
    assert record.details["languages"] == []
    assert record.details["schedule"] == coarse_schedule(old["details"]["schedule"]) != old["details"]["schedule"]
    NeedDetails.model_validate(record.details)
    undated_now = await database.needs.find_one({"_id": undated["_id"]})
    assert undated_now is not None and undated_now["details"]["description"] == DESCRIPTION_REMOVED
    undated_kept = await database.needs.find_one({"_id": undated_recent["_id"]})
    assert undated_kept is not None and undated_kept["details"] == undated_recent["details"]
    untouched = await database.needs.find_one({"_id": recent["_id"]})
    assert untouched is not None and untouched["details"] == recent["details"]

    assert await job.run_once(NOW) == []
    assert await job.due(NOW) == []
