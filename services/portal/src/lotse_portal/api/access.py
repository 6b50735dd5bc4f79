"""What every page route depends on: the visit (session, language, the portal's parts), the
signed-in person, the CSRF check of every form, and the answers a page gives.

The session lives in the portal's database; the browser holds only its random id in an
``HttpOnly``, ``SameSite=Lax`` cookie (``Secure`` and ``__Host-`` prefixed outside development). A
session is created when first needed (signing in, choosing a language) and its id is replaced
when someone signs in, so an id known before sign-in is worthless after it.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Match, Mount

from lotse_portal import pages
from lotse_portal.backends import Backends, BackendUnavailable
from lotse_portal.domain import LANGUAGES, FormData, pick_language
from lotse_portal.settings import PortalSettings
from lotse_portal.signin import OpenIdClient, SignInFailed
from lotse_portal.store import Session, SignedInUser, Store, new_secret
from lotse_runtime.auth import Role


@dataclass
class Portal:
    """The portal's parts, built once in the lifespan."""

    settings: PortalSettings
    store: Store
    backends: Backends
    openid: OpenIdClient

    @property
    def cookie_name(self) -> str:
        return "__Host-lotse_session" if self.settings.secure_cookie() else "lotse_session"

    @property
    def lifetime(self) -> timedelta:
        return timedelta(hours=self.settings.session_hours)


class SignInRequired(Exception):
    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


class NotAllowed(Exception):
    """Signed in, but this page is for another role."""


class NoOrganisation(Exception):
    """An initiative admin whose account names no initiative (the provider's ``org`` claim)."""


class CsrfRefused(Exception):
    """A form without this session's token: sent from elsewhere, or from an expired page."""


@dataclass
class Visit:
    request: Request
    portal: Portal
    session: Session | None
    language: str
    # What this request changed of its session: stored at the end, only these fields, or the whole
    # session when it is new (a sign-in); a session that exists is never created again.
    _changed: set[str] = field(default_factory=set)
    _new: bool = False
    # A language picked on this request: remembered in a cookie of its own (no session needed).
    chosen_language: str | None = None

    @property
    def user(self) -> SignedInUser | None:
        return self.session.user if self.session else None

    def has(self, *roles: Role) -> bool:
        return self.user is not None and any(role.value in self.user.roles for role in roles)

    def ensure_session(self) -> Session:
        if self.session is None:
            self.session = Session.new(self.portal.lifetime)
            self._new = True
        return self.session

    def update(self, **changes: Any) -> Session:
        self.session = replace(self.ensure_session(), **changes)
        self._changed.update(changes)
        return self.session

    def adopt(self, user: SignedInUser) -> None:
        """Tokens already stored for this session (a refresh): used from now on, not written again."""
        if self.session is not None:
            self.session = replace(self.session, user=user)

    def rotate(self) -> None:
        """A new session id and CSRF token (after sign-in); the old session is deleted on save."""
        old = self.ensure_session()
        if not self._new:
            self.request.state.replaced_session = old.id
        self.session = replace(old, id=new_secret(), csrf=new_secret())
        self._new = True

    def take_flash(self) -> str | None:
        if self.session is None or self.session.flash is None:
            return None
        flash = self.session.flash
        self.update(flash=None)
        return flash

    def take_feed_url(self) -> str | None:
        """A new calendar feed's address, once: the page that shows it forgets it."""
        if self.session is None or self.session.feed_url is None:
            return None
        feed_url = self.session.feed_url
        self.update(feed_url=None)
        return feed_url

    def gettext(self, message: str) -> str:
        return pages.translate(self.language, message)

    async def finish(self, response: Response) -> Response:
        if self.chosen_language is not None:
            response.set_cookie(
                LANGUAGE_COOKIE,
                self.chosen_language,
                max_age=365 * 24 * 3600,
                path="/",
                httponly=True,
                secure=self.portal.settings.secure_cookie(),
                samesite="lax",
            )
        if self.session is not None and (self._new or self._changed):
            replaced = getattr(self.request.state, "replaced_session", None)
            if replaced:
                await self.portal.store.delete(replaced)
            self.session = self.session.renewed(self.portal.lifetime)
            if self._new:
                await self.portal.store.create(self.session)
            elif not await self.portal.store.update(self.session, self._changed):
                # Signed out or erased while this request ran: it stays so.
                response.delete_cookie(self.portal.cookie_name, path="/")
                return response
            response.set_cookie(
                self.portal.cookie_name,
                self.session.id,
                max_age=int(self.portal.lifetime.total_seconds()),
                path="/",
                httponly=True,
                secure=self.portal.settings.secure_cookie(),
                samesite="lax",
            )
        return response

    async def page(self, template: str, *, status: int = 200, **context: Any) -> Response:
        flash = self.take_flash()
        html = pages.render(
            self.language,
            template,
            {
                "user": self.user,
                "csrf": self.session.csrf if self.session else "",
                "path": self.request.url.path,
                "flash": flash,
                "language_path": language_path(self.request),
                "is_volunteer": self.has(Role.VOLUNTEER),
                "is_initiative_admin": self.has(Role.INITIATIVE_ADMIN),
                "is_coordinator": self.has(Role.COORDINATOR),
                **context,
            },
        )
        return await self.finish(HTMLResponse(html, status_code=status))

    async def redirect(self, path: str, *, flash: str | None = None) -> Response:
        if flash is not None:
            self.update(flash=flash)
        return await self.finish(RedirectResponse(path, status_code=303))

    async def form(self) -> FormData:
        """The submitted form, after checking its CSRF token against the session's."""
        submitted = await self.request.form()
        items = [(key, value) for key, value in submitted.multi_items() if isinstance(value, str)]
        data = FormData(items)
        token = data.get("csrf_token", "")
        if self.session is None or not hmac.compare_digest(token.encode(), self.session.csrf.encode()):
            raise CsrfRefused
        return data


LANGUAGE_COOKIE = "lotse_language"


def language_path(request: Request) -> str:
    """Where the language links of a page lead (with ``?lang=``): the page itself, or, for a page
    answering a form, the nearest address above the form's that is a page: a link is a GET, and
    the form's own address may take only POST (405)."""
    if request.method in ("GET", "HEAD"):
        return ""
    path = request.url.path.rstrip("/")
    while path:
        if _is_page(request, path):
            return path
        path = path.rsplit("/", 1)[0]
    return "/"


def _is_page(request: Request, path: str) -> bool:
    scope = {"type": "http", "path": path, "root_path": "", "method": "GET"}
    return any(
        isinstance(route, BaseRoute) and not isinstance(route, Mount) and route.matches(scope)[0] == Match.FULL
        for route in request.app.router.routes
    )


async def visit(request: Request) -> Visit:
    portal: Portal = request.app.state.portal
    session_id = request.cookies.get(portal.cookie_name)
    session = await portal.store.load(session_id) if session_id else None
    chosen = request.query_params.get("lang")
    current = Visit(request, portal, session, "de")
    if chosen in LANGUAGES:
        current.chosen_language = chosen
        if current.session is not None:
            current.update(language=chosen)
    current.language = pick_language(
        chosen,
        current.session.language if current.session else None,
        request.cookies.get(LANGUAGE_COOKIE),
        accept_language=request.headers.get("accept-language", ""),
    )
    return current


async def signed_in_visit(current: Annotated[Visit, Depends(visit)]) -> Visit:
    user = current.user
    if user is None:
        raise SignInRequired(_here(current.request))
    assert current.session is not None
    try:
        fresh = await current.portal.openid.current_user(current.portal.store, current.session)
    except SignInFailed as failure:  # the provider is away: a page saying so, not a sign-out
        raise BackendUnavailable(str(failure)) from failure
    if fresh is None:
        # Signed out for good (the provider refused the refresh): the next request need not ask again.
        await current.portal.store.update(replace(current.session, user=None), {"user"})
        raise SignInRequired(_here(current.request))
    if fresh is not user:
        current.adopt(fresh)
    return current


def _here(request: Request) -> str:
    query = {key: value for key, value in request.query_params.items() if key != "lang"}
    return request.url.path + (f"?{urlencode(query)}" if query else "")


async def volunteer_visit(current: Annotated[Visit, Depends(signed_in_visit)]) -> Visit:
    if not current.has(Role.VOLUNTEER):
        raise NotAllowed
    return current


async def initiative_visit(current: Annotated[Visit, Depends(signed_in_visit)]) -> Visit:
    if not current.has(Role.INITIATIVE_ADMIN):
        raise NotAllowed
    if current.user is None or not current.user.organisation:
        raise NoOrganisation
    return current


async def office_visit(current: Annotated[Visit, Depends(signed_in_visit)]) -> Visit:
    """The coordination office's console: coordinators (the whole tenant) and initiative admins
    (their organisation; the services narrow what they see)."""
    if not current.has(Role.COORDINATOR, Role.INITIATIVE_ADMIN):
        raise NotAllowed
    return current


async def coordinator_visit(current: Annotated[Visit, Depends(signed_in_visit)]) -> Visit:
    if not current.has(Role.COORDINATOR):
        raise NotAllowed
    return current


Anyone = Annotated[Visit, Depends(visit)]
SignedIn = Annotated[Visit, Depends(signed_in_visit)]
VolunteerVisit = Annotated[Visit, Depends(volunteer_visit)]
InitiativeVisit = Annotated[Visit, Depends(initiative_visit)]
OfficeVisit = Annotated[Visit, Depends(office_visit)]
CoordinatorVisit = Annotated[Visit, Depends(coordinator_visit)]


def token(current: Visit) -> str:
    assert current.user is not None  # the dependency signed the person in
    return current.user.access_token


def tenant(current: Visit) -> str:
    assert current.user is not None and current.user.tenant is not None
    return current.user.tenant
