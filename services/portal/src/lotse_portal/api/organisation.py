"""An initiative admin's organisation: its details, its volunteers, its needs, and a new need."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter
from fastapi.responses import Response

from lotse_portal import domain, maps, places
from lotse_portal.api.access import InitiativeVisit, Visit, tenant, token
from lotse_portal.api.maps import postcode_table
from lotse_portal.api.profile import tenant_facts
from lotse_portal.backends import BackendProblem, BackendUnavailable, Service
from lotse_runtime.i18n import N_

router = APIRouter()
# The registry's largest page (LOTSE_PAGE_SIZE_MAX): an initiative has a few dozen volunteers.
MAX_VOLUNTEERS = 200


@router.get("/organisation")
async def organisation(current: InitiativeVisit, reported: UUID | None = None) -> Response:
    """The initiative's page; ``reported``: the need just reported, whose place is confirmed in words."""
    backends, bearer, base = current.portal.backends, token(current), f"/tenants/{tenant(current)}"
    assert current.user is not None
    org = await backends.get(Service.REGISTRY, f"{base}/organisations/{current.user.organisation}", bearer)
    # with_contact: the e-mail and phone of the initiative's own volunteers, which the registry's
    # lists leave out for everyone else.
    volunteers = await backends.get(
        Service.REGISTRY, f"{base}/volunteers", bearer, with_contact="true", limit=MAX_VOLUNTEERS
    )
    needs = await backends.get(Service.REGISTRY, f"{base}/needs", bearer, organisation_id=current.user.organisation)
    table = await postcode_table(current)
    items = [{**need, "where": _where(need, table)} for need in needs.get("items", [])]
    just_reported = None
    if reported is not None:
        try:
            found = await backends.get(Service.REGISTRY, f"{base}/needs/{reported}", bearer)
        except BackendProblem as problem:
            if problem.status != 404:
                raise
        else:
            just_reported = {**found, "where": _where(found, table)}
    return await current.page(
        "organisation.html",
        organisation=org,
        volunteers=volunteers.get("items", []),
        more_volunteers=bool(volunteers.get("next_cursor")),
        needs=items,
        reported=just_reported,
    )


def _where(need: dict[str, Any], table: list[maps.PostcodePoint]) -> places.PlaceInWords | None:
    place: dict[str, Any] = need.get("place") or {}
    return places.describe(place.get("point"), place.get("postcode"), table, by_nearest=False)


@router.get("/organisation/edit")
async def edit_organisation(current: InitiativeVisit) -> Response:
    found = await _organisation(current)
    values = {**found, "districts": ", ".join(found.get("districts") or [])}
    return await current.page("organisation_edit.html", values=values, errors={})


@router.post("/organisation/edit")
async def save_organisation(current: InitiativeVisit) -> Response:
    form = await current.form()
    found = await _organisation(current)
    result = domain.read_organisation_form(form, str(found.get("kind") or "initiative"))
    if result.valid:
        assert current.user is not None
        path = f"/tenants/{tenant(current)}/organisations/{current.user.organisation}"
        try:
            await current.portal.backends.put(Service.REGISTRY, path, token(current), result.body)
        except BackendProblem as problem:
            if problem.status != 422:
                raise
            for path in problem.fields or {"form": ""}:
                field, message = domain.organisation_refusal(path)
                result.errors.setdefault(field, message)
        else:
            return await current.redirect("/organisation", flash=N_("Die Angaben der Initiative sind gespeichert."))
    return await current.page("organisation_edit.html", status=422, values=dict(form), errors=result.errors)


async def _organisation(current: InitiativeVisit) -> dict[str, Any]:
    assert current.user is not None
    path = f"/tenants/{tenant(current)}/organisations/{current.user.organisation}"
    found: dict[str, Any] = await current.portal.backends.get(Service.REGISTRY, path, token(current))
    return found


@router.get("/organisation/needs/new")
async def new_need(current: InitiativeVisit) -> Response:
    facts = await _facts(current)
    return await current.page(
        "need_new.html", facts=facts, values={}, chosen=[], errors={}, asked=places.PlaceDecision(), **need_choices()
    )


@router.post("/organisation/needs/new")
async def report_need(current: InitiativeVisit) -> Response:
    """Report a need. Its place: the point of the street address (the registry's address search,
    where there is one), a candidate the person picks when several fit, or, where no street is
    given or there is no address search, the postcode's centre; an address not found is said next
    to the field, with the postcode's centre offered for the person to choose."""
    form = await current.form()
    facts = await _facts(current)
    assert current.user is not None and current.user.organisation is not None
    need, errors = domain.read_need_form(
        form, organisation_id=current.user.organisation, skills=facts.skill_slugs, timezone=facts.timezone
    )
    values = dict(form)
    decision = places.PlaceDecision()
    if need is not None:
        decision = await decide_place(current, need, facts, values, errors)
        if decision.place is not None:
            base, bearer = f"/tenants/{tenant(current)}", token(current)
            body = {**need.body, "place": decision.place}
            try:
                created = await current.portal.backends.post(Service.REGISTRY, f"{base}/needs", bearer, body)
            except BackendProblem as problem:
                if problem.status != 422:
                    raise
                errors["form"] = N_("Bitte prüfen Sie diese Angabe.")
            else:
                reported = str(created.get("need_id") or "") if isinstance(created, dict) else ""
                return await current.redirect(
                    f"/organisation?reported={reported}" if reported else "/organisation",
                    flash=N_("Der Bedarf ist gemeldet. Lotse sucht jetzt passende Freiwillige."),
                )
    return await current.page(
        "need_new.html",
        status=422,
        facts=facts,
        values=values,
        chosen=form.all("skills"),
        errors=errors,
        asked=decision,
        **need_choices(),
    )


async def decide_place(
    current: Visit,
    need: domain.NeedForm,
    facts: domain.TenantFacts,
    values: dict[str, str],
    errors: dict[str, str],
    *,
    kept: dict[str, Any] | None = None,
) -> places.PlaceDecision:
    """The place of a need from its form (the initiative's and the office's): ``kept``, the place
    a need being edited has, stays when neither its postcode nor a street is given anew. An
    unknown postcode or an address not found lands in ``errors``; ``values`` asks anew."""
    if kept is not None and not need.street and kept.get("postcode") == need.postcode:
        return places.PlaceDecision(place=kept)
    base, bearer = f"/tenants/{tenant(current)}", token(current)
    try:
        found = await current.portal.backends.get(Service.REGISTRY, f"{base}/postcodes/{need.postcode}", bearer)
    except BackendProblem as problem:
        if problem.status != 404:
            raise
        errors["postcode"] = domain.UNKNOWN_POSTCODE
        return places.PlaceDecision()
    centre = maps.PostcodePoint.from_json(found)
    decision = places.place_without_search(
        street=need.street,
        choice=need.place_choice,
        searched=need.searched,
        centre=centre,
        address_search=facts.address_search,
    )
    if decision is None:
        decision = places.place_from_search(await _search(current, need.address), centre)
    if decision.error is not None:
        errors["street"] = decision.error
        values["searched"] = need.street
    values.pop("place_choice", None)  # asked anew: nothing is chosen for the person
    return decision


async def _search(current: Visit, address: str) -> list[places.AddressCandidate] | None:
    """The registry's address search (its geocoder); None when it does not answer."""
    path = f"/tenants/{tenant(current)}/places"
    try:
        answer = await current.portal.backends.get(Service.REGISTRY, path, token(current), q=address)
    except BackendUnavailable:  # the geocoder failed (502) or timed out
        return None
    except BackendProblem as problem:
        if problem.status in (404, 422):  # no geocoder any more; an address it will not take
            return None if problem.status == 404 else []
        raise
    return places.read_candidates(answer)


def need_choices() -> dict[str, Any]:
    """What the need form offers to choose from."""
    return {
        "categories": domain.NEED_CATEGORIES,
        "certificates": domain.CERTIFICATES,
        "spoken_languages": domain.SPOKEN_LANGUAGES,
        "levels": domain.LEVELS,
    }


async def _facts(current: InitiativeVisit) -> domain.TenantFacts:
    return await tenant_facts(current)
