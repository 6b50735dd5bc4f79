"""A volunteer's Lotse profile: created after the account at the provider, with consent, and
changed later on the same form (``/profile``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from lotse_portal import domain, maps
from lotse_portal.api.access import Visit, VolunteerVisit, tenant, token
from lotse_portal.api.maps import TenantMap, home_map_view, offered_map
from lotse_portal.api.start import volunteer_profile
from lotse_portal.backends import BackendProblem, Service
from lotse_portal.domain import LANGUAGES
from lotse_runtime.i18n import N_

router = APIRouter()
NEW, EDIT = "/profile/new", "/profile"


@dataclass(frozen=True)
class Initiative:
    """An organisation a volunteer may help through (id and name, nothing else)."""

    organisation_id: str
    name: str


@router.get(NEW)
async def new_profile(current: VolunteerVisit) -> Response:
    if await volunteer_profile(current) is not None:
        return await current.redirect("/home")
    facts = await tenant_facts(current)
    found = await offered_map(current, facts)
    assert current.user is not None
    values = {"display_name": current.user.name, "preferred_language": current.language}
    home_map = home_map_view(found, None) if found is not None else None
    return await _form(current, NEW, facts, values, {}, {}, home_map, await initiatives(current))


@router.post(NEW)
async def create_profile(current: VolunteerVisit) -> Response:
    form = await current.form()
    switched = _switch_language(current, form)
    facts = await tenant_facts(current)
    found = await offered_map(current, facts)
    offered = await initiatives(current)
    chosen = _chosen(form)
    if switched or (found is not None and maps.read_action(form) is not None):
        return await _form_again(current, NEW, form, facts, found, chosen, offered)
    result = domain.read_volunteer_form(
        form,
        skills=facts.skill_slugs,
        consent_version=facts.consent_version,
        frame=found.frame if found is not None else None,
        postcodes=found.postcodes if found is not None else (),
        organisations=[item.organisation_id for item in offered],
    )
    if result.valid:
        try:
            await current.portal.backends.post(
                Service.REGISTRY, f"/tenants/{tenant(current)}/volunteers", token(current), result.body
            )
        except BackendProblem as problem:
            if problem.status == 409:  # registered already (a second tab, a double click)
                return await current.redirect("/home")
            _refused(problem, result.errors)
        else:
            current.update(language=result.body["contact"]["preferred_language"])
            return await current.redirect("/home", flash=N_("Willkommen bei Lotse! Ihr Profil ist angelegt."))
    return await _form_refused(current, NEW, form, facts, found, chosen, result.errors, offered)


@router.get(EDIT)
async def edit_profile(current: VolunteerVisit) -> Response:
    record = await volunteer_profile(current)
    if record is None:
        return await current.redirect(NEW)
    if record.get("status") != "active":  # withdrawn: the registry changes nothing any more
        return await current.redirect("/home")
    facts = await tenant_facts(current)
    found = await offered_map(current, facts)
    values, chosen = domain.volunteer_form_values(record)
    point = _kept_point(domain.FormData(values.items()), found) if found is not None else None
    centre = found.centroid(values["postcode"]) if found is not None else None
    if point is not None and centre is not None and maps.distance_km(point, centre) < 0.001:
        # The registry placed a postcode alone at its centre: no point of the volunteer's own, so
        # a new postcode moves them (a kept point would win over it).
        point = None
        values.update(home_lat="", home_lon="")
    home_map = home_map_view(found, point) if found is not None else None
    return await _form(current, EDIT, facts, values, chosen, {}, home_map, await initiatives(current), record)


@router.post(EDIT)
async def save_profile(current: VolunteerVisit) -> Response:
    form = await current.form()
    switched = _switch_language(current, form)
    record = await volunteer_profile(current)
    if record is None:
        return await current.redirect(NEW)
    if record.get("status") != "active":
        return await current.redirect("/home")
    facts = await tenant_facts(current)
    found = await offered_map(current, facts)
    offered = await initiatives(current)
    chosen = _chosen(form)
    if switched or (found is not None and maps.read_action(form) is not None):
        return await _form_again(current, EDIT, form, facts, found, chosen, offered, record)
    # The initiative is chosen at sign-up; here it is shown, not changed (the registry keeps it).
    result = domain.read_volunteer_form(
        form,
        skills=facts.skill_slugs,
        consent_version=None,
        frame=found.frame if found is not None else None,
        postcodes=found.postcodes if found is not None else (),
        organisations=[str(record.get("organisation_id") or "")],
    )
    if result.valid:
        assert current.user is not None
        base = f"/tenants/{tenant(current)}/volunteers/{current.user.volunteer_id}"
        backends, bearer = current.portal.backends, token(current)
        try:
            await backends.put(Service.REGISTRY, f"{base}/profile", bearer, domain.profile_update(result.body, record))
            await backends.put(Service.REGISTRY, f"{base}/availability", bearer, result.body["availability"])
        except BackendProblem as problem:
            _refused(problem, result.errors)
        else:
            current.update(language=result.body["contact"]["preferred_language"])
            return await current.redirect("/home", flash=N_("Ihr Profil ist gespeichert."))
    return await _form_refused(current, EDIT, form, facts, found, chosen, result.errors, offered, record)


def _switch_language(current: Visit, form: domain.FormData) -> bool:
    """A language button inside the form: the same form again in that language, nothing saved,
    nothing typed lost (the links in the footer would fetch an empty form)."""
    chosen = form.get("lang", "")
    if chosen not in LANGUAGES:
        return False
    current.chosen_language = chosen
    current.update(language=chosen)
    current.language = chosen
    return True


def _chosen(form: domain.FormData) -> dict[str, list[str]]:
    return {name: form.all(name) for name in ("skills", "slot", "channels", "consent")}


async def _form_again(
    current: Visit,
    action: str,
    form: domain.FormData,
    facts: domain.TenantFacts,
    found: TenantMap | None,
    chosen: dict[str, list[str]],
    offered: list[Initiative],
    record: dict[str, Any] | None = None,
) -> Response:
    """The form again as sent, with the point moved by a click on the map or a button under it."""
    values = {**dict(form)}
    point = None
    if found is not None:
        point = _kept_point(form, found)
        action_taken = maps.read_action(form)
        if action_taken is not None:
            point = maps.act(found.frame, action_taken, point, found.centroid(form.get("postcode", "")))
        values.update(home_lat=str(point.lat) if point else "", home_lon=str(point.lon) if point else "")
    home_map = home_map_view(found, point) if found is not None else None
    return await _form(current, action, facts, values, chosen, {}, home_map, offered, record)


async def _form_refused(
    current: Visit,
    action: str,
    form: domain.FormData,
    facts: domain.TenantFacts,
    found: TenantMap | None,
    chosen: dict[str, list[str]],
    errors: dict[str, str],
    offered: list[Initiative],
    record: dict[str, Any] | None = None,
) -> Response:
    point = _kept_point(form, found) if found is not None and "home_point" not in errors else None
    home_map = home_map_view(found, point) if found is not None else None
    return await _form(current, action, facts, dict(form), chosen, errors, home_map, offered, record, status=422)


async def _form(
    current: Visit,
    action: str,
    facts: domain.TenantFacts,
    values: dict[str, str],
    chosen: dict[str, list[str]],
    errors: dict[str, str],
    home_map: Any,
    offered: list[Initiative],
    record: dict[str, Any] | None = None,
    *,
    status: int = 200,
) -> Response:
    own = str(record.get("organisation_id") or "") if record is not None else ""
    return await current.page(
        "profile_new.html",
        status=status,
        action=action,
        editing=action == EDIT,
        facts=facts,
        values=values,
        chosen=chosen,
        errors=errors,
        home_map=home_map,
        initiatives=offered,
        own_initiative=next((item for item in offered if item.organisation_id == own), None),
        **choices(),
    )


def _refused(problem: BackendProblem, errors: dict[str, str]) -> None:
    """The registry's refusal, as messages next to the fields it names."""
    if problem.status != 422:
        raise problem
    for path, _ in problem.fields.items() or [("form", "")]:
        errors[domain.registry_field(path)] = _registry_message(path)


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


async def initiatives(current: Visit) -> list[Initiative]:
    """The tenant's organisations a volunteer can help through (the registry lists them to any
    member of the tenant); the coordination office itself is the choice of none."""
    found = await current.portal.backends.get(
        Service.REGISTRY, f"/tenants/{tenant(current)}/organisations", token(current), limit=100
    )
    return [
        Initiative(str(item["organisation_id"]), str(item.get("name") or ""))
        for item in found.get("items") or []
        if item.get("kind") != "coordination_office"
    ]


async def tenant_facts(current: Visit) -> domain.TenantFacts:
    found = await current.portal.backends.public(f"/public/tenants/{tenant(current)}")
    return domain.TenantFacts.from_json(found, current.language)
