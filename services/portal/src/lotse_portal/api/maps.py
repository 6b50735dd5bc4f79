"""The map of the volunteer's municipality (an SVG the portal draws from the tenant's public
postcode table; see ``maps``), and what the profile form needs of it.

The drawing is cached per tenant for as long as its table is unchanged (the table itself is a
public registry answer, cached for a minute by ``Backends.public``); the chosen point is drawn on
a copy, from its pixel in the image's address, so that no point is kept anywhere but in the form.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from lotse_portal import domain, maps
from lotse_portal.api.access import Visit, VolunteerVisit, tenant, token
from lotse_portal.backends import BackendProblem, BackendUnavailable

router = APIRouter()
IMAGE_PATH = "/profile/map.svg"
# The image's address changes with the point; within a visit the browser may keep it.
IMAGE_CACHE = "private, max-age=300"


@dataclass(frozen=True)
class TenantMap:
    """One tenant's map: its postcode table, the frame around it and the drawing without a marker."""

    table: tuple[maps.PostcodePoint, ...]
    frame: maps.MapFrame
    svg: str

    @property
    def postcodes(self) -> frozenset[str]:
        return frozenset(row.postcode for row in self.table)

    def centroid(self, postcode: str) -> maps.Point | None:
        return next((maps.Point(row.lat, row.lon) for row in self.table if row.postcode == postcode), None)


async def postcode_table(current: Visit) -> list[maps.PostcodePoint]:
    """The tenant's public postcode table (empty if it has none, or the registry does not answer)."""
    try:
        path = f"/public/tenants/{tenant(current)}/postcodes"
        answer = await current.portal.backends.public(path, token(current))
    except (BackendProblem, BackendUnavailable):  # pages go on without it: postcodes stand without names
        return []
    return maps.read_table(answer)


async def tenant_map(current: Visit) -> TenantMap | None:
    """The tenant's map; None if its table has no postcode."""
    table = tuple(await postcode_table(current))
    if not table:
        return None
    drawn: dict[str, TenantMap] = _drawn(current.request)
    cached = drawn.get(tenant(current))
    if cached is None or cached.table != table:
        frame = maps.MapFrame.around(table)
        cached = drawn[tenant(current)] = TenantMap(table, frame, maps.render(frame, table))
    return cached


async def offered_map(current: Visit, facts: domain.TenantFacts) -> TenantMap | None:
    """The tenant's map where it offers one (``map_offered``)."""
    return await tenant_map(current) if facts.map_offered else None


def _drawn(request: Request) -> dict[str, TenantMap]:
    state = request.app.state
    if not hasattr(state, "tenant_maps"):
        state.tenant_maps = {}
    drawn: dict[str, TenantMap] = state.tenant_maps
    return drawn


@dataclass(frozen=True)
class HomeMapView:
    """The map on the profile form: the image (with the point marked), the point in words, the
    nudge step, and what the form will use."""

    image_url: str
    point: maps.Point | None
    words: maps.PointInWords | None
    step_km: float
    size: int = maps.MAP_SIZE


def home_map_view(found: TenantMap, point: maps.Point | None) -> HomeMapView:
    url = IMAGE_PATH
    words = None
    if point is not None:
        x, y = found.frame.to_pixel(point)
        url += "?" + urlencode({"x": round(x), "y": round(y)})
        words = maps.in_words(found.table, point)
    return HomeMapView(url, point, words, found.frame.step_km)


@router.get(IMAGE_PATH)
async def map_image(
    current: VolunteerVisit,
    x: Annotated[int | None, Query(ge=0, le=maps.MAP_SIZE)] = None,
    y: Annotated[int | None, Query(ge=0, le=maps.MAP_SIZE)] = None,
) -> Response:
    """The tenant's map as ``image/svg+xml``; with ``x`` and ``y`` (pixels) the chosen point marked."""
    found = await tenant_map(current)
    if found is None:
        return await current.page("error.html", status=404, problem="not_found")
    svg = found.svg if x is None or y is None else maps.with_marker(found.svg, found.frame, x, y)
    return await current.finish(Response(svg, media_type="image/svg+xml", headers={"Cache-Control": IMAGE_CACHE}))
