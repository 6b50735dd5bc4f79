"""The answer links opened in a browser: a confirmation page (GET), then the answer (POST); the
pages are ``pages``, in the volunteer's language."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from lotse_contracts.events.matching import AnswerChannel
from lotse_matching import pages
from lotse_matching.api.access import matching_of
from lotse_matching.domain import Outcome
from lotse_matching.profiles import timezone_of
from lotse_matching.service import Matching, settled_outcome
from lotse_matching.store import NeedRecord, Proposal
from lotse_runtime import answer_links
from lotse_runtime.audit import Actor, act_as
from lotse_runtime.auth import Role
from lotse_runtime.http_guards import rate_limit_retry_after

router = APIRouter()
CHOICES = pages.CHOICES
# Any text is taken, so that a damaged link gets the invalid-link page rather than a 422 problem.
ChoiceQuery = Annotated[str | None, Query(description="accept or decline", json_schema_extra={"enum": list(CHOICES)})]
LanguageQuery = Annotated[
    str | None,
    Query(
        description="Language of the page, picked with its language switcher (else the volunteer's)",
        json_schema_extra={"enum": list(pages.LANGUAGES)},
    ),
]


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
                    "properties": {
                        "choice": {"type": "string", "enum": list(CHOICES)},
                        "lang": {"type": "string", "enum": list(pages.LANGUAGES)},
                    },
                }
            }
        },
    }
}


# -- answer links ------------------------------------------------------------------------------


@router.get("/answers/assets/page.css", include_in_schema=False)
async def stylesheet() -> Response:
    # Its address carries a hash of its content (pages.STYLESHEET_PATH): cached for a day.
    return Response(pages.STYLESHEET, media_type="text/css", headers={"Cache-Control": "public, max-age=86400"})


@router.get(
    "/answers/{token}",
    response_class=HTMLResponse,
    responses=ANSWER_PAGES,
    summary="Confirmation page of an answer link",
)
async def answer_page(
    request: Request, token: str, choice: ChoiceQuery = None, lang: LanguageQuery = None
) -> HTMLResponse:
    """Shows what the link would do and a button; a GET alone never answers (mail scanners
    open links)."""
    asked = Asked(request, lang, switcher=True)
    if (retry_after := await rate_limit_retry_after(request)) is not None:
        return _too_many(asked, retry_after)
    matching = matching_of(request)
    if choice not in CHOICES:
        # A link cut short in a mail client, or changed by hand: a page, not a problem document.
        return await _page(matching, asked, None, pages.TAMPERED)
    try:
        claims = answer_links.verify(_secret(matching), token, datetime.now(UTC))
    except answer_links.InvalidToken as error:
        return await _page(matching, asked, error.tenant, _refusal(error))
    proposal = await matching.store.proposal_record(claims.tenant, claims.proposal_id)
    if proposal is None:
        return await _page(matching, asked, claims.tenant, Outcome.NOT_FOUND)
    need = await matching.store.need_record(claims.tenant, proposal.need_id)
    need_is_open = need is not None and need.is_open
    settled = settled_outcome(proposal, need_is_open, datetime.now(UTC))
    if settled is not None or need is None:
        return await _page(matching, asked, claims.tenant, settled or Outcome.NO_LONGER_NEEDED, proposal=proposal)
    kind = pages.CONFIRM_ACCEPT if choice == "accept" else pages.CONFIRM_DECLINE
    return await _page(matching, asked, claims.tenant, kind, proposal=proposal, need=need, choice=choice)


@router.post(
    "/answers/{token}",
    response_class=HTMLResponse,
    responses=ANSWER_PAGES,
    openapi_extra=ANSWER_FORM,  # read by hand: a form of two fields needs no multipart parser
    summary="Apply the answer of an answer link",
)
async def answer_by_link(request: Request, token: str) -> HTMLResponse:
    form = parse_qs((await request.body()).decode(errors="replace"))
    # The language the confirmation page was in (its form says it), so the answer reads the same.
    picked = (form.get("lang") or [""])[0] or request.query_params.get("lang")
    asked = Asked(request, picked, switcher=False)
    if (retry_after := await rate_limit_retry_after(request)) is not None:
        return _too_many(asked, retry_after)
    matching = matching_of(request)
    choice = (form.get("choice") or [""])[0]
    if choice not in CHOICES:
        return await _page(matching, asked, None, pages.TAMPERED)
    try:
        claims = answer_links.verify(_secret(matching), token, datetime.now(UTC))
    except answer_links.InvalidToken as error:
        return await _page(matching, asked, error.tenant, _refusal(error))
    # The link's holder is the volunteer it was sent to: the audit trail records the answer as theirs.
    asked_whom = await matching.store.proposal_record(claims.tenant, claims.proposal_id)
    if asked_whom is not None:
        act_as(Actor(asked_whom.volunteer_id, (Role.VOLUNTEER.value,), "POST /answers/{token}"))
    outcome = await matching.answer(claims.tenant, claims.proposal_id, choice, AnswerChannel.VOLUNTEER_APP)
    accepted = outcome is Outcome.ACCEPTED
    # The proposal says whose language the page is in (unless one was picked) and, after a yes, whom to ask.
    wanted = accepted or not asked.requested
    proposal = await matching.store.proposal_record(claims.tenant, claims.proposal_id) if wanted else None
    contact = await _contact_point(matching, claims.tenant, proposal) if accepted else None
    return await _page(matching, asked, claims.tenant, outcome, proposal=proposal, contact=contact)


async def _contact_point(matching: Matching, tenant: str, proposal: Proposal | None) -> pages.ContactPoint | None:
    """Whom the volunteer asks about the engagement they just took on: the need's organisation by
    its mailbox, else the coordination office."""
    need = await matching.store.need_record(tenant, proposal.need_id) if proposal else None
    organisation = await matching.store.organisation(tenant, need.organisation_id, None) if need else None
    if organisation is not None and organisation.get("contact_email"):
        return pages.ContactPoint(organisation["name"], organisation["contact_email"])
    office = await matching.store.tenant(tenant)
    if office is not None and office.get("coordination_email"):
        return pages.ContactPoint(office["name"], office["coordination_email"])
    return None


class Asked:
    """What the request says about the page it wants: a language picked with the switcher, the
    browser's languages, and the query a language switcher keeps (a POST's answer has none: the
    same address fetched again would only say the link was used)."""

    def __init__(self, request: Request, requested: str | None, *, switcher: bool) -> None:
        self.requested = requested if requested in pages.LANGUAGES else None
        self.accept_language = request.headers.get("accept-language")
        self.query = dict(request.query_params) if switcher else None

    def language(self, volunteer: str | None = None, tenant: str | None = None) -> str:
        return pages.choose_language(self.requested, volunteer, tenant, self.accept_language)


def _refusal(error: answer_links.InvalidToken) -> str:
    return pages.TAMPERED if error.reason == "tampered" else Outcome.EXPIRED


def _too_many(asked: Asked, retry_after: int) -> HTMLResponse:
    # Before the token is looked at: the volunteer and the tenant are not known yet.
    html = _render(asked, pages.TOO_MANY, asked.language())
    return HTMLResponse(html, status_code=429, headers={"Retry-After": str(retry_after)})


def _secret(matching: Matching) -> str:
    return answer_links.secret_value(matching.settings.answer_link_secret)


async def _page(
    matching: Matching,
    asked: Asked,
    tenant: str | None,
    kind: str,
    *,
    proposal: Proposal | None = None,
    need: NeedRecord | None = None,
    choice: str | None = None,
    contact: pages.ContactPoint | None = None,
) -> HTMLResponse:
    settings = await matching.store.tenant(tenant) if tenant else None
    volunteer = await matching.store.volunteer(tenant, proposal.volunteer_id) if tenant and proposal else None
    language = asked.language(
        volunteer.get("preferred_language") if volunteer else None,
        settings.get("default_language") if settings else None,
    )
    proposed = None
    if proposal is not None and need is not None and proposal.expires_at is not None:
        details = need.details
        proposed = pages.Proposed(
            category=details["category"],
            description=details["description"],
            district=(details.get("place") or {}).get("district"),
            schedule=details.get("schedule") or {},
            reasons=proposal.reasons,
            # Shown before the volunteer answers: the rough distance (`candidates.rough_distance_km`).
            distance_km=(
                matching.rough_distance_for(tenant, proposal.volunteer_id, need)
                if tenant and proposal.distance_km is not None
                else None
            ),
            expires_at=proposal.expires_at,
            timezone=timezone_of(settings.get("timezone") if settings else None),
        )
    html = _render(
        asked,
        kind,
        language,
        tenant_name=settings.get("name") if settings else None,
        proposed=proposed,
        choice=choice,
        contact=contact,
    )
    return HTMLResponse(html, status_code=pages.STATUS.get(kind, 200))


def _render(
    asked: Asked,
    kind: str,
    language: str,
    *,
    tenant_name: str | None = None,
    proposed: pages.Proposed | None = None,
    choice: str | None = None,
    contact: pages.ContactPoint | None = None,
) -> str:
    switcher = pages.switcher(language, asked.query) if asked.query is not None else ()
    page = pages.Page(
        kind, language, tenant_name=tenant_name, choice=choice, proposed=proposed, switcher=switcher, contact=contact
    )
    return pages.render(page)
