"""The coordination office's console: its start page, for coordinators (the whole municipality)
and initiative admins (their organisation), with the dashboard of open needs (``office_needs``).
The console's other pages are ``guidance`` (coordinators), ``statistics`` and a need's page."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from lotse_portal.api import office_needs
from lotse_portal.api.access import OfficeVisit

router = APIRouter()


@router.get("/console")
async def console(current: OfficeVisit) -> Response:
    return await current.page("console.html", **await office_needs.dashboard(current))
