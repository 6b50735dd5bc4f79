"""Calls to the services' HTTP APIs, always with the signed-in person's access token.

The portal owns no data: what a page shows it reads from the registry, matching or notifications,
and what a person does there is a call to their API, which applies its own rules. A refusal comes
back as :class:`BackendProblem` (status, and the fields the service named), an outage as
:class:`BackendUnavailable`; pages turn both into messages in the person's language.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import httpx

from lotse_portal.settings import PortalSettings


class Service(StrEnum):
    REGISTRY = "registry"
    MATCHING = "matching"
    NOTIFICATIONS = "notifications"


@dataclass(frozen=True)
class ProblemRule:
    """A rule a service names in a refusal (matching's ``broken_rules``: a code and an English detail)."""

    rule: str
    detail: str


@dataclass
class BackendProblem(Exception):
    status: int
    title: str
    detail: str = ""
    fields: dict[str, str] = field(default_factory=dict)
    outcome: str = ""  # matching's code for why it refused (``no_longer_needed``, ``broken_rules``, ...)
    broken_rules: tuple[ProblemRule, ...] = ()

    def __str__(self) -> str:
        return f"{self.status} {self.title}: {self.detail}"


class BackendUnavailable(Exception):
    """A service did not answer, or answered with a server error."""


SAFE_METHODS = frozenset({"GET", "HEAD"})
# Idle connections to the services are dropped before uvicorn's keep-alive (5 s) closes them, so
# that a request rarely meets a connection the service is closing.
KEEPALIVE_EXPIRY_SECONDS = 2.0


class Backends:
    def __init__(self, settings: PortalSettings, http: httpx.AsyncClient) -> None:
        self.http = http
        # Public facts (tenant names, consent texts) change rarely; the registry limits public calls
        # per caller, and all of the portal's anonymous visitors reach it from the portal's one address.
        self._public: dict[str, tuple[float, Any]] = {}
        self._public_seconds = settings.public_cache_seconds
        self.base = {
            Service.REGISTRY: settings.registry_url.rstrip("/"),
            Service.MATCHING: settings.matching_url.rstrip("/"),
            Service.NOTIFICATIONS: settings.notifications_url.rstrip("/"),
        }

    async def call(
        self,
        service: Service,
        method: str,
        path: str,
        token: str | None,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        headers = {**(headers or {}), **({"Authorization": f"Bearer {token}"} if token else {})}
        url = self.base[service] + path
        try:
            try:
                response = await self.http.request(method, url, json=json, params=params, headers=headers)
            except httpx.RemoteProtocolError:
                # The service closed a pooled keep-alive connection just as the request went out
                # on it; a read may go again on a new one (a write may have been applied: never).
                if method not in SAFE_METHODS:
                    raise
                response = await self.http.request(method, url, json=json, params=params, headers=headers)
        except httpx.HTTPError as error:
            raise BackendUnavailable(f"{service} unreachable: {type(error).__name__}") from error
        if response.status_code >= 500:
            raise BackendUnavailable(f"{service} answered {response.status_code}")
        if response.status_code >= 400:
            raise _problem(response)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    async def public(self, path: str, token: str | None = None) -> Any:
        """A public registry answer, cached for ``public_cache_seconds`` (a minute). Asked with the signed-in person's
        ``token`` where there is one: the registry then counts the call against that person's
        allowance rather than against the portal's address, which all its visitors share."""
        cached = self._public.get(path)
        if cached is not None and time.monotonic() - cached[0] < self._public_seconds:
            return cached[1]
        answer = await self.get(Service.REGISTRY, path, token)
        self._public[path] = (time.monotonic(), answer)
        return answer

    async def get(self, service: Service, path: str, token: str | None, **params: Any) -> Any:
        return await self.call(service, "GET", path, token, params=params or None)

    async def post(self, service: Service, path: str, token: str | None, body: Any = None) -> Any:
        return await self.call(service, "POST", path, token, json=body)

    async def put(self, service: Service, path: str, token: str | None, body: Any) -> Any:
        return await self.call(service, "PUT", path, token, json=body)

    async def post_once(
        self, service: Service, path: str, token: str | None, body: Any = None, *, key: str | None
    ) -> Any:
        """A POST under an ``Idempotency-Key`` (the rendered form's): matching and the registry
        answer a repeat with the first request's outcome and do nothing twice."""
        return await self.call(
            service, "POST", path, token, json=body, headers={"Idempotency-Key": key} if key else None
        )


def _problem(response: httpx.Response) -> BackendProblem:
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    fields: dict[str, str] = {}
    for error in body.get("errors") or []:
        if isinstance(error, dict) and isinstance(error.get("field"), str):
            fields[error["field"]] = str(error.get("message") or "")
    rules = tuple(
        ProblemRule(str(item.get("rule") or ""), str(item.get("detail") or ""))
        for item in body.get("broken_rules") or []
        if isinstance(item, dict)
    )
    return BackendProblem(
        response.status_code,
        str(body.get("title") or ""),
        str(body.get("detail") or ""),
        fields,
        outcome=str(body.get("outcome") or ""),
        broken_rules=rules,
    )


@dataclass(frozen=True)
class OfficeNeedCalls:
    """The calls behind the office's dashboard and a need's page (issue 16), as one signed-in
    person of one tenant: matching's dashboard, staffing, check and actions, the registry's need,
    its cancellation and closing, and the people as the registry shows them to this person. The
    actions go under the rendered form's ``Idempotency-Key`` (``key``), so a form sent twice is
    done once."""

    backends: Backends
    token: str
    tenant: str

    @property
    def _base(self) -> str:
        return f"/tenants/{self.tenant}"

    async def dashboard(self, query: dict[str, Any]) -> Any:
        """Matching's ``GET /tenants/{t}/dashboard``: the needs that want something done."""
        return await self.backends.get(Service.MATCHING, f"{self._base}/dashboard", self.token, **query)

    async def need(self, need_id: str) -> Any:
        """The registry's need (404 for one this person may not see)."""
        return await self.backends.get(Service.REGISTRY, f"{self._base}/needs/{need_id}", self.token)

    async def staffing(self, need_id: str) -> Any:
        """Matching's proposals and committed volunteers of the need (404 until matching knows it)."""
        return await self.backends.get(Service.MATCHING, f"{self._base}/needs/{need_id}/staffing", self.token)

    async def check(self, need_id: str, volunteer_id: str) -> Any:
        """Matching's dry run for a volunteer the office chose: reasons, or the hard rules broken."""
        path = f"{self._base}/needs/{need_id}/candidates/{volunteer_id}"
        return await self.backends.get(Service.MATCHING, path, self.token)

    async def propose(self, need_id: str, volunteer_id: str, key: str | None) -> Any:
        path = f"{self._base}/needs/{need_id}/proposals"
        return await self.backends.post_once(
            Service.MATCHING, path, self.token, {"volunteer_id": volunteer_id}, key=key
        )

    async def record_answer(self, need_id: str, proposal_id: str, body: dict[str, str], key: str | None) -> Any:
        """A yes or no the volunteer gave by phone or in person."""
        path = f"{self._base}/needs/{need_id}/proposals/{proposal_id}/answer"
        return await self.backends.post_once(Service.MATCHING, path, self.token, body, key=key)

    async def release(self, need_id: str, volunteer_id: str, key: str | None) -> Any:
        path = f"{self._base}/needs/{need_id}/committed/{volunteer_id}/release"
        return await self.backends.post_once(Service.MATCHING, path, self.token, key=key)

    async def new_round(self, need_id: str, key: str | None) -> Any:
        path = f"{self._base}/needs/{need_id}/rounds"
        return await self.backends.post_once(Service.MATCHING, path, self.token, key=key)

    async def cancel(self, need_id: str, reason: str, key: str | None) -> Any:
        path = f"{self._base}/needs/{need_id}/cancellation"
        return await self.backends.post_once(Service.REGISTRY, path, self.token, {"reason": reason}, key=key)

    async def close(self, need_id: str, outcome: str, key: str | None) -> Any:
        path = f"{self._base}/needs/{need_id}/closing"
        return await self.backends.post_once(Service.REGISTRY, path, self.token, {"outcome": outcome}, key=key)

    async def volunteers(self, query: dict[str, Any]) -> Any:
        """The registry's volunteer list (names only where this person may see them)."""
        return await self.backends.get(Service.REGISTRY, f"{self._base}/volunteers", self.token, **query)

    async def volunteer(self, volunteer_id: str) -> Any:
        """One volunteer, with contact data only where the registry's need-to-know rule allows."""
        return await self.backends.get(Service.REGISTRY, f"{self._base}/volunteers/{volunteer_id}", self.token)

    async def staff(self) -> Any:
        """The office's staff by name (coordinators only)."""
        return await self.backends.get(Service.REGISTRY, f"{self._base}/staff", self.token)

    async def organisations(self) -> Any:
        return await self.backends.get(Service.REGISTRY, f"{self._base}/organisations", self.token, limit=100)


@dataclass(frozen=True)
class QuestionCalls:
    """The calls behind the questions to the coordination office (issue 16, item 5), as one
    signed-in person: a volunteer's own threads (``/me/threads``), the office's (``/threads``,
    coordinators). Notifications decides whose threads this person may read and write."""

    backends: Backends
    token: str

    async def mine(self) -> Any:
        return await self.backends.get(Service.NOTIFICATIONS, "/me/threads", self.token)

    async def export(self) -> Any:
        """Every thread of the volunteer with every message (their data export)."""
        return await self.backends.get(Service.NOTIFICATIONS, "/me/threads", self.token, include="messages")

    async def my_thread(self, thread_id: str) -> Any:
        return await self.backends.get(Service.NOTIFICATIONS, f"/me/threads/{thread_id}", self.token)

    async def ask(self, body: dict[str, Any]) -> Any:
        return await self.backends.post(Service.NOTIFICATIONS, "/me/threads", self.token, body)

    async def write(self, thread_id: str, text: str) -> Any:
        path = f"/me/threads/{thread_id}/messages"
        return await self.backends.post(Service.NOTIFICATIONS, path, self.token, {"text": text})

    async def office_threads(self, *, states: list[str], mine: bool, limit: int = 100) -> Any:
        params: dict[str, Any] = {"state": states, "limit": limit}
        if mine:
            params["mine"] = "true"
        return await self.backends.get(Service.NOTIFICATIONS, "/threads", self.token, **params)

    async def office_thread(self, thread_id: str) -> Any:
        return await self.backends.get(Service.NOTIFICATIONS, f"/threads/{thread_id}", self.token)

    async def answer(self, thread_id: str, text: str) -> Any:
        path = f"/threads/{thread_id}/messages"
        return await self.backends.post(Service.NOTIFICATIONS, path, self.token, {"text": text})

    async def close(self, thread_id: str) -> Any:
        return await self.backends.post(Service.NOTIFICATIONS, f"/threads/{thread_id}/closing", self.token)

    async def reopen(self, thread_id: str) -> Any:
        return await self.backends.post(Service.NOTIFICATIONS, f"/threads/{thread_id}/reopening", self.token)


@dataclass(frozen=True)
class OfficeVolunteerCalls:
    """The calls behind the office's volunteer pages (issue 16), as one signed-in person of one
    tenant: the registry's volunteers, certificate checks, staff and contact persons, and
    matching's history of a volunteer. Each service decides what this person may see and do."""

    backends: Backends
    token: str
    tenant: str

    @property
    def _base(self) -> str:
        return f"/tenants/{self.tenant}"

    async def search(self, query: dict[str, Any]) -> Any:
        """``GET /tenants/{t}/volunteers``: one page of volunteers for the search's filters."""
        return await self.backends.get(Service.REGISTRY, f"{self._base}/volunteers", self.token, **query)

    async def volunteer(self, volunteer_id: str) -> Any:
        """One volunteer, with their contact person at the office."""
        return await self.backends.get(Service.REGISTRY, f"{self._base}/volunteers/{volunteer_id}", self.token)

    async def history(self, volunteer_id: str) -> Any:
        """Matching's proposals, picks and engagements of the volunteer."""
        path = f"{self._base}/volunteers/{volunteer_id}/staffing"
        return await self.backends.get(Service.MATCHING, path, self.token)

    async def certificate_checks(self, volunteer_id: str) -> Any:
        path = f"{self._base}/volunteers/{volunteer_id}/certificate-checks"
        return await self.backends.get(Service.REGISTRY, path, self.token)

    async def record_check(self, volunteer_id: str, body: dict[str, str], key: str | None) -> Any:
        """Who saw the certificate is the token's person; the registry takes it from there. Under
        the rendered form's ``key``, so that the form sent twice records one check."""
        path = f"{self._base}/volunteers/{volunteer_id}/certificate-checks"
        return await self.backends.post_once(Service.REGISTRY, path, self.token, body, key=key)

    async def revoke_check(self, volunteer_id: str, check_id: str, reason: str, key: str | None) -> Any:
        path = f"{self._base}/volunteers/{volunteer_id}/certificate-checks/{check_id}/revocation"
        return await self.backends.post_once(Service.REGISTRY, path, self.token, {"reason": reason}, key=key)

    async def staff(self) -> Any:
        """The office's staff (coordinators only)."""
        return await self.backends.get(Service.REGISTRY, f"{self._base}/staff", self.token)

    async def enter_myself(self, body: dict[str, str]) -> Any:
        """The signed-in coordinator's own staff record, so that they can be named a contact person."""
        return await self.backends.put(Service.REGISTRY, f"{self._base}/staff/me", self.token, body)

    async def name_contact_person(self, volunteer_id: str, staff_id: str | None) -> Any:
        path = f"{self._base}/volunteers/{volunteer_id}/contact-person"
        return await self.backends.put(Service.REGISTRY, path, self.token, {"staff_id": staff_id})

    async def organisations(self) -> Any:
        return await self.backends.get(Service.REGISTRY, f"{self._base}/organisations", self.token, limit=100)
