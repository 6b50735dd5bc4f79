"""The tenant's audit trail for its data-protection officer: a search and an export (CSV, JSON),
the same routes in every service that keeps a trail (``audit_router``).

Who changed what and who received personal contact data, with field names only (see
``lotse_runtime.audit``). Only the tenant's data-protection officer reads it; another tenant's
caller learns nothing (404), every other role of the tenant is refused (403).
"""

# No ``from __future__ import annotations``: the routes are defined inside ``audit_router``, and
# FastAPI must see their annotations evaluated (it cannot resolve names local to the factory).
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from pymongo.asynchronous.database import AsyncDatabase

from lotse_runtime import audit
from lotse_runtime.audit import Actor, AuditEntry, AuditQuery, Document, InvalidAuditCursor
from lotse_runtime.auth import Principal, Role, authenticated
from lotse_runtime.problems import Problem, problem_responses

NOT_FOUND = problem_responses(404)
Limit = Annotated[int, Query(ge=1, le=200, description="Page size")]
Cursor = Annotated[str | None, Query(description="next_cursor of the previous page")]
# A day or a time of day (ISO 8601), not a number: a bare number would be read as a timestamp.
MOMENT = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?(Z|[+-][0-9]{2}:?[0-9]{2})?)?$"


class AuditPage(BaseModel):
    items: list[AuditEntry]
    next_cursor: str | None = Field(description="Pass as cursor for the next (older) page; null on the last page.")


def request_actor(request: Request, principal: Principal) -> Actor:
    """The caller as the audit trail names them: token subject, roles and the route they called
    (its template, ``POST /tenants/{tenant}/...``, never the ids in the address)."""
    route = request.scope.get("route")
    action = f"{request.method} {getattr(route, 'path', request.url.path)}"
    return Actor(principal.subject, tuple(sorted(role.value for role in principal.roles)), action)


def officer_of(principal: Principal, tenant: str) -> None:
    """The tenant's data-protection officer only: another tenant's caller gets 404, a caller of
    this tenant without the role 403."""
    if principal.tenant != tenant:
        raise Problem(404, "Not found", f"no tenant {tenant}")
    if not principal.has(Role.DATA_PROTECTION_OFFICER):
        raise Problem(403, "Forbidden", "this needs one of the roles: " + Role.DATA_PROTECTION_OFFICER.value)


def _moment(name: str, text: str | None) -> datetime | None:
    """A day (its midnight) or a time; without an offset taken as UTC. A date that does not exist
    (2026-02-30) is refused naming the parameter."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as error:
        message = "not a date or time (ISO 8601)"
        errors = [{"field": f"query.{name}", "message": message}]
        raise Problem(422, "Invalid request", f"query.{name}: {message}", errors=errors) from error
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _attachment(tenant: str, extension: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="audit-{tenant}.{extension}"'}


def audit_router(
    database_of: Callable[[Request], AsyncDatabase[Document]],
    caller: Callable[..., Any] = authenticated,
) -> APIRouter:
    """The search (``GET /tenants/{tenant}/audit``) and the exports (``audit.csv``, ``audit.json``)
    of the trail in the database ``database_of`` gives for a request; ``caller``: the service's
    dependency that gives the authenticated ``Principal``."""
    router = APIRouter(tags=["audit"])
    Caller = Annotated[Principal, Depends(caller)]
    Database = Annotated[AsyncDatabase[Document], Depends(database_of)]

    def _query(
        tenant: str,
        principal: Caller,
        actor: Annotated[str | None, Query(max_length=200, description="The actor's token subject.")] = None,
        resource: Annotated[
            str | None,
            Query(
                max_length=200,
                description="A resource id (also matching the entries about that volunteer or need), a resource "
                "type (volunteers), or type/id.",
            ),
        ] = None,
        subject: Annotated[
            str | None,
            Query(
                max_length=200,
                description="A volunteer's or need's id: every entry about them, their consents, certificate "
                "checks, partner references and erasure included (the entries' subject_id).",
            ),
        ] = None,
        since: Annotated[
            str | None,
            Query(
                alias="from", pattern=MOMENT, description="From this day or time on (ISO 8601; without offset: UTC)."
            ),
        ] = None,
        until: Annotated[
            str | None, Query(alias="to", pattern=MOMENT, description="Before this day or time (ISO 8601).")
        ] = None,
    ) -> AuditQuery:
        officer_of(principal, tenant)
        return AuditQuery(
            tenant=tenant,
            actor=actor or None,
            resource=resource or None,
            subject=subject or None,
            since=_moment("from", since),
            until=_moment("to", until),
        )

    Search = Annotated[AuditQuery, Depends(_query)]

    @router.get("/tenants/{tenant}/audit", responses=NOT_FOUND)
    async def search_audit(database: Database, query: Search, limit: Limit = 50, cursor: Cursor = None) -> AuditPage:
        """The tenant's audit trail, newest first, narrowed by actor, resource and time (its
        data-protection officer)."""
        try:
            entries, next_cursor = await audit.search(database, query, cursor, limit)
        except InvalidAuditCursor as error:
            errors = [{"field": "query.cursor", "message": str(error)}]
            raise Problem(422, "Invalid request", f"query.cursor: {error}", errors=errors) from error
        return AuditPage(items=entries, next_cursor=next_cursor)

    @router.get("/tenants/{tenant}/audit.csv", responses=NOT_FOUND, response_class=StreamingResponse)
    async def export_audit_csv(database: Database, tenant: str, query: Search) -> StreamingResponse:
        """Every matching entry as CSV (one row per entry; roles and fields separated by spaces)."""

        async def rows() -> AsyncIterator[str]:
            yield audit.csv_header()
            async for entry in audit.every_entry(database, query):
                yield audit.csv_line(entry)

        return StreamingResponse(rows(), media_type="text/csv; charset=utf-8", headers=_attachment(tenant, "csv"))

    @router.get("/tenants/{tenant}/audit.json", responses=NOT_FOUND, response_class=StreamingResponse)
    async def export_audit_json(database: Database, tenant: str, query: Search) -> StreamingResponse:
        """Every matching entry as one JSON array, sent as it is read."""

        async def items() -> AsyncIterator[str]:
            yield "["
            separator = ""
            async for entry in audit.every_entry(database, query):
                yield separator + entry.model_dump_json()
                separator = ","
            yield "]"

        return StreamingResponse(items(), media_type="application/json", headers=_attachment(tenant, "json"))

    return router
