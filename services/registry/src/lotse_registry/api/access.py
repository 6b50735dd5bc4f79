"""Who may do what: the caller and the registry as dependencies, and the access rules.

A caller outside the path's tenant gets 404 (never a hint that the resource exists), a caller
with the wrong role 403, and a resource the caller may not see within its tenant 404 as well.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from lotse_registry.store import Store
from lotse_runtime.audit import Actor, act_as
from lotse_runtime.auth import Principal, Role, authenticated
from lotse_runtime.problems import Problem, problem_responses

# Beyond what every route may answer (see lotse_runtime.problems): a tenant, or a resource in it,
# that the caller may not see is 404; a change that conflicts with the current state is 409.
NOT_FOUND = problem_responses(404)
CONFLICTS = problem_responses(409)
WRITE_REFUSALS = problem_responses(404, 409)


async def caller(request: Request, principal: Annotated[Principal, Depends(authenticated)]) -> Principal:
    request.state.principal = principal  # idempotency records are kept per caller
    # Every write of this request, and every contact read, is recorded as the caller's (audit
    # trail). Async, so the context it sets is the route's own (a sync one runs in a thread).
    route = request.scope.get("route")
    action = f"{request.method} {getattr(route, 'path', request.url.path)}"
    act_as(Actor(principal.subject, tuple(sorted(role.value for role in principal.roles)), action))
    return principal


def _registry(request: Request) -> Store:
    registry: Store = request.app.state.registry
    return registry


Caller = Annotated[Principal, Depends(caller)]
StoreDep = Annotated[Store, Depends(_registry)]


def registry_of(request: Request) -> Store:
    """The registry outside a route's parameters (the idempotency mechanism, the erasure)."""
    return _registry(request)


def member(principal: Principal, tenant: str) -> None:
    """The caller must belong to the tenant; other tenants' callers learn nothing (404)."""
    if principal.tenant == tenant:
        if principal.roles == {Role.DATA_PROTECTION_OFFICER}:
            # The officer reads the audit trail (``audit``) and nothing else of the tenant.
            raise Problem(403, "Forbidden", "the data-protection officer reads the audit trail only")
        return
    if principal.tenant is None and principal.has(Role.PLATFORM_ADMIN):
        raise Problem(403, "Forbidden", "platform admins manage tenants, not their data")
    raise Problem(404, "Not found", f"no tenant {tenant}")


def allow(principal: Principal, *roles: Role) -> None:
    if not principal.has(*roles):
        raise Problem(403, "Forbidden", "this needs one of the roles: " + ", ".join(role.value for role in roles))


def manages_tenant(principal: Principal, tenant: str) -> None:
    """Tenant-wide settings (postcode table, portal settings): a platform admin, or the tenant's
    coordinators."""
    if principal.has(Role.PLATFORM_ADMIN):
        return
    member(principal, tenant)
    allow(principal, Role.COORDINATOR)


def not_found(what: str, document_id: str) -> Problem:
    return Problem(404, "Not found", f"no {what} {document_id}")
