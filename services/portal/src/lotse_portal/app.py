"""The portal's FastAPI app: sessions in its database, the OpenID client, the services' APIs."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from urllib.parse import urlencode, urlsplit

import httpx
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from lotse_portal import pages
from lotse_portal.api import router
from lotse_portal.api.access import CsrfRefused, NotAllowed, Portal, SignInRequired, visit
from lotse_portal.backends import BackendProblem, Backends, BackendUnavailable
from lotse_portal.settings import PortalSettings
from lotse_portal.signin import OpenIdClient
from lotse_portal.store import Store
from lotse_runtime.auth import TokenVerifier
from lotse_runtime.health import api_document_urls, health_router, metrics_router
from lotse_runtime.http_guards import RateLimited, install_http_guards
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
        async with httpx.AsyncClient(timeout=settings.backend_timeout_seconds, follow_redirects=False) as http:
            verifier = TokenVerifier(settings.auth_config())
            app.state.portal = Portal(settings, store, Backends(settings, http), OpenIdClient(settings, http, verifier))
            app.state.mongo = client
            try:
                yield
            finally:
                await client.close()

    app = FastAPI(title="Lotse portal", version="1", lifespan=lifespan, **api_document_urls(False))
    app.state.settings = settings
    provider = urlsplit(str(settings.jwt_issuer or ""))
    install_http_guards(app, settings, form_targets=(f"{provider.scheme}://{provider.netloc}",))
    app.mount("/static", StaticFiles(directory=pages.HERE / "static"), name="static")

    async def database_answers() -> bool:
        return bool(await app.state.mongo.admin.command("ping"))

    app.include_router(health_router({"mongodb": database_answers}))
    if settings.serves_metrics_on_api_port():
        app.include_router(metrics_router())
    app.include_router(router)
    _install_error_pages(app)
    return app


def _install_error_pages(app: FastAPI) -> None:
    """Every error a person can meet is a page in their language, never a trace or JSON."""

    @app.exception_handler(RateLimited)
    async def _too_many(request: Request, error: RateLimited) -> Response:
        current = await visit(request)
        response = await current.page("error.html", status=429, problem="too_many")
        response.headers["Retry-After"] = str(error.retry_after)
        return response

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> Response:
        # An address that does not exist, or a method a page does not take.
        current = await visit(request)
        problem = "not_found" if error.status_code == 404 else "refused"
        return await current.page("error.html", status=error.status_code, problem=problem)

    @app.exception_handler(RequestValidationError)
    async def _malformed(request: Request, error: RequestValidationError) -> Response:
        # Only path and query parameters are declared (forms are read by the pages themselves): a
        # malformed id in an address is a page that does not exist.
        current = await visit(request)
        return await current.page("error.html", status=404, problem="not_found")

    @app.exception_handler(SignInRequired)
    async def _sign_in(request: Request, error: SignInRequired) -> Response:
        return RedirectResponse("/signin?" + urlencode({"next": error.next_path}), status_code=303)

    @app.exception_handler(NotAllowed)
    async def _not_allowed(request: Request, error: NotAllowed) -> Response:
        current = await visit(request)
        return await current.page("error.html", status=403, problem="not_allowed")

    @app.exception_handler(CsrfRefused)
    async def _csrf(request: Request, error: CsrfRefused) -> Response:
        current = await visit(request)
        return await current.page("error.html", status=400, problem="expired_form")

    @app.exception_handler(BackendUnavailable)
    async def _unavailable(request: Request, error: BackendUnavailable) -> Response:
        log.warning("backend unavailable", path=request.url.path, reason=str(error))
        current = await visit(request)
        response = await current.page("error.html", status=503, problem="unavailable")
        response.headers["Retry-After"] = "30"
        return response

    @app.exception_handler(BackendProblem)
    async def _refused(request: Request, error: BackendProblem) -> Response:
        log.info("backend refused", path=request.url.path, status=error.status, title=error.title)
        current = await visit(request)
        problem = {404: "not_found", 403: "not_allowed", 401: "not_allowed"}.get(error.status, "refused")
        return await current.page("error.html", status=error.status if error.status < 500 else 502, problem=problem)
