"""The tenant's audit trail for its data-protection officer: matching's search and export, the
routes every service with a trail shares (``lotse_runtime.audit_api``). Who proposed, answered,
released, picked, stepped back, logged or decided hours (field names only)."""

from __future__ import annotations

from fastapi import Request
from pymongo.asynchronous.database import AsyncDatabase

from lotse_matching.api.access import caller
from lotse_matching.store import Store
from lotse_runtime.audit import Document
from lotse_runtime.audit_api import audit_router


def _database(request: Request) -> AsyncDatabase[Document]:
    store: Store = request.app.state.store
    return store.database


router = audit_router(_database, caller)
