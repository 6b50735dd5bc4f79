"""The portal's FastAPI app: sessions in its database, the OpenID client, the services' APIs."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import httpx
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lotse_portal import pages
from lotse_portal.api import router
from lotse_portal.api.access import (
    LANGUAGE_COOKIE,
    CsrfRefused,
    NoOrganisation,
    NotAllowed,
    Portal,
    SignInRequired,
    visit,
)
from lotse_portal.backends import KEEPALIVE_EXPIRY_SECONDS, BackendProblem, Backends, BackendUnavailable
from lotse_portal.domain import pick_language
from lotse_portal.settings import PortalSettings
from lotse_portal.signin import OpenIdClient, form_origins
from lotse_portal.store import Store
from lotse_runtime.auth import TokenVerifier
from lotse_runtime.failures import is_transient
from lotse_runtime.health import api_document_urls, health_router, metrics_router
from lotse_runtime.http_guards import RateLimited, install_http_guards, route_of
from lotse_runtime.mongo import connect

SERVICE = "lotse-portal"
log = structlog.get_logger("lotse.portal")


def create_app(settings: PortalSettings | None = None) -> FastAPI:
    settings = settings or PortalSettings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        client = connect(settings.mongo_url, SERVICE)
        store = Store(client[settings.database])
        await store.ensure_indexes()
        # No redirects followed: a service that redirects is misconfigured, and a token must not travel on.
        async with httpx.AsyncClient(
            timeout=settings.backend_timeout_seconds,
            follow_redirects=False,
            limits=httpx.Limits(keepalive_expiry=KEEPALIVE_EXPIRY_SECONDS),
        ) as http:
            verifier = TokenVerifier(settings.auth_config())
            openid = OpenIdClient(settings, http, verifier)
            app.state.portal = Portal(settings, store, Backends(settings, http), openid)
            app.state.mongo = client
            discovery = asyncio.create_task(openid.discover())
            try:
                yield
            finally:
                discovery.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await discovery
                await client.close()

    app = FastAPI(title="Lotse portal", version="1", lifespan=lifespan, **api_document_urls(False))
    app.state.settings = settings

    def form_targets() -> tuple[str, ...]:
        # Sign-out answers with a redirect to the provider's end-session endpoint, which browsers
        # check against form-action: the origins its discovery document names, once it is known.
        portal: Portal | None = getattr(app.state, "portal", None)
        return portal.openid.form_origins() if portal else form_origins(settings.jwt_issuer, None)

    # Innermost: an unexpected error becomes a page that the HTTP guards still give their headers.
    app.add_middleware(UnexpectedErrorPage)
    install_http_guards(app, settings, form_targets=form_targets, error_answer=_refused_before_any_route)
    app.mount("/static", Assets(directory=pages.HERE / "static"), name="static")

    async def database_answers() -> bool:
        return bool(await app.state.mongo.admin.command("ping"))

    app.include_router(health_router({"mongodb": database_answers}))
    if settings.serves_metrics_on_api_port():
        app.include_router(metrics_router())
    app.include_router(router)
    _install_error_pages(app)
    return app


class Assets(StaticFiles):
    """The stylesheet, kept by browsers for an hour (pages themselves are never kept)."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = ASSET_CACHE
        return response


ASSET_CACHE = "public, max-age=3600"
# The page for an error status that no handler of its own names.
PROBLEM_OF_STATUS = {404: "not_found", 413: "too_large", 429: "too_many"}


async def error_page(request: Request, status: int, problem: str) -> Response:
    """error.html in the person's language, with their session if it can be read (the database may
    be what failed: then without it, in the language of the address, the cookie or the browser)."""
    try:
        current = await visit(request)
        return await current.page("error.html", status=status, problem=problem)
    except Exception as error:  # noqa: BLE001 - the error page itself must not fail
        log.warning("error page without the session", status=status, error=type(error).__name__)
    language = pick_language(
        request.query_params.get("lang"),
        None,
        request.cookies.get(LANGUAGE_COOKIE),
        accept_language=request.headers.get("accept-language", ""),
    )
    context = {"user": None, "csrf": "", "path": request.url.path, "flash": None, "problem": problem}
    html = pages.render(language, "error.html", {**context, "is_volunteer": False, "is_initiative_admin": False})
    return HTMLResponse(html, status_code=status)


async def _refused_before_any_route(request: Request, status: int, title: str, detail: str) -> Response:
    # A body over LOTSE_MAX_BODY_BYTES (413) or a Content-Length that is no number (400).
    return await error_page(request, status, PROBLEM_OF_STATUS.get(status, "refused"))


class UnexpectedErrorPage:
    """An error no handler answers is a page (500, or 503 when the database or a service's network
    is away for a moment), logged with its route; Starlette would answer plain text."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as error:
            if started:
                raise
            if is_transient(error):
                log.warning("infrastructure unavailable", route=route_of(scope), error=repr(error))
                response = await error_page(Request(scope), 503, "unavailable")
                response.headers["Retry-After"] = "5"
            else:
                log.exception("unhandled error", route=route_of(scope))
                response = await error_page(Request(scope), 500, "internal")
            await response(scope, receive, send)


def _install_error_pages(app: FastAPI) -> None:
    """Every error a person can meet is a page in their language, never a trace or JSON."""

    @app.exception_handler(RateLimited)
    async def _too_many(request: Request, error: RateLimited) -> Response:
        response = await error_page(request, 429, "too_many")
        response.headers["Retry-After"] = str(error.retry_after)
        return response

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> Response:
        # An address that does not exist, a method a page does not take, a form over the size limit
        # while it streams in.
        response = await error_page(request, error.status_code, PROBLEM_OF_STATUS.get(error.status_code, "refused"))
        response.headers.update(error.headers or {})
        return response

    @app.exception_handler(RequestValidationError)
    async def _malformed(request: Request, error: RequestValidationError) -> Response:
        # Only path and query parameters are declared (forms are read by the pages themselves): a
        # malformed id in an address is a page that does not exist.
        return await error_page(request, 404, "not_found")

    @app.exception_handler(SignInRequired)
    async def _sign_in(request: Request, error: SignInRequired) -> Response:
        return RedirectResponse("/signin?" + urlencode({"next": error.next_path}), status_code=303)

    @app.exception_handler(NotAllowed)
    async def _not_allowed(request: Request, error: NotAllowed) -> Response:
        return await error_page(request, 403, "not_allowed")

    @app.exception_handler(NoOrganisation)
    async def _no_organisation(request: Request, error: NoOrganisation) -> Response:
        return await error_page(request, 403, "no_organisation")

    @app.exception_handler(CsrfRefused)
    async def _csrf(request: Request, error: CsrfRefused) -> Response:
        return await error_page(request, 400, "expired_form")

    @app.exception_handler(BackendUnavailable)
    async def _unavailable(request: Request, error: BackendUnavailable) -> Response:
        log.warning("backend unavailable", path=request.url.path, reason=str(error))
        response = await error_page(request, 503, "unavailable")
        response.headers["Retry-After"] = "30"
        return response

    @app.exception_handler(BackendProblem)
    async def _refused(request: Request, error: BackendProblem) -> Response:
        log.info("backend refused", path=request.url.path, status=error.status, title=error.title)
        problem = {404: "not_found", 403: "not_allowed", 401: "not_allowed", 429: "too_many"}.get(
            error.status, "refused"
        )
        return await error_page(request, error.status if error.status < 500 else 502, problem)
