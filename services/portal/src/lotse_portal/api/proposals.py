"""Proposals to a volunteer, with their reasons, and the answers to them."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter
from fastapi.responses import Response

from lotse_portal.api.access import VolunteerVisit, token
from lotse_portal.backends import BackendProblem, Service
from lotse_runtime.i18n import N_

router = APIRouter()

# Matching's status of a proposal that waits for the volunteer's answer (its ProposalStatus.OPEN).
WAITING = "open"

DECLINE_REASONS = {
    "no_time": N_("Ich habe zu der Zeit keine Zeit."),
    "too_far": N_("Der Ort ist mir zu weit."),
    "not_a_fit": N_("Die Aufgabe passt nicht zu mir."),
    "other": N_("Ein anderer Grund"),
}
# What matching's refusals (409) mean for the person.
REFUSED = {
    "No longer needed": N_("Danke! Dieser Bedarf ist schon besetzt oder beendet."),
    "Already answered": N_("Sie haben auf diesen Vorschlag schon geantwortet."),
    "Expired": N_("Die Zeit für eine Antwort auf diesen Vorschlag ist abgelaufen."),
    "Limit reached": N_("Sie haben schon so viele Einsätze, wie Sie angegeben haben, oder einen zur selben Zeit."),
    "Not a fit": N_("Dieser Bedarf passt nicht zu Ihrem Profil oder Ihren Zeiten."),
}


@router.get("/proposals")
async def proposals(current: VolunteerVisit) -> Response:
    found = await current.portal.backends.get(Service.MATCHING, "/volunteers/me/proposals", token(current))
    waiting = [p for p in found if p["status"] == WAITING]
    answered = [p for p in found if p["status"] != WAITING]
    return await current.page("proposals.html", waiting=waiting, answered=answered, decline_reasons=DECLINE_REASONS)


@router.post("/proposals/{proposal_id}/accept")
async def accept(current: VolunteerVisit, proposal_id: UUID) -> Response:
    await current.form()
    return await answer(current, f"/volunteers/me/proposals/{proposal_id}/accept", None, N_("Danke für Ihre Zusage!"))


@router.post("/proposals/{proposal_id}/decline")
async def decline(current: VolunteerVisit, proposal_id: UUID) -> Response:
    form = await current.form()
    reason = form.get("reason") or None
    body = {"reason": reason} if reason in DECLINE_REASONS and reason != "other" else {}
    return await answer(
        current, f"/volunteers/me/proposals/{proposal_id}/decline", body, N_("Ihre Absage ist angekommen. Danke!")
    )


async def answer(current: VolunteerVisit, path: str, body: dict[str, str] | None, thanks: str) -> Response:
    try:
        await current.portal.backends.post(Service.MATCHING, path, token(current), body)
    except BackendProblem as problem:
        if problem.status != 409:
            raise
        return await current.redirect("/proposals", flash=REFUSED.get(problem.title, N_("Das ging leider nicht.")))
    return await current.redirect("/engagements" if path.endswith(("accept", "pick")) else "/proposals", flash=thanks)
