"""The caller and the store as dependencies: coordinators manage their tenant's settings,
volunteers read their own inbox. The tenant always comes from the token, never from the path.

Every caller dependency records the caller as the actor of the request's writes (audit trail):
templates, guidance, webhooks, mail preferences, questions and answers, read marks, the digest.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request

from lotse_notifications.store import Store
from lotse_runtime.audit import act_as
from lotse_runtime.audit_api import request_actor
from lotse_runtime.auth import Principal, Role, authenticated, requires
from lotse_runtime.problems import problem_responses

NOT_FOUND = problem_responses(404)


def audited(*roles: Role) -> Callable[[Request, Principal], Awaitable[Principal]]:
    """A caller with one of ``roles`` whose writes in this request are recorded as theirs. Async,
    so the context it sets is the route's own (a sync one runs in a thread)."""

    check = requires(*roles)

    # The dependency as a default, not in the annotation: annotations are strings here (see the
    # __future__ import), and FastAPI resolves them in the module, where ``check`` is unknown.
    async def acting(request: Request, principal: Principal = Depends(check)) -> Principal:
        act_as(request_actor(request, principal))
        return principal

    return acting


async def caller(request: Request, principal: Annotated[Principal, Depends(authenticated)]) -> Principal:
    """Any authenticated caller, recorded as the actor of the request (the audit trail's routes)."""
    act_as(request_actor(request, principal))
    return principal


Caller = Annotated[Principal, Depends(caller)]
Coordinator = Annotated[Principal, Depends(audited(Role.COORDINATOR))]
Volunteer = Annotated[Principal, Depends(audited(Role.VOLUNTEER))]
OrganisationAdmin = Annotated[Principal, Depends(audited(Role.COORDINATOR, Role.INITIATIVE_ADMIN))]
# The name the template, guidance and webhook routes use: every coordinator is audited now.
AuditedCoordinator = Coordinator


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


StoreDep = Annotated[Store, Depends(_store)]
