"""What every HTTP app of the platform puts in front of its routes: security headers, a bounded
request body, a JSON access log without capabilities or client addresses, and a per-caller rate
limit for public endpoints (those that need no bearer token; one that comes with a valid token
counts for its subject, one without for its address).

``install_http_guards(app, settings)`` wires all of it; a service's settings class mixes in
:class:`HttpGuardSettings`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import math
import re
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Annotated, Any

import structlog
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter
from pydantic import AfterValidator, Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lotse_runtime.auth import Principal, TokenVerifier
from lotse_runtime.problems import Problem, problem_response

log = structlog.get_logger("lotse.access")

# Pages for people load nothing from elsewhere, are never framed and post only to themselves.
PAGE_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
# The interactive API docs load FastAPI's Swagger UI / ReDoc from its CDN and start it inline.
DOCS_POLICY = (
    "default-src 'none'; script-src https://cdn.jsdelivr.net 'unsafe-inline'; "
    "style-src https://cdn.jsdelivr.net https://fonts.googleapis.com 'unsafe-inline'; "
    "font-src https://fonts.gstatic.com; img-src 'self' data: https://fastapi.tiangolo.com https://cdn.redoc.ly; "
    "connect-src 'self'; worker-src blob:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
PAGE_HEADERS = {"cache-control": "no-store", "referrer-policy": "no-referrer"}


def _parses(value: str) -> str:
    parse(value)  # raises ValueError naming the bad value
    return value


# A rate as a setting: '30/minute', '10 per hour', '5 per 10 seconds'.
RateText = Annotated[str, AfterValidator(_parses)]


class HttpGuardSettings(BaseSettings):
    """Mixed into each service's settings (environment prefix ``LOTSE_``)."""

    model_config = SettingsConfigDict(env_prefix="LOTSE_", extra="ignore")

    max_body_bytes: int = Field(
        64 * 1024, ge=1024, description="Largest request body accepted; a larger one is refused with 413 unread"
    )
    public_rate_limit: RateText = Field(
        "30/minute",
        description="Requests per client and public endpoint (the answer pages), e.g. '30/minute', '5 per 10 seconds'",
    )
    access_log_client_ip: bool = Field(False, description="Log the client address in the access log")


# What an app answers for an error no route of it answered (a body too large): status, title and
# detail in; a problem document for the services, a page in the person's language for the portal.
ErrorAnswer = Callable[[Request, int, str, str], Awaitable[Response]]


async def problem_answer(request: Request, status: int, title: str, detail: str) -> Response:
    return problem_response(status, title, detail)


def page_policy(form_targets: Iterable[str] = ()) -> str:
    """The content security policy of pages whose forms may also lead to ``form_targets`` (origins
    such as ``https://login.example.org``: the portal's sign-out form is answered with a redirect
    to the provider, and browsers check every redirect of a form against ``form-action``)."""
    allowed = ["'self'", *dict.fromkeys(target for target in form_targets if _ORIGIN.fullmatch(target))]
    return PAGE_POLICY.replace("form-action 'self'", "form-action " + " ".join(allowed))


# An origin as CSP writes it: nothing that could end the directive or start another.
_ORIGIN = re.compile(r"https?://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?")


def install_http_guards(
    app: FastAPI,
    settings: HttpGuardSettings,
    *,
    form_targets: Callable[[], Iterable[str]] = tuple,
    error_answer: ErrorAnswer = problem_answer,
) -> None:
    """``form_targets``: the origins besides the app's own that a form may lead to, asked at each
    page (the portal learns its provider's endpoints from the discovery document when it can);
    ``error_answer``: how the app answers a request refused before any route (413)."""
    app.state.public_rate_limit = PublicRateLimit(settings.public_rate_limit)
    # Added innermost first: the access log sees the final status, headers go on every answer.
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes, error_answer=error_answer)
    docs = (app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url)
    policy = lambda: page_policy(form_targets())  # noqa: E731 - asked at each page
    app.add_middleware(SecurityHeaders, docs_paths=frozenset(path for path in docs if path), page_policy=policy)
    app.add_middleware(AccessLog, client_ip=settings.access_log_client_ip)

    @app.exception_handler(RateLimited)
    async def _rate_limited(request: Request, error: RateLimited) -> JSONResponse:
        response = problem_response(429, "Too many requests", f"try again in {error.retry_after} s")
        response.headers["Retry-After"] = str(error.retry_after)
        return response


# --- security headers ------------------------------------------------------------------------


class SecurityHeaders:
    """``nosniff`` on every response; pages (HTML) are also never cached, send no referrer and
    run under a strict content security policy. Other answers keep the ``Cache-Control`` their
    route gives (a stylesheet may be cached) and are ``no-store`` without one: an API's JSON is
    about people unless its route says otherwise."""

    def __init__(
        self, app: ASGIApp, docs_paths: frozenset[str] = frozenset(), page_policy: Callable[[], str] = page_policy
    ) -> None:
        self.app = app
        self.docs_paths = docs_paths
        self.page_policy = page_policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if _content_type(headers).startswith(b"text/html"):
                    policy = DOCS_POLICY if scope["path"] in self.docs_paths else self.page_policy()
                    headers = [(k, v) for k, v in headers if k.lower() not in _SET_ON_PAGES]
                    headers += [(k.encode(), v.encode()) for k, v in PAGE_HEADERS.items()]
                    headers.append((b"content-security-policy", policy.encode()))
                else:
                    headers = [(k, v) for k, v in headers if k.lower() != b"x-content-type-options"]
                    if not any(k.lower() == b"cache-control" for k, _ in headers):
                        headers.append((b"cache-control", b"no-store"))
                headers.append((b"x-content-type-options", b"nosniff"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


_SET_ON_PAGES = {b"x-content-type-options", b"content-security-policy", *(k.encode() for k in PAGE_HEADERS)}


def _content_type(headers: list[tuple[bytes, bytes]]) -> bytes:
    return next((v.lower() for k, v in headers if k.lower() == b"content-type"), b"")


# --- request body limit ----------------------------------------------------------------------


class BodyLimit:
    """Refuses a body larger than ``max_bytes`` with 413: by its Content-Length before anything is
    read, and while it streams in (chunked bodies have no length up front)."""

    def __init__(self, app: ASGIApp, max_bytes: int, error_answer: ErrorAnswer = problem_answer) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.error_answer = error_answer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            status = 413 if declared.isdigit() else 400
            title = "Request body too large" if status == 413 else "Invalid Content-Length"
            await self._refuse(scope, receive, send, status, title)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # FastAPI turns this into the 413 problem wherever the body is read.
                    raise HTTPException(413, "Request body too large")
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except HTTPException as error:
            if error.status_code != 413 or started:
                raise
            await self._refuse(scope, receive, send, 413, "Request body too large")

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, status: int, title: str) -> None:
        # The body stays unread: the answer must not wait for it.
        response = await self.error_answer(Request(scope), status, title, f"at most {self.max_bytes} bytes")
        await response(scope, receive, send)


# --- access log ------------------------------------------------------------------------------


class AccessLog:
    """One JSON line per request: method, route template (never the path itself, which may hold a
    capability such as an answer-link token), status and duration; no query string, and the
    client address only when asked for."""

    def __init__(self, app: ASGIApp, client_ip: bool = False) -> None:
        self.app = app
        self.client_ip = client_ip

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client sees when the app fails before answering

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            fields: dict[str, Any] = {
                "method": scope["method"],
                "route": route_of(scope),
                "status": status,
                "duration_ms": round((time.perf_counter() - started) * 1000, 1),
            }
            if self.client_ip and scope.get("client"):
                fields["client_ip"] = scope["client"][0]
            log.info("http request", **fields)


def route_of(scope: Scope) -> str:
    """The template of the route that answered (``/answers/{token}``), or ``(unmatched)``."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "(unmatched)"


# --- rate limit of public endpoints ----------------------------------------------------------


class RateLimited(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"retry after {retry_after} s")
        self.retry_after = retry_after


class PublicRateLimit:
    """Requests per caller and route in a moving window, kept in this process (each replica counts
    for itself). The caller is the person or system a verified bearer token names, else the client
    address (see :func:`caller_key`)."""

    def __init__(self, rate: str) -> None:
        self.item: RateLimitItem = parse(rate)
        self.limiter = MovingWindowRateLimiter(MemoryStorage())

    async def retry_after(self, request: Request, caller: str | None = None) -> int | None:
        """None if this request may pass (and counts it), else the seconds until one may.
        ``caller``: whom it counts for, if not the caller of :func:`caller_key`."""
        return await self.retry_after_for(
            caller if caller is not None else await caller_key(request), route_of(request.scope)
        )

    async def retry_after_for(self, *keys: str) -> int | None:
        """Like :meth:`retry_after` for whatever ``keys`` name (an allowance several routes share)."""
        if await self.limiter.hit(self.item, *keys):
            return None
        stats = await self.limiter.get_window_stats(self.item, *keys)
        return max(1, math.ceil(stats.reset_time - time.time()))


async def caller_key(request: Request) -> str:
    """Whom a request counts for. With a bearer token that verifies: its issuer and subject, so the
    people who reach a service through the portal (one client address for all of them) each have
    their own allowance, wherever they come from. Without one (or with one that does not verify):
    the client address, which behind a proxy is the proxy's unless the proxy is trusted
    (uvicorn's ``FORWARDED_ALLOW_IPS``: then the address it forwards)."""
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None:
        principal = await _bearer_principal(request)
    if principal is not None:
        return f"token:{principal.issuer}#{principal.subject}"
    return client_key(request.client.host if request.client else "unknown")


async def _bearer_principal(request: Request) -> Principal | None:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    verifier: TokenVerifier | None = getattr(request.app.state, "token_verifier", None)
    if scheme.lower() != "bearer" or not credentials.strip() or verifier is None:
        return None
    try:
        # Off the loop: an unknown key id fetches the provider's key set.
        return await asyncio.to_thread(verifier.verify, credentials.strip())
    except Problem:  # invalid, expired, or the provider away: counted by address like anyone
        return None


def client_key(host: str) -> str:
    """Whom a request counts for: an IPv4 address, or the /64 network of an IPv6 address (one
    subscriber gets a whole /64, so counting single addresses would give a client 2**64 quotas)."""
    try:
        address = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


async def rate_limit_retry_after(request: Request) -> int | None:
    """Counts a request to a public endpoint: None if it may pass, else the seconds to wait (for
    endpoints that answer with a page of their own)."""
    limit: PublicRateLimit = request.app.state.public_rate_limit
    return await limit.retry_after(request)


async def public_rate_limit(request: Request) -> None:
    """Dependency of a public endpoint that answers with problem documents: 429 with Retry-After."""
    retry_after = await rate_limit_retry_after(request)
    if retry_after is not None:
        raise RateLimited(retry_after)


def public_rate_limit_per(key: Callable[[Request], str]) -> Callable[[Request], Awaitable[None]]:
    """Dependency of a public endpoint whose allowance belongs to what ``key`` names in the request
    rather than to the caller: a capability URL (a calendar feed's secret, hashed) fetched through
    one address for everyone, as the portal's proxy does, would otherwise let one client use up
    the allowance of all. 429 with Retry-After, like :func:`public_rate_limit`."""

    async def limited(request: Request) -> None:
        limit: PublicRateLimit = request.app.state.public_rate_limit
        retry_after = await limit.retry_after(request, caller=f"key:{key(request)}")
        if retry_after is not None:
            raise RateLimited(retry_after)

    return limited
