"""The statistics of the municipality (coordinators) or of one's organisation (initiative admins):
charts with their tables, and each table as CSV. The registry and matching withhold every count
below five themselves; the page only shows what they publish."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from lotse_portal import statistics
from lotse_portal.api.access import OfficeVisit, tenant, token
from lotse_portal.backends import Service
from lotse_runtime.small_counts import MINIMUM_COUNT

router = APIRouter()


@router.get("/console/statistics")
async def page(current: OfficeVisit) -> Response:
    registry, matching = await _figures(current)
    return await current.page(
        "console_statistics.html",
        charts=statistics.charts(registry, matching),
        organisation_only=registry.get("organisation_id") is not None,
        minimum=MINIMUM_COUNT,
    )


@router.get("/console/statistics/{slug}.csv")
async def download(current: OfficeVisit, slug: str) -> Response:
    registry, matching = await _figures(current)
    chart = next((chart for chart in statistics.charts(registry, matching) if chart.slug == slug), None)
    if chart is None:
        return await current.page("error.html", status=404, problem="not_found")
    return await current.finish(
        Response(
            statistics.csv_of(chart, current.gettext),
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="lotse-{chart.slug}.csv"',
                "Cache-Control": "no-store",
            },
        )
    )


async def _figures(current: OfficeVisit) -> tuple[dict[str, Any], dict[str, Any]]:
    """The registry's and matching's figures; both answer an initiative admin for their organisation."""
    backends, bearer = current.portal.backends, token(current)
    registry: dict[str, Any] = await backends.get(Service.REGISTRY, f"/tenants/{tenant(current)}/statistics", bearer)
    matching: dict[str, Any] = await backends.get(Service.MATCHING, f"/tenants/{tenant(current)}/statistics", bearer)
    return registry, matching
