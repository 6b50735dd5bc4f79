"""The volunteer's engagements, stepping back from one (the office is told), and the calendar
feed of them: a secret address, shown once when it is made, revocable."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import httpx
from fastapi import APIRouter, Depends
from fastapi.responses import Response

from lotse_portal import domain
from lotse_portal.api.access import Anyone, VolunteerVisit, token
from lotse_portal.api.profile import tenant_facts
from lotse_portal.backends import BackendProblem, Service
from lotse_runtime.http_guards import public_rate_limit
from lotse_runtime.i18n import N_

router = APIRouter()


@router.get("/engagements")
async def engagements(current: VolunteerVisit) -> Response:
    backends, bearer = current.portal.backends, token(current)
    found = await backends.get(Service.MATCHING, "/volunteers/me/engagements", bearer)
    feed = await backends.get(Service.MATCHING, "/volunteers/me/calendar-feed", bearer)
    return await current.page("engagements.html", engagements=await _views(current, found), feed=feed, feed_url=None)


@router.post("/engagements/calendar-feed")
async def create_feed(current: VolunteerVisit) -> Response:
    """A new secret address (the old one stops working); shown on this page once."""
    await current.form()
    backends, bearer = current.portal.backends, token(current)
    created = await backends.post(Service.MATCHING, "/volunteers/me/calendar-feed", bearer)
    found = await backends.get(Service.MATCHING, "/volunteers/me/engagements", bearer)
    feed_url = current.portal.settings.public_url.rstrip("/") + created["path"]
    views = await _views(current, found)
    return await current.page("engagements.html", engagements=views, feed={"exists": True}, feed_url=feed_url)


async def _views(current: VolunteerVisit, found: list[dict[str, Any]]) -> list[domain.EngagementView]:
    facts = await tenant_facts(current)
    return [domain.EngagementView.from_json(item, current.language, facts.timezone, current.gettext) for item in found]


@router.post("/engagements/calendar-feed/delete")
async def delete_feed(current: VolunteerVisit) -> Response:
    await current.form()
    try:
        await current.portal.backends.call(Service.MATCHING, "DELETE", "/volunteers/me/calendar-feed", token(current))
    except BackendProblem as problem:
        if problem.status != 404:
            raise
    return await current.redirect("/engagements", flash=N_("Die Kalender-Adresse gilt nicht mehr."))


@router.get("/calendar-feeds/{secret}.ics", dependencies=[Depends(public_rate_limit)])
async def calendar_feed(current: Anyone, secret: str) -> Response:
    """The feed for calendar applications (no sign-in: the address is the secret), from matching."""
    if not secret.replace("-", "").replace("_", "").isalnum() or len(secret) > 128:
        return Response("not found\n", status_code=404, media_type="text/plain")
    try:
        response = await current.portal.backends.http.get(
            current.portal.backends.base[Service.MATCHING] + f"/calendar-feeds/{secret}.ics"
        )
    except httpx.HTTPError:
        return Response("unavailable\n", status_code=503, media_type="text/plain", headers={"Retry-After": "60"})
    if response.status_code != 200:
        status = 404 if response.status_code == 404 else 503
        return Response(
            "not found\n" if status == 404 else "unavailable\n", status_code=status, media_type="text/plain"
        )
    return Response(response.content, media_type="text/calendar; charset=utf-8")


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
