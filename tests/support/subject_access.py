"""Checks of a service's subject-access export against its database: which collections hold a
document naming the person, so that a collection added later is not forgotten in the export."""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.database import AsyncDatabase


async def collections_naming(database: AsyncDatabase[dict[str, Any]], value: str) -> set[str]:
    """The collections with a document that holds ``value`` anywhere (an id inside a compound
    ``_id``, a list, a nested document, an outbox event's bytes)."""
    found: set[str] = set()
    needle = value.encode()
    for name in await database.list_collection_names():
        async for document in database[name].find({}):
            if needle in repr(document).encode():
                found.add(name)
                break
    return found


def sections_with_records(export: dict[str, Any]) -> set[str]:
    """The export's sections that hold at least one record."""
    return {name for name, value in export.items() if isinstance(value, dict) and value.get("records")}
