"""A volunteer's Lotse profile: created after the account at the provider, with consent."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from lotse_portal import domain, maps
from lotse_portal.api.access import Visit, VolunteerVisit, tenant, token
from lotse_portal.api.maps import TenantMap, home_map_view, offered_map
from lotse_portal.api.start import volunteer_profile
from lotse_portal.backends import BackendProblem, Service
from lotse_runtime.i18n import N_

router = APIRouter()


@router.get("/profile/new")
async def new_profile(current: VolunteerVisit) -> Response:
    if await volunteer_profile(current) is not None:
        return await current.redirect("/home")
    facts = await tenant_facts(current)
    found = await offered_map(current, facts)
    assert current.user is not None
    values = {"display_name": current.user.name, "preferred_language": current.language}
    home_map = home_map_view(found, None) if found is not None else None
    return await current.page(
        "profile_new.html", facts=facts, values=values, chosen={}, errors={}, home_map=home_map, **choices()
    )


@router.post("/profile/new")
async def create_profile(current: VolunteerVisit) -> Response:
    form = await current.form()
    facts = await tenant_facts(current)
    found = await offered_map(current, facts)
    chosen = {"skills": form.all("skills"), "slot": form.all("slot"), "channels": form.all("channels")}
    chosen["consent"] = form.all("consent")
    action = maps.read_action(form) if found is not None else None
    if found is not None and action is not None:
        # A click on the map or a button under it: the form again, with the point moved, nothing saved.
        point = maps.act(found.frame, action, _kept_point(form, found), found.centroid(form.get("postcode", "")))
        values = {**dict(form), "home_lat": "", "home_lon": ""}
        if point is not None:
            values.update(home_lat=str(point.lat), home_lon=str(point.lon))
        return await current.page(
            "profile_new.html",
            facts=facts,
            values=values,
            chosen=chosen,
            errors={},
            home_map=home_map_view(found, point),
            **choices(),
        )
    result = domain.read_volunteer_form(
        form,
        skills=facts.skill_slugs,
        consent_version=facts.consent_version,
        frame=found.frame if found is not None else None,
        postcodes=found.postcodes if found is not None else (),
    )
    if result.valid:
        try:
            await current.portal.backends.post(
                Service.REGISTRY, f"/tenants/{tenant(current)}/volunteers", token(current), result.body
            )
        except BackendProblem as problem:
            if problem.status == 409:  # registered already (a second tab, a double click)
                return await current.redirect("/home")
            if problem.status != 422:
                raise
            for path, _ in problem.fields.items() or [("form", "")]:
                result.errors[domain.registry_field(path)] = _registry_message(path)
        else:
            current.update(language=result.body["contact"]["preferred_language"])
            return await current.redirect("/home", flash=N_("Willkommen bei Lotse! Ihr Profil ist angelegt."))
    point = _kept_point(form, found) if found is not None and "home_point" not in result.errors else None
    return await current.page(
        "profile_new.html",
        status=422,
        facts=facts,
        values=dict(form),
        chosen=chosen,
        errors=result.errors,
        home_map=home_map_view(found, point) if found is not None else None,
        **choices(),
    )


def _kept_point(form: domain.FormData, found: TenantMap) -> maps.Point | None:
    """The point chosen so far (kept in the form's hidden fields); a broken one counts as none."""
    try:
        return maps.read_point(form, found.frame)
    except ValueError:
        return None


def _registry_message(path: str) -> str:
    if path.startswith("home_area.point"):
        return N_("Dieser Punkt liegt nicht auf der Karte. Bitte wählen Sie ihn neu.")
    if path.startswith("home_area"):
        return domain.UNKNOWN_POSTCODE
    return N_("Bitte prüfen Sie diese Angabe.")


def choices() -> dict[str, Any]:
    return {
        "spoken_languages": domain.SPOKEN_LANGUAGES,
        "levels": domain.LEVELS,
        "weekdays": domain.WEEKDAYS,
        "day_parts": domain.DAY_PARTS,
        "channels": domain.PERSON_CHANNELS,
        "nudges": maps.NUDGE_LABELS,
    }


async def tenant_facts(current: Visit) -> domain.TenantFacts:
    found = await current.portal.backends.public(f"/public/tenants/{tenant(current)}")
    return domain.TenantFacts.from_json(found, current.language)
