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
    return await _page(current, feed_url=current.take_feed_url())


async def _page(
    current: VolunteerVisit,
    *,
    feed_url: str | None = None,
    stepping_back: str | None = None,
    errors: dict[str, str] | None = None,
) -> Response:
    """The page; ``stepping_back``: the engagement whose form to show open again, with ``errors``."""
    backends, bearer = current.portal.backends, token(current)
    found = await backends.get(Service.MATCHING, "/volunteers/me/engagements", bearer)
    feed = await backends.get(Service.MATCHING, "/volunteers/me/calendar-feed", bearer)
    return await current.page(
        "engagements.html",
        status=422 if errors else 200,
        engagements=await _views(current, found),
        feed=feed,
        feed_url=feed_url,
        stepping_back=stepping_back,
        errors=errors or {},
    )


@router.post("/engagements/calendar-feed")
async def create_feed(current: VolunteerVisit) -> Response:
    """A new secret address (the old one stops working); shown on the next page once. A redirect,
    so that the page (and its language links) is a GET of /engagements, not of the form's address."""
    await current.form()
    created = await current.portal.backends.post(Service.MATCHING, "/volunteers/me/calendar-feed", token(current))
    current.update(feed_url=current.portal.settings.public_url.rstrip("/") + created["path"])
    return await current.redirect("/engagements#calendar-heading")


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
    """The feed for calendar applications (no sign-in: the address is the secret), from matching.
    Limited here per client address (``public_rate_limit``) and in matching per feed."""
    if not secret.replace("-", "").replace("_", "").isalnum() or len(secret) > 128:
        return Response("not found\n", status_code=404, media_type="text/plain")
    try:
        response = await current.portal.backends.http.get(
            current.portal.backends.base[Service.MATCHING] + f"/calendar-feeds/{secret}.ics"
        )
    except httpx.HTTPError:
        return Response("unavailable\n", status_code=503, media_type="text/plain", headers={"Retry-After": "60"})
    if response.status_code == 404:
        return Response("not found\n", status_code=404, media_type="text/plain")
    if response.status_code == 429:
        # This feed asked too often (matching counts per feed): the calendar app should wait, not
        # report the service as down.
        retry_after = response.headers.get("Retry-After", "60")
        return Response(
            "too many requests\n",
            status_code=429,
            media_type="text/plain",
            headers={"Retry-After": retry_after if retry_after.isdigit() else "60"},
        )
    if response.status_code != 200:
        return Response("unavailable\n", status_code=503, media_type="text/plain", headers={"Retry-After": "60"})
    return Response(response.content, media_type="text/calendar; charset=utf-8")


@router.post("/engagements/{need_id}/step-back")
async def step_back(current: VolunteerVisit, need_id: UUID) -> Response:
    form = await current.form()
    if form.get("confirm") != "yes":
        # The same page again, this engagement's form open, the message next to its checkbox.
        errors = {"confirm": N_("Bitte bestätigen Sie, dass Sie zurücktreten möchten.")}
        return await _page(current, stepping_back=str(need_id), errors=errors)
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
