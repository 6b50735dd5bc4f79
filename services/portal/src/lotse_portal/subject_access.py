"""The subject-access export (DSGVO Art. 15 and 20) as one file: what each service answers at
``lotse_runtime.subject_access.SUBJECT_ACCESS_PATH`` (registry, matching, notifications) and the
portal's own sessions. The volunteer downloads it at ``/my-data/export``; the coordination office
produces it on the person's written request (``/console/volunteers/{id}/subject-access``), and
then the file also says who produced it, when, and on which request."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime
from typing import Any

from fastapi.responses import Response
from pydantic import BaseModel, JsonValue

from lotse_portal.backends import Backends, Service
from lotse_portal.store import SECRET_FIELDS, Store
from lotse_runtime.subject_access import SUBJECT_ACCESS_PATH, Section, section

# A sign-in under way: what the callback checks it against (a session's secrets, like its id).
PENDING_SECRETS = ("pending.state", "pending.nonce", "pending.code_verifier")


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
    backends: Backends,
    store: Store,
    bearer: str,
    tenant: str,
    volunteer_id: str,
    request_received_on: date | None = None,
) -> HeldByService:
    """The services' exports and the portal's own; ``request_received_on``: the office's call,
    which states the person's written request (the services refuse the office without it)."""
    path = SUBJECT_ACCESS_PATH.format(tenant=tenant, volunteer_id=volunteer_id)
    request = {"request_date": request_received_on.isoformat()} if request_received_on is not None else {}
    registry, matching, notifications = await asyncio.gather(
        *(
            backends.get(service, path, bearer, **request)
            for service in (Service.REGISTRY, Service.MATCHING, Service.NOTIFICATIONS)
        )
    )
    sessions = sessions_section(await store.sessions_of(tenant, volunteer_id))
    return HeldByService(
        registry=registry, matching=matching, notifications=notifications, portal={"sessions": sessions}
    )


def sessions_section(documents: list[dict[str, Any]]) -> Section:
    """The person's sign-in sessions as stored, each secret withheld: the id (a digest of the
    cookie), the form token, the sealed tokens and feed address, and a sign-in's state, nonce and PKCE verifier."""
    return section(
        "Sign-in sessions: who is signed in, their roles and until when; the tokens are kept encrypted.",
        documents,
        secrets=("_id", "csrf", "feed_url", *(f"user.{name}" for name in SECRET_FIELDS), *PENDING_SECRETS),
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
