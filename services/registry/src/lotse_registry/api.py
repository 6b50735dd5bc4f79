"""The HTTP API: tenants, organisations, volunteers, needs, partner commands and statistics.

Access follows the separation of tasks: a caller outside the path's tenant gets 404 (never a
hint that the resource exists), a caller with the wrong role 403, and a resource the caller
may not see within its tenant 404 as well. Every POST honours an ``Idempotency-Key`` header.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request
from fastapi.responses import JSONResponse
from pymongo.errors import DuplicateKeyError

from lotse_contracts import (
    Availability,
    CancelNeed,
    NeedDetails,
    RegisterVolunteer,
    ReportNeed,
    UpdateNeed,
    VolunteerRegistered,
)
from lotse_contracts.events.needs import NeedCategory
from lotse_contracts.events.volunteers import VolunteerProfile, WithdrawalReason
from lotse_registry import commands, domain, partner
from lotse_registry.api_models import (
    NeedCancellation,
    NeedClosing,
    OrganisationBody,
    TenantOnboarding,
    VolunteerRegistration,
    Withdrawal,
)
from lotse_registry.domain import DomainError, NeedStatus, VolunteerStatus
from lotse_registry.store import (
    COUNTERS,
    IDEMPOTENCY,
    NEEDS,
    ORGANISATIONS,
    PAGE_ORDER,
    TENANTS,
    VOLUNTEERS,
    Document,
    Registry,
    TenantScope,
    after_cursor,
    encode_cursor,
    in_tenant,
    scrub_erased_outbox,
)
from lotse_runtime.auth import Principal, Role, authenticated
from lotse_runtime.problems import Problem, problem_responses

router = APIRouter()

# Beyond what every route may answer (see lotse_runtime.problems): a tenant, or a resource in it,
# that the caller may not see is 404; a change that conflicts with the current state is 409.
NOT_FOUND = problem_responses(404)
CONFLICTS = problem_responses(409)
WRITE_REFUSALS = problem_responses(404, 409)


def _caller(request: Request, principal: Principal = Depends(authenticated)) -> Principal:
    request.state.principal = principal  # idempotency records are kept per caller
    return principal


Caller = Annotated[Principal, Depends(_caller)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=128,
        description="Repeat a POST with the same key to get the first result; nothing is created twice.",
    ),
]
Limit = Annotated[int, Query(ge=1, le=200, description="Page size")]
Cursor = Annotated[str | None, Query(description="next_cursor of the previous page")]


def _registry(request: Request) -> Registry:
    registry: Registry = request.app.state.registry
    return registry


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


def not_found(what: str, document_id: str) -> Problem:
    return Problem(404, "Not found", f"no {what} {document_id}")


async def execute(
    request: Request,
    tenant: str,
    key: str | None,
    work: Callable[[TenantScope], Awaitable[Document]],
    render: Callable[[Document], dict[str, Any]],
    *,
    status: int = 201,
) -> JSONResponse:
    """Run a command in one transaction.

    With an Idempotency-Key the request first claims the key (unique index on tenant, caller and
    key), outside any transaction, so that concurrent repeats never race inside transactions; the
    command's transaction then stores the response on the claim. A repeat waits for that response
    and answers with it; a claim whose command failed is released, one abandoned by a crash expires.
    """
    registry = _registry(request)

    async def unit(scope: TenantScope) -> dict[str, Any]:
        document = await work(scope)
        body = render(document)
        if claim is not None:
            stored = {"status": status, "body": body, "resource_id": document.get("_id")}
            await scope.database[IDEMPOTENCY].update_one(claim, {"$set": stored}, session=scope.session)
        return body

    claim: Document | None = None
    if key is not None:
        # A key belongs to its caller: another caller's identical request must not get its answer.
        claim = {"tenant": tenant, "caller": request.state.principal.subject, "key": key}
        fingerprint = hashlib.sha256(
            request.method.encode() + request.url.path.encode() + await request.body()
        ).hexdigest()
        replay = await _claim_or_replay(registry, claim, fingerprint)
        if replay is not None:
            return replay
    try:
        body = await registry.unit_of_work.run(in_tenant(tenant, unit))
    except BaseException:
        if claim is not None:
            await registry.database[IDEMPOTENCY].delete_one({**claim, "status": None})
        raise
    return JSONResponse(body, status_code=status)


CLAIM_WAIT_SECONDS = 10.0
CLAIM_ABANDONED_AFTER = timedelta(seconds=30)


async def _claim_or_replay(registry: Registry, claim: Document, fingerprint: str) -> JSONResponse | None:
    """None once this request holds the claim; else the stored response of the first request."""
    records = registry.database[IDEMPOTENCY]
    deadline = asyncio.get_running_loop().time() + CLAIM_WAIT_SECONDS
    while True:
        try:
            now = datetime.now(UTC)
            await records.insert_one({**claim, "fingerprint": fingerprint, "status": None, "created_at": now})
            return None
        except DuplicateKeyError:
            pass
        stored = await records.find_one(claim)
        if stored is None:
            continue  # released meanwhile: claim again
        if stored["fingerprint"] != fingerprint:
            raise Problem(422, "Idempotency-Key reused", "this key was used for a different request")
        if stored["status"] is not None:
            return JSONResponse(stored["body"], status_code=stored["status"], headers={"Idempotent-Replayed": "true"})
        if datetime.now(UTC) - stored["created_at"] > CLAIM_ABANDONED_AFTER:
            await records.delete_one({"_id": stored["_id"], "status": None})
            continue
        if asyncio.get_running_loop().time() > deadline:
            raise Problem(409, "Request in progress", "a request with this Idempotency-Key is still being processed")
        await asyncio.sleep(0.05)


def _json(document: Document) -> dict[str, Any]:
    """A stored document as JSON: datetimes as ISO strings, no internal fields."""
    out: dict[str, Any] = {}
    for name, value in document.items():
        if name in {"tenant", "_id"}:
            continue
        out[name] = value.isoformat() if isinstance(value, datetime) else value
    return out


def _page(items: list[dict[str, Any]], documents: list[Document], limit: int) -> dict[str, Any]:
    more = len(documents) > limit
    return {"items": items[:limit], "next_cursor": encode_cursor(documents[limit - 1]) if more else None}


# --- tenants -------------------------------------------------------------------------------------


def tenant_view(document: Document, *, full: bool) -> dict[str, Any]:
    view = {"slug": document["_id"], **_json(document)}
    if not full:
        for private in ("coordination_email", "coordination_phone"):
            view.pop(private, None)
    return view


@router.post(
    "/tenants",
    status_code=201,
    tags=["tenants"],
    summary="Onboard a municipality (platform admin)",
    responses=CONFLICTS,
)
async def onboard_tenant(
    request: Request, body: TenantOnboarding, principal: Caller, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    allow(principal, Role.PLATFORM_ADMIN)
    settings = body.model_dump(exclude={"slug", "default_search_radius_km", "coordination_phone"})
    extra = {"default_search_radius_km": body.default_search_radius_km, "coordination_phone": body.coordination_phone}

    async def work(scope: TenantScope) -> Document:
        from lotse_contracts import TenantOnboarded

        return await commands.onboard_tenant(scope, TenantOnboarded.model_validate(settings), extra)

    return await execute(request, body.slug, idempotency_key, work, lambda d: tenant_view(d, full=True))


@router.get("/tenants", tags=["tenants"], summary="List tenants (platform admin)")
async def list_tenants(request: Request, principal: Caller, limit: Limit = 50, cursor: Cursor = None) -> dict[str, Any]:
    allow(principal, Role.PLATFORM_ADMIN)
    documents = (
        await _registry(request)
        .database[TENANTS]
        .find(after_cursor(cursor))
        .sort(PAGE_ORDER)
        .limit(limit + 1)
        .to_list()
    )
    return _page([tenant_view(d, full=False) for d in documents], documents, limit)


@router.get("/tenants/{tenant}", tags=["tenants"], summary="A tenant's settings", responses=NOT_FOUND)
async def get_tenant(request: Request, tenant: str, principal: Caller) -> dict[str, Any]:
    if not principal.has(Role.PLATFORM_ADMIN):
        member(principal, tenant)
    document = await _registry(request).read(tenant).get(TENANTS, tenant)
    if document is None:
        raise not_found("tenant", tenant)
    return tenant_view(document, full=principal.has(Role.PLATFORM_ADMIN, Role.COORDINATOR, Role.INITIATIVE_ADMIN))


# --- organisations -------------------------------------------------------------------------------


def organisation_view(document: Document, *, in_list: bool) -> dict[str, Any]:
    view = {"organisation_id": document["_id"], **_json(document)}
    if in_list:
        view.pop("contact_email", None)
    return view


@router.post("/tenants/{tenant}/organisations", status_code=201, tags=["organisations"], responses=WRITE_REFUSALS)
async def register_organisation(
    request: Request, tenant: str, body: OrganisationBody, principal: Caller, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    """Register an initiative, round table, coordination office or welfare association (coordinator)."""
    member(principal, tenant)
    allow(principal, Role.COORDINATOR)
    fields = body.model_dump(mode="json")
    return await execute(
        request,
        tenant,
        idempotency_key,
        lambda scope: commands.register_organisation(scope, fields),
        lambda d: organisation_view(d, in_list=False),
    )


@router.get("/tenants/{tenant}/organisations", tags=["organisations"], responses=NOT_FOUND)
async def list_organisations(
    request: Request,
    tenant: str,
    principal: Caller,
    kind: str | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """Organisations of the tenant, without contact addresses (any member of the tenant)."""
    member(principal, tenant)
    query: Document = {"kind": kind} if kind else {}
    documents = (
        await _registry(request)
        .read(tenant)
        .find(ORGANISATIONS, {**query, **after_cursor(cursor)}, sort=PAGE_ORDER, limit=limit + 1)
    )
    return _page([organisation_view(d, in_list=True) for d in documents], documents, limit)


@router.get("/tenants/{tenant}/organisations/{organisation_id}", tags=["organisations"], responses=NOT_FOUND)
async def get_organisation(request: Request, tenant: str, organisation_id: str, principal: Caller) -> dict[str, Any]:
    member(principal, tenant)
    document = await _registry(request).read(tenant).get(ORGANISATIONS, organisation_id)
    if document is None:
        raise not_found("organisation", organisation_id)
    return organisation_view(document, in_list=not principal.has(Role.COORDINATOR, Role.INITIATIVE_ADMIN))


@router.put("/tenants/{tenant}/organisations/{organisation_id}", tags=["organisations"], responses=WRITE_REFUSALS)
async def update_organisation(
    request: Request, tenant: str, organisation_id: str, body: OrganisationBody, principal: Caller
) -> JSONResponse:
    """Change an organisation (coordinator, or the organisation's own initiative admin)."""
    member(principal, tenant)
    allow(principal, Role.COORDINATOR, Role.INITIATIVE_ADMIN)
    if not domain.manages_organisation(principal, organisation_id):
        raise not_found("organisation", organisation_id)
    fields = body.model_dump(mode="json")
    return await execute(
        request,
        tenant,
        None,
        lambda scope: commands.update_organisation(scope, organisation_id, fields, by=principal),
        lambda d: organisation_view(d, in_list=False),
        status=200,
    )


# --- volunteers ----------------------------------------------------------------------------------


def volunteer_view(principal: Principal, document: Document, *, in_list: bool) -> dict[str, Any]:
    return _json({"_id": document["_id"], **domain.volunteer_view(principal, document, in_list=in_list)})


@router.post("/tenants/{tenant}/volunteers", status_code=201, tags=["volunteers"], responses=WRITE_REFUSALS)
async def register_volunteer(
    request: Request,
    tenant: str,
    body: VolunteerRegistration,
    principal: Caller,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Register a volunteer with an explicit consent record.

    Self-registration needs a volunteer token of the tenant: its subject (a UUID issued by the
    identity provider) becomes the volunteer id, so the same token later reads and edits the
    profile. Coordinators register volunteers of the municipality and initiative admins those
    of their organisation on the volunteer's behalf; the registry then assigns the id.
    """
    member(principal, tenant)
    allow(principal, Role.VOLUNTEER, Role.COORDINATOR, Role.INITIATIVE_ADMIN)
    organisation_id = str(body.organisation_id) if body.organisation_id else None
    if principal.has(Role.VOLUNTEER):
        volunteer_id = _volunteer_subject(principal)
        via = "self"
    else:
        if not domain.manages_organisation(principal, organisation_id) and not principal.has(Role.COORDINATOR):
            raise Problem(403, "Forbidden", "initiative admins register volunteers of their own organisation")
        volunteer_id, via = commands.new_id(), "organisation"
    consent = {**body.consent.model_dump(mode="json"), "given_at": datetime.now(UTC).isoformat()}
    registration = VolunteerRegistered.model_validate(
        {"volunteer_id": volunteer_id, **body.model_dump(exclude={"consent"}), "consent": consent}
    )

    async def work(scope: TenantScope) -> Document:
        return await commands.register_volunteer(scope, volunteer_id, registration, registered_via=via)

    return await execute(request, tenant, idempotency_key, work, lambda d: volunteer_view(principal, d, in_list=False))


def _volunteer_subject(principal: Principal) -> str:
    import uuid

    try:
        return str(uuid.UUID(principal.subject))
    except ValueError:
        raise Problem(422, "Invalid volunteer token", "the token subject must be a UUID (the volunteer id)") from None


@router.get("/tenants/{tenant}/volunteers", tags=["volunteers"], responses=NOT_FOUND)
async def list_volunteers(
    request: Request,
    tenant: str,
    principal: Caller,
    status: VolunteerStatus | None = None,
    organisation_id: str | None = None,
    skill: str | None = None,
    language: str | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """Volunteers (coordinator: all; initiative admin: its organisation's). Never e-mail addresses."""
    member(principal, tenant)
    allow(principal, Role.COORDINATOR, Role.INITIATIVE_ADMIN)
    query: Document = {}
    if not principal.has(Role.COORDINATOR):
        query["organisation_id"] = principal.organisation
    elif organisation_id:
        query["organisation_id"] = organisation_id
    if status:
        query["status"] = status.value
    if skill:
        query["skills"] = skill
    if language:
        query["languages.language"] = language
    documents = (
        await _registry(request)
        .read(tenant)
        .find(VOLUNTEERS, {**query, **after_cursor(cursor)}, sort=PAGE_ORDER, limit=limit + 1)
    )
    return _page([volunteer_view(principal, d, in_list=True) for d in documents], documents, limit)


async def _visible_volunteer(request: Request, tenant: str, volunteer_id: str, principal: Principal) -> Document:
    member(principal, tenant)
    allow(principal, Role.VOLUNTEER, Role.COORDINATOR, Role.INITIATIVE_ADMIN)
    document = await _registry(request).read(tenant).get(VOLUNTEERS, volunteer_id)
    if document is None or not domain.may_read_volunteer(principal, document):
        raise not_found("volunteer", volunteer_id)
    return document


@router.get("/tenants/{tenant}/volunteers/{volunteer_id}", tags=["volunteers"], responses=NOT_FOUND)
async def get_volunteer(request: Request, tenant: str, volunteer_id: str, principal: Caller) -> dict[str, Any]:
    """One volunteer with engagements; contact details only for the volunteer, their own
    organisation and the coordination office for volunteers it coordinates."""
    document = await _visible_volunteer(request, tenant, volunteer_id, principal)
    return volunteer_view(principal, document, in_list=False)


async def _change_volunteer(
    request: Request,
    tenant: str,
    volunteer_id: str,
    principal: Principal,
    change: Callable[[TenantScope, Document], Awaitable[Document]],
    *,
    permitted: Callable[[Principal, Document], bool] = domain.may_edit_volunteer,
    key: str | None = None,
    status: int = 200,
) -> JSONResponse:
    await _visible_volunteer(request, tenant, volunteer_id, principal)

    async def work(scope: TenantScope) -> Document:
        current = await commands.load(scope, VOLUNTEERS, volunteer_id, "volunteer")
        if not permitted(principal, current):
            raise Problem(403, "Forbidden", "you may not do this for this volunteer")
        return await change(scope, current)

    return await execute(
        request, tenant, key, work, lambda d: volunteer_view(principal, d, in_list=False), status=status
    )


@router.put("/tenants/{tenant}/volunteers/{volunteer_id}/profile", tags=["volunteers"], responses=WRITE_REFUSALS)
async def update_profile(
    request: Request, tenant: str, volunteer_id: str, body: VolunteerProfile, principal: Caller
) -> JSONResponse:
    return await _change_volunteer(
        request, tenant, volunteer_id, principal, lambda scope, v: commands.update_profile(scope, v, body)
    )


@router.put("/tenants/{tenant}/volunteers/{volunteer_id}/availability", tags=["volunteers"], responses=WRITE_REFUSALS)
async def change_availability(
    request: Request, tenant: str, volunteer_id: str, body: Availability, principal: Caller
) -> JSONResponse:
    return await _change_volunteer(
        request, tenant, volunteer_id, principal, lambda scope, v: commands.change_availability(scope, v, body)
    )


@router.post("/tenants/{tenant}/volunteers/{volunteer_id}/withdrawal", tags=["volunteers"], responses=WRITE_REFUSALS)
async def withdraw(
    request: Request,
    tenant: str,
    volunteer_id: str,
    body: Withdrawal,
    principal: Caller,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Withdraw consent or leave: the volunteer stays registered but is never proposed again."""
    reason = body.reason
    if principal.has(Role.INITIATIVE_ADMIN) and not principal.has(Role.VOLUNTEER, Role.COORDINATOR):
        reason = WithdrawalReason.REMOVED_BY_ORGANISATION
    return await _change_volunteer(
        request,
        tenant,
        volunteer_id,
        principal,
        lambda scope, v: commands.withdraw_volunteer(scope, v, reason),
        key=idempotency_key,
    )


@router.post("/tenants/{tenant}/volunteers/{volunteer_id}/erasure", tags=["volunteers"], responses=WRITE_REFUSALS)
async def erase(
    request: Request, tenant: str, volunteer_id: str, principal: Caller, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    """Erase every personal datum of the volunteer (the volunteer, or a coordinator on request);
    only anonymous counts stay, and every service is told to erase too."""
    response = await _change_volunteer(
        request,
        tenant,
        volunteer_id,
        principal,
        commands.erase_volunteer,
        permitted=domain.may_erase_volunteer,
        key=idempotency_key,
    )
    await scrub_erased_outbox(_registry(request).database)
    return response


# --- needs ---------------------------------------------------------------------------------------


def need_view(principal: Principal, document: Document) -> dict[str, Any]:
    return _json({"_id": document["_id"], **domain.need_view(principal, document)})


@router.post("/tenants/{tenant}/needs", status_code=201, tags=["needs"], responses=WRITE_REFUSALS)
async def open_need(
    request: Request, tenant: str, body: NeedDetails, principal: Caller, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    """Open a need (coordinator, or an initiative admin for its own organisation)."""
    member(principal, tenant)
    allow(principal, Role.COORDINATOR, Role.INITIATIVE_ADMIN)
    if not domain.may_manage_need(principal, str(body.organisation_id)):
        raise Problem(403, "Forbidden", "initiative admins open needs of their own organisation")
    return await execute(
        request,
        tenant,
        idempotency_key,
        lambda scope: commands.open_need(scope, body),
        lambda d: need_view(principal, d),
    )


@router.get("/tenants/{tenant}/needs", tags=["needs"], responses=NOT_FOUND)
async def list_needs(
    request: Request,
    tenant: str,
    principal: Caller,
    status: NeedStatus | None = None,
    category: NeedCategory | None = None,
    organisation_id: str | None = None,
    unstaffed: bool | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """Needs: coordinators and partners all, initiative admins their organisation's, volunteers
    the open ones (to pick one themselves)."""
    member(principal, tenant)
    allow(principal, Role.COORDINATOR, Role.INITIATIVE_ADMIN, Role.VOLUNTEER, Role.PARTNER)
    query: Document = {}
    if status:
        query["status"] = status.value
    if category:
        query["category"] = category.value
    if organisation_id:
        query["organisation_id"] = organisation_id
    if unstaffed is not None:
        query["unstaffed"] = unstaffed
    if not principal.has(Role.COORDINATOR, Role.PARTNER):
        if principal.has(Role.INITIATIVE_ADMIN):
            query["organisation_id"] = principal.organisation
        else:
            query["status"] = NeedStatus.OPEN.value
    documents = (
        await _registry(request)
        .read(tenant)
        .find(NEEDS, {**query, **after_cursor(cursor)}, sort=PAGE_ORDER, limit=limit + 1)
    )
    return _page([need_view(principal, d) for d in documents], documents, limit)


@router.get("/tenants/{tenant}/needs/{need_id}", tags=["needs"], responses=NOT_FOUND)
async def get_need(request: Request, tenant: str, need_id: str, principal: Caller) -> dict[str, Any]:
    member(principal, tenant)
    document = await _registry(request).read(tenant).get(NEEDS, need_id)
    if document is None or not domain.may_read_need(principal, document):
        raise not_found("need", need_id)
    return need_view(principal, document)


async def _change_need(
    request: Request,
    tenant: str,
    need_id: str,
    principal: Principal,
    change: Callable[[TenantScope, Document], Awaitable[Document]],
    key: str | None = None,
) -> JSONResponse:
    member(principal, tenant)
    allow(principal, Role.COORDINATOR, Role.INITIATIVE_ADMIN)

    async def work(scope: TenantScope) -> Document:
        need = await scope.get(NEEDS, need_id)
        if need is None or not domain.may_manage_need(principal, need["organisation_id"]):
            raise not_found("need", need_id)
        return await change(scope, need)

    return await execute(request, tenant, key, work, lambda d: need_view(principal, d), status=200)


@router.put("/tenants/{tenant}/needs/{need_id}", tags=["needs"], responses=WRITE_REFUSALS)
async def update_need(
    request: Request, tenant: str, need_id: str, body: NeedDetails, principal: Caller
) -> JSONResponse:
    return await _change_need(
        request, tenant, need_id, principal, lambda scope, need: commands.update_need(scope, need, body)
    )


@router.post("/tenants/{tenant}/needs/{need_id}/cancellation", tags=["needs"], responses=WRITE_REFUSALS)
async def cancel_need(
    request: Request,
    tenant: str,
    need_id: str,
    body: NeedCancellation,
    principal: Caller,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    return await _change_need(
        request,
        tenant,
        need_id,
        principal,
        lambda scope, need: commands.cancel_need(scope, need, body.reason),
        idempotency_key,
    )


@router.post("/tenants/{tenant}/needs/{need_id}/closing", tags=["needs"], responses=WRITE_REFUSALS)
async def close_need(
    request: Request,
    tenant: str,
    need_id: str,
    body: NeedClosing,
    principal: Caller,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    return await _change_need(
        request,
        tenant,
        need_id,
        principal,
        lambda scope, need: commands.close_need(scope, need, body.outcome),
        idempotency_key,
    )


# --- partner commands over HTTP ------------------------------------------------------------------


async def _partner_command(
    request: Request, tenant: str, principal: Principal, command: partner.PartnerCommand, key: str | None, status: int
) -> JSONResponse:
    """The partner's token subject names its system; the same rules as on the inbound topic."""
    member(principal, tenant)
    allow(principal, Role.PARTNER)

    async def work(scope: TenantScope) -> Document:
        result = await partner.apply_command(scope, principal.subject, command, channel="http")
        assert result is not None  # without a sequence number nothing is stale
        return result

    def render(document: Document) -> dict[str, Any]:
        id_field = "volunteer_id" if isinstance(command, RegisterVolunteer) else "need_id"
        return {id_field: document["_id"], "external_ref": command.external_ref, "status": document["status"]}

    return await execute(request, tenant, key, work, render, status=status)


@router.post(
    "/tenants/{tenant}/partner/needs/report", status_code=201, tags=["partner commands"], responses=WRITE_REFUSALS
)
async def partner_report_need(
    request: Request, tenant: str, body: ReportNeed, principal: Caller, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    return await _partner_command(request, tenant, principal, body, idempotency_key, 201)


@router.post("/tenants/{tenant}/partner/needs/update", tags=["partner commands"], responses=WRITE_REFUSALS)
async def partner_update_need(
    request: Request, tenant: str, body: UpdateNeed, principal: Caller, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    return await _partner_command(request, tenant, principal, body, idempotency_key, 200)


@router.post("/tenants/{tenant}/partner/needs/cancel", tags=["partner commands"], responses=WRITE_REFUSALS)
async def partner_cancel_need(
    request: Request, tenant: str, body: CancelNeed, principal: Caller, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    return await _partner_command(request, tenant, principal, body, idempotency_key, 200)


@router.post(
    "/tenants/{tenant}/partner/volunteers/register",
    status_code=201,
    tags=["partner commands"],
    responses=WRITE_REFUSALS,
)
async def partner_register_volunteer(
    request: Request, tenant: str, body: RegisterVolunteer, principal: Caller, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    return await _partner_command(request, tenant, principal, body, idempotency_key, 201)


# --- statistics ----------------------------------------------------------------------------------


@router.get("/tenants/{tenant}/statistics", tags=["statistics"], responses=NOT_FOUND)
async def statistics(request: Request, tenant: str, principal: Caller) -> dict[str, Any]:
    """Open, staffed and unstaffed needs by category, and volunteer counts (coordinator)."""
    member(principal, tenant)
    allow(principal, Role.COORDINATOR)
    scope = _registry(request).read(tenant)
    needs = await scope.find(NEEDS, {}, projection={"category": 1, "status": 1, "unstaffed": 1})
    by_category: dict[str, dict[str, int]] = {}
    for need in needs:
        counts = by_category.setdefault(need["category"], {"open": 0, "staffed": 0, "unstaffed": 0})
        if need["status"] == NeedStatus.OPEN:
            counts["open"] += 1
            if need.get("unstaffed"):
                counts["unstaffed"] += 1
        elif need["status"] == NeedStatus.STAFFED:
            counts["staffed"] += 1
    volunteers = {
        status.value: await scope.count(VOLUNTEERS, {"status": status.value})
        for status in (VolunteerStatus.ACTIVE, VolunteerStatus.WITHDRAWN)
    }
    counters = await scope.get(COUNTERS, f"{tenant}:volunteers") or {}
    volunteers["erased"] = counters.get("erased", 0)
    return {"tenant": tenant, "needs_by_category": by_category, "volunteers": volunteers}


def install_domain_errors(app: FastAPI) -> None:
    from lotse_registry.store import InvalidCursor, StaleVersion
    from lotse_runtime.problems import problem_response

    @app.exception_handler(DomainError)
    async def _domain(request: Request, error: DomainError) -> JSONResponse:
        return problem_response(error.status, error.title, error.detail)

    @app.exception_handler(DuplicateKeyError)
    async def _duplicate(request: Request, error: DuplicateKeyError) -> JSONResponse:
        return problem_response(409, "Conflict", "the resource already exists")

    @app.exception_handler(InvalidCursor)
    async def _cursor(request: Request, error: InvalidCursor) -> JSONResponse:
        errors = [{"field": "query.cursor", "message": str(error)}]
        return problem_response(422, "Invalid request", f"query.cursor: {error}", errors=errors)

    @app.exception_handler(StaleVersion)
    async def _stale(request: Request, error: StaleVersion) -> JSONResponse:
        return problem_response(409, "Changed concurrently", "the resource changed meanwhile; read it and try again")
