"""Matching's retention rules (``lotse_runtime.retention``): what a need closed long ago keeps,
and old inbox records.

Once a need has been closed or cancelled for the period, its proposals lose why and how well the
volunteer fitted (reasons such as "speaks ar (native)" or "holds a valid extended police
certificate", distance, score); their status, kind and dates stay, so the statistics count them
as before. The need's copy loses its description, household reference, postcode, the languages
asked for and the schedule's hours (it keeps its days), and its exact point is rounded to about a
kilometre, as a district would be: the registry anonymises its own need the same way.

A need closed before matching recorded when (``staffing.closed_at``) ages from when it was opened:
it closed later, so it is anonymised at most that much early, rather than never.
"""

from __future__ import annotations

from datetime import datetime

from lotse_matching.settings import MatchingSettings
from lotse_matching.store import NeedStatus, Store
from lotse_runtime.retention import (
    ANONYMISED_AT,
    Action,
    Period,
    RetentionJob,
    RetentionRule,
    coarse_schedule,
    inbox_rule,
)

SERVICE = "matching"
# What an anonymised need's description reads (the field is required, and shown in old engagements).
DESCRIPTION_REMOVED = "—"
# Two decimals of a degree: about 1.1 km north-south, a district rather than a door.
COARSE_DECIMALS = 2

CLOSED_NEEDS = RetentionRule(
    name="matching_proposals_of_closed_needs",
    collection="needs",
    period=Period.PROPOSALS_OF_CLOSED_NEEDS,
    age_field="staffing.closed_at",
    action=Action.ANONYMISE,
    description="closed and cancelled needs: their proposals' reasons, distance and score, the need's place",
    match={"status": {"$in": [NeedStatus.CLOSED.value, NeedStatus.CANCELLED.value]}},
    also=("proposals",),
)
UNDATED_CLOSED_NEEDS = RetentionRule(
    name="matching_proposals_of_undated_closed_needs",
    collection="needs",
    period=Period.PROPOSALS_OF_CLOSED_NEEDS,
    age_field="staffing.opened_at",
    action=Action.ANONYMISE,
    description="needs closed before their closing date was recorded, counted from their opening: as above",
    # None matches an absent field too.
    match={**CLOSED_NEEDS.match, "staffing.closed_at": None},
    also=CLOSED_NEEDS.also,
)
RULES = (CLOSED_NEEDS, UNDATED_CLOSED_NEEDS, inbox_rule(SERVICE))


def coarse(point: dict[str, float]) -> dict[str, float]:
    return {axis: round(float(value), COARSE_DECIMALS) for axis, value in point.items()}


def retention_job(store: Store, settings: MatchingSettings) -> RetentionJob:
    async def anonymise(tenant: str, needs: list[dict[str, object]], now: datetime) -> int:
        done = 0
        for need in needs:
            await store.proposals.update_many(
                {"tenant": tenant, "need_id": need["need_id"]},
                {"$set": {"reasons": [], "distance_km": None, "score": None}},
            )
            details = need.get("details")
            place = details.get("place") if isinstance(details, dict) else None
            point = place.get("point") if isinstance(place, dict) else None
            changes: dict[str, object] = {
                "details.description": DESCRIPTION_REMOVED,
                "details.languages": [],
                ANONYMISED_AT: now,
            }
            schedule = details.get("schedule") if isinstance(details, dict) else None
            if isinstance(schedule, dict):
                changes["details.schedule"] = coarse_schedule(schedule)
            if isinstance(point, dict):
                changes["details.place.point"] = coarse(point)
            # The proposals first: should this stop in between, the need is still due and done again.
            result = await store.needs.update_one(
                {"_id": need["_id"], "tenant": tenant, ANONYMISED_AT: {"$exists": False}},
                {"$set": changes, "$unset": {"details.household_ref": "", "details.place.postcode": ""}},
            )
            done += result.modified_count
        return done

    return RetentionJob(
        store.database,
        RULES,
        settings,
        service=SERVICE,
        handlers={CLOSED_NEEDS.name: anonymise, UNDATED_CLOSED_NEEDS.name: anonymise},
    )
