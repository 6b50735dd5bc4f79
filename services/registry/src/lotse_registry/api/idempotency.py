"""Idempotent commands: every POST honours an ``Idempotency-Key`` header.

With a key the request first claims it (unique index on tenant, caller and key), outside any
transaction, so that concurrent repeats never race inside transactions; the command's transaction
then stores the response on the claim. A repeat waits for that response and answers with it; a
claim whose command failed is released, one abandoned by a crash expires. The claims live in the
database, so a repeat may reach any replica; a command commits only while its claim (by its
token) is still its own, so a slow request whose claim a repeat judged abandoned and took over
commits nothing and answers as the repeat does.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import Header, Request
from fastapi.responses import JSONResponse

from lotse_registry.api.access import registry_of
from lotse_registry.store import ClaimLost, Document, Store, TenantScope, in_tenant, keep_response
from lotse_runtime.problems import Problem

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=128,
        description="Repeat a POST with the same key to get the first result; nothing is created twice.",
    ),
]

CLAIM_WAIT_SECONDS = 10.0
CLAIM_ABANDONED_AFTER = timedelta(seconds=30)


async def execute(
    request: Request,
    tenant: str,
    key: str | None,
    work: Callable[[TenantScope], Awaitable[Document]],
    render: Callable[[Document], dict[str, Any]],
    *,
    status: int = 201,
) -> JSONResponse:
    """Run a command in one transaction, once per Idempotency-Key (see the module's docstring)."""
    registry = registry_of(request)
    token: Any | None = None  # the claim this request holds

    async def unit(scope: TenantScope) -> dict[str, Any]:
        document = await work(scope)
        body = render(document)
        if token is not None:
            await keep_response(scope, token, {"status": status, "body": body, "resource_id": document.get("_id")})
        return body

    claim: Document | None = None
    fingerprint = ""
    if key is not None:
        # A key belongs to its caller: another caller's identical request must not get its answer.
        claim = {"tenant": tenant, "caller": request.state.principal.subject, "key": key}
        fingerprint = hashlib.sha256(
            request.method.encode() + request.url.path.encode() + await request.body()
        ).hexdigest()
    while True:
        if claim is not None:
            replay, token = await _claim_or_replay(registry, claim, fingerprint)
            if replay is not None:
                return replay
        try:
            body = await registry.unit_of_work.run(in_tenant(tenant, unit))
        except ClaimLost:
            # A repeat (maybe on another replica) judged this request abandoned and runs the
            # command itself: nothing of this one committed, it answers as the repeat does.
            continue
        except BaseException:
            if token is not None:
                await registry.release_claim(token)
            raise
        return JSONResponse(body, status_code=status)


async def _claim_or_replay(registry: Store, claim: Document, fingerprint: str) -> tuple[JSONResponse | None, Any]:
    """(None, the claim's token) once this request holds the claim; else the stored response of
    the first request."""
    deadline = asyncio.get_running_loop().time() + CLAIM_WAIT_SECONDS
    while True:
        token = await registry.claim_key(claim, fingerprint)
        if token is not None:
            return None, token
        stored = await registry.find_claim(claim)
        if stored is None:
            continue  # released meanwhile: claim again
        if stored["fingerprint"] != fingerprint:
            raise Problem(422, "Idempotency-Key reused", "this key was used for a different request")
        if stored["status"] is not None:
            replay = JSONResponse(stored["body"], status_code=stored["status"], headers={"Idempotent-Replayed": "true"})
            return replay, None
        if datetime.now(UTC) - stored["created_at"] > CLAIM_ABANDONED_AFTER:
            await registry.drop_abandoned_claim(stored)
            continue
        if asyncio.get_running_loop().time() > deadline:
            raise Problem(409, "Request in progress", "a request with this Idempotency-Key is still being processed")
        await asyncio.sleep(0.05)
