"""A request about a tenant another replica matches for is answered by that replica (issue 19).

Matching's use cases need the tenant's index, which only the tenant's owner holds (``ownership``).
Requests may reach any replica (a load balancer spreads them), so this middleware finds the
tenant a request is about before it is routed, and if another replica owns it, sends the request
there as it came (method, path, query, headers, body) and passes the answer back. The owner
authenticates and authorises it as if it had come directly; the client's address travels in
``X-Forwarded-For``, which the owner believes only from peers it trusts (uvicorn's
``FORWARDED_ALLOW_IPS``, as for any proxy in front of it). Where the tenant cannot be told from the
request (calendar feeds, the answer pages' stylesheet, operations) it is served here: those read
the database only.

The tenant of a request: ``/tenants/{tenant}/…`` names it; ``/volunteers/me/…`` carries it in the
bearer token's ``tenant`` claim and ``/answers/{token}`` in the link's token, both read without
checking the signature here (only to route; the owner checks it). A request that was forwarded
already and still finds no owner here (the partition is moving) is answered 503 with Retry-After
rather than forwarded again.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator

import httpx
import structlog
from prometheus_client import Counter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lotse_matching.ownership import Ownership
from lotse_runtime.answer_links import unverified_tenant
from lotse_runtime.problems import problem_response

log = structlog.get_logger("lotse.matching")

FORWARDED_BY = "lotse-forwarded-by"
# Not passed on: they describe one connection, not the request (RFC 9110, 7.6.1), or are set anew
# here (the client's own forwarding headers would be believed by the owner, which trusts this replica).
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "host",
        "content-length",
        "forwarded",
        "x-forwarded-for",
        "x-forwarded-proto",
        "x-forwarded-host",
        "x-forwarded-port",
        FORWARDED_BY,
    }
)
# httpx hands over the body decoded, so its length and encoding are the answer's own again.
NOT_PASSED_BACK = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding"})
RETRY_AFTER_SECONDS = 2
FORWARDED = Counter(
    "lotse_matching_forwarded_requests_total",
    "Requests about a tenant another replica matches for: forwarded there, or answered 503 while it moves",
    ["outcome"],
)


def tenant_of(path: str, authorization: str) -> str | None:
    """The tenant a request is about, as far as its path or credentials tell (unverified)."""
    parts = path.split("/")
    if len(parts) > 2 and parts[1] == "tenants":
        return parts[2] or None
    if path.startswith("/volunteers/me/") or path == "/volunteers/me":
        return _token_tenant(authorization)
    if len(parts) == 3 and parts[1] == "answers" and parts[2] != "assets":
        return unverified_tenant(parts[2])
    return None


def _token_tenant(authorization: str) -> str | None:
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return None
    try:
        payload = token.strip().split(".")[1]
        tenant = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["tenant"]
    except (IndexError, ValueError, KeyError, TypeError):
        return None
    return tenant if isinstance(tenant, str) and tenant else None


class ToTheOwner:
    """ASGI middleware: forwards a request about a tenant this replica does not match for.

    ``ownership`` and ``client`` are read from the app's state (the lifespan makes them), so that
    the middleware is declared before the app starts."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope["app"].state
        ownership: Ownership | None = getattr(state, "ownership", None)
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        tenant = tenant_of(scope["path"], headers.get("authorization", ""))
        if ownership is None or tenant is None or ownership.owns(tenant):
            await self.app(scope, receive, send)
            return
        owner = await ownership.owner_url(tenant)
        if FORWARDED_BY in headers or owner is None or owner == ownership.replica_url:
            # Forwarded here by a replica that took this one for the owner, or nobody owns the
            # tenant right now: its partition is moving to another replica.
            FORWARDED.labels("moving").inc()
            await self._unavailable(scope, receive, send, "the tenant's matching is moving to another replica")
            return
        await self._forward(scope, receive, send, headers, owner, state.forwarding)

    async def _forward(
        self, scope: Scope, receive: Receive, send: Send, headers: dict[str, str], owner: str, client: httpx.AsyncClient
    ) -> None:
        named = {name.strip().lower() for name in headers.get("connection", "").split(",")}
        sent = [
            (name, value)
            for name, value in scope["headers"]
            if name.decode("latin-1").lower() not in HOP_BY_HOP | named
        ]
        peer = scope.get("client")
        if peer:
            # The client as this replica sees it (its own proxy headers already applied by uvicorn).
            sent.append((b"x-forwarded-for", peer[0].encode("latin-1")))
        sent.append((b"x-forwarded-proto", scope.get("scheme", "http").encode("latin-1")))
        sent.append((FORWARDED_BY.encode(), scope["app"].state.ownership.replica_url.encode("latin-1")))
        # The path as it came, still encoded: decoding it would turn %3F or %2F into a query or a
        # step the owner's router never saw here.
        raw = scope.get("raw_path") or scope["path"].encode()
        query = scope.get("query_string", b"")
        url = httpx.URL(owner).copy_with(raw_path=raw + (b"?" + query if query else b""))
        has_body = "content-length" in headers or "transfer-encoding" in headers
        try:
            content = _body(receive) if has_body else None
            response = await client.request(scope["method"], url, headers=sent, content=content)
        except (httpx.HTTPError, ValueError) as error:
            log.warning("forwarding to the tenant's replica failed", owner=owner, error=repr(error))
            FORWARDED.labels("unreachable").inc()
            await self._unavailable(scope, receive, send, "the replica matching for this tenant did not answer")
            return
        FORWARDED.labels("forwarded").inc()
        await send(
            {
                "type": "http.response.start",
                "status": response.status_code,
                "headers": [
                    (name, value)
                    for name, value in response.headers.raw
                    if name.lower().decode() not in NOT_PASSED_BACK
                ]
                + _length(scope["method"], response),
            }
        )
        await send({"type": "http.response.body", "body": response.content})

    async def _unavailable(self, scope: Scope, receive: Receive, send: Send, detail: str) -> None:
        answer = problem_response(503, "Service unavailable", detail)
        answer.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        await answer(scope, receive, send)


def _length(method: str, response: httpx.Response) -> list[tuple[bytes, bytes]]:
    """A HEAD answer keeps the owner's length (it has no body); others carry their body's."""
    if method == "HEAD":
        given = response.headers.get("content-length")
        return [(b"content-length", given.encode())] if given else []
    return [(b"content-length", str(len(response.content)).encode())]


async def _body(receive: Receive) -> AsyncIterator[bytes]:
    """The request's body as it arrives: streamed on, so that the owner's size limit applies."""
    while True:
        message: Message = await receive()
        if message["type"] != "http.request":
            return
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return
