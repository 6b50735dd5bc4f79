"""The delivery log of a tenant (coordinator)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from lotse_contracts.events.values import Channel
from lotse_notifications import catalogue
from lotse_notifications.api.access import Coordinator, StoreDep
from lotse_runtime.auth import tenant_of

# Messages by template, and events forwarded to partners' webhooks.
DELIVERY_KINDS = "^(" + "|".join((*catalogue.KINDS, "webhook_event")) + ")$"

router = APIRouter()


@router.get("/deliveries", tags=["deliveries"], summary="The delivery log (recipient ids, outcome, reason)")
async def deliveries(
    principal: Coordinator,
    store: StoreDep,
    status: Annotated[str | None, Query(pattern=r"^(pending|sent|skipped|dead|cancelled)$")] = None,
    kind: Annotated[str | None, Query(pattern=DELIVERY_KINDS, description="e.g. match_proposed")] = None,
    channel: Channel | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[dict[str, Any]]:
    """Newest first; filter by outcome, kind of message and channel."""
    found = await store.deliveries_of(
        tenant_of(principal), limit, status=status, kind=kind, channel=channel.value if channel else None
    )
    keep = (
        "kind",
        "recipient_kind",
        "recipient_id",
        "channel",
        "language",
        "status",
        "reason",
        "error",
        "attempts",
        "trigger_event_id",
        "created_at",
        "sent_at",
        "failed_at",
    )
    return [{"id": doc["_id"], **{key: doc.get(key) for key in keep}} for doc in found]
