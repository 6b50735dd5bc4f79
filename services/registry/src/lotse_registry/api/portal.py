"""What the portal needs of a tenant: the public facts for its landing and sign-up pages and the
postcode table for its map (no token, rate-limited per client like every public endpoint) and the
tenant's portal settings (coordinator or platform admin). See ``portal`` for what is shown and why
nothing private is."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from lotse_registry.api.access import NOT_FOUND, Caller, StoreDep, manages_tenant, not_found
from lotse_registry.api.places import PostcodeView
from lotse_registry.portal import PortalSettings, PublicTenant, PublicTenantDetails, public_details, public_tenant
from lotse_registry.store import TENANTS
from lotse_runtime.http_guards import public_rate_limit
from lotse_runtime.problems import Problem, problem_responses

router = APIRouter(tags=["portal"])
public = APIRouter(tags=["portal"], dependencies=[Depends(public_rate_limit)], responses=problem_responses(429))


class PublicTenants(BaseModel):
    items: list[PublicTenant]


class PublicPostcodes(BaseModel):
    items: list[PostcodeView] = Field(description="The tenant's postcode table, by postcode; empty if it has none.")


@router.put("/tenants/{tenant}/portal", responses=NOT_FOUND)
async def set_portal_settings(
    registry: StoreDep, tenant: str, body: PortalSettings, principal: Caller
) -> PortalSettings:
    """The tenant's consent text, labels of its own skills and whether to offer a map (coordinator
    or platform admin). Replaces the settings given before."""
    manages_tenant(principal, tenant)
    document = await registry.read(tenant).get(TENANTS, tenant)
    if document is None:
        raise not_found("tenant", tenant)
    problems = body.problems(document)
    if problems:
        errors = [{"field": field, "message": message} for field, message in problems]
        raise Problem(422, "Invalid request", "; ".join(f"{f}: {m}" for f, m in problems), errors=errors)
    if not await registry.set_portal_settings(tenant, body):
        raise not_found("tenant", tenant)
    return body


@public.get("/public/tenants")
async def list_public_tenants(registry: StoreDep) -> PublicTenants:
    """Every municipality on this installation, by name: slug, name and languages (no token). One
    list, not pages: an installation has tens to hundreds of municipalities."""
    return PublicTenants(items=[public_tenant(document) for document in await registry.public_tenants()])


@public.get("/public/tenants/{tenant}", responses=NOT_FOUND)
async def get_public_tenant(request: Request, registry: StoreDep, tenant: str) -> PublicTenantDetails:
    """A municipality for the portal's sign-up: its languages, the consent text to agree to (with
    the version to send), the skill catalogue with labels, and whether a map and an address search
    are offered (no token)."""
    document = await registry.read(tenant).get(TENANTS, tenant)
    if document is None:
        raise not_found("tenant", tenant)
    return public_details(
        document,
        has_postcodes=await registry.has_postcodes(tenant),
        address_search=request.app.state.geocoder is not None,
    )


@public.get("/public/tenants/{tenant}/postcodes", responses=NOT_FOUND)
async def get_public_postcodes(registry: StoreDep, tenant: str) -> PublicPostcodes:
    """The municipality's postcode table: each postcode's centroid and district (no token). Public
    like the facts (postcodes and districts of a town are no secret); the portal draws its map
    from it and names the postcode nearest to a chosen point."""
    if await registry.read(tenant).get(TENANTS, tenant) is None:
        raise not_found("tenant", tenant)
    places = await registry.postcodes(tenant)
    return PublicPostcodes(
        items=[PostcodeView(postcode=place.postcode, point=place.point, district=place.district) for place in places]
    )
