"""The MongoDB client of a service, and units of work in one transaction."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from pymongo import AsyncMongoClient
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.monitoring import CommandListener
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

from lotse_runtime.metrics import MongoCommandCounter

T = TypeVar("T")


def connect(
    url: str, app_name: str, event_listeners: Sequence[CommandListener] = ()
) -> AsyncMongoClient[dict[str, Any]]:
    """The client, with its commands counted in ``lotse_mongo_commands_total`` (metrics.py)."""
    listeners = [MongoCommandCounter(), *event_listeners]
    return AsyncMongoClient(url, appname=app_name, tz_aware=True, event_listeners=listeners)


async def in_transaction(
    client: AsyncMongoClient[dict[str, Any]],
    work: Callable[[AsyncClientSession], Awaitable[T]],
) -> T:
    """Run ``work`` in one transaction; transient errors (write conflicts) are retried by PyMongo."""
    async with client.start_session() as session:
        return await session.with_transaction(
            work,
            read_concern=ReadConcern("majority"),
            write_concern=WriteConcern("majority"),
        )
