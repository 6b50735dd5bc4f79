"""Processed event ids per consumer and tenant, so that a redelivered event changes nothing.

The inbox record is written in the same transaction as the handler's state change: either
both are there or neither is.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import structlog
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import OperationFailure

from lotse_runtime import metrics

INBOX_COLLECTION = "inbox"
INBOX_KEY = [("consumer", 1), ("tenant", 1), ("event_id", 1)]
# The unique index before the tenant was part of the key: event ids come from partner systems, so
# one tenant's event could suppress another tenant's event that had the same id.
OLD_INBOX_INDEX = "consumer_1_event_id_1"
INDEX_NOT_FOUND = 27  # MongoDB's IndexNotFound: another replica dropped it first

log = structlog.get_logger("lotse.inbox")


async def ensure_inbox_index(database: AsyncDatabase[dict[str, Any]]) -> None:
    inbox = database[INBOX_COLLECTION]
    await inbox.create_index(INBOX_KEY, unique=True)
    # A database made before the tenant joined the key still has the old unique index, which would
    # go on refusing a second tenant's event id; every record has its tenant, so it can just go.
    if OLD_INBOX_INDEX not in await inbox.index_information():
        return
    try:
        await inbox.drop_index(OLD_INBOX_INDEX)
    except OperationFailure as error:
        if error.code != INDEX_NOT_FOUND:
            raise


async def record_once(
    database: AsyncDatabase[dict[str, Any]],
    session: AsyncClientSession,
    *,
    consumer: str,
    event_id: str,
    tenant: str,
) -> bool:
    """Record the event for this consumer and tenant; False if it was recorded before (a duplicate).

    Two consumers racing on the same event both pass the lookup; the unique index then fails
    the second transaction with ``DuplicateKeyError``, and its retry finds the record.
    """
    inbox = database[INBOX_COLLECTION]
    if await inbox.find_one({"consumer": consumer, "tenant": tenant, "event_id": event_id}, session=session):
        duplicate_ignored(consumer, event_id, tenant)
        return False
    await inbox.insert_one(inbox_row(consumer, event_id, tenant), session=session)
    return True


def inbox_row(consumer: str, event_id: str, tenant: str) -> dict[str, Any]:
    return {"consumer": consumer, "event_id": event_id, "tenant": tenant, "processed_at": datetime.now(UTC)}


def duplicate_ignored(consumer: str, event_id: str, tenant: str) -> None:
    # Operators (and the fault tests) count these: redeliveries after crashes, partner replays.
    metrics.DUPLICATES_SUPPRESSED.labels(consumer).inc()
    log.info("duplicate event ignored", consumer=consumer, event_id=event_id, tenant=tenant)


async def recorded_among(
    database: AsyncDatabase[dict[str, Any]],
    session: AsyncClientSession,
    *,
    consumer: str,
    events: Iterable[tuple[str, str]],
) -> set[tuple[str, str]]:
    """Which of ``events`` (tenant, event id) ``consumer`` has recorded: one query for a batch."""
    pairs = set(events)
    if not pairs:
        return set()
    query = {
        "consumer": consumer,
        "tenant": {"$in": sorted({tenant for tenant, _ in pairs})},
        "event_id": {"$in": sorted({event_id for _, event_id in pairs})},
    }
    found = database[INBOX_COLLECTION].find(query, {"_id": 0, "tenant": 1, "event_id": 1}, session=session)
    return {(row["tenant"], row["event_id"]) async for row in found} & pairs
