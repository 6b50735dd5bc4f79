"""Staffing statistics for the coordination office (the whole tenant, or one organisation) and for
initiative admins (their organisation): time to staff, proposals per acceptance, and the confirmed
hours volunteers logged per month and kind of help. Every count
below five, and every figure computed from fewer than five items, is withheld (``null``). Who may
read them is the console's rule (``access.office_scope``): a caller of another tenant gets 404."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from lotse_contracts.events.needs import NeedCategory
from lotse_matching.api.access import Office, Service
from lotse_matching.statistics import (
    HoursSum,
    by_category,
    by_month,
    confirmed_hours_by,
    hours_to_staff,
    proposal_outcomes,
    time_to_staff,
)
from lotse_runtime.problems import Problem, problem_responses
from lotse_runtime.small_counts import MINIMUM_COUNT, SmallCount

router = APIRouter(tags=["statistics"])
WITHHELD = f"null when computed from fewer than {MINIMUM_COUNT} needs (withheld)"


class TimeToStaffView(BaseModel):
    """From a need reaching matching to the commitment that completed its staffing."""

    staffed_needs: SmallCount = Field(description="Needs staffed now or when they were closed.")
    median_hours: float | None = Field(description=f"Median, in hours; {WITHHELD}.")
    p75_hours: float | None = Field(description=f"75th percentile, in hours; {WITHHELD}.")
    p90_hours: float | None = Field(description=f"90th percentile, in hours; {WITHHELD}.")


class ProposalsView(BaseModel):
    proposals: SmallCount = Field(description="Proposals made (a volunteer's own pick is none).")
    accepted: SmallCount = Field(description="Accepted, also where the volunteer stepped back later.")
    declined: SmallCount
    expired: SmallCount
    withdrawn: SmallCount = Field(description="Ended unanswered because the need was staffed or cancelled.")
    open: SmallCount
    picks: SmallCount = Field(description="Needs volunteers took themselves.")
    proposals_per_acceptance: float | None = Field(
        description=f"Proposals made for each accepted one; null when either count is below {MINIMUM_COUNT}."
    )


HOURS_WITHHELD = f"null when fewer than {MINIMUM_COUNT} volunteers logged them (withheld)"


class MonthHours(BaseModel):
    month: str = Field(description="The month of the days worked, YYYY-MM.", examples=["2026-03"])
    hours: float | None = Field(description=f"Confirmed hours, to one decimal; {HOURS_WITHHELD}.")
    volunteers: SmallCount = Field(description="Volunteers whose confirmed hours these are.")


class CategoryHours(BaseModel):
    category: NeedCategory
    hours: float | None = Field(description=f"Confirmed hours, to one decimal; {HOURS_WITHHELD}.")
    volunteers: SmallCount = Field(description="Volunteers whose confirmed hours these are.")


class HoursView(BaseModel):
    """Hours volunteers logged and the office or the initiative confirmed, by the day worked."""

    by_month: list[MonthHours] = Field(description="Months with confirmed hours, oldest first.")
    by_category: list[CategoryHours] = Field(description="Kinds of help of the needs the hours were for.")


class StaffingStatistics(BaseModel):
    tenant: str
    organisation_id: str | None = Field(description="Whose figures: one organisation's, or null for the whole tenant.")
    suppressed_below: int = Field(MINIMUM_COUNT, description="Counts below this are withheld (null).")
    time_to_staff: TimeToStaffView
    proposals: ProposalsView
    hours: HoursView


@router.get(
    "/tenants/{tenant}/statistics",
    responses=problem_responses(404),
    summary="Time to staff, proposals per acceptance, confirmed hours",
)
async def staffing_statistics(
    scope: Office,
    matching: Service,
    organisation_id: Annotated[str | None, Query(max_length=64, description="One organisation's figures")] = None,
) -> StaffingStatistics:
    """The tenant's figures (coordinator; or one organisation's, if asked), or the initiative
    admin's own organisation's; another organisation's is a 404 for them."""
    if scope.organisation is not None:
        if organisation_id is not None and organisation_id != scope.organisation:
            raise Problem(404, "Not found", f"no organisation {organisation_id}")
        organisation_id = scope.organisation
    needs, proposals = await matching.store.staffing_records(scope.tenant, organisation_id)
    waited = time_to_staff(hours_to_staff(needs, proposals))
    outcomes = proposal_outcomes(proposals)
    confirmed = await matching.store.confirmed_hours(scope.tenant, organisation_id)
    return StaffingStatistics(
        tenant=scope.tenant,
        organisation_id=organisation_id,
        time_to_staff=TimeToStaffView(**vars(waited)),
        proposals=ProposalsView(**vars(outcomes)),
        hours=HoursView(
            by_month=[MonthHours(month=s.key, **_figures(s)) for s in confirmed_hours_by(confirmed, by_month)],
            by_category=[
                CategoryHours(category=NeedCategory(s.key), **_figures(s))
                for s in confirmed_hours_by(confirmed, by_category)
            ],
        ),
    )


def _figures(found: HoursSum) -> dict[str, float | int | None]:
    return {"hours": found.hours, "volunteers": found.volunteers}
