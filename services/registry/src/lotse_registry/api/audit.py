"""The tenant's audit trail for its data-protection officer: a search and an export (CSV, JSON),
the routes every service with a trail shares (``lotse_runtime.audit_api``).

Who changed what (every write of the registry, see ``store.TenantScope``) and who received
personal contact data, with field names only. Only the tenant's data-protection officer reads
it; another tenant's officer learns nothing (404), every other role is refused (403).
"""

from __future__ import annotations

from fastapi import Request
from pymongo.asynchronous.database import AsyncDatabase

from lotse_registry.api.access import caller, registry_of
from lotse_runtime.audit import Document
from lotse_runtime.audit_api import audit_router


def _database(request: Request) -> AsyncDatabase[Document]:
    return registry_of(request).database


router = audit_router(_database, caller)
