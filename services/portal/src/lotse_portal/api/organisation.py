"""An initiative admin's organisation: its details, its volunteers, its needs, and a new need."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from lotse_portal import domain
from lotse_portal.api.access import InitiativeVisit, tenant, token
from lotse_portal.api.profile import tenant_facts
from lotse_portal.backends import BackendProblem, Service
from lotse_runtime.i18n import N_

router = APIRouter()


@router.get("/organisation")
async def organisation(current: InitiativeVisit) -> Response:
    backends, bearer, base = current.portal.backends, token(current), f"/tenants/{tenant(current)}"
    assert current.user is not None
    org = await backends.get(Service.REGISTRY, f"{base}/organisations/{current.user.organisation}", bearer)
    volunteers = await backends.get(
        Service.REGISTRY, f"{base}/volunteers", bearer, organisation_id=current.user.organisation
    )
    needs = await backends.get(Service.REGISTRY, f"{base}/needs", bearer, organisation_id=current.user.organisation)
    return await current.page(
        "organisation.html",
        organisation=org,
        volunteers=volunteers.get("items", []),
        needs=needs.get("items", []),
    )


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
            for field in problem.fields or {"form": ""}:
                result.errors[field if field in ("name", "contact_email", "districts") else "form"] = N_(
                    "Bitte prüfen Sie diese Angabe."
                )
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
    return await current.page("need_new.html", facts=facts, values={}, chosen=[], errors={}, **_choices())


@router.post("/organisation/needs/new")
async def report_need(current: InitiativeVisit) -> Response:
    form = await current.form()
    facts = await _facts(current)
    assert current.user is not None and current.user.organisation is not None
    need, errors = domain.read_need_form(
        form, organisation_id=current.user.organisation, skills=facts.skill_slugs, timezone=facts.timezone
    )
    if need is not None:
        base, bearer = f"/tenants/{tenant(current)}", token(current)
        try:
            place = await current.portal.backends.get(Service.REGISTRY, f"{base}/postcodes/{need.postcode}", bearer)
        except BackendProblem as problem:
            if problem.status != 404:
                raise
            errors["postcode"] = N_("Diese Postleitzahl kennen wir in Ihrer Kommune nicht. Bitte prüfen Sie sie.")
        else:
            body = {**need.body, "place": {"postcode": need.postcode, **_place(place)}}
            try:
                await current.portal.backends.post(Service.REGISTRY, f"{base}/needs", bearer, body)
            except BackendProblem as problem:
                if problem.status != 422:
                    raise
                errors["form"] = N_("Bitte prüfen Sie diese Angabe.")
            else:
                return await current.redirect(
                    "/organisation", flash=N_("Der Bedarf ist gemeldet. Lotse sucht jetzt passende Freiwillige.")
                )
    return await current.page(
        "need_new.html",
        status=422,
        facts=facts,
        values=dict(form),
        chosen=form.all("skills"),
        errors=errors,
        **_choices(),
    )


def _place(found: dict[str, Any]) -> dict[str, Any]:
    place: dict[str, Any] = {"point": found["point"]}
    if found.get("district"):
        place["district"] = found["district"]
    return place


def _choices() -> dict[str, Any]:
    return {
        "categories": domain.NEED_CATEGORIES,
        "certificates": domain.CERTIFICATES,
        "spoken_languages": domain.SPOKEN_LANGUAGES,
        "levels": domain.LEVELS,
    }


async def _facts(current: InitiativeVisit) -> domain.TenantFacts:
    return await tenant_facts(current)
