"""The coordination office's volunteers (issue 16, item 4): the search, a volunteer's page with
their engagements and history, certificate checks and their named contact person, and a
coordinator's own entry as a contact person. Coordinators see the whole municipality, initiative
admins their organisation's volunteers: the registry and matching decide, with the person's
token, what each of them sees and may do; the pages show exactly what they answer.

Every refusal of a form is said next to its field in the person's language; a search is a GET,
so its address says what was searched and paging is a link.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from fastapi import APIRouter
from fastapi.responses import Response

from lotse_portal import domain
from lotse_portal.api.access import CoordinatorVisit, OfficeVisit, Visit, tenant, token
from lotse_portal.api.maps import postcode_table
from lotse_portal.api.profile import tenant_facts
from lotse_portal.backends import BackendProblem, OfficeVolunteerCalls
from lotse_portal.subject_access import OfficeExport, ProducedBy, download, held_by_service
from lotse_runtime.auth import Role
from lotse_runtime.i18n import N_

router = APIRouter()

CHECK_FIELDS = ("kind", "seen_on", "valid_until")
STAFF_FIELDS = ("name", "email", "phone")
NOT_ACTIVE = N_("Die Person ist nicht mehr aktiv: Dafür lässt sich nichts mehr eintragen.")
CHECK_ENDED = N_("Diese Prüfung gilt schon nicht mehr. Die Seite zeigt jetzt den aktuellen Stand.")
CHOOSE_STAFF = N_("Bitte wählen Sie eine Person aus der Liste.")
CHECK_AGAIN = N_("Bitte prüfen Sie diese Angabe.")


def _calls(current: Visit) -> OfficeVolunteerCalls:
    return OfficeVolunteerCalls(current.portal.backends, token(current), tenant(current))


# -- the search -----------------------------------------------------------------------------------


@router.get("/console/volunteers")
async def volunteers(current: OfficeVisit) -> Response:
    calls, coordinator = _calls(current), current.has(Role.COORDINATOR)
    facts = await tenant_facts(current)
    table = await postcode_table(current)
    organisations = await _organisations(calls)
    search = domain.read_volunteer_filters(
        current.request.query_params.multi_items(),
        skills=facts.skill_slugs,
        organisations=organisations if coordinator else {},
        names_allowed=coordinator,
        postcodes=table,
    )
    errors, cards, next_cursor = dict(search.errors), [], None
    if search.query is not None:
        try:
            found = await calls.search(search.query)
        except BackendProblem as problem:
            if problem.status != 422:
                raise
            for path in problem.fields or {"form": ""}:
                errors[domain.search_field(path)] = CHECK_AGAIN
        else:
            skills = {skill.slug: skill.label for skill in facts.skills}
            shown = await _as_on_their_page(calls, found.get("items") or [])
            cards = [
                domain.VolunteerCard.from_json(
                    item,
                    language=current.language,
                    gettext=current.gettext,
                    skills=skills,
                    table=table,
                    organisations=organisations,
                )
                for item in shown
            ]
            next_cursor = found.get("next_cursor")
    return await current.page(
        "office_volunteers.html",
        filters=search.filters,
        errors=errors,
        searched=search.query is not None,
        cards=cards,
        next_link=search.filters.link(next_cursor) if next_cursor else None,
        first_link=search.filters.link() if current.request.query_params.get("cursor") else None,
        skills=facts.skills,
        organisations=organisations if coordinator else {},
        spoken_languages=domain.SPOKEN_LANGUAGES,
        levels=domain.LEVELS,
        weekdays=domain.WEEKDAYS,
        certificate_filters=domain.CERTIFICATE_FILTERS,
        certificate_kinds=domain.CERTIFICATE_KINDS,
        postcodes=table,
    )


async def _as_on_their_page(calls: OfficeVolunteerCalls, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Lists never carry where someone lives: for those whose contact the registry shows this
    person (``contact`` in the list), their own page says their home area."""

    async def one(item: dict[str, Any]) -> dict[str, Any]:
        if not item.get("contact"):
            return item
        try:
            found: dict[str, Any] = await calls.volunteer(str(item["volunteer_id"]))
        except BackendProblem as problem:
            if problem.status != 404:  # erased meanwhile: the list's entry stands
                raise
            return item
        return found

    return list(await asyncio.gather(*(one(item) for item in items)))


# -- a volunteer's page ---------------------------------------------------------------------------


@router.get("/console/volunteers/{volunteer_id}")
async def volunteer(current: OfficeVisit, volunteer_id: UUID) -> Response:
    return await _volunteer_page(current, str(volunteer_id))


async def _volunteer_page(
    current: OfficeVisit,
    volunteer_id: str,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    calls, coordinator = _calls(current), current.has(Role.COORDINATOR)
    # The registry decides who may see the volunteer: another organisation's admin gets the 404 page.
    found = await calls.volunteer(volunteer_id)
    facts = await tenant_facts(current)
    zone = ZoneInfo(facts.timezone)
    organisations = await _organisations(calls)
    card = domain.VolunteerCard.from_json(
        found,
        language=current.language,
        gettext=current.gettext,
        skills={skill.slug: skill.label for skill in facts.skills},
        table=await postcode_table(current),
        organisations=organisations,
    )
    details = domain.VolunteerDetails.from_json(found, card, current.language)
    staff = await _staff(calls) if coordinator else []
    assert current.user is not None
    today = datetime.now(zone).date()
    checks = [
        domain.CheckRow.from_json(
            item,
            language=current.language,
            me=current.user.volunteer_id,
            staff={person.staff_id: person.name for person in staff if person.name},
            today=today,
        )
        for item in (await calls.certificate_checks(volunteer_id)).get("items") or []
    ]
    history = None
    try:
        history = domain.VolunteerHistory.from_json(await calls.history(volunteer_id), current.language, zone)
    except BackendProblem as problem:
        if problem.status != 404:  # matching learns of a volunteer by event: not yet, or erased
            raise
    return await current.page(
        "office_volunteer.html",
        status=status,
        volunteer=details,
        checks=checks,
        history=history,
        staff=staff,
        errors=errors or {},
        values={"seen_on": today.isoformat(), **(values or {})},
        today=today.isoformat(),
        certificate_kinds=domain.CERTIFICATE_KINDS,
        check_statuses=domain.CHECK_STATUSES,
        revocation_reasons=domain.REVOCATION_REASONS,
        volunteer_statuses=domain.VOLUNTEER_STATUSES,
        form_key=domain.new_form_key,
    )


@router.post("/console/volunteers/{volunteer_id}/certificate-checks")
async def record_check(current: OfficeVisit, volunteer_id: UUID) -> Response:
    """The office has seen a certificate: kind, the day it was shown and its last valid day; who
    saw it is the signed-in person (the registry takes them from the token)."""
    form = await current.form()
    values = {name: form.get(name, "") for name in CHECK_FIELDS}
    zone = ZoneInfo((await tenant_facts(current)).timezone)
    body, errors = domain.read_check_form(form, datetime.now(zone).date())
    if body is not None:
        try:
            await _calls(current).record_check(str(volunteer_id), body, domain.form_key(form))
        except BackendProblem as problem:
            if problem.status == 409:
                errors["check"] = NOT_ACTIVE
            elif problem.status == 422:
                for name, message in (problem.fields or {"form": ""}).items():
                    field, text = domain.check_refusal(name, message)
                    errors[field] = text
            else:
                raise
        else:
            done = N_("Die Prüfung ist eingetragen. Für Einsätze, die diesen Nachweis verlangen, zählt sie ab jetzt.")
            return await current.redirect(f"/console/volunteers/{volunteer_id}#checks", flash=done)
    return await _volunteer_page(current, str(volunteer_id), errors=errors, values=values, status=422)


@router.post("/console/volunteers/{volunteer_id}/certificate-checks/{check_id}/revocation")
async def revoke_check(current: OfficeVisit, volunteer_id: UUID, check_id: UUID) -> Response:
    """Take a check back (seen in error, the certificate withdrawn), once confirmed."""
    form = await current.form()
    control, reason = f"revoke-{check_id}", form.get("reason", "")
    if reason not in domain.REVOCATION_REASONS:
        message = N_("Bitte wählen Sie einen Grund aus der Liste.")
        return await _volunteer_page(current, str(volunteer_id), errors={control: message}, status=422)
    if form.get("confirm") != "yes":
        message = N_("Bitte bestätigen Sie, dass Sie diese Prüfung zurücknehmen.")
        return await _volunteer_page(current, str(volunteer_id), errors={control: message}, status=422)
    try:
        await _calls(current).revoke_check(str(volunteer_id), str(check_id), reason, domain.form_key(form))
    except BackendProblem as problem:
        if problem.status != 409:
            raise
        return await _volunteer_page(current, str(volunteer_id), errors={control: CHECK_ENDED}, status=409)
    done = N_("Die Prüfung ist zurückgenommen. Für Einsätze, die diesen Nachweis verlangen, zählt sie nicht mehr.")
    return await current.redirect(f"/console/volunteers/{volunteer_id}#checks", flash=done)


@router.post("/console/volunteers/{volunteer_id}/contact-person")
async def name_contact_person(current: CoordinatorVisit, volunteer_id: UUID) -> Response:
    """The volunteer's contact person at the office: one of its staff, or nobody."""
    form = await current.form()
    chosen = form.get("staff_id", "")
    calls = _calls(current)
    if chosen and chosen not in {person.staff_id for person in await _staff(calls)}:
        return await _volunteer_page(current, str(volunteer_id), errors={"staff_id": CHOOSE_STAFF}, status=422)
    try:
        await calls.name_contact_person(str(volunteer_id), chosen or None)
    except BackendProblem as problem:
        if problem.status not in (409, 422):
            raise
        message = NOT_ACTIVE if problem.status == 409 else CHOOSE_STAFF
        return await _volunteer_page(current, str(volunteer_id), errors={"staff_id": message}, status=problem.status)
    done = (
        N_("Die Ansprechperson ist eingetragen. Die oder der Freiwillige sieht sie in Lotse.")
        if chosen
        else N_("Die Person hat jetzt keine Ansprechperson bei der Koordinationsstelle.")
    )
    return await current.redirect(f"/console/volunteers/{volunteer_id}#contact-person", flash=done)


@router.post("/console/volunteers/{volunteer_id}/subject-access")
async def produce_subject_access(current: CoordinatorVisit, volunteer_id: UUID) -> Response:
    """The office produces the person's export (DSGVO Art. 15) on their written request: the
    file the person can download themself, with who produced it, when, and the request's date."""
    form = await current.form()
    values = {name: form.get(name, "") for name in ("written_request", "request_date")}
    today = datetime.now(ZoneInfo((await tenant_facts(current)).timezone)).date()
    received, errors = domain.read_subject_access_request(values, today)
    if received is None:
        return await _volunteer_page(current, str(volunteer_id), errors=errors, values=values, status=422)
    await _calls(current).volunteer(str(volunteer_id))  # the registry's 404 for no such person
    assert current.user is not None
    document = OfficeExport(
        exported_at=datetime.now(UTC),
        tenant=tenant(current),
        volunteer_id=str(volunteer_id),
        produced_by=ProducedBy(
            name=current.user.name, staff_id=current.user.volunteer_id, request_received_on=received
        ),
        held_by_service=await held_by_service(
            current.portal.backends,
            current.portal.store,
            token(current),
            tenant(current),
            str(volunteer_id),
            request_received_on=received,
        ),
    )
    return await current.finish(download(document, str(volunteer_id)))


# -- a coordinator's own entry as a contact person ------------------------------------------------


@router.get("/console/staff/me")
async def my_entry(current: CoordinatorVisit) -> Response:
    assert current.user is not None
    mine = next((p for p in await _staff(_calls(current)) if p.staff_id == current.user.volunteer_id), None)
    values = {"name": mine.name, "email": mine.email, "phone": mine.phone} if mine else {"name": current.user.name}
    return await current.page("office_volunteer_staff.html", values=values, errors={}, entered=mine is not None)


@router.post("/console/staff/me")
async def save_my_entry(current: CoordinatorVisit) -> Response:
    form = await current.form()
    result = domain.read_staff_form(form)
    if result.valid:
        try:
            await _calls(current).enter_myself(result.body)
        except BackendProblem as problem:
            if problem.status != 422:
                raise
            for path in problem.fields or {"form": ""}:
                name = path.removeprefix("body.").split(".")[0]
                result.errors[name if name in STAFF_FIELDS else "form"] = CHECK_AGAIN
        else:
            done = N_("Ihr Eintrag ist gespeichert. Sie können jetzt als Ansprechperson gewählt werden.")
            return await current.redirect("/console/staff/me", flash=done)
    values = {name: form.get(name, "") for name in STAFF_FIELDS}
    return await current.page(
        "office_volunteer_staff.html", status=422, values=values, errors=result.errors, entered=False
    )


# -- what the pages read besides ------------------------------------------------------------------


async def _organisations(calls: OfficeVolunteerCalls) -> dict[str, str]:
    """The tenant's organisations by id with their names."""
    found = await calls.organisations()
    return {str(item["organisation_id"]): str(item.get("name") or "") for item in found.get("items") or []}


async def _staff(calls: OfficeVolunteerCalls) -> list[domain.StaffContact]:
    """The office's staff who entered themselves, by name (coordinators may read them)."""
    found = await calls.staff()
    people = [domain.StaffContact.from_json(item) for item in found.get("items") or []]
    return sorted(people, key=lambda person: (person.name.casefold(), person.staff_id))
