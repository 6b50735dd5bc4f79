"""Signing in, signing up and signing out through the OpenID provider."""

from __future__ import annotations

import structlog
from fastapi import APIRouter, Depends
from fastapi.responses import RedirectResponse, Response

from lotse_portal.api.access import Anyone
from lotse_portal.backends import BackendProblem
from lotse_portal.domain import safe_next
from lotse_portal.signin import NoOrganisationClaim, SignInFailed
from lotse_runtime.http_guards import public_rate_limit

router = APIRouter()
log = structlog.get_logger("lotse.portal.signin")


# Each start of a sign-in stores a session: limited per client like every public endpoint.
LIMITED = [Depends(public_rate_limit)]


@router.get("/signin", dependencies=LIMITED)
async def sign_in(current: Anyone, next: str | None = None) -> Response:
    return await _to_provider(current, safe_next(next), None, register=False)


@router.get("/signup", dependencies=LIMITED)
async def sign_up(current: Anyone, tenant: str | None = None) -> Response:
    """A new volunteer: an account at the provider first, then the Lotse profile."""
    try:
        known = {item["slug"] for item in (await current.portal.backends.public("/public/tenants"))["items"]}
    except (BackendProblem, KeyError, TypeError):
        known = set()
    if tenant not in known:
        return await current.page("error.html", status=404, problem="not_found")
    return await _to_provider(current, "/profile/new", tenant, register=True)


async def _to_provider(current: Anyone, next_path: str, tenant: str | None, *, register: bool) -> Response:
    try:
        url, pending = await current.portal.openid.start(next_path, current.language, tenant=tenant, register=register)
    except SignInFailed as error:
        log.warning("sign-in unavailable", reason=str(error))
        return await current.page("error.html", status=503, problem="signin_unavailable")
    current.update(pending=pending)
    return await current.finish(RedirectResponse(url, status_code=303))


@router.get("/signin/callback")
async def callback(
    current: Anyone, code: str | None = None, state: str | None = None, error: str | None = None
) -> Response:
    pending = current.session.pending if current.session else None
    if error or not code or not state or pending is None:
        # Cancelled at the provider, an old bookmark, or a callback for another browser.
        log.info("sign-in not completed", error=error, has_pending=pending is not None)
        return await current.page("error.html", status=400, problem="signin_failed")
    try:
        user, _ = await current.portal.openid.finish(pending, code, state)
    except NoOrganisationClaim as failure:
        log.warning("sign-in refused", reason=str(failure))
        return await current.page("error.html", status=403, problem="no_organisation")
    except SignInFailed as failure:
        log.warning("sign-in refused", reason=str(failure))
        return await current.page("error.html", status=400, problem="signin_failed")
    current.rotate()
    current.update(user=user, pending=None)
    log.info("signed in", tenant=user.tenant, roles=list(user.roles))
    return await current.redirect(pending.next_path)


@router.post("/signout")
async def sign_out(current: Anyone) -> Response:
    await current.form()
    user = current.user
    await current.portal.openid.revoke(user)
    url = await current.portal.openid.sign_out_url(user, current.language)
    if current.session is not None:
        await current.portal.store.delete(current.session.id)
    response = RedirectResponse(url, status_code=303)
    response.delete_cookie(current.portal.cookie_name, path="/")
    return response
