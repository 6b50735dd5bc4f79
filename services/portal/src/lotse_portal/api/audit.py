"""The audit trail for the municipality's data-protection officer: who changed what and who read
personal contact data (field names only), searched by person, record and time, and its export as
CSV and JSON. The page is the officer's only one in the console.

Each service keeps its own trail (the registry, matching, notifications): the page asks all three
and shows one list, newest first, each entry naming its service; the downloads are each service's
export of the same search."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

import httpx
from fastapi import APIRouter, Depends
from fastapi.responses import Response

from lotse_portal.api.access import NotAllowed, SignedIn, Visit, tenant, token
from lotse_portal.backends import BackendProblem, BackendUnavailable, Service
from lotse_runtime.audit import AuditEntry, encode_audit_cursor
from lotse_runtime.auth import Role
from lotse_runtime.i18n import N_

router = APIRouter()

OPERATIONS = {
    "create": N_("angelegt"),
    "update": N_("geändert"),
    "delete": N_("gelöscht"),
    "read": N_("Kontaktdaten gelesen"),
}
EXPORTS = {"csv": "text/csv; charset=utf-8", "json": "application/json"}
PAGE_SIZE = 50
# The services that keep a trail, as the page names them.
SERVICES = {
    Service.REGISTRY: N_("Stammdaten"),
    Service.MATCHING: N_("Vermittlung"),
    Service.NOTIFICATIONS: N_("Nachrichten"),
}


async def officer_visit(current: SignedIn) -> Visit:
    if not current.has(Role.DATA_PROTECTION_OFFICER):
        raise NotAllowed
    return current


OfficerVisit = Annotated[Visit, Depends(officer_visit)]


@dataclass(frozen=True)
class AuditSearch:
    """The search form as typed, and what the registry is asked (``params``) if it is valid."""

    actor: str = ""
    resource: str = ""
    since: str = ""
    until: str = ""

    def errors(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for name, text in (("from", self.since), ("to", self.until)):
            if text and _date(text) is None:
                found[name] = N_("Bitte geben Sie ein Datum an, z. B. 2026-12-01.")
        since, until = _date(self.since), _date(self.until)
        if since is not None and until is not None and until < since:
            found["to"] = N_("Das Ende darf nicht vor dem Anfang liegen.")
        return found

    def params(self) -> dict[str, str]:
        """The registry's query: whole days, the end day included."""
        params = {"actor": self.actor.strip(), "resource": self.resource.strip()}
        since, until = _date(self.since), _date(self.until)
        if since is not None:
            params["from"] = since.isoformat()
        if until is not None:
            params["to"] = (until + timedelta(days=1)).isoformat()
        return {name: value for name, value in params.items() if value}

    def query(self) -> str:
        """The search as the export links and the next page repeat it."""
        form = {"actor": self.actor, "resource": self.resource, "from": self.since, "to": self.until}
        return urlencode({name: value for name, value in form.items() if value})


def _date(text: str) -> date | None:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        return None


def _search(actor: str = "", resource: str = "", since: str = "", until: str = "") -> AuditSearch:
    return AuditSearch(actor=actor[:200], resource=resource[:200], since=since[:20], until=until[:20])


async def _form(current: Visit) -> AuditSearch:
    query = current.request.query_params
    return _search(query.get("actor", ""), query.get("resource", ""), query.get("from", ""), query.get("to", ""))


@dataclass(frozen=True)
class Found:
    """One service's page of the trail: its entries (newest first) and whether it has older ones."""

    items: list[dict[str, Any]]
    more: bool


def merged(found: Mapping[Service, Found], limit: int) -> tuple[list[dict[str, Any]], str | None]:
    """One list of the services' pages, newest first (each entry with its ``service``), and the
    cursor of the next page: the position of the last entry shown. Every trail orders by time and
    id and reads a cursor as that position, so the one cursor asks each service for what is older
    than what was shown, and nothing is skipped or shown twice."""
    entries = [{**item, "service": service.value} for service, page in found.items() for item in page.items]
    # By the time itself, not its text: a time on the whole second is written without a fraction.
    entries.sort(key=lambda entry: (datetime.fromisoformat(entry["at"]), entry["id"]), reverse=True)
    shown = entries[:limit]
    more = len(entries) > limit or any(page.more for page in found.values())
    if not more or not shown:
        return shown, None
    return shown, encode_audit_cursor(AuditEntry.model_validate(shown[-1]))


async def _search_all(current: Visit, params: dict[str, Any]) -> dict[Service, Found]:
    """Every service's page of the search, asked at once. One that cannot answer fails the whole
    page (the error page): an officer must not take a list with one service missing for complete."""
    backends, path = current.portal.backends, f"/tenants/{tenant(current)}/audit"
    answers = await asyncio.gather(*(backends.get(service, path, token(current), **params) for service in SERVICES))
    return {
        service: Found(answer["items"], answer["next_cursor"] is not None)
        for service, answer in zip(SERVICES, answers, strict=True)
    }


@router.get("/console/audit")
async def page(current: OfficerVisit, cursor: str | None = None) -> Response:
    search = await _form(current)
    errors = search.errors()
    entries: list[dict[str, Any]] = []
    next_cursor = None
    if not errors:
        params: dict[str, Any] = {**search.params(), "limit": PAGE_SIZE}
        if cursor:
            params["cursor"] = cursor[:500]
        entries, next_cursor = merged(await _search_all(current, params), PAGE_SIZE)
    return await current.page(
        "console_audit.html",
        search=search,
        errors=errors,
        entries=entries,
        operations=OPERATIONS,
        services=SERVICES,
        next_cursor=next_cursor,
        status=422 if errors else 200,
    )


@router.get("/console/audit.{kind}")
async def export(current: OfficerVisit, kind: str, service: str = Service.REGISTRY.value) -> Response:
    """A service's export of the search (``service``; the registry's if none is named), passed on
    as a download (the browser holds no token of its own)."""
    if kind not in EXPORTS or service not in SERVICES:
        return await current.page("error.html", status=404, problem="not_found")
    search = await _form(current)
    if search.errors():
        return await current.redirect(f"/console/audit?{search.query()}")
    backends, source = current.portal.backends, Service(service)
    url = f"{backends.base[source]}/tenants/{tenant(current)}/audit.{kind}"
    try:
        answer = await backends.http.get(
            url, params=search.params(), headers={"Authorization": f"Bearer {token(current)}"}
        )
    except httpx.HTTPError as error:
        raise BackendUnavailable(f"{source} unreachable: {type(error).__name__}") from error
    if answer.status_code >= 500:
        raise BackendUnavailable(f"{source} answered {answer.status_code}")
    if answer.status_code >= 400:
        raise BackendProblem(answer.status_code, "Refused", answer.text[:200])
    return await current.finish(
        Response(
            answer.content,
            media_type=EXPORTS[kind],
            headers={
                "Content-Disposition": f'attachment; filename="lotse-audit-{tenant(current)}-{source}.{kind}"',
                "Cache-Control": "no-store",
            },
        )
    )
