"""The subject-access export (DSGVO Art. 15 and 20): the shape in which every service answers
``GET /tenants/{tenant}/volunteers/{volunteer_id}/subject-access`` with everything it holds
about one volunteer, one section per collection.

A section's records are the stored documents as JSON, so that nothing the service keeps is left
out by a view that forgot a field; what is a secret (a token's hash, a fingerprint) is named in
``withheld`` and its value replaced, never revealed. Who may ask: the volunteer themself and the
coordinators of the tenant (the office, on the person's written request); a caller of another
tenant gets 404, another volunteer 404 (no hint whom the tenant knows), any other role 403.

The office's call states the day the written request it answers was received (``request_date``):
without it the call is refused with 422 naming the parameter, so that every export for someone
else rests on a request that can be shown (see ``office_request``). No free text goes with it:
the audit trail keeps it for years and must hold no values a person typed.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends, Query
from pydantic import BaseModel, BeforeValidator, Field, JsonValue
from pymongo.asynchronous.database import AsyncDatabase

from lotse_runtime.audit import Document, act_as, current_actor, record_reads
from lotse_runtime.auth import Principal, Role, authenticated
from lotse_runtime.problems import Problem

SUBJECT_ACCESS_PATH = "/tenants/{tenant}/volunteers/{volunteer_id}/subject-access"
# What stands in a record in place of a secret's value.
WITHHELD = "(withheld)"


class Section(BaseModel):
    """One collection's records about the person."""

    about: str = Field(description="What these records are and why the service keeps them.")
    records: list[dict[str, JsonValue]] = Field(default_factory=list)
    withheld: list[str] = Field(
        default_factory=list, description="Fields held but not shown (secrets), as dotted paths."
    )


class SubjectAccess(BaseModel):
    """What one service holds about one volunteer; each service adds its sections as fields."""

    service: str
    tenant: str
    volunteer_id: str
    produced_at: datetime


def may_ask(principal: Principal, tenant: str, volunteer_id: str) -> None:
    """The volunteer themself or a coordinator of the tenant; else 404 or 403 (see the module)."""
    if principal.tenant != tenant:
        if principal.tenant is None and principal.has(Role.PLATFORM_ADMIN):
            raise Problem(403, "Forbidden", "platform admins manage tenants, not their data")
        raise Problem(404, "Not found", f"no tenant {tenant}")
    if principal.has(Role.COORDINATOR):
        return
    if principal.has(Role.VOLUNTEER):
        if principal.volunteer_id == volunteer_id:
            return
        raise Problem(404, "Not found", f"no volunteer {volunteer_id}")
    raise Problem(403, "Forbidden", "this needs one of the roles: volunteer (themself), coordinator")


# The query parameters by which the office states the written request it answers.
def _calendar_date(value: object) -> object:
    """A day as YYYY-MM-DD only: pydantic would also read a number (``0.0``) as seconds since 1970."""
    if isinstance(value, str) and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise ValueError("a date as YYYY-MM-DD")
    return value


RequestDate = Annotated[
    date | None,
    BeforeValidator(_calendar_date),
    Query(description="Coordinators: the day the person's written request was received (required for them)."),
]


@dataclass(frozen=True)
class OfficeRequest:
    """The person's written request on which the office produces their export."""

    received_on: date

    def describe(self) -> str:
        """What the audit trail says the read was (no personal data, only the request's date)."""
        return f"subject-access export on the written request received on {self.received_on.isoformat()}"


def office_request(principal: Principal, volunteer_id: str, request_date: date | None) -> OfficeRequest | None:
    """None when the volunteer asks for their own export; for anyone else (the office, already
    admitted by ``may_ask``) the written request they state, else 422 naming ``request_date``.
    A date more than a day ahead of UTC (a tenant's day may begin earlier) is refused too."""
    if principal.has(Role.VOLUNTEER) and principal.volunteer_id == volunteer_id:
        return None
    if request_date is None:
        message = "the office states the day the person's written request was received"
        raise _invalid_request_date(message)
    if request_date > datetime.now(UTC).date() + timedelta(days=1):
        raise _invalid_request_date("a request cannot have been received in the future")
    return OfficeRequest(request_date)


@dataclass(frozen=True)
class AdmittedRequest:
    """A subject-access request ``may_ask`` admitted: whose export, and the office's written
    request (None when the volunteer asks for their own)."""

    tenant: str
    volunteer_id: str
    office_request: OfficeRequest | None


async def admitted_request(
    tenant: str,
    volunteer_id: str,
    principal: Annotated[Principal, Depends(authenticated)],
    request_date: RequestDate = None,
) -> AdmittedRequest:
    """The dependency of a service's ``SUBJECT_ACCESS_PATH`` route: who may ask, and on what."""
    may_ask(principal, tenant, volunteer_id)
    return AdmittedRequest(tenant, volunteer_id, office_request(principal, volunteer_id, request_date))


Admitted = Annotated[AdmittedRequest, Depends(admitted_request)]


async def record_office_export(database: AsyncDatabase[Document], asked: AdmittedRequest, shown: Iterable[str]) -> None:
    """Someone other than the person received their export: recorded in the service's audit trail
    as a read of each section shown, under the volunteer, the caller's action naming the export and
    its written request (as the registry records its own). The person's own export is no disclosure."""
    if asked.office_request is None:
        return
    actor = current_actor()
    act_as(replace(actor, action=f"{actor.action or 'GET ' + SUBJECT_ACCESS_PATH} ({asked.office_request.describe()})"))
    await record_reads(database, asked.tenant, "volunteers", [asked.volunteer_id], shown, subjects=True)


def _invalid_request_date(message: str) -> Problem:
    field = "query.request_date"
    return Problem(422, "Invalid request", f"{field}: {message}", errors=[{"field": field, "message": message}])


def section(about: str, documents: Iterable[Mapping[str, Any]], *, secrets: Iterable[str] = ()) -> Section:
    """``documents`` as JSON records, each value of a field in ``secrets`` (dotted paths into
    nested documents) replaced by ``WITHHELD``; the tenant is left out (it is the export's)."""
    hidden = tuple(secrets)
    records = [_withhold(as_json_object(document, leave_out=("tenant",)), hidden) for document in documents]
    return Section(about=about, records=records, withheld=list(hidden))


def as_json_object(document: Mapping[str, Any], leave_out: tuple[str, ...] = ()) -> dict[str, JsonValue]:
    return {str(key): as_json(value) for key, value in document.items() if key not in leave_out}


def as_json(value: Any) -> JsonValue:
    """A stored value as JSON: dates as ISO 8601, bytes as the JSON they hold if they hold one
    (an outbox's event), else base64."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return as_json_object(value)
    if isinstance(value, list | tuple | set | frozenset):
        return [as_json(item) for item in value]
    if isinstance(value, bytes | bytearray):
        try:
            parsed: JsonValue = json.loads(bytes(value))
        except ValueError:
            return base64.b64encode(bytes(value)).decode()
        return parsed
    return str(value)  # ObjectId, Decimal128, UUID


def _withhold(record: dict[str, JsonValue], paths: tuple[str, ...]) -> dict[str, JsonValue]:
    for path in paths:
        _withhold_path(record, path.split("."))
    return record


def _withhold_path(value: JsonValue, names: list[str]) -> None:
    """Replace the value at ``names`` below ``value``; a list on the way is searched item by item
    (a secret inside an array of documents is as secret as one outside)."""
    if isinstance(value, list):
        for item in value:
            _withhold_path(item, names)
        return
    if not isinstance(value, dict) or names[0] not in value:
        return
    name, rest = names[0], names[1:]
    if rest:
        _withhold_path(value[name], rest)
    elif value[name] is not None:
        value[name] = WITHHELD
