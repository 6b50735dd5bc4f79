"""HTTP: the answer-link pages and the volunteers' own API (token subject = volunteer id)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import parse_qs
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

from lotse_contracts import MatchReason
from lotse_contracts.events.matching import AnswerChannel
from lotse_contracts.events.partner import DeclineReason
from lotse_matching import pages
from lotse_matching.rounds import Outcome, reasons_of
from lotse_matching.service import Matching, settled_outcome
from lotse_runtime import answer_links
from lotse_runtime.auth import Principal, Role, requires
from lotse_runtime.http_guards import rate_limit_retry_after
from lotse_runtime.problems import Problem, problem_responses

router = APIRouter()
Volunteer = Annotated[Principal, Depends(requires(Role.VOLUNTEER))]
CHOICES = ("accept", "decline")
# Any text is taken, so that a damaged link gets the invalid-link page rather than a 422 problem.
ChoiceQuery = Annotated[str | None, Query(description="accept or decline", json_schema_extra={"enum": list(CHOICES)})]


def matching_of(request: Request) -> Matching:
    matching: Matching = request.app.state.matching
    return matching


def _html(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"text/html": {"schema": {"type": "string"}}}}


# The answer links are opened in a browser, so their refusals are pages for people, not problem documents.
ANSWER_PAGES: dict[int | str, dict[str, Any]] = {
    400: _html("The link was changed or is not a link of ours"),
    404: _html("The proposal no longer exists"),
    409: _html("The proposal was answered already, or the volunteer has as many engagements as they chose"),
    410: _html("The time to answer is over"),
    429: {
        **_html("Too many requests from this client; try again after Retry-After"),
        "headers": {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}},
    },
}
ANSWER_FORM = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "required": ["choice"],
                    "properties": {"choice": {"type": "string", "enum": ["accept", "decline"]}},
                }
            }
        },
    }
}
REFUSALS = problem_responses(404, 409)


# -- answer links ------------------------------------------------------------------------------


@router.get(
    "/answers/{token}",
    response_class=HTMLResponse,
    responses=ANSWER_PAGES,
    summary="Confirmation page of an answer link",
)
async def answer_page(request: Request, token: str, choice: ChoiceQuery = None) -> HTMLResponse:
    """Shows what the link would do and a button; a GET alone never answers (mail scanners
    open links)."""
    if (retry_after := await rate_limit_retry_after(request)) is not None:
        return _too_many(retry_after)
    matching = matching_of(request)
    if choice not in CHOICES:
        # A link cut short in a mail client, or changed by hand: a page, not a problem document.
        return await _page(matching, None, pages.TAMPERED)
    try:
        claims = answer_links.verify(_secret(matching), token, datetime.now(UTC))
    except answer_links.InvalidToken as error:
        return await _page(matching, error.tenant, pages.TAMPERED if error.reason == "tampered" else Outcome.EXPIRED)
    proposal = await matching.store.proposal(claims.tenant, claims.proposal_id)
    if proposal is None:
        return await _page(matching, claims.tenant, Outcome.NOT_FOUND)
    need = await matching.store.need(claims.tenant, proposal["need_id"])
    need_is_open = need is not None and need["status"] == "open" and need["staffing"]["state"] != "staffed"
    settled = settled_outcome(proposal, need_is_open, datetime.now(UTC))
    if settled is not None:
        return await _page(matching, claims.tenant, settled)
    summary = need["details"]["description"] if need else ""
    kind = pages.CONFIRM_ACCEPT if choice == "accept" else pages.CONFIRM_DECLINE
    return await _page(matching, claims.tenant, kind, summary=summary, choice=choice)


@router.post(
    "/answers/{token}",
    response_class=HTMLResponse,
    responses=ANSWER_PAGES,
    openapi_extra=ANSWER_FORM,  # read by hand: a form of one field needs no multipart parser
    summary="Apply the answer of an answer link",
)
async def answer_by_link(request: Request, token: str) -> HTMLResponse:
    if (retry_after := await rate_limit_retry_after(request)) is not None:
        return _too_many(retry_after)
    matching = matching_of(request)
    form = parse_qs((await request.body()).decode(errors="replace"))
    choice = (form.get("choice") or [""])[0]
    if choice not in CHOICES:
        return await _page(matching, None, pages.TAMPERED)
    try:
        claims = answer_links.verify(_secret(matching), token, datetime.now(UTC))
    except answer_links.InvalidToken as error:
        return await _page(matching, error.tenant, pages.TAMPERED if error.reason == "tampered" else Outcome.EXPIRED)
    outcome = await matching.answer(claims.tenant, claims.proposal_id, choice, AnswerChannel.VOLUNTEER_APP)
    return await _page(matching, claims.tenant, outcome)


def _too_many(retry_after: int) -> HTMLResponse:
    # Before the token is looked at, so the tenant's language is not known: every page language.
    html = pages.page(pages.TOO_MANY, list(pages.LANGUAGES))
    return HTMLResponse(html, status_code=429, headers={"Retry-After": str(retry_after)})


def _secret(matching: Matching) -> str:
    return answer_links.secret_value(matching.settings.answer_link_secret)


async def _page(
    matching: Matching, tenant: str | None, kind: str, *, summary: str = "", choice: str | None = None
) -> HTMLResponse:
    settings = await matching.store.tenant(tenant) if tenant else None
    languages = pages.languages_for(settings.get("default_language") if settings else None)
    html = pages.page(kind, languages, summary=summary, choice=choice)
    return HTMLResponse(html, status_code=pages.STATUS.get(kind, 200))


# -- the volunteer's own API -------------------------------------------------------------------


class ProposalView(BaseModel):
    proposal_id: str
    need_id: str
    category: str | None
    description: str | None
    status: str
    score: float | None
    distance_km: float | None
    reasons: list[MatchReason]
    proposed_at: datetime
    expires_at: datetime | None


class OpenNeedView(BaseModel):
    need_id: str
    category: str
    description: str
    score: float
    distance_km: float
    reasons: list[MatchReason]


class AnswerResult(BaseModel):
    outcome: Outcome


class DeclineBody(BaseModel):
    reason: DeclineReason | None = None


@router.get("/volunteers/me/proposals", summary="My proposals, newest last")
async def my_proposals(request: Request, principal: Volunteer) -> list[ProposalView]:
    matching = matching_of(request)
    tenant = _tenant(principal)
    mine = await matching.store.proposals_of_volunteer(tenant, principal.subject)
    found = [p for p in mine if p["kind"] == "proposal"]
    needs = await matching.store.needs_by_id(tenant, sorted({p["need_id"] for p in found}))
    return [_proposal_view(p, needs.get(p["need_id"])) for p in found]


@router.post("/volunteers/me/proposals/{proposal_id}/accept", responses=REFUSALS, summary="Accept a proposal")
async def accept(request: Request, proposal_id: UUID, principal: Volunteer) -> AnswerResult:
    outcome = await matching_of(request).answer(
        _tenant(principal), str(proposal_id), "accept", AnswerChannel.VOLUNTEER_APP, volunteer_id=principal.subject
    )
    return _result(outcome)


@router.post("/volunteers/me/proposals/{proposal_id}/decline", responses=REFUSALS, summary="Decline a proposal")
async def decline(
    request: Request, proposal_id: UUID, principal: Volunteer, body: DeclineBody | None = None
) -> AnswerResult:
    outcome = await matching_of(request).answer(
        _tenant(principal),
        str(proposal_id),
        "decline",
        AnswerChannel.VOLUNTEER_APP,
        volunteer_id=principal.subject,
        reason=body.reason if body else None,
    )
    return _result(outcome)


@router.post(
    "/volunteers/me/engagements/{need_id}/step-back", responses=REFUSALS, summary="Step back from a need I accepted"
)
async def step_back(request: Request, need_id: UUID, principal: Volunteer) -> AnswerResult:
    outcome = await matching_of(request).step_back(_tenant(principal), principal.subject, str(need_id))
    return _result(outcome)


@router.get("/volunteers/me/open-needs", summary="Open needs that fit me, best first, with reasons")
async def open_needs(request: Request, principal: Volunteer) -> list[OpenNeedView]:
    matching = matching_of(request)
    tenant = _tenant(principal)
    views = []
    for need_id, fit in matching.open_needs_for(tenant, principal.subject):
        need = await matching.store.need(tenant, need_id)
        if need is None:
            continue
        views.append(
            OpenNeedView(
                need_id=need_id,
                category=need["details"]["category"],
                description=need["details"]["description"],
                score=fit.score,
                distance_km=fit.distance_km,
                reasons=list(fit.reasons),
            )
        )
    return views


@router.post("/volunteers/me/open-needs/{need_id}/pick", responses=REFUSALS, summary="Take an open need myself")
async def pick(request: Request, need_id: UUID, principal: Volunteer) -> AnswerResult:
    outcome = await matching_of(request).pick(_tenant(principal), principal.subject, str(need_id))
    return _result(outcome)


def _tenant(principal: Principal) -> str:
    if principal.tenant is None:
        raise Problem(403, "Forbidden", "a volunteer token must name its tenant")
    return principal.tenant


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


def _proposal_view(proposal: dict[str, Any], need: dict[str, Any] | None) -> ProposalView:
    details = need["details"] if need else {}
    return ProposalView(
        proposal_id=proposal["_id"],
        need_id=proposal["need_id"],
        category=details.get("category"),
        description=details.get("description"),
        status=proposal["status"],
        score=proposal.get("score"),
        distance_km=proposal.get("distance_km"),
        reasons=reasons_of(proposal),
        proposed_at=proposal["proposed_at"],
        expires_at=proposal.get("expires_at"),
    )
