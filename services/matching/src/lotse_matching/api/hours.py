"""Hours volunteers log for their engagements, and the office's or the initiative's confirmation.

The volunteer (token subject = volunteer id) logs, corrects and deletes entries under
``/volunteers/me/hours`` until they are confirmed, lists the needs they may log for and reads
their confirmed totals per year and organisation (for the Ehrenamtskarte). Under the tenant, with
the console's access rule (``access.office_scope``), coordinators confirm or reject every entry of
the tenant and initiative admins those for their organisation's needs; another tenant's caller
gets 404, volunteers and partners 403. Each change is one unit of work.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field, ValidationInfo, field_validator

from lotse_contracts.events.needs import NeedCategory
from lotse_matching.api.access import Office, Service, Volunteer
from lotse_matching.hours import MAX_NOTE, MAX_REASON, Commitment, HoursDraft, HoursOutcome, yearly_totals
from lotse_matching.service import HoursResult, Matching
from lotse_matching.store import Actor, HoursEntry, HoursState
from lotse_runtime.auth import tenant_of
from lotse_runtime.problems import Problem, problem_responses

router = APIRouter(tags=["hours"])
VOLUNTEER_REFUSALS = problem_responses(404, 409, 422)
OFFICE_REFUSALS = problem_responses(403, 404, 409, 422)
MAX_LIST = 500
ListedState = Literal["pending", "confirmed", "rejected", "all"]


def _plain_text(value: str) -> str:
    # One line of the person's own words: no control characters (a CSV or a page would show them).
    cleaned = "".join(" " if ch in "\t\r\n" else ch for ch in value if ch.isprintable() or ch in "\t\r\n")
    return " ".join(cleaned.split())


# -- models -------------------------------------------------------------------------------------


class HoursBody(BaseModel):
    """Hours worked on one day for one need: ``minutes``, or ``hours`` and ``minutes`` (0-59)."""

    need_id: UUID
    date: dt.date = Field(description="The day worked, in the municipality's calendar (YYYY-MM-DD).")
    hours: int | None = Field(None, ge=0, le=24, description="Whole hours; then minutes are 0-59.")
    minutes: int | None = Field(
        None, ge=0, le=24 * 60, validate_default=True, description="Minutes, or all of the time in minutes."
    )
    note: str = Field("", max_length=MAX_NOTE, description="A short note for whoever confirms (what was done).")

    @field_validator("note")
    @classmethod
    def _one_line(cls, value: str) -> str:
        return _plain_text(value)

    @field_validator("minutes")
    @classmethod
    def _some_time(cls, value: int | None, info: ValidationInfo) -> int | None:
        # On minutes, so that a refusal names a field (hours is validated before it).
        hours = info.data.get("hours")
        if hours is not None and value is not None and value > 59:
            raise ValueError("with hours, give minutes from 0 to 59")
        if (hours or 0) * 60 + (value or 0) < 1:
            raise ValueError("give the time worked: minutes, or hours and minutes")
        return value

    @property
    def total_minutes(self) -> int:
        return (self.hours or 0) * 60 + (self.minutes or 0)

    def draft(self) -> HoursDraft:
        return HoursDraft(str(self.need_id), self.date, self.total_minutes, self.note)


class NewHours(HoursBody):
    entry_id: UUID | None = Field(
        None, description="Your own id for the entry: sending the same entry again then logs it once."
    )


class Rejection(BaseModel):
    reason: str = Field(min_length=1, max_length=MAX_REASON, description="Why, for the volunteer to read.")

    @field_validator("reason")
    @classmethod
    def _said(cls, value: str) -> str:
        cleaned = _plain_text(value)
        if not cleaned:
            raise ValueError("say why the hours are not confirmed")
        return cleaned


class DeciderView(BaseModel):
    subject: str
    role: Literal["coordinator", "initiative-admin"]


class HoursView(BaseModel):
    entry_id: str
    volunteer_id: str
    need_id: str
    organisation_id: str
    organisation_name: str | None = Field(description="As the registry last named it.")
    category: NeedCategory
    description: str | None = Field(description="The need's description.")
    date: dt.date
    minutes: int
    note: str
    state: HoursState
    logged_at: dt.datetime
    updated_at: dt.datetime
    decided_at: dt.datetime | None = Field(description="When it was confirmed or rejected.")
    decided_by: DeciderView | None = Field(description="Who confirmed or rejected it, as what.")
    rejection_reason: str | None


class LoggableNeed(BaseModel):
    need_id: str
    organisation_id: str
    organisation_name: str | None
    category: NeedCategory
    description: str
    first_day: dt.date = Field(description="The first day hours may be logged for.")
    last_day: dt.date | None = Field(description="The last day (the need's end, its closing, a step back); null: open.")


class OrganisationHours(BaseModel):
    organisation_id: str
    organisation_name: str | None
    confirmed_minutes: int


class YearHours(BaseModel):
    year: int
    confirmed_minutes: int
    confirmed_hours: float = Field(description="confirmed_minutes in hours, to two decimals.")
    confirmed_entries: int
    pending_minutes: int = Field(description="Logged and not decided yet.")
    organisations: list[OrganisationHours] = Field(description="Confirmed minutes per organisation, most first.")


class HoursSummary(BaseModel):
    years: list[YearHours] = Field(description="The latest year first; years with confirmed or pending hours.")


class OfficeHoursList(BaseModel):
    items: list[HoursView] = Field(description="The oldest day first.")
    more: bool = Field(description="More entries than limit matched.")


# -- the volunteer's routes ---------------------------------------------------------------------


@router.get("/volunteers/me/hours", summary="My logged hours, the latest day first")
async def my_hours(matching: Service, principal: Volunteer) -> list[HoursView]:
    tenant = tenant_of(principal)
    return await _views(matching, tenant, await matching.store.hours_of_volunteer(tenant, principal.volunteer_id))


@router.get("/volunteers/me/needs-for-hours", summary="The needs I may log hours for now")
async def loggable(matching: Service, principal: Volunteer) -> list[LoggableNeed]:
    tenant = tenant_of(principal)
    found = await matching.loggable_needs(tenant, principal.volunteer_id)
    names = await matching.store.organisation_names(tenant, sorted({c.need.organisation_id for c in found}))
    return [_loggable(c, names) for c in found]


@router.get("/volunteers/me/hours-summary", summary="My confirmed hours per year and organisation")
async def my_summary(matching: Service, principal: Volunteer) -> HoursSummary:
    tenant = tenant_of(principal)
    totals = yearly_totals(await matching.store.hours_of_volunteer(tenant, principal.volunteer_id))
    ids = sorted({o.organisation_id for year in totals for o in year.organisations})
    names = await matching.store.organisation_names(tenant, ids)
    return HoursSummary(
        years=[
            YearHours(
                year=year.year,
                confirmed_minutes=year.confirmed_minutes,
                confirmed_hours=round(year.confirmed_minutes / 60, 2),
                confirmed_entries=year.confirmed_entries,
                pending_minutes=year.pending_minutes,
                organisations=[
                    OrganisationHours(
                        organisation_id=o.organisation_id,
                        organisation_name=names.get(o.organisation_id),
                        confirmed_minutes=o.confirmed_minutes,
                    )
                    for o in year.organisations
                ],
            )
            for year in totals
        ]
    )


@router.post(
    "/volunteers/me/hours",
    status_code=201,
    responses={
        200: {"model": HoursView, "description": "The same entry sent again (entry_id): as logged"},
        **VOLUNTEER_REFUSALS,
    },
    summary="Log hours for a need I committed to (pending until confirmed)",
)
async def log_hours(matching: Service, principal: Volunteer, body: NewHours, response: Response) -> HoursView:
    tenant = tenant_of(principal)
    entry_id = str(body.entry_id) if body.entry_id else None
    result = await matching.log_hours(tenant, principal.volunteer_id, body.draft(), entry_id)
    if result.outcome is HoursOutcome.UNCHANGED:
        response.status_code = 200
    return await _done(matching, tenant, result, {HoursOutcome.LOGGED, HoursOutcome.UNCHANGED})


@router.put(
    "/volunteers/me/hours/{entry_id}",
    responses=VOLUNTEER_REFUSALS,
    summary="Correct an entry not confirmed yet (a rejected one is pending again)",
)
async def correct_hours(matching: Service, principal: Volunteer, entry_id: UUID, body: HoursBody) -> HoursView:
    tenant = tenant_of(principal)
    result = await matching.correct_hours(tenant, principal.volunteer_id, str(entry_id), body.draft())
    return await _done(matching, tenant, result, {HoursOutcome.CORRECTED})


@router.delete(
    "/volunteers/me/hours/{entry_id}",
    status_code=204,
    responses=problem_responses(404, 409),
    summary="Delete an entry not confirmed yet",
)
async def delete_hours(matching: Service, principal: Volunteer, entry_id: UUID) -> None:
    result = await matching.delete_hours(tenant_of(principal), principal.volunteer_id, str(entry_id))
    if result.outcome is not HoursOutcome.DELETED:
        raise _refusal(result)


# -- the office's routes ------------------------------------------------------------------------


@router.get("/tenants/{tenant}/hours", responses=problem_responses(404), summary="Logged hours to confirm")
async def office_hours(
    matching: Service,
    scope: Office,
    state: Annotated[ListedState, Query(description="all: entries in every state")] = "pending",
    organisation_id: Annotated[UUID | None, Query(description="Entries for this organisation's needs")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIST)] = 100,
) -> OfficeHoursList:
    """Coordinators: the tenant's entries (or one organisation's); initiative admins: those for
    their organisation's needs (asking for another organisation is a 404)."""
    organisation = str(organisation_id) if organisation_id else None
    if scope.organisation is not None:
        if organisation is not None and organisation != scope.organisation:
            raise Problem(404, "Not found", f"no organisation {organisation}")
        organisation = scope.organisation
    wanted = None if state == "all" else HoursState(state)
    found = await matching.store.hours_for_office(scope.tenant, wanted, organisation, limit + 1)
    return OfficeHoursList(items=await _views(matching, scope.tenant, found[:limit]), more=len(found) > limit)


@router.post("/tenants/{tenant}/hours/{entry_id}/confirm", responses=OFFICE_REFUSALS, summary="Confirm a pending entry")
async def confirm_hours(matching: Service, scope: Office, entry_id: UUID) -> HoursView:
    result = await matching.decide_hours(scope, str(entry_id), confirm=True)
    return await _done(matching, scope.tenant, result, {HoursOutcome.CONFIRMED})


@router.post(
    "/tenants/{tenant}/hours/{entry_id}/reject",
    responses=OFFICE_REFUSALS,
    summary="Reject a pending entry, saying why (the volunteer may correct it)",
)
async def reject_hours(matching: Service, scope: Office, entry_id: UUID, body: Rejection) -> HoursView:
    result = await matching.decide_hours(scope, str(entry_id), confirm=False, reason=body.reason)
    return await _done(matching, scope.tenant, result, {HoursOutcome.REJECTED})


# -- helpers ------------------------------------------------------------------------------------

_REFUSALS: dict[HoursOutcome, tuple[int, str, str]] = {
    HoursOutcome.NOT_FOUND: (404, "Not found", "no such entry of hours that you may see"),
    HoursOutcome.ALREADY_CONFIRMED: (409, "Already confirmed", "confirmed hours can no longer be changed"),
    HoursOutcome.ALREADY_DECIDED: (409, "Already decided", "this entry was confirmed or rejected before"),
    HoursOutcome.OWN_ENTRY: (403, "Forbidden", "nobody confirms or rejects their own hours"),
    HoursOutcome.ID_TAKEN: (409, "Entry id taken", "an entry with this id exists with other content"),
}


def _refusal(result: HoursResult) -> Problem:
    if result.outcome is HoursOutcome.INVALID:
        # Each broken rule names its field, with the rule for clients that show their own text.
        errors = [{"field": r.field, "message": r.message, "rule": r.rule.value} for r in result.refusals]
        return Problem(
            422,
            "Invalid request",
            "; ".join(f"{r.field}: {r.message}" for r in result.refusals),
            outcome=result.outcome.value,
            errors=errors,
        )
    status, title, detail = _REFUSALS.get(result.outcome, (409, "Conflict", result.outcome.value))
    return Problem(status, title, detail, outcome=result.outcome.value)


async def _done(matching: Matching, tenant: str, result: HoursResult, done: set[HoursOutcome]) -> HoursView:
    if result.outcome not in done or result.entry is None:
        raise _refusal(result)
    return (await _views(matching, tenant, [result.entry]))[0]


async def _views(matching: Matching, tenant: str, entries: list[HoursEntry]) -> list[HoursView]:
    names = await matching.store.organisation_names(tenant, sorted({e.organisation_id for e in entries}))
    needs = await matching.store.need_records_by_id(tenant, sorted({e.need_id for e in entries}))
    return [
        HoursView(
            entry_id=e.id,
            volunteer_id=e.volunteer_id,
            need_id=e.need_id,
            organisation_id=e.organisation_id,
            organisation_name=names.get(e.organisation_id),
            category=NeedCategory(e.category),
            description=needs[e.need_id].details.get("description") if e.need_id in needs else None,
            date=e.day,
            minutes=e.minutes,
            note=e.note,
            state=e.state,
            logged_at=e.logged_at,
            updated_at=e.updated_at,
            decided_at=e.decided_at,
            decided_by=_decider(e.decided_by),
            rejection_reason=e.rejection_reason,
        )
        for e in entries
    ]


def _decider(actor: Actor | None) -> DeciderView | None:
    return None if actor is None else DeciderView.model_validate({"subject": actor.subject, "role": actor.role})


def _loggable(found: Commitment, names: dict[str, str]) -> LoggableNeed:
    need = found.need
    return LoggableNeed(
        need_id=need.need_id,
        organisation_id=need.organisation_id,
        organisation_name=names.get(need.organisation_id),
        category=NeedCategory(need.details["category"]),
        description=need.details["description"],
        first_day=found.first_day,
        last_day=found.last_day,
    )
