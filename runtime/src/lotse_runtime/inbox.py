"""Processed event ids per consumer, so that a redelivered event changes nothing.

The inbox record is written in the same transaction as the handler's state change: either
both are there or neither is.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import structlog
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from lotse_runtime import metrics

INBOX_COLLECTION = "inbox"

log = structlog.get_logger("lotse.inbox")


async def ensure_inbox_index(database: AsyncDatabase[dict[str, Any]]) -> None:
    await database[INBOX_COLLECTION].create_index([("consumer", 1), ("event_id", 1)], unique=True)


async def record_once(
    database: AsyncDatabase[dict[str, Any]],
    session: AsyncClientSession,
    *,
    consumer: str,
    event_id: str,
    tenant: str,
) -> bool:
    """Record the event for this consumer; False if it was recorded before (a duplicate).

    Two consumers racing on the same event both pass the lookup; the unique index then fails
    the second transaction with ``DuplicateKeyError``, and its retry finds the record.
    """
    inbox = database[INBOX_COLLECTION]
    if await inbox.find_one({"consumer": consumer, "event_id": event_id}, session=session):
        # Operators (and the fault tests) count these: redeliveries after crashes, partner replays.
        metrics.DUPLICATES_SUPPRESSED.labels(consumer).inc()
        log.info("duplicate event ignored", consumer=consumer, event_id=event_id, tenant=tenant)
        return False
    await inbox.insert_one(
        {"consumer": consumer, "event_id": event_id, "tenant": tenant, "processed_at": datetime.now(UTC)},
        session=session,
    )
    return True
