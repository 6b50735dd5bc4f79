"""Hours volunteers log, and their confirmation by the coordination office or the initiative.

The volunteer logs hours for an engagement (``/hours``, linked from each engagement as "Stunden
eintragen"), sees each entry with its state (and a rejection's reason), corrects or deletes what
is not confirmed yet, reads the confirmed totals per year and organisation, and opens a year's
confirmation list: a printable page with the municipality's name, theirs and every confirmed
entry, which an application for the Ehrenamtskarte asks for as proof (printed, or saved as PDF by
the browser). The office's page (``/console/hours``) lists the entries waiting for a decision,
each with a form to confirm and one to reject with a reason. Matching applies every rule; refusals
come back as messages next to the fields.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from datetime import date, datetime
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import httpx
from fastapi import APIRouter
from fastapi.responses import Response

from lotse_portal import hours
from lotse_portal.api.access import OfficeVisit, Visit, VolunteerVisit, tenant, token
from lotse_portal.api.profile import tenant_facts
from lotse_portal.api.start import volunteer_profile
from lotse_portal.backends import BackendProblem, BackendUnavailable, Service
from lotse_runtime.i18n import N_

router = APIRouter()

LOGGED = N_("Ihre Stunden sind eingetragen. Die Koordination oder Ihre Initiative bestätigt sie.")
CORRECTED = N_("Ihre Änderung ist gespeichert. Die Stunden warten wieder auf Bestätigung.")
DELETED = N_("Der Eintrag ist gelöscht.")
CONFIRMED_ALREADY = N_("Bestätigte Stunden können Sie nicht mehr ändern.")
GONE = N_("Diesen Eintrag gibt es nicht mehr.")
CONFIRMED = N_("Die Stunden sind bestätigt.")
REJECTED = N_("Die Stunden sind abgelehnt. Die freiwillige Person sieht Ihren Grund.")
DECIDED_ALREADY = N_("Über diesen Eintrag wurde schon entschieden.")
OWN_ENTRY = N_("Ihre eigenen Stunden bestätigt jemand anderes.")


# -- the volunteer's pages ----------------------------------------------------------------------


@router.get("/hours")
async def my_hours(current: VolunteerVisit, need: str | None = None) -> Response:
    values = {"need_id": need or "", "date": (await _today(current)).isoformat(), "entry_id": str(uuid.uuid4())}
    return await _hours_page(current, values, {})


@router.post("/hours")
async def log_hours(current: VolunteerVisit) -> Response:
    form = await current.form()
    needs = await _loggable(current)
    read = hours.read_hours_form(form, [n.need_id for n in needs])
    if read.body is None:
        return await _hours_page(current, read.values, read.errors, status=422, needs=needs)
    body = dict(read.body)
    entry_id = _uuid_or_none(read.values.get("entry_id"))
    if entry_id is not None:
        body["entry_id"] = entry_id  # the rendered form's: sent twice, the hours are logged once
    status, answer = await _matching(current, "POST", "/volunteers/me/hours", body)
    if status == 422:
        return await _hours_page(current, read.values, hours.refusal_errors(answer), status=422, needs=needs)
    if status == 409:  # the entry id names other hours: a form changed and sent again
        values = {**read.values, "entry_id": str(uuid.uuid4())}
        return await _hours_page(current, values, {"form": hours.NOT_SAVED}, status=409, needs=needs)
    return await current.redirect("/hours#entries", flash=LOGGED)


@router.get("/hours/{entry_id}/edit")
async def edit_hours(current: VolunteerVisit, entry_id: UUID) -> Response:
    entry = await _entry(current, str(entry_id))
    if entry is None:
        return await current.redirect("/hours#entries", flash=GONE)
    if not entry.changeable:
        return await current.redirect("/hours#entries", flash=CONFIRMED_ALREADY)
    hours_part, minutes_part = divmod(entry.minutes, 60)
    values = {
        "need_id": entry.need_id,
        "date": entry.day.isoformat(),
        "hours": str(hours_part),
        "minutes": str(minutes_part),
        "note": entry.note,
    }
    return await _edit_page(current, entry, values, {})


@router.post("/hours/{entry_id}/edit")
async def correct_hours(current: VolunteerVisit, entry_id: UUID) -> Response:
    form = await current.form()
    entry = await _entry(current, str(entry_id))
    if entry is None:
        return await current.redirect("/hours#entries", flash=GONE)
    needs = [n.need_id for n in await _loggable(current)]
    read = hours.read_hours_form(form, [*needs, entry.need_id])
    if read.body is None:
        return await _edit_page(current, entry, read.values, read.errors, status=422)
    status, answer = await _matching(current, "PUT", f"/volunteers/me/hours/{entry_id}", read.body)
    if status == 422:
        return await _edit_page(current, entry, read.values, hours.refusal_errors(answer), status=422)
    if status == 409:
        return await current.redirect("/hours#entries", flash=CONFIRMED_ALREADY)
    if status == 404:
        return await current.redirect("/hours#entries", flash=GONE)
    return await current.redirect("/hours#entries", flash=CORRECTED)


@router.post("/hours/{entry_id}/delete")
async def delete_hours(current: VolunteerVisit, entry_id: UUID) -> Response:
    await current.form()
    status, _ = await _matching(current, "DELETE", f"/volunteers/me/hours/{entry_id}")
    flash = {409: CONFIRMED_ALREADY, 404: GONE}.get(status, DELETED)
    return await current.redirect("/hours#entries", flash=flash)


@router.get("/hours/confirmation/{year}")
async def confirmation(current: VolunteerVisit, year: int) -> Response:
    """A year's confirmed hours to print or save as PDF, for an application (Ehrenamtskarte)."""
    if not 2000 <= year <= 2100:
        return await current.page("error.html", status=404, problem="not_found")
    entries = await _entries(current)
    listed = hours.confirmation_list(entries, year)
    facts = await tenant_facts(current)
    profile = await volunteer_profile(current)
    contact = (profile or {}).get("contact") or {}
    assert current.user is not None
    return await current.page(
        "hours_confirmation.html",
        listed=listed,
        tenant_name=facts.name,
        person=str(contact.get("display_name") or current.user.name or ""),
        made_on=datetime.now(ZoneInfo(facts.timezone)).date(),
        local_day=lambda moment: moment.astimezone(ZoneInfo(facts.timezone)).date(),
        duration=lambda minutes: hours.duration_words(minutes, current.gettext),
        decimal_hours=lambda minutes: round(minutes / 60, 2),
    )


async def _hours_page(
    current: VolunteerVisit,
    values: dict[str, str],
    errors: dict[str, str],
    *,
    status: int = 200,
    needs: list[hours.LoggableNeed] | None = None,
) -> Response:
    backends, bearer = current.portal.backends, token(current)
    needs = needs if needs is not None else await _loggable(current)
    entries = await _entries(current)
    summary = await backends.get(Service.MATCHING, "/volunteers/me/hours-summary", bearer)
    by_year: defaultdict[int, list[hours.Entry]] = defaultdict(list)
    for entry in entries:
        by_year[entry.day.year].append(entry)
    return await current.page(
        "hours.html",
        status=status,
        needs=needs,
        values=values,
        errors=errors,
        years=sorted(by_year.items(), reverse=True),
        totals=[hours.YearTotal.from_json(year) for year in summary.get("years") or []],
        today=(await _today(current)).isoformat(),
        states=hours.STATES,
        duration=lambda minutes: hours.duration_words(minutes, current.gettext),
    )


async def _edit_page(
    current: VolunteerVisit, entry: hours.Entry, values: dict[str, str], errors: dict[str, str], *, status: int = 200
) -> Response:
    needs = await _loggable(current)
    if entry.need_id not in {n.need_id for n in needs}:
        # The engagement's days may be over for new entries; its own entry keeps its need.
        needs.append(
            hours.LoggableNeed(entry.need_id, entry.category, entry.description, entry.organisation, entry.day, None)
        )
    return await current.page(
        "hours_edit.html",
        status=status,
        entry=entry,
        needs=needs,
        values=values,
        errors=errors,
        today=(await _today(current)).isoformat(),
        states=hours.STATES,
        duration=lambda minutes: hours.duration_words(minutes, current.gettext),
    )


async def _loggable(current: Visit) -> list[hours.LoggableNeed]:
    found = await current.portal.backends.get(Service.MATCHING, "/volunteers/me/needs-for-hours", token(current))
    return [hours.LoggableNeed.from_json(item) for item in found]


async def _entries(current: Visit) -> list[hours.Entry]:
    found = await current.portal.backends.get(Service.MATCHING, "/volunteers/me/hours", token(current))
    return [hours.Entry.from_json(item) for item in found]


async def _entry(current: Visit, entry_id: str) -> hours.Entry | None:
    return next((e for e in await _entries(current) if e.entry_id == entry_id), None)


async def _today(current: Visit) -> date:
    facts = await tenant_facts(current)
    return datetime.now(ZoneInfo(facts.timezone)).date()


def _uuid_or_none(value: str | None) -> str | None:
    try:
        return str(UUID(value)) if value else None
    except ValueError:
        return None


async def _matching(current: Visit, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """Matching's answer to a change of hours, refusals included: their problem documents name
    the rule broken (``errors[].rule``), which the form shows next to its field. An outage is the
    portal's outage page, as for every other call."""
    backends = current.portal.backends
    try:
        response = await backends.http.request(
            method,
            backends.base[Service.MATCHING] + path,
            json=body,
            headers={"Authorization": f"Bearer {token(current)}"},
        )
    except httpx.HTTPError as error:
        raise BackendUnavailable(f"matching unreachable: {type(error).__name__}") from error
    if response.status_code >= 500:
        raise BackendUnavailable(f"matching answered {response.status_code}")
    try:
        answer = response.json() if response.content else None
    except ValueError:
        answer = None
    if response.status_code >= 400 and response.status_code not in (403, 404, 409, 422):
        raise BackendProblem(response.status_code, str((answer or {}).get("title") or ""))
    return response.status_code, answer if isinstance(answer, dict | list) else {}


# -- the office's page --------------------------------------------------------------------------


@router.get("/console/hours")
async def office_hours(current: OfficeVisit) -> Response:
    return await _office_page(current, {})


@router.post("/console/hours/{entry_id}/confirm")
async def confirm(current: OfficeVisit, entry_id: UUID) -> Response:
    await current.form()
    status, _ = await _matching(current, "POST", f"/tenants/{tenant(current)}/hours/{entry_id}/confirm")
    return await current.redirect("/console/hours", flash=_decided(status, CONFIRMED))


@router.post("/console/hours/{entry_id}/reject")
async def reject(current: OfficeVisit, entry_id: UUID) -> Response:
    form = await current.form()
    reason, missing = hours.read_reason(form)
    if missing is not None:
        return await _office_page(current, {str(entry_id): missing}, reasons={str(entry_id): reason}, status=422)
    path = f"/tenants/{tenant(current)}/hours/{entry_id}/reject"
    status, _ = await _matching(current, "POST", path, {"reason": reason})
    return await current.redirect("/console/hours", flash=_decided(status, REJECTED))


def _decided(status: int, done: str) -> str:
    return {409: DECIDED_ALREADY, 404: GONE, 403: OWN_ENTRY}.get(status, done)


async def _office_page(
    current: OfficeVisit, errors: dict[str, str], *, reasons: dict[str, str] | None = None, status: int = 200
) -> Response:
    backends, bearer = current.portal.backends, token(current)
    found = await backends.get(Service.MATCHING, f"/tenants/{tenant(current)}/hours", bearer, state="pending")
    entries = [hours.Entry.from_json(item) for item in found.get("items") or []]
    names = await _names(current, sorted({e.volunteer_id for e in entries}))
    return await current.page(
        "hours_office.html",
        status=status,
        entries=entries,
        more=bool(found.get("more")),
        names=names,
        errors=errors,
        reasons=reasons or {},
        duration=lambda minutes: hours.duration_words(minutes, current.gettext),
    )


async def _names(current: OfficeVisit, volunteer_ids: list[str]) -> dict[str, str]:
    """The volunteers' names where the registry shows them to this person (their organisation's
    volunteers for an initiative admin); others stay unnamed on the page."""
    backends, bearer, place = current.portal.backends, token(current), tenant(current)

    async def name_of(volunteer_id: str) -> tuple[str, str]:
        try:
            found = await backends.get(Service.REGISTRY, f"/tenants/{place}/volunteers/{volunteer_id}", bearer)
        except BackendProblem:
            return volunteer_id, ""
        return volunteer_id, str(((found or {}).get("contact") or {}).get("display_name") or "")

    return dict(await asyncio.gather(*(name_of(v) for v in volunteer_ids)))
