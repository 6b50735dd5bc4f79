"""Statistics of a municipality for its coordination office, and of an initiative for its admins.

Needs by category and by district, volunteers registered, engaged, withdrawn and erased. Every
count below five is withheld here (``lotse_runtime.small_counts``): the answer has ``null`` in its
place, so that no caller can single out a household or a volunteer.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from lotse_registry.api.access import NOT_FOUND, Caller, StoreDep, allow, member
from lotse_registry.store import NeedTally, RawStatistics
from lotse_runtime.auth import Principal, Role
from lotse_runtime.problems import Problem
from lotse_runtime.small_counts import MINIMUM_COUNT, SmallCount, disclosed

router = APIRouter(tags=["statistics"])


class NeedCounts(BaseModel):
    open: SmallCount = Field(description="Open needs (unstaffed ones included); null: fewer than 5.")
    staffed: SmallCount
    unstaffed: SmallCount = Field(description="Open needs with nobody left to ask; null: fewer than 5.")


class DistrictNeeds(NeedCounts):
    district: str | None = Field(description="The district (Stadtteil); null: needs reported without one.")


class VolunteerCounts(BaseModel):
    active: SmallCount = Field(description="Registered and not withdrawn; null: fewer than 5.")
    engaged: SmallCount = Field(description="Active with at least one current engagement; null: fewer than 5.")
    withdrawn: SmallCount
    erased: SmallCount = Field(
        description=(
            "Erased on request; null: fewer than 5, or an organisation's figures (an erasure keeps no organisation)."
        )
    )


class Statistics(BaseModel):
    tenant: str
    organisation_id: str | None = Field(description="Whose figures: one organisation's, or null for the whole tenant.")
    suppressed_below: int = Field(MINIMUM_COUNT, description="Counts below this are withheld (null).")
    needs_by_category: dict[str, NeedCounts]
    needs_by_district: list[DistrictNeeds] = Field(description="By district name; needs without one last.")
    volunteers: VolunteerCounts


def _counts(tally: NeedTally) -> dict[str, int | None]:
    return {
        "open": disclosed(tally.open),
        "staffed": disclosed(tally.staffed),
        "unstaffed": disclosed(tally.unstaffed),
    }


def published(raw: RawStatistics) -> Statistics:
    """The figures as they may leave the registry: every count below five withheld."""
    districts = sorted(raw.needs_by_district.items(), key=lambda item: (item[0] is None, item[0] or ""))
    return Statistics(
        tenant=raw.tenant,
        organisation_id=raw.organisation_id,
        needs_by_category={
            category: NeedCounts(**_counts(tally)) for category, tally in sorted(raw.needs_by_category.items())
        },
        needs_by_district=[DistrictNeeds(district=district, **_counts(tally)) for district, tally in districts],
        volunteers=VolunteerCounts(
            active=disclosed(raw.active),
            engaged=disclosed(raw.engaged),
            withdrawn=disclosed(raw.withdrawn),
            erased=disclosed(raw.erased) if raw.erased is not None else None,
        ),
    )


def whose(principal: Principal, organisation_id: str | None) -> str | None:
    """Coordinators see the tenant or, if they ask, one organisation; an initiative admin only
    their own organisation (asking for another is a 404, as for any resource they may not see)."""
    if principal.has(Role.COORDINATOR):
        return organisation_id
    allow(principal, Role.INITIATIVE_ADMIN)
    if organisation_id is not None and organisation_id != principal.organisation:
        raise Problem(404, "Not found", f"no organisation {organisation_id}")
    return principal.organisation


@router.get("/tenants/{tenant}/statistics", responses=NOT_FOUND)
async def statistics(
    registry: StoreDep,
    tenant: str,
    principal: Caller,
    organisation_id: Annotated[str | None, Query(max_length=64, description="One organisation's figures")] = None,
) -> Statistics:
    """Open, staffed and unstaffed needs by category and by district, and volunteer counts, every
    count below five withheld (coordinator: the tenant or one organisation; initiative admin:
    their organisation)."""
    member(principal, tenant)
    return published(await registry.statistics(tenant, whose(principal, organisation_id)))
