"""The volunteer's engagements, and stepping back from one (the office is told)."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter
from fastapi.responses import Response

from lotse_portal.api.access import VolunteerVisit, token
from lotse_portal.backends import BackendProblem, Service
from lotse_runtime.i18n import N_

router = APIRouter()


@router.get("/engagements")
async def engagements(current: VolunteerVisit) -> Response:
    found = await current.portal.backends.get(Service.MATCHING, "/volunteers/me/proposals", token(current))
    engaged = [p for p in found if p["status"] == "accepted"]
    return await current.page("engagements.html", engagements=engaged)


@router.post("/engagements/{need_id}/step-back")
async def step_back(current: VolunteerVisit, need_id: UUID) -> Response:
    form = await current.form()
    if form.get("confirm") != "yes":
        return await current.redirect("/engagements", flash=N_("Bitte bestätigen Sie, dass Sie zurücktreten möchten."))
    try:
        await current.portal.backends.post(
            Service.MATCHING, f"/volunteers/me/engagements/{need_id}/step-back", token(current)
        )
    except BackendProblem as problem:
        if problem.status not in (404, 409):
            raise
        return await current.redirect("/engagements", flash=N_("Das ging leider nicht."))
    return await current.redirect(
        "/engagements", flash=N_("Sie sind zurückgetreten. Die Koordination weiß Bescheid und sucht Ersatz.")
    )
