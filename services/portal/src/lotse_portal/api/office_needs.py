"""The coordination office's dashboard of open needs and a need's page with the office's actions
(issue 16): coordinators see the whole municipality, initiative admins their organisation's needs.

Everything comes from the services and goes through their APIs with the person's token: the
dashboard and a need's staffing from matching, the need and the people from the registry, which
shows contact data only where its need-to-know rule allows. Matching applies the hard rules to a
volunteer the office proposes, and records an answer only as one the volunteer gave (by phone or
in person): nobody is assigned without their yes. Each action's form carries a key of its own,
sent as ``Idempotency-Key``, so a form sent twice does nothing twice; a refusal is said next to
the control that was used, in the person's language.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from fastapi import APIRouter
from fastapi.responses import Response

from lotse_portal import domain
from lotse_portal.api.access import OfficeVisit, Visit, tenant, token
from lotse_portal.api.maps import postcode_table
from lotse_portal.api.profile import tenant_facts
from lotse_portal.backends import BackendProblem, OfficeNeedCalls
from lotse_runtime.auth import Role
from lotse_runtime.i18n import N_

router = APIRouter()

# A name search asks the registry for this many volunteers at most; the office narrows it by typing more.
SEARCH_LIMIT = 20
# An initiative admin's volunteers are listed (the registry's name search is the office's), up to this many.
ORGANISATION_LIMIT = 100
MIN_NAME = 2


# -- the dashboard (on the console's start page) ------------------------------------------------


async def dashboard(current: Visit) -> dict[str, Any]:
    """What the console's start page shows of the needs: the filter form and matching's lists."""
    organisations = await _organisations(current)
    coordinator = current.has(Role.COORDINATOR)
    filters, errors = domain.read_dashboard_filters(
        dict(current.request.query_params), organisations if coordinator else {}
    )
    hours = domain.DASHBOARD_WINDOW_HOURS
    query = {**filters.query(), "starting_within_hours": hours, "expiring_within_hours": hours}
    answer = await _calls(current).dashboard(query)
    zone = await _zone(current)
    districts = sorted({row.district for row in await postcode_table(current) if row.district})
    return {
        "sections": domain.dashboard_sections(answer, current.language, zone, organisations),
        "filters": filters,
        "filter_errors": errors,
        "organisations": organisations if coordinator else {},
        "districts": districts,
        "window_hours": hours,
        "categories_offered": domain.NEED_CATEGORIES,
    }


# -- a need's page --------------------------------------------------------------------------------


@router.get("/console/needs/{need_id}")
async def need_page(current: OfficeVisit, need_id: UUID) -> Response:
    return await _need_page(current, str(need_id))


async def _need_page(
    current: OfficeVisit, need_id: str, *, errors: dict[str, str] | None = None, status: int = 200
) -> Response:
    calls = _calls(current)
    # The registry decides who may see the need: another organisation's admin gets the 404 page.
    found = await calls.need(need_id)
    facts = await tenant_facts(current)
    zone = ZoneInfo(facts.timezone)
    skills = {skill.slug: skill.label for skill in facts.skills}
    need = domain.NeedFacts.from_json(found, current.language, zone, current.gettext, skills)
    organisations = await _organisations(current)
    staffing = None
    try:
        answer = await calls.staffing(need_id)
    except BackendProblem as problem:
        if problem.status != 404:  # matching has not seen the need yet (it comes by event)
            raise
    else:
        people = await _people(current, domain.staffing_volunteers(answer))
        assert current.user is not None
        staffing = domain.StaffingView.from_json(
            answer,
            people,
            language=current.language,
            zone=zone,
            me=current.user.subject,
            staff=domain.actor_names(answer, await _staff(current), current.portal.settings.jwt_issuer or ""),
            organisations=organisations,
        )
    return await current.page(
        "office_need.html",
        status=status,
        need=need,
        organisation=organisations.get(need.organisation_id, ""),
        staffing=staffing,
        errors=errors or {},
        form_key=domain.new_form_key,
        decline_reasons=domain.OFFICE_DECLINE_REASONS,
        cancellation_reasons=domain.CANCELLATION_REASONS,
        outcomes=domain.NEED_OUTCOMES,
        proposal_states=domain.OFFICE_PROPOSAL_STATES,
    )


@router.post("/console/needs/{need_id}/proposals/{proposal_id}/answer")
async def record_answer(current: OfficeVisit, need_id: UUID, proposal_id: UUID) -> Response:
    """An answer the volunteer gave the office by phone or in person."""
    form = await current.form()
    control = f"answer-{proposal_id}"
    choice, reason = form.get("choice", ""), form.get("reason", "")
    if choice not in ("accept", "decline") or (
        reason and (choice != "decline" or reason not in domain.OFFICE_DECLINE_REASONS)
    ):
        message = N_("Bitte tragen Sie eine Zusage oder eine Absage ein.")
        return await _need_page(current, str(need_id), errors={control: message}, status=422)
    body = {"choice": choice, **({"reason": reason} if reason else {})}
    done = N_("Die Zusage ist eingetragen.") if choice == "accept" else N_("Die Absage ist eingetragen.")
    action = _calls(current).record_answer(str(need_id), str(proposal_id), body, domain.form_key(form))
    return await _act(current, str(need_id), control, action, done)


@router.post("/console/needs/{need_id}/committed/{volunteer_id}/release")
async def release(current: OfficeVisit, need_id: UUID, volunteer_id: UUID) -> Response:
    """Release a committed volunteer (who called in sick): Lotse asks the next person."""
    form = await current.form()
    control = f"release-{volunteer_id}"
    if form.get("confirm") != "yes":
        message = N_("Bitte bestätigen Sie, dass Sie die Person von diesem Einsatz freistellen.")
        return await _need_page(current, str(need_id), errors={control: message}, status=422)
    done = N_("Die Person ist freigestellt. Lotse fragt jetzt die nächsten Freiwilligen.")
    action = _calls(current).release(str(need_id), str(volunteer_id), domain.form_key(form))
    return await _act(current, str(need_id), control, action, done)


@router.post("/console/needs/{need_id}/rounds")
async def new_round(current: OfficeVisit, need_id: UUID) -> Response:
    """A new proposal round: who declined or let a proposal expire may be asked again."""
    form = await current.form()
    done = N_("Eine neue Vorschlagsrunde hat begonnen.")
    return await _act(
        current, str(need_id), "round", _calls(current).new_round(str(need_id), domain.form_key(form)), done
    )


@router.post("/console/needs/{need_id}/cancellation")
async def cancel(current: OfficeVisit, need_id: UUID) -> Response:
    form = await current.form()
    reason = form.get("reason", "")
    if reason not in domain.CANCELLATION_REASONS or form.get("confirm") != "yes":
        message = (
            N_("Bitte wählen Sie einen Grund aus der Liste.")
            if reason not in domain.CANCELLATION_REASONS
            else N_("Bitte bestätigen Sie, dass Sie den Bedarf absagen.")
        )
        return await _need_page(current, str(need_id), errors={"cancel": message}, status=422)
    done = N_("Der Bedarf ist abgesagt. Wer gefragt war oder zugesagt hatte, erfährt es.")
    action = _calls(current).cancel(str(need_id), reason, domain.form_key(form))
    return await _act(current, str(need_id), "cancel", action, done)


@router.post("/console/needs/{need_id}/closing")
async def close(current: OfficeVisit, need_id: UUID) -> Response:
    form = await current.form()
    outcome = form.get("outcome", "")
    if outcome not in domain.NEED_OUTCOMES:
        message = N_("Bitte wählen Sie aus der Liste, wie es gelaufen ist.")
        return await _need_page(current, str(need_id), errors={"close": message}, status=422)
    done = N_("Der Bedarf ist abgeschlossen.")
    action = _calls(current).close(str(need_id), outcome, domain.form_key(form))
    return await _act(current, str(need_id), "close", action, done)


async def _act(current: OfficeVisit, need_id: str, control: str, action: Awaitable[Any], done: str) -> Response:
    """One action through the service's API (under the form's key); a refusal is said next to the
    control that was used, on the need's page as it stands now."""
    try:
        await action
    except BackendProblem as problem:
        if problem.status not in (409, 422):
            raise
        message = domain.office_refusal(problem.status, problem.outcome)
        return await _need_page(current, need_id, errors={control: message}, status=problem.status)
    return await current.redirect(f"/console/needs/{need_id}", flash=done)


# -- proposing a volunteer the office chose -------------------------------------------------------


@router.get("/console/needs/{need_id}/propose")
async def choose(current: OfficeVisit, need_id: UUID, name: str = "") -> Response:
    """Choose a volunteer to check for the need: coordinators search the registry by name (the
    first volunteers are listed without one); initiative admins pick among their organisation's."""
    calls = _calls(current)
    need = await calls.need(str(need_id))
    name = " ".join(name.split())[:80]
    errors: dict[str, str] = {}
    if current.has(Role.COORDINATOR):
        query: dict[str, Any] = {"status": "active", "limit": SEARCH_LIMIT}
        if name and len(name) < MIN_NAME:
            errors["name"] = N_("Bitte geben Sie mindestens zwei Buchstaben des Namens an.")
        elif name:
            query["name"] = name
        found = await calls.volunteers(query)
        people = [domain.VolunteerContact.from_json(item) for item in found.get("items", [])]
    else:  # the registry's name search is the coordinators'; an initiative has few enough to list
        found = await calls.volunteers({"status": "active", "limit": ORGANISATION_LIMIT})
        people = [domain.VolunteerContact.from_json(item) for item in found.get("items", [])]
        if name:
            people = [person for person in people if name.casefold() in person.name.casefold()]
    return await current.page(
        "office_propose.html",
        need_id=str(need_id),
        category=str(need.get("category") or ""),
        name=name,
        people=people,
        searched=bool(name) and not errors,
        errors=errors,
    )


@router.get("/console/needs/{need_id}/propose/{volunteer_id}")
async def check(current: OfficeVisit, need_id: UUID, volunteer_id: UUID) -> Response:
    """The dry run: would the volunteer be proposed, with which reasons, or which rules they break."""
    return await _check_page(current, str(need_id), str(volunteer_id))


@router.post("/console/needs/{need_id}/propose/{volunteer_id}")
async def propose(current: OfficeVisit, need_id: UUID, volunteer_id: UUID) -> Response:
    form = await current.form()
    try:
        await _calls(current).propose(str(need_id), str(volunteer_id), domain.form_key(form))
    except BackendProblem as problem:
        if problem.status not in (409, 422):
            raise
        broken = domain.rule_lines({"rule": rule.rule, "detail": rule.detail} for rule in problem.broken_rules)
        refusal = domain.office_refusal(problem.status, problem.outcome)
        return await _check_page(
            current, str(need_id), str(volunteer_id), refusal=refusal, broken=broken, status=problem.status
        )
    done = N_("Der Vorschlag ist verschickt. Die Person entscheidet selbst, ob sie zusagt.")
    return await current.redirect(f"/console/needs/{need_id}", flash=done)


async def _check_page(
    current: OfficeVisit,
    need_id: str,
    volunteer_id: str,
    *,
    refusal: str = "",
    broken: tuple[domain.ReasonLine, ...] = (),
    status: int = 200,
) -> Response:
    calls = _calls(current)
    need = await calls.need(need_id)
    person = (await _people(current, [volunteer_id]))[volunteer_id]
    result = None
    try:
        answer = await calls.check(need_id, volunteer_id)
    except BackendProblem as problem:
        if problem.status != 409:  # 409: the need is staffed, cancelled or closed meanwhile
            raise
        refusal = refusal or domain.office_refusal(problem.status, problem.outcome)
    else:
        result = domain.CandidateCheck.from_json(answer, current.language)
    if broken and (result is None or not result.broken):
        # Refused on proposing although the check had let them through (something changed between).
        result = domain.CandidateCheck(volunteer_id, False, broken, (), "")
    return await current.page(
        "office_check.html",
        status=status,
        need_id=need_id,
        category=str(need.get("category") or ""),
        person=person,
        result=result,
        refusal=refusal,
        form_key=domain.new_form_key,
    )


# -- what the pages read besides ------------------------------------------------------------------


def _calls(current: Visit) -> OfficeNeedCalls:
    return OfficeNeedCalls(current.portal.backends, token(current), tenant(current))


async def _zone(current: Visit) -> ZoneInfo:
    return ZoneInfo((await tenant_facts(current)).timezone)


async def _organisations(current: Visit) -> dict[str, str]:
    """The tenant's organisations by id with their names (any member of the tenant may list them)."""
    found = await _calls(current).organisations()
    return {str(item["organisation_id"]): str(item.get("name") or "") for item in found.get("items", [])}


async def _people(current: Visit, volunteer_ids: list[str]) -> dict[str, domain.VolunteerContact]:
    """Each volunteer as the registry shows them to this person (contact data where it allows);
    one it does not show (404) is named by the start of their id."""
    calls = _calls(current)

    async def one(volunteer_id: str) -> domain.VolunteerContact:
        try:
            found = await calls.volunteer(volunteer_id)
        except BackendProblem as problem:
            if problem.status != 404:
                raise
            return domain.VolunteerContact(volunteer_id)
        return domain.VolunteerContact.from_json(found)

    found = await asyncio.gather(*(one(volunteer_id) for volunteer_id in volunteer_ids))
    return {person.volunteer_id: person for person in found}


async def _staff(current: Visit) -> dict[str, str]:
    """The office's staff by staff id with their names (coordinators may read them; for others
    who acted is said by role)."""
    if not current.has(Role.COORDINATOR):
        return {}
    found = await _calls(current).staff()
    return {str(item["staff_id"]): str(item.get("name") or "") for item in found.get("items", []) if item.get("name")}
