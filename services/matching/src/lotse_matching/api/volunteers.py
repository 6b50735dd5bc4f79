"""The volunteers' own API (token subject = volunteer id): proposals, answers, open needs.

Where a need is (issue 18): for housing help or childcare its place can be where a refugee family
lives, so a volunteer reads its district and their distance to it until they commit, and the exact
place (``place``: point and postcode) only on a proposal they accepted (and in their engagements).
Coarsened here, before it leaves the service; the office's routes keep the exact place.

How far (issue 18): before committing a volunteer reads the rough distance only (to the need's
~1 km grid cell, in half kilometres, ``candidates.rough_distance_km``) and no score (the score
follows the exact distance): exact distances from home points of their choice would give the
place by trilateration. The exact distance comes with the exact place, once they accepted.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from lotse_contracts import MatchReason
from lotse_contracts.events.matching import AnswerChannel
from lotse_contracts.events.partner import DeclineReason
from lotse_contracts.events.values import Place
from lotse_matching.api.access import Service, Volunteer
from lotse_matching.domain import Outcome
from lotse_matching.store import NeedRecord, Proposal, ProposalKind, ProposalStatus
from lotse_runtime.auth import tenant_of
from lotse_runtime.http_guards import PublicRateLimit, RateLimited
from lotse_runtime.problems import Problem, problem_responses

router = APIRouter()
REFUSALS = problem_responses(404, 409)


async def _commitment_counted(request: Request, principal: Volunteer) -> None:
    """Picks and step-backs share one allowance per volunteer (``LOTSE_COMMITMENT_RATE_LIMIT``):
    each tells the office and starts another search, so a loop of them (a script, a stuck
    button) must not flood the office's inbox or the other volunteers with proposals. 429 beyond."""
    limit: PublicRateLimit = request.app.state.commitment_rate_limit
    retry_after = await limit.retry_after_for(f"volunteer:{tenant_of(principal)}:{principal.volunteer_id}", "commit")
    if retry_after is not None:
        raise RateLimited(retry_after)


COUNTED = [Depends(_commitment_counted)]
LIMITED_REFUSALS = problem_responses(404, 409, 429)


class ProposalView(BaseModel):
    proposal_id: str
    need_id: str
    category: str | None
    description: str | None
    district: str | None
    place: Place | None = Field(description="The exact place: only once the volunteer accepted the proposal.")
    status: str
    score: float | None = Field(default=None, description="Not shown to volunteers (it follows the exact distance).")
    distance_km: float | None = Field(description="Rough until accepted: to the need's grid cell, in 0.5 km steps.")
    reasons: list[MatchReason]
    proposed_at: datetime
    expires_at: datetime | None


class OpenNeedView(BaseModel):
    need_id: str
    category: str
    description: str
    district: str | None = Field(description="Where, as close as a volunteer who has not committed reads it.")
    score: float | None = Field(default=None, description="Not shown to volunteers (it follows the exact distance).")
    distance_km: float = Field(description="Rough: to the need's grid cell, in 0.5 km steps.")
    reasons: list[MatchReason]


class AnswerResult(BaseModel):
    outcome: Outcome


class DeclineBody(BaseModel):
    reason: DeclineReason | None = None


@router.get("/volunteers/me/proposals", summary="My proposals, newest last")
async def my_proposals(matching: Service, principal: Volunteer) -> list[ProposalView]:
    tenant = tenant_of(principal)
    mine = await matching.store.proposal_records_of_volunteer(tenant, principal.volunteer_id)
    found = [p for p in mine if p.kind is ProposalKind.PROPOSAL]
    needs = await matching.store.need_records_by_id(tenant, sorted({p.need_id for p in found}))
    return [
        _proposal_view(p, need, matching.rough_distance_for(tenant, principal.volunteer_id, need) if need else None)
        for p in found
        for need in [needs.get(p.need_id)]
    ]


@router.post("/volunteers/me/proposals/{proposal_id}/accept", responses=REFUSALS, summary="Accept a proposal")
async def accept(matching: Service, proposal_id: UUID, principal: Volunteer) -> AnswerResult:
    outcome = await matching.answer(
        tenant_of(principal),
        str(proposal_id),
        "accept",
        AnswerChannel.VOLUNTEER_APP,
        volunteer_id=principal.volunteer_id,
    )
    return _result(outcome)


@router.post("/volunteers/me/proposals/{proposal_id}/decline", responses=REFUSALS, summary="Decline a proposal")
async def decline(
    matching: Service, proposal_id: UUID, principal: Volunteer, body: DeclineBody | None = None
) -> AnswerResult:
    outcome = await matching.answer(
        tenant_of(principal),
        str(proposal_id),
        "decline",
        AnswerChannel.VOLUNTEER_APP,
        volunteer_id=principal.volunteer_id,
        reason=body.reason if body else None,
    )
    return _result(outcome)


@router.post(
    "/volunteers/me/engagements/{need_id}/step-back",
    responses=LIMITED_REFUSALS,
    dependencies=COUNTED,
    summary="Step back from a need I accepted",
)
async def step_back(matching: Service, need_id: UUID, principal: Volunteer) -> AnswerResult:
    outcome = await matching.step_back(tenant_of(principal), principal.volunteer_id, str(need_id))
    return _result(outcome)


@router.get("/volunteers/me/open-needs", summary="Open needs that fit me, best first, with reasons")
async def open_needs(matching: Service, principal: Volunteer) -> list[OpenNeedView]:
    tenant = tenant_of(principal)
    views = []
    for need_id, fit in matching.open_needs_for(tenant, principal.volunteer_id):
        need = await matching.store.need_record(tenant, need_id)
        if need is None:
            continue
        views.append(
            OpenNeedView(
                need_id=need_id,
                category=need.details["category"],
                description=need.details["description"],
                district=need.details["place"].get("district"),
                distance_km=fit.rough_distance_km,
                reasons=list(fit.reasons),
            )
        )
    return views


@router.post(
    "/volunteers/me/open-needs/{need_id}/pick",
    responses=LIMITED_REFUSALS,
    dependencies=COUNTED,
    summary="Take an open need myself",
)
async def pick(matching: Service, need_id: UUID, principal: Volunteer) -> AnswerResult:
    outcome = await matching.pick(tenant_of(principal), principal.volunteer_id, str(need_id))
    return _result(outcome)


_REFUSALS: dict[Outcome, tuple[int, str, str]] = {
    Outcome.NOT_FOUND: (404, "Not found", "no such proposal, need or engagement of yours"),
    Outcome.NO_LONGER_NEEDED: (409, "No longer needed", "thank you! this need is already staffed or closed"),
    Outcome.ALREADY_DECLINED: (409, "Already answered", "you declined this proposal before"),
    Outcome.EXPIRED: (409, "Expired", "the time to answer this proposal is over"),
    Outcome.LIMIT_REACHED: (409, "Limit reached", "you have as many engagements as you chose, or one at that time"),
    Outcome.NOT_A_FIT: (409, "Not a fit", "this need does not fit your profile or time"),
}


def _result(outcome: Outcome) -> AnswerResult:
    if outcome in _REFUSALS:
        status, title, detail = _REFUSALS[outcome]
        raise Problem(status, title, detail, outcome=outcome.value)
    return AnswerResult(outcome=outcome)


def _proposal_view(proposal: Proposal, need: NeedRecord | None, rough_distance_km: float | None) -> ProposalView:
    details: dict[str, Any] = need.details if need else {}
    place = details.get("place") or {}
    committed = proposal.status is ProposalStatus.ACCEPTED
    return ProposalView(
        proposal_id=proposal.id,
        need_id=proposal.need_id,
        category=details.get("category"),
        description=details.get("description"),
        district=place.get("district"),
        place=Place.model_validate(place) if committed and "point" in place else None,
        status=proposal.status.value,
        # None once erased (with the volunteer or by retention): nothing to compute again.
        distance_km=proposal.distance_km if committed or proposal.distance_km is None else rough_distance_km,
        reasons=list(proposal.reasons),
        proposed_at=proposal.proposed_at,
        expires_at=proposal.expires_at,
    )
