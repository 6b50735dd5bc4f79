"""What Lotse holds about me (DSGVO Art. 15 and 20, as JSON) and deleting my account (Art. 17)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, JsonValue

from lotse_portal.api.access import VolunteerVisit, tenant, token
from lotse_portal.api.start import volunteer_profile
from lotse_portal.backends import BackendProblem, QuestionCalls, Service
from lotse_portal.subject_access import HeldByService, download, held_by_service
from lotse_runtime.i18n import N_

router = APIRouter()


# The deletion sent without its confirmation: the redirect's query (a message, nothing personal).
UNCONFIRMED = "unconfirmed"


@router.get("/my-data")
async def my_data(current: VolunteerVisit) -> Response:
    profile = await volunteer_profile(current)
    errors: dict[str, str] = {}
    if current.request.query_params.get("delete") == UNCONFIRMED:
        errors["confirm"] = N_("Bitte bestätigen Sie, dass Sie Ihr Konto löschen möchten.")
    return await current.page("my_data.html", profile=profile, errors=errors)


class VolunteerExport(BaseModel):
    """The volunteer's download: what the portal shows them, and everything each service holds."""

    exported_at: datetime
    tenant: str
    volunteer_id: str
    profile: JsonValue
    proposals_and_engagements: JsonValue
    hours: JsonValue
    messages: JsonValue
    questions: JsonValue  # their questions to the coordination office, with every message of each
    held_by_service: HeldByService


@router.get("/my-data/export")
async def export(current: VolunteerVisit) -> Response:
    """Everything Lotse holds about the volunteer, in one machine-readable file."""
    assert current.user is not None
    backends, bearer, volunteer_id = current.portal.backends, token(current), current.user.volunteer_id
    document = VolunteerExport(
        exported_at=datetime.now(UTC),
        tenant=tenant(current),
        volunteer_id=volunteer_id,
        profile=await volunteer_profile(current),
        proposals_and_engagements=await backends.get(Service.MATCHING, "/volunteers/me/proposals", bearer),
        hours=await backends.get(Service.MATCHING, "/volunteers/me/hours", bearer),
        messages=await backends.get(Service.NOTIFICATIONS, "/me/messages", bearer),
        questions=await QuestionCalls(backends, bearer).export(),
        held_by_service=await held_by_service(backends, current.portal.store, bearer, tenant(current), volunteer_id),
    )
    return await current.finish(download(document, volunteer_id))


@router.post("/my-data/withdraw")
async def withdraw_consent(current: VolunteerVisit) -> Response:
    """Withdraw consent (DSGVO Art. 7(3)): the registry keeps the profile, marked withdrawn, and
    matching proposes the volunteer nothing any more; deleting it is the erasure below."""
    form = await current.form()
    profile = await volunteer_profile(current)
    if profile is None or profile.get("status") != "active":
        return await current.redirect("/home")
    if form.get("withdraw") != "yes":
        errors = {"withdraw": N_("Bitte bestätigen Sie, dass Sie Ihre Einwilligung widerrufen möchten.")}
        return await current.page("my_data.html", status=422, profile=profile, errors=errors)
    assert current.user is not None
    path = f"/tenants/{tenant(current)}/volunteers/{current.user.volunteer_id}/withdrawal"
    try:
        await current.portal.backends.post(Service.REGISTRY, path, token(current), {"reason": "consent_withdrawn"})
    except BackendProblem as problem:
        if problem.status != 409:  # withdrawn already (a second tab): the home page says so
            raise
    return await current.redirect("/home", flash=N_("Sie haben Ihre Einwilligung widerrufen."))


@router.post("/my-data/delete")
async def delete_account(current: VolunteerVisit) -> Response:
    form = await current.form()
    if form.get("confirm") != "yes":
        # Back to /my-data (a GET: its language links work), the message next to the checkbox.
        return await current.redirect(f"/my-data?delete={UNCONFIRMED}#confirm")
    assert current.user is not None
    await current.portal.backends.post(
        Service.REGISTRY, f"/tenants/{tenant(current)}/volunteers/{current.user.volunteer_id}/erasure", token(current)
    )
    # Signed out here; the account at the provider is not Lotse's (the page says so).
    await current.portal.openid.revoke(current.user)
    if current.session is not None:
        await current.portal.store.delete(current.session.id)
    response = RedirectResponse("/deleted", status_code=303)
    response.delete_cookie(current.portal.cookie_name, path="/")
    return response
