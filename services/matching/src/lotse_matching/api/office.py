"""The coordination office's console (coordinators: the whole tenant; initiative admins: their
organisation's needs): the dashboard of needs that want something done, one need's staffing, one
volunteer's engagements and history, and the office's actions on a need: propose a volunteer it
chose (with a dry run first), record an answer given by phone or in person, release a committed
volunteer, start a new proposal round.

Every action goes through matching's unit of work and outbox, and records who did it. The POSTs
honour an ``Idempotency-Key`` header: a repeat with the same key changes nothing and answers
with the first request's outcome and proposals, as they stand now (``Idempotent-Replayed: true``).
"""

from __future__ import annotations

import hashlib
import re
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Literal
from uuid import UUID
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, BeforeValidator, Field, model_validator

from lotse_contracts import MatchReason
from lotse_contracts.events.matching import AnswerChannel, WithdrawReason
from lotse_contracts.events.needs import NeedCategory
from lotse_contracts.events.partner import DeclineReason
from lotse_matching.api.access import Office, Service, not_found
from lotse_matching.domain import Outcome
from lotse_matching.office import Filters, NeedSituation, NextStep, Rule, Situation, Windows, situation, timing
from lotse_matching.service import IdempotentRequest, Matching, OfficeResult
from lotse_matching.store import Actor, NeedRecord, NeedStatus, Proposal, ProposalKind, ProposalStatus, StaffingState
from lotse_runtime.problems import Problem, problem_responses

router = APIRouter(tags=["coordination office"])
READ_REFUSALS = problem_responses(404)
ACTION_REFUSALS = problem_responses(404, 409, 422)
MAX_WINDOW_HOURS = 24 * 30

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=128,
        description="Repeat a POST with the same key to get the first result; nothing is done twice (kept a day).",
    ),
]

ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _calendar_date(value: object) -> object:
    # Pydantic would read "0" as seconds since 1970; a query's date is YYYY-MM-DD or refused.
    if isinstance(value, str) and not ISO_DATE.fullmatch(value):
        raise ValueError("give a date as YYYY-MM-DD")
    return value


QueryDate = Annotated[date, BeforeValidator(_calendar_date)]


# -- response models ----------------------------------------------------------------------------


class ActorView(BaseModel):
    """Who of the office (or of an initiative) did it: the token's subject and the role."""

    subject: str
    role: Literal["coordinator", "initiative-admin"]


class NeedSummary(BaseModel):
    """A need as the console lists it: what matching knows of it and how far its staffing is."""

    need_id: str
    organisation_id: str
    category: NeedCategory
    description: str
    district: str | None
    schedule_kind: Literal["one_off", "weekly"]
    starts_at: datetime = Field(description="Its start, or a weekly need's first occurrence.")
    state: StaffingState = Field(
        description="Matching's staffing: open, staffed or unstaffed (nobody left, escalated)."
    )
    escalated: bool = Field(description="Matching told the organisation that it is not staffed in time.")
    volunteers_needed: int
    committed: int = Field(description="Volunteers who said yes.")
    open_proposals: int = Field(description="Proposals waiting for an answer.")
    next_expiry: datetime | None = Field(description="When the first of the open proposals expires unanswered.")
    next_step: NextStep | None = Field(description="The next thing to do; null when there is nothing to do.")


class ExpiringProposal(BaseModel):
    proposal_id: str
    need_id: str
    volunteer_id: str
    proposed_at: datetime
    expires_at: datetime
    next_step: NextStep = NextStep.CALL_VOLUNTEER


class Dashboard(BaseModel):
    """The needs open at the registry that want something done, soonest start first; a need may be
    in several lists. Staffed needs whose time is not over are in none."""

    generated_at: datetime
    not_fully_proposed: list[NeedSummary] = Field(
        description="Still looking, and fewer people asked than still needed."
    )
    waiting_for_answers: list[NeedSummary] = Field(description="Still looking, with proposals waiting for answers.")
    starting_soon: list[NeedSummary] = Field(description="Starting within starting_within_hours without enough people.")
    unstaffed: list[NeedSummary] = Field(description="Nobody left to ask, or escalated: start a round or propose.")
    over: list[NeedSummary] = Field(description="Their time is over and they are still open: close them.")
    expiring_proposals: list[ExpiringProposal] = Field(
        description="Open proposals expiring within expiring_within_hours, first expiry first."
    )


class ProposalState(StrEnum):
    PROPOSED = "proposed"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    EXPIRED = "expired"
    WITHDRAWN = "withdrawn"
    STEPPED_BACK = "stepped_back"  # also a volunteer the office released (released_by)


STATES: dict[ProposalStatus, ProposalState] = {
    ProposalStatus.OPEN: ProposalState.PROPOSED,
    ProposalStatus.ACCEPTED: ProposalState.ACCEPTED,
    ProposalStatus.DECLINED: ProposalState.DECLINED,
    ProposalStatus.EXPIRED: ProposalState.EXPIRED,
    ProposalStatus.WITHDRAWN: ProposalState.WITHDRAWN,
    ProposalStatus.STEPPED_BACK: ProposalState.STEPPED_BACK,
}


class StaffingProposal(BaseModel):
    """A proposal of a volunteer for the need, or a volunteer's own pick of it (kind pick)."""

    proposal_id: str
    volunteer_id: str
    kind: ProposalKind
    state: ProposalState
    decline_reason: DeclineReason | None
    withdraw_reason: WithdrawReason | None
    score: float | None
    distance_km: float | None
    reasons: list[MatchReason]
    proposed_at: datetime
    expires_at: datetime | None
    answered_at: datetime | None = Field(
        description="When it was answered or ended; for an answer the office recorded, when it recorded it."
    )
    answered_via: AnswerChannel | None
    proposed_by: ActorView | None = Field(description="The office chose this volunteer; null: matching's round.")
    recorded_by: ActorView | None = Field(description="Who of the office recorded the answer given to them.")
    released_by: ActorView | None = Field(description="Who of the office released the volunteer.")


class CommittedVolunteer(BaseModel):
    volunteer_id: str
    kind: ProposalKind = Field(description="proposal: accepted a proposal; pick: took the need themselves.")
    proposal_id: str | None
    committed_at: datetime | None


class NeedStaffing(BaseModel):
    need: NeedSummary
    round_started_at: datetime | None = Field(description="When the office last started a proposal round.")
    round_started_by: ActorView | None
    proposals: list[StaffingProposal] = Field(description="Oldest first.")
    committed: list[CommittedVolunteer] = Field(description="In the order they committed.")


class NeedBrief(BaseModel):
    """A need as a volunteer's history names it: what, when, and where it stands."""

    need_id: str
    organisation_id: str
    category: NeedCategory
    description: str
    district: str | None
    schedule_kind: Literal["one_off", "weekly"]
    starts_at: datetime = Field(description="Its start, or a weekly need's first occurrence.")
    status: NeedStatus = Field(description="The need at the registry: open, cancelled or closed.")
    state: StaffingState = Field(description="Matching's staffing of it.")
    over: bool = Field(description="Its time is over.")


class VolunteerProposal(StaffingProposal):
    need_id: str


class VolunteerStaffing(BaseModel):
    """One volunteer's engagements and history with the office: every proposal and pick, the
    needs they are for, and the needs the volunteer is committed to now."""

    volunteer_id: str
    committed: list[str] = Field(description="Needs the volunteer is committed to now (open at the registry).")
    proposals: list[VolunteerProposal] = Field(description="Proposals and picks, newest first.")
    needs: list[NeedBrief] = Field(description="The needs of those proposals, soonest start first.")


class BrokenRuleView(BaseModel):
    rule: Rule
    detail: str = Field(description="In English; the portal shows its own text for the rule.")


class VolunteerCheck(BaseModel):
    """What proposing the volunteer would find: the broken rules, or the fit with its reasons."""

    volunteer_id: str
    fits: bool
    broken_rules: list[BrokenRuleView]
    score: float | None
    distance_km: float | None
    reasons: list[MatchReason]


class ActionResult(BaseModel):
    outcome: Outcome
    proposals: list[StaffingProposal] = Field(description="Made or answered by the action.")


# -- request bodies -----------------------------------------------------------------------------


class ChosenVolunteer(BaseModel):
    volunteer_id: UUID


class RecordedAnswer(BaseModel):
    """An answer the volunteer gave the office by phone or in person."""

    choice: Literal["accept", "decline"]
    reason: DeclineReason | None = Field(None, description="Why they declined, if they said.")

    @model_validator(mode="after")
    def _reason_only_with_decline(self) -> RecordedAnswer:
        if self.reason is not None and self.choice != "decline":
            raise ValueError("a reason goes only with choice decline")
        return self


# -- routes -------------------------------------------------------------------------------------


@router.get("/tenants/{tenant}/dashboard", responses=READ_REFUSALS, summary="The office's dashboard of open needs")
async def dashboard(
    matching: Service,
    scope: Office,
    organisation_id: UUID | None = None,
    category: NeedCategory | None = None,
    district: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    starts_from: Annotated[QueryDate | None, Query(description="First day, inclusive, in the tenant's zone")] = None,
    starts_until: Annotated[QueryDate | None, Query(description="Last day, inclusive, in the tenant's zone")] = None,
    starting_within_hours: Annotated[int, Query(ge=1, le=MAX_WINDOW_HOURS)] = 48,
    expiring_within_hours: Annotated[int, Query(ge=1, le=MAX_WINDOW_HOURS)] = 48,
) -> Dashboard:
    filters = Filters(
        organisation_id=str(organisation_id) if organisation_id else None,
        category=category.value if category else None,
        district=district,
        starts_from=starts_from,
        starts_until=starts_until,
    )
    windows = Windows(timedelta(hours=starting_within_hours), timedelta(hours=expiring_within_hours))
    now = matching.clock()
    found = await matching.office_dashboard(scope, filters, windows)
    expiring = sorted(
        (p for where in found for p in where.open_proposals if p.expires_at and p.expires_at <= now + windows.expiring),
        key=lambda p: (p.expires_at, p.id),
    )
    return Dashboard(
        generated_at=now,
        not_fully_proposed=_listed(found, Situation.NOT_FULLY_PROPOSED),
        waiting_for_answers=_listed(found, Situation.WAITING_FOR_ANSWERS),
        starting_soon=_listed(found, Situation.STARTING_SOON),
        unstaffed=_listed(found, Situation.UNSTAFFED),
        over=_listed(found, Situation.OVER),
        expiring_proposals=[
            ExpiringProposal(
                proposal_id=p.id,
                need_id=p.need_id,
                volunteer_id=p.volunteer_id,
                proposed_at=p.proposed_at,
                expires_at=p.expires_at or now,
            )
            for p in expiring
        ],
    )


@router.get(
    "/tenants/{tenant}/needs/{need_id}/staffing", responses=READ_REFUSALS, summary="One need's proposals and people"
)
async def need_staffing(matching: Service, scope: Office, need_id: UUID) -> NeedStaffing:
    found = await matching.office_need(scope, str(need_id))
    if found is None:
        raise not_found("need", str(need_id))
    record, proposals = found
    committed = []
    for volunteer_id in record.staffing.committed:
        theirs = [p for p in proposals if p.volunteer_id == volunteer_id and p.status is ProposalStatus.ACCEPTED]
        latest = theirs[-1] if theirs else None
        committed.append(
            CommittedVolunteer(
                volunteer_id=volunteer_id,
                kind=latest.kind if latest else ProposalKind.PROPOSAL,
                proposal_id=latest.id if latest else None,
                committed_at=(latest.answered_at or latest.proposed_at) if latest else None,
            )
        )
    return NeedStaffing(
        need=_summary(matching, record, proposals),
        round_started_at=record.staffing.round_started_at,
        round_started_by=_actor(record.staffing.round_started_by),
        proposals=[_proposal_view(p) for p in proposals],
        committed=committed,
    )


@router.get(
    "/tenants/{tenant}/volunteers/{volunteer_id}/staffing",
    responses=READ_REFUSALS,
    summary="One volunteer's engagements, proposals and picks",
)
async def volunteer_staffing(matching: Service, scope: Office, volunteer_id: UUID) -> VolunteerStaffing:
    """Coordinators see any volunteer of the tenant, initiative admins their own organisation's
    (as in the registry), and of them only what concerns their organisation's needs: another
    organisation's need is that organisation's business. A volunteer matching does not know, or
    knows only as erased, is not found."""
    tenant, wanted = scope.tenant, str(volunteer_id)
    volunteer = await matching.store.volunteer(tenant, wanted)
    if volunteer is None or volunteer.get("erased") or not scope.may_see_volunteer(volunteer.get("organisation_id")):
        raise not_found("volunteer", wanted)
    proposals = await matching.store.proposal_records_of_volunteer(tenant, wanted)
    found = await matching.store.need_records_by_id(tenant, sorted({p.need_id for p in proposals}))
    needs = {need_id: record for need_id, record in found.items() if scope.may_manage(record)}
    now, timezone = matching.clock(), matching.index(tenant).timezone
    briefs = sorted(
        (_brief(record, timezone, now) for record in needs.values()), key=lambda b: (b.starts_at, b.need_id)
    )
    committed = {
        need_id
        for need_id, record in needs.items()
        if record.status is NeedStatus.OPEN and wanted in record.staffing.committed
    }
    return VolunteerStaffing(
        volunteer_id=wanted,
        committed=[brief.need_id for brief in briefs if brief.need_id in committed],
        proposals=[
            VolunteerProposal(**_proposal_view(p).model_dump(), need_id=p.need_id)
            for p in sorted(proposals, key=lambda p: (p.proposed_at, p.id), reverse=True)
            if p.need_id in needs
        ],
        needs=briefs,
    )


@router.get(
    "/tenants/{tenant}/needs/{need_id}/candidates/{volunteer_id}",
    responses=problem_responses(404, 409),
    summary="Check a volunteer for a need without proposing them: broken rules, or reasons",
)
async def check_volunteer(matching: Service, scope: Office, need_id: UUID, volunteer_id: UUID) -> VolunteerCheck:
    result = await matching.office_check(scope, str(need_id), str(volunteer_id))
    if result.outcome not in (Outcome.PROPOSED, Outcome.BROKEN_RULES):
        raise _refusal(result)
    fit = result.fit
    return VolunteerCheck(
        volunteer_id=str(volunteer_id),
        fits=fit is not None,
        broken_rules=[BrokenRuleView(rule=b.rule, detail=b.detail) for b in result.broken],
        score=fit.score if fit else None,
        distance_km=fit.distance_km if fit else None,
        reasons=list(fit.reasons) if fit else [],
    )


@router.post(
    "/tenants/{tenant}/needs/{need_id}/proposals",
    status_code=201,
    responses=ACTION_REFUSALS,
    summary="Propose a volunteer the office chose (the hard rules apply; 422 names each one broken)",
)
async def propose(
    request: Request,
    matching: Service,
    scope: Office,
    need_id: UUID,
    body: ChosenVolunteer,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    repeat = await _idempotent(request, scope.actor, idempotency_key)
    result = await matching.office_propose(scope, str(need_id), str(body.volunteer_id), repeat)
    return await _answer(matching, scope.tenant, result, {Outcome.PROPOSED}, status=201)


@router.post(
    "/tenants/{tenant}/needs/{need_id}/proposals/{proposal_id}/answer",
    responses=ACTION_REFUSALS,
    summary="Record an answer the volunteer gave by phone or in person",
)
async def record_answer(
    request: Request,
    matching: Service,
    scope: Office,
    need_id: UUID,
    proposal_id: UUID,
    body: RecordedAnswer,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    repeat = await _idempotent(request, scope.actor, idempotency_key)
    result = await matching.office_answer(scope, str(need_id), str(proposal_id), body.choice, body.reason, repeat)
    return await _answer(matching, scope.tenant, result, {Outcome.ACCEPTED, Outcome.DECLINED})


@router.post(
    "/tenants/{tenant}/needs/{need_id}/committed/{volunteer_id}/release",
    responses=ACTION_REFUSALS,
    summary="Release a committed volunteer (who called in sick); the need goes round again",
)
async def release(
    request: Request,
    matching: Service,
    scope: Office,
    need_id: UUID,
    volunteer_id: UUID,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    repeat = await _idempotent(request, scope.actor, idempotency_key)
    result = await matching.office_release(scope, str(need_id), str(volunteer_id), repeat)
    return await _answer(matching, scope.tenant, result, {Outcome.STEPPED_BACK})


@router.post(
    "/tenants/{tenant}/needs/{need_id}/rounds",
    responses=ACTION_REFUSALS,
    summary="Start a proposal round now; who declined or let a proposal expire may be asked again",
)
async def new_round(
    request: Request, matching: Service, scope: Office, need_id: UUID, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    repeat = await _idempotent(request, scope.actor, idempotency_key)
    result = await matching.office_round(scope, str(need_id), repeat)
    return await _answer(matching, scope.tenant, result, {Outcome.ROUND_STARTED, Outcome.NO_CANDIDATES})


# -- helpers ------------------------------------------------------------------------------------


async def _idempotent(request: Request, actor: Actor, key: str | None) -> IdempotentRequest | None:
    if key is None:
        return None
    fingerprint = hashlib.sha256(request.method.encode() + request.url.path.encode() + await request.body())
    return IdempotentRequest(caller=actor.subject, key=key, fingerprint=fingerprint.hexdigest())


async def _answer(
    matching: Matching, tenant: str, result: OfficeResult, done: set[Outcome], *, status: int = 200
) -> JSONResponse:
    if result.outcome not in done:
        raise _refusal(result)
    proposals = []
    for proposal_id in result.proposal_ids:
        proposal = await matching.store.proposal_record(tenant, proposal_id)
        if proposal is not None:
            proposals.append(_proposal_view(proposal))
    body = ActionResult(outcome=result.outcome, proposals=proposals)
    headers = {"Idempotent-Replayed": "true"} if result.replayed else None
    return JSONResponse(body.model_dump(mode="json"), status_code=status, headers=headers)


_REFUSALS: dict[Outcome, tuple[int, str, str]] = {
    Outcome.NOT_FOUND: (404, "Not found", "no such need, proposal or volunteer that you may see"),
    Outcome.NO_LONGER_NEEDED: (409, "No longer needed", "the need is staffed, cancelled or closed"),
    Outcome.ALREADY_ACCEPTED: (409, "Already answered", "the volunteer accepted this proposal before"),
    Outcome.ALREADY_DECLINED: (409, "Already answered", "the volunteer declined this proposal before"),
    Outcome.EXPIRED: (409, "Expired", "the time to answer this proposal is over"),
    Outcome.LIMIT_REACHED: (
        409,
        "Limit reached",
        "the volunteer has as many engagements as they chose, or one at that time",
    ),
    Outcome.NOT_COMMITTED: (409, "Not committed", "the volunteer is not committed to this need"),
    Outcome.KEY_REUSED: (422, "Idempotency-Key reused", "this key was used for a different request"),
}


def _refusal(result: OfficeResult) -> Problem:
    if result.outcome is Outcome.BROKEN_RULES:
        broken = [{"rule": b.rule.value, "detail": b.detail} for b in result.broken]
        return Problem(
            422,
            "Hard rules broken",
            "the volunteer cannot be proposed: " + "; ".join(f"{b.rule.value}: {b.detail}" for b in result.broken),
            outcome=result.outcome.value,
            broken_rules=broken,
            errors=[{"field": "volunteer_id", "message": f"{b.rule.value}: {b.detail}"} for b in result.broken],
        )
    status, title, detail = _REFUSALS.get(result.outcome, (409, "Conflict", result.outcome.value))
    return Problem(status, title, detail, outcome=result.outcome.value)


def _actor(actor: Actor | None) -> ActorView | None:
    return None if actor is None else ActorView.model_validate({"subject": actor.subject, "role": actor.role})


def _proposal_view(proposal: Proposal) -> StaffingProposal:
    return StaffingProposal(
        proposal_id=proposal.id,
        volunteer_id=proposal.volunteer_id,
        kind=proposal.kind,
        state=STATES[proposal.status],
        decline_reason=proposal.decline_reason,
        withdraw_reason=proposal.withdraw_reason,
        score=proposal.score,
        distance_km=proposal.distance_km,
        reasons=list(proposal.reasons),
        proposed_at=proposal.proposed_at,
        expires_at=proposal.expires_at,
        answered_at=proposal.answered_at,
        answered_via=proposal.answered_via,
        proposed_by=_actor(proposal.proposed_by),
        recorded_by=_actor(proposal.recorded_by),
        released_by=_actor(proposal.released_by),
    )


def _summary(matching: Matching, record: NeedRecord, proposals: list[Proposal]) -> NeedSummary:
    """The need with its next step as the dashboard would show it (none when there is nothing to do)."""
    now, timezone = matching.clock(), matching.index(record.tenant).timezone
    waiting = [p for p in proposals if p.status is ProposalStatus.OPEN]
    where = situation(record, waiting, timezone, now, Windows(timedelta(hours=48), timedelta(hours=48)))
    return summary_of(record, waiting, where, timing(record.details, timezone, now).starts_at)


def summary_of(
    record: NeedRecord, waiting: list[Proposal], where: NeedSituation | None, starts_at: datetime
) -> NeedSummary:
    details = record.details
    expiries = [p.expires_at for p in waiting if p.expires_at is not None]
    closed = record.status is not NeedStatus.OPEN
    return NeedSummary(
        need_id=record.need_id,
        organisation_id=record.organisation_id,
        category=details["category"],
        description=details["description"],
        district=(details.get("place") or {}).get("district"),
        schedule_kind=details["schedule"]["kind"],
        starts_at=starts_at,
        state=record.staffing.state,
        escalated=record.staffing.escalated,
        volunteers_needed=record.volunteers_needed,
        committed=len(record.staffing.committed),
        open_proposals=len(waiting),
        next_expiry=min(expiries, default=None),
        next_step=None if closed or where is None else where.next_step,
    )


def _brief(record: NeedRecord, timezone: ZoneInfo, now: datetime) -> NeedBrief:
    details, when = record.details, timing(record.details, timezone, now)
    return NeedBrief(
        need_id=record.need_id,
        organisation_id=record.organisation_id,
        category=details["category"],
        description=details["description"],
        district=(details.get("place") or {}).get("district"),
        schedule_kind=details["schedule"]["kind"],
        starts_at=when.starts_at,
        status=record.status,
        state=record.staffing.state,
        over=when.over,
    )


def _listed(found: list[NeedSituation], name: Situation) -> list[NeedSummary]:
    return [
        summary_of(where.record, list(where.open_proposals), where, where.timing.starts_at)
        for where in found
        if name in where.situations
    ]
