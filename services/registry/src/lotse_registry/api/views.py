"""Stored documents as JSON, and pages of them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import Query

from lotse_registry.store import Document, encode_cursor

Limit = Annotated[int, Query(ge=1, le=200, description="Page size")]
Cursor = Annotated[str | None, Query(description="next_cursor of the previous page")]


def as_json(document: Document) -> dict[str, Any]:
    """A stored document as JSON: datetimes as ISO strings, no internal fields."""
    out: dict[str, Any] = {}
    for name, value in document.items():
        if name in {"tenant", "_id"}:
            continue
        out[name] = value.isoformat() if isinstance(value, datetime) else value
    return out


def page(items: list[dict[str, Any]], documents: list[Document], limit: int) -> dict[str, Any]:
    more = len(documents) > limit
    return {"items": items[:limit], "next_cursor": encode_cursor(documents[limit - 1]) if more else None}
