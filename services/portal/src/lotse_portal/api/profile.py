"""A volunteer's Lotse profile: created after the account at the provider, with consent."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from lotse_portal import domain
from lotse_portal.api.access import Visit, VolunteerVisit, tenant, token
from lotse_portal.api.start import volunteer_profile
from lotse_portal.backends import BackendProblem, Service
from lotse_runtime.i18n import N_

router = APIRouter()


@router.get("/profile/new")
async def new_profile(current: VolunteerVisit) -> Response:
    if await volunteer_profile(current) is not None:
        return await current.redirect("/home")
    facts = await tenant_facts(current)
    assert current.user is not None
    values = {"display_name": current.user.name, "preferred_language": current.language}
    return await current.page("profile_new.html", facts=facts, values=values, chosen={}, errors={}, **choices())


@router.post("/profile/new")
async def create_profile(current: VolunteerVisit) -> Response:
    form = await current.form()
    facts = await tenant_facts(current)
    result = domain.read_volunteer_form(form, skills=facts.skill_slugs, consent_version=facts.consent_version)
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
    chosen = {"skills": form.all("skills"), "slot": form.all("slot"), "channels": form.all("channels")}
    chosen["consent"] = form.all("consent")
    return await current.page(
        "profile_new.html", status=422, facts=facts, values=dict(form), chosen=chosen, errors=result.errors, **choices()
    )


def _registry_message(path: str) -> str:
    if path.startswith("home_area"):
        return N_("Diese Postleitzahl kennen wir in Ihrer Kommune nicht. Bitte prüfen Sie sie.")
    return N_("Bitte prüfen Sie diese Angabe.")


def choices() -> dict[str, Any]:
    return {
        "spoken_languages": domain.SPOKEN_LANGUAGES,
        "levels": domain.LEVELS,
        "weekdays": domain.WEEKDAYS,
        "day_parts": domain.DAY_PARTS,
        "channels": domain.PERSON_CHANNELS,
    }


async def tenant_facts(current: Visit) -> domain.TenantFacts:
    found = await current.portal.backends.public(f"/public/tenants/{tenant(current)}")
    return domain.TenantFacts.from_json(found, current.language)
