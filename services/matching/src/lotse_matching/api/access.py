"""The caller and the matching service as dependencies, and who may use the office's console.

As in the registry: a caller outside the path's tenant gets 404 (never a hint that the tenant
exists), a caller of the tenant with the wrong role 403, and a need or volunteer of the tenant
that the caller may not see 404 as well.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from lotse_matching.service import Matching, OfficeScope
from lotse_matching.store import Actor, Store
from lotse_runtime.audit import act_as
from lotse_runtime.audit_api import request_actor
from lotse_runtime.auth import Principal, Role, authenticated, requires
from lotse_runtime.problems import Problem


async def caller(request: Request, principal: Annotated[Principal, Depends(authenticated)]) -> Principal:
    """The authenticated caller, whose writes in this request are recorded as theirs (audit
    trail). Async, so the context it sets is the route's own (a sync one runs in a thread)."""
    act_as(request_actor(request, principal))
    return principal


Caller = Annotated[Principal, Depends(caller)]


async def _volunteer(request: Request, principal: Annotated[Principal, Depends(requires(Role.VOLUNTEER))]) -> Principal:
    act_as(request_actor(request, principal))  # their answers, picks and hours are recorded as theirs
    return principal


Volunteer = Annotated[Principal, Depends(_volunteer)]


def matching_of(request: Request) -> Matching:
    matching: Matching = request.app.state.matching
    return matching


Service = Annotated[Matching, Depends(matching_of)]


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


StoreDep = Annotated[Store, Depends(_store)]


def member(principal: Principal, tenant: str) -> None:
    """The caller must belong to the tenant; other tenants' callers learn nothing (404)."""
    if principal.tenant == tenant:
        return
    if principal.tenant is None and principal.has(Role.PLATFORM_ADMIN):
        raise Problem(403, "Forbidden", "platform admins manage tenants, not their data")
    raise Problem(404, "Not found", f"no tenant {tenant}")


def allow(principal: Principal, *roles: Role) -> None:
    if not principal.has(*roles):
        raise Problem(403, "Forbidden", "this needs one of the roles: " + ", ".join(role.value for role in roles))


def office_scope(tenant: str, principal: Annotated[Principal, Depends(caller)]) -> OfficeScope:
    """The coordination office's console of the path's tenant: its coordinators see and act on
    every need, initiative admins on their own organisation's needs (and choose among its
    volunteers); volunteers and partners are refused (403)."""
    member(principal, tenant)
    allow(principal, Role.COORDINATOR, Role.INITIATIVE_ADMIN)
    if principal.has(Role.COORDINATOR):
        return OfficeScope(tenant, Actor(principal.subject, Role.COORDINATOR.value), None)
    # The token verifier refuses an initiative admin's token without an organisation.
    return OfficeScope(tenant, Actor(principal.subject, Role.INITIATIVE_ADMIN.value), principal.organisation)


Office = Annotated[OfficeScope, Depends(office_scope)]


def not_found(what: str, identifier: str) -> Problem:
    return Problem(404, "Not found", f"no {what} {identifier}")
