"""The caller and the store as dependencies: coordinators manage their tenant's settings,
volunteers read their own inbox. The tenant always comes from the token, never from the path."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from lotse_notifications.store import Store
from lotse_runtime.audit import Actor, act_as
from lotse_runtime.auth import Principal, Role, requires
from lotse_runtime.problems import problem_responses

NOT_FOUND = problem_responses(404)
Coordinator = Annotated[Principal, Depends(requires(Role.COORDINATOR))]
Volunteer = Annotated[Principal, Depends(requires(Role.VOLUNTEER))]


async def _audited_coordinator(
    request: Request, principal: Annotated[Principal, Depends(requires(Role.COORDINATOR))]
) -> Principal:
    """A coordinator whose writes in this request are recorded as theirs (audit trail). Async, so
    the context it sets is the route's own (a sync one runs in a thread)."""
    route = request.scope.get("route")
    action = f"{request.method} {getattr(route, 'path', request.url.path)}"
    act_as(Actor(principal.subject, tuple(sorted(role.value for role in principal.roles)), action))
    return principal


AuditedCoordinator = Annotated[Principal, Depends(_audited_coordinator)]


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


StoreDep = Annotated[Store, Depends(_store)]
