"""Open needs that fit the volunteer, best first, with reasons; a volunteer may take one."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter
from fastapi.responses import Response

from lotse_portal.api.access import VolunteerVisit, token
from lotse_portal.api.proposals import answer
from lotse_portal.backends import Service
from lotse_runtime.i18n import N_

router = APIRouter()


@router.get("/needs")
async def open_needs(current: VolunteerVisit) -> Response:
    found = await current.portal.backends.get(Service.MATCHING, "/volunteers/me/open-needs", token(current))
    return await current.page("needs.html", needs=found)


@router.post("/needs/{need_id}/take")
async def take(current: VolunteerVisit, need_id: UUID) -> Response:
    await current.form()
    return await answer(current, f"/volunteers/me/open-needs/{need_id}/pick", None, N_("Danke! Der Einsatz ist Ihrer."))
