"""The subject-access export (DSGVO Art. 15 and 20) as one file: what each service answers at
``lotse_runtime.subject_access.SUBJECT_ACCESS_PATH`` (registry, matching, notifications) and the
portal's own sessions. The volunteer downloads it at ``/my-data/export``; the coordination office
produces it on the person's written request (``/console/volunteers/{id}/subject-access``), and
then the file also says who produced it, when, and on which request."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime

from fastapi.responses import Response
from pydantic import BaseModel, JsonValue

from lotse_portal.backends import Backends, Service
from lotse_portal.store import SECRET_FIELDS, Store
from lotse_runtime.subject_access import SUBJECT_ACCESS_PATH, Section, section


class ProducedBy(BaseModel):
    """Who of the office produced the export, and on which written request."""

    name: str
    staff_id: str
    request_received_on: date


class HeldByService(BaseModel):
    """Everything each part of Lotse holds about the person, one section per collection."""

    registry: dict[str, JsonValue]
    matching: dict[str, JsonValue]
    notifications: dict[str, JsonValue]
    portal: dict[str, Section]


async def held_by_service(
    backends: Backends, store: Store, bearer: str, tenant: str, volunteer_id: str
) -> HeldByService:
    path = SUBJECT_ACCESS_PATH.format(tenant=tenant, volunteer_id=volunteer_id)
    registry, matching, notifications = await asyncio.gather(
        *(
            backends.get(service, path, bearer)
            for service in (Service.REGISTRY, Service.MATCHING, Service.NOTIFICATIONS)
        )
    )
    sessions = section(
        "Sign-in sessions: who is signed in, their roles and until when; the tokens are kept encrypted.",
        await store.sessions_of(tenant, volunteer_id),
        secrets=("_id", *(f"user.{name}" for name in SECRET_FIELDS)),
    )
    return HeldByService(
        registry=registry, matching=matching, notifications=notifications, portal={"sessions": sessions}
    )


def download(document: BaseModel, volunteer_id: str) -> Response:
    """The export as a JSON file, never cached."""
    body = json.dumps(document.model_dump(mode="json"), ensure_ascii=False, indent=2)
    filename = f"lotse-{volunteer_id[:8]}-{datetime.now(UTC):%Y-%m-%d}.json"
    return Response(
        body,
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"},
    )


class OfficeExport(BaseModel):
    """The export the office produced for the person, to hand over securely."""

    exported_at: datetime
    tenant: str
    volunteer_id: str
    produced_by: ProducedBy
    held_by_service: HeldByService
