"""The tenant's audit trail for its data-protection officer: notifications' search and export,
the routes every service with a trail shares (``lotse_runtime.audit_api``). Who changed templates,
guidance, webhooks and mail preferences, who wrote in which question, marked messages read or
asked for the digest (field names only, never the texts)."""

from __future__ import annotations

from fastapi import Request
from pymongo.asynchronous.database import AsyncDatabase

from lotse_notifications.api.access import caller
from lotse_notifications.store import Store
from lotse_runtime.audit import Document
from lotse_runtime.audit_api import audit_router


def _database(request: Request) -> AsyncDatabase[Document]:
    store: Store = request.app.state.store
    return store.db


router = audit_router(_database, caller)
