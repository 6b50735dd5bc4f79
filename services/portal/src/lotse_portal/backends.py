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


@dataclass
class BackendProblem(Exception):
    status: int
    title: str
    detail: str = ""
    fields: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.status} {self.title}: {self.detail}"


class BackendUnavailable(Exception):
    """A service did not answer, or answered with a server error."""


# Public facts (tenant names, consent texts) change rarely; the registry limits public calls per
# caller, and all of the portal's anonymous visitors reach it from the portal's one address.
PUBLIC_CACHE_SECONDS = 60.0


class Backends:
    def __init__(self, settings: PortalSettings, http: httpx.AsyncClient) -> None:
        self.http = http
        self._public: dict[str, tuple[float, Any]] = {}
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
    ) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            response = await self.http.request(
                method, self.base[service] + path, json=json, params=params, headers=headers
            )
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
        """A public registry answer, cached for a minute. Asked with the signed-in person's
        ``token`` where there is one: the registry then counts the call against that person's
        allowance rather than against the portal's address, which all its visitors share."""
        cached = self._public.get(path)
        if cached is not None and time.monotonic() - cached[0] < PUBLIC_CACHE_SECONDS:
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
    return BackendProblem(response.status_code, str(body.get("title") or ""), str(body.get("detail") or ""), fields)
