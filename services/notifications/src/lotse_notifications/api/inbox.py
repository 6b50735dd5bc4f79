"""A volunteer's in-app inbox (volunteer)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from lotse_notifications.api.access import NOT_FOUND, StoreDep, Volunteer
from lotse_runtime.auth import tenant_of
from lotse_runtime.i18n import direction
from lotse_runtime.problems import Problem
from lotse_runtime.unit_of_work import Transaction, UnitOfWork

router = APIRouter()


@router.get("/me/messages", tags=["inbox"], summary="My in-app messages, newest first")
async def my_messages(principal: Volunteer, store: StoreDep) -> list[dict[str, Any]]:
    found = await store.messages_of(tenant_of(principal), principal.volunteer_id)
    return [_message_view(doc) for doc in found]


@router.post(
    "/me/messages/{message_id}/read", tags=["inbox"], responses=NOT_FOUND, summary="Mark one of my messages as read"
)
async def mark_read(message_id: str, principal: Volunteer, request: Request, store: StoreDep) -> dict[str, Any]:
    unit_of_work: UnitOfWork = request.app.state.unit_of_work

    async def mark(transaction: Transaction) -> dict[str, Any] | None:  # with its audit entry
        return await store.mark_read(tenant_of(principal), principal.volunteer_id, message_id, transaction)

    found = await unit_of_work.run(mark)
    if found is None:
        raise Problem(404, "Not found", "no such message")
    return _message_view(found)


def _message_view(doc: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": doc["_id"],
        "kind": doc["kind"],
        "language": doc["language"],
        "direction": direction(doc["language"]),
        "subject": doc["subject"],
        "text": doc["text"],
        "html": doc["html"],
        "created_at": doc["created_at"],
        "read": doc.get("read_at") is not None,
    }
