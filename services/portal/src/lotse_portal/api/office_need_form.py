"""The office reports and edits needs by form (issue 16, item 3): ``/console/needs/new`` and a
need's ``/console/needs/{id}/edit``. One form with the initiative's (``need_new.html``,
``domain.read_need_form``, ``organisation.decide_place``): coordinators choose the organisation
a new need belongs to among the tenant's, an initiative admin's need is their organisation's; a
need keeps its organisation when edited (the registry's rule).

Saving goes to the registry (``POST``/``PUT /tenants/{t}/needs``); matching hears of it by event,
proposes the need to those who fit and, on a change, withdraws the open proposals that no longer
fit and asks more people when more are needed. The need's page then shows the proposals.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter
from fastapi.responses import Response

from lotse_portal import domain, places
from lotse_portal.api.access import OfficeVisit, tenant, token
from lotse_portal.api.organisation import decide_place, need_choices
from lotse_portal.api.profile import tenant_facts
from lotse_portal.backends import BackendProblem, OfficeNeedCalls, Service
from lotse_runtime.auth import Role
from lotse_runtime.i18n import N_

router = APIRouter()

# What the registry's need has besides the form's fields, kept as it is when the form saves it.
_KEPT_FIELDS = ("household_ref",)
_PLACE_FIELDS = ("point", "postcode", "district")


@router.get("/console/needs/new")
async def new_need(current: OfficeVisit) -> Response:
    facts = await tenant_facts(current)
    return await _form(current, facts, values={}, chosen=[], errors={}, asked=places.PlaceDecision())


@router.post("/console/needs/new")
async def report_need(current: OfficeVisit) -> Response:
    form = await current.form()
    facts = await tenant_facts(current)
    organisations = await _choosable(current)
    need, errors = domain.read_need_form(
        form,
        organisation_id=_own_organisation(current),
        skills=facts.skill_slugs,
        timezone=facts.timezone,
        organisations=organisations,
    )
    values = dict(form)
    decision = places.PlaceDecision()
    if need is not None:
        decision = await decide_place(current, need, facts, values, errors)
        if decision.place is not None:
            path = f"/tenants/{tenant(current)}/needs"
            body = {**need.body, "place": decision.place}
            try:
                created = await current.portal.backends.post(Service.REGISTRY, path, token(current), body)
            except BackendProblem as problem:
                if problem.status not in (403, 422):
                    raise
                errors["form"] = N_("Bitte prüfen Sie diese Angabe.")
            else:
                return await current.redirect(
                    f"/console/needs/{created['need_id']}",
                    flash=N_("Der Bedarf ist gemeldet. Lotse sucht jetzt passende Freiwillige."),
                )
    return await _form(
        current, facts, values=values, chosen=form.all("skills"), errors=errors, asked=decision, status=422
    )


@router.get("/console/needs/{need_id}/edit")
async def edit_need(current: OfficeVisit, need_id: UUID) -> Response:
    found = await _need(current, str(need_id))
    facts = await tenant_facts(current)
    values, chosen = domain.need_form_values(found, facts.timezone)
    return await _form(
        current, facts, values=values, chosen=chosen, errors={}, asked=places.PlaceDecision(), need_id=str(need_id)
    )


@router.post("/console/needs/{need_id}/edit")
async def save_need(current: OfficeVisit, need_id: UUID) -> Response:
    """Save the changed need; its place stays unless the postcode or a street is given anew."""
    found = await _need(current, str(need_id))
    form = await current.form()
    facts = await tenant_facts(current)
    # The registry keeps a need with the organisation that reported it: no choice here.
    need, errors = domain.read_need_form(
        form, organisation_id=str(found.get("organisation_id") or ""), skills=facts.skill_slugs, timezone=facts.timezone
    )
    values = dict(form)
    decision = places.PlaceDecision()
    if need is not None:
        place: dict[str, Any] = found.get("place") or {}
        kept = {name: place[name] for name in _PLACE_FIELDS if place.get(name) is not None}
        decision = await decide_place(current, need, facts, values, errors, kept=kept)
        if decision.place is not None:
            path = f"/tenants/{tenant(current)}/needs/{need_id}"
            extra = {name: found[name] for name in _KEPT_FIELDS if found.get(name) is not None}
            body = {**extra, **need.body, "place": decision.place}
            try:
                await current.portal.backends.put(Service.REGISTRY, path, token(current), body)
            except BackendProblem as problem:
                if problem.status not in (403, 409, 422):
                    raise
                errors["form"] = (
                    N_("Dieser Bedarf ist beendet und lässt sich nicht mehr ändern.")
                    if problem.status == 409
                    else N_("Bitte prüfen Sie diese Angabe.")
                )
            else:
                return await current.redirect(
                    f"/console/needs/{need_id}",
                    flash=N_("Der Bedarf ist geändert. Lotse prüft die offenen Vorschläge neu."),
                )
    return await _form(
        current,
        facts,
        values=values,
        chosen=form.all("skills"),
        errors=errors,
        asked=decision,
        need_id=str(need_id),
        status=422,
    )


async def _form(
    current: OfficeVisit,
    facts: domain.TenantFacts,
    *,
    values: dict[str, str],
    chosen: list[str],
    errors: dict[str, str],
    asked: places.PlaceDecision,
    need_id: str | None = None,
    status: int = 200,
) -> Response:
    return await current.page(
        "need_new.html",
        status=status,
        facts=facts,
        values=values,
        chosen=chosen,
        errors=errors,
        asked=asked,
        form_action=f"/console/needs/{need_id}/edit" if need_id else "/console/needs/new",
        editing=need_id is not None,
        organisation_choices={} if need_id else await _choosable(current) or {},
        **need_choices(),
    )


async def _choosable(current: OfficeVisit) -> dict[str, str] | None:
    """The organisations a coordinator chooses the need's among; None for an initiative admin,
    whose needs are their organisation's."""
    if not current.has(Role.COORDINATOR):
        return None
    found = await OfficeNeedCalls(current.portal.backends, token(current), tenant(current)).organisations()
    return {str(item["organisation_id"]): str(item.get("name") or "") for item in found.get("items", [])}


def _own_organisation(current: OfficeVisit) -> str:
    assert current.user is not None
    return current.user.organisation or ""


async def _need(current: OfficeVisit, need_id: str) -> dict[str, Any]:
    """The need as the registry shows it to this person (another organisation's: the 404 page)."""
    calls = OfficeNeedCalls(current.portal.backends, token(current), tenant(current))
    found: dict[str, Any] = await calls.need(need_id)
    return found
