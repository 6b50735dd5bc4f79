"""The start page (which municipality, sign in or sign up), the home page and in-app messages."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from lotse_portal import domain, places
from lotse_portal.api.access import Anyone, SignedIn, VolunteerVisit, tenant, token
from lotse_portal.api.maps import postcode_table
from lotse_portal.api.proposals import WAITING
from lotse_portal.backends import BackendProblem, BackendUnavailable, Service
from lotse_portal.domain import LANGUAGES
from lotse_runtime.auth import Role

router = APIRouter()
MESSAGE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9:_-]{0,199}")


@router.get("/")
async def start(current: Anyone) -> Response:
    if current.user is not None:
        return await current.redirect("/home")
    try:
        tenants: list[dict[str, Any]] = (await current.portal.backends.public("/public/tenants"))["items"]
    except (BackendProblem, BackendUnavailable, KeyError, TypeError):
        tenants = []
    return await current.page("start.html", tenants=tenants)


@router.get("/home")
async def home(current: SignedIn) -> Response:
    backends = current.portal.backends
    if current.has(Role.VOLUNTEER):
        profile = await volunteer_profile(current)
        if profile is None:
            return await current.redirect("/profile/new")
        preferred = (profile.get("contact") or {}).get("preferred_language")
        if current.session is not None and current.session.language is None and preferred in LANGUAGES:
            # Until they pick one on a page, volunteers read Lotse in the language they chose for it.
            current.update(language=preferred)
            current.language = preferred
        proposals = await backends.get(Service.MATCHING, "/volunteers/me/proposals", token(current))
        messages = await backends.get(Service.NOTIFICATIONS, "/me/messages", token(current))
        waiting = [p for p in proposals if p["status"] == WAITING]
        engaged = [p for p in proposals if p["status"] == "accepted"]
        unread = [m for m in messages if not m.get("read")]
        home_area: dict[str, Any] = profile.get("home_area") or {}
        # The place matching measures from, in words: nothing about it is left for the person to guess.
        where = places.describe(
            home_area.get("point"), home_area.get("postcode"), await postcode_table(current), by_nearest=True
        )
        return await current.page(
            "home.html",
            profile=profile,
            waiting=waiting,
            engaged=engaged,
            unread=len(unread),
            where=where,
            office=domain.OwnOffice.from_profile(profile, current.language),
        )
    if current.has(Role.COORDINATOR, Role.INITIATIVE_ADMIN):
        return await current.redirect("/console")
    if current.has(Role.DATA_PROTECTION_OFFICER):
        return await current.redirect("/console/audit")
    return await current.page("home_other.html")


@router.get("/messages")
async def messages(current: VolunteerVisit) -> Response:
    found = await current.portal.backends.get(Service.NOTIFICATIONS, "/me/messages", token(current))
    return await current.page("messages.html", messages=found)


@router.post("/messages/{message_id}/read")
async def mark_read(current: VolunteerVisit, message_id: str) -> Response:
    await current.form()
    # One plain path segment (no dot segments, no separators): nothing reaches another route.
    if not MESSAGE_ID.fullmatch(message_id):
        return await current.page("error.html", status=404, problem="not_found")
    path = f"/me/messages/{message_id}/read"
    await current.portal.backends.post(Service.NOTIFICATIONS, path, token(current))
    return await current.redirect("/messages")


async def volunteer_profile(current: SignedIn) -> dict[str, Any] | None:
    assert current.user is not None
    try:
        profile: dict[str, Any] = await current.portal.backends.get(
            Service.REGISTRY, f"/tenants/{tenant(current)}/volunteers/{current.user.volunteer_id}", token(current)
        )
    except BackendProblem as problem:
        if problem.status == 404:
            return None
        raise
    return profile


@router.get("/deleted")
async def deleted(current: Anyone) -> Response:
    return await current.page("deleted.html")
