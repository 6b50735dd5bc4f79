"""The coordination office's console: its start page, for coordinators (the whole municipality)
and initiative admins (their organisation). The console's pages are ``guidance`` (coordinators)
and ``statistics``; the dashboard of open needs follows when the services serve its data."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from lotse_portal.api.access import OfficeVisit

router = APIRouter()


@router.get("/console")
async def console(current: OfficeVisit) -> Response:
    return await current.page("console.html")
