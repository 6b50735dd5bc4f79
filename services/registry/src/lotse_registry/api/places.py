"""Places: a tenant's postcode table (loaded whole by a coordinator or platform admin, read by its
members) and the address search through the configured geocoder (see ``places``)."""

from __future__ import annotations

from typing import Annotated

import structlog
from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from lotse_contracts.events.values import GeoPoint
from lotse_registry.api.access import NOT_FOUND, Caller, StoreDep, allow, manages_tenant, member, not_found
from lotse_registry.places import Candidate, Geocoder, GeocoderUnavailable, PostcodePlace
from lotse_registry.store import TENANTS
from lotse_runtime.auth import Role
from lotse_runtime.http_guards import PublicRateLimit, RateLimited
from lotse_runtime.problems import Problem, problem_responses

router = APIRouter(tags=["places"])
log = structlog.get_logger("lotse.registry.places")

# A municipality has tens to a few hundred postcodes; the bound keeps a whole table within the
# request body limit (LOTSE_MAX_BODY_BYTES, 64 KiB by default).
MAX_POSTCODES = 500


class PostcodeTable(BaseModel):
    """A tenant's whole postcode table; it replaces the one loaded before."""

    model_config = ConfigDict(extra="forbid")

    postcodes: list[PostcodePlace] = Field(min_length=1, max_length=MAX_POSTCODES)


class PostcodesLoaded(BaseModel):
    tenant: str
    postcodes: int = Field(description="How many postcodes the table now holds.")


class PostcodeView(BaseModel):
    postcode: str
    point: GeoPoint = Field(description="The postcode's centroid.")
    district: str


class Candidates(BaseModel):
    items: list[Candidate]


@router.put("/tenants/{tenant}/postcodes", responses=problem_responses(404, 413))
async def load_postcodes(registry: StoreDep, tenant: str, body: PostcodeTable, principal: Caller) -> PostcodesLoaded:
    """Replace the tenant's postcode table (coordinator or platform admin): all rows or none.
    A bad row is refused naming it, e.g. ``postcodes[3].lat``."""
    manages_tenant(principal, tenant)
    if await registry.read(tenant).get(TENANTS, tenant) is None:
        raise not_found("tenant", tenant)
    first_row: dict[str, int] = {}
    errors = []
    for row, place in enumerate(body.postcodes):
        if place.postcode in first_row:
            message = f"{place.postcode} is already in postcodes[{first_row[place.postcode]}]"
            errors.append({"field": f"postcodes[{row}].postcode", "message": message})
        first_row.setdefault(place.postcode, row)
    if errors:
        detail = "; ".join(f"{error['field']}: {error['message']}" for error in errors)
        raise Problem(422, "Invalid request", detail, errors=errors)
    return PostcodesLoaded(tenant=tenant, postcodes=await registry.replace_postcodes(tenant, body.postcodes))


PostcodeParam = Annotated[str, Path(pattern=r"^[0-9]{5}$", description="German postcode (PLZ).")]


@router.get("/tenants/{tenant}/postcodes/{postcode}", responses=NOT_FOUND)
async def get_postcode(registry: StoreDep, tenant: str, postcode: PostcodeParam, principal: Caller) -> PostcodeView:
    """Where a postcode of the tenant is: its centroid and district (members of the tenant)."""
    member(principal, tenant)
    place = await registry.postcode(tenant, postcode)
    if place is None:
        raise not_found("postcode", postcode)
    return PostcodeView(postcode=place.postcode, point=place.point, district=place.district)


@router.get("/tenants/{tenant}/places", responses=problem_responses(403, 404, 429, 502))
async def search_places(
    request: Request,
    tenant: str,
    principal: Caller,
    q: Annotated[str, Query(min_length=3, max_length=200, description="A street address")],
) -> Candidates:
    """Candidate points for an address, from the installation's geocoder, for those who report
    needs (coordinators and initiative admins of the tenant), each at most
    ``LOTSE_GEOCODER_RATE_LIMIT`` times (429 with Retry-After beyond); 404 where no geocoder is
    configured (the postcode table is the main path). The geocoder is outside the platform and
    receives the address: the search is no proxy for anyone else."""
    member(principal, tenant)
    allow(principal, Role.COORDINATOR, Role.INITIATIVE_ADMIN)
    geocoder: Geocoder | None = request.app.state.geocoder
    if geocoder is None:
        raise Problem(404, "Not offered", "this installation offers no address search; give a postcode")
    limit: PublicRateLimit = request.app.state.geocoder_rate_limit
    retry_after = await limit.retry_after(request)  # per caller (the token's subject)
    if retry_after is not None:
        raise RateLimited(retry_after)
    try:
        return Candidates(items=await geocoder.search(q))
    except GeocoderUnavailable as error:
        # The reason only: the query is an address someone typed.
        log.warning("geocoder unavailable", tenant=tenant, reason=str(error))
        raise Problem(502, "Geocoder unavailable", "the address search did not answer; try again") from error
