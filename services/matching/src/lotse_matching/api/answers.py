"""The answer links opened in a browser: a confirmation page (GET), then the answer (POST)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from lotse_contracts.events.matching import AnswerChannel
from lotse_matching import pages
from lotse_matching.api.access import matching_of
from lotse_matching.domain import Outcome
from lotse_matching.service import Matching, settled_outcome
from lotse_runtime import answer_links
from lotse_runtime.http_guards import rate_limit_retry_after

router = APIRouter()
CHOICES = ("accept", "decline")
# Any text is taken, so that a damaged link gets the invalid-link page rather than a 422 problem.
ChoiceQuery = Annotated[str | None, Query(description="accept or decline", json_schema_extra={"enum": list(CHOICES)})]


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
