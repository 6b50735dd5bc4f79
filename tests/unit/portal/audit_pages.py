"""The audit trail page's context for tests/unit/portal/test_pages.py (every page in every
language, escaped) and tests/unit/portal/test_audit_page.py: ids from the trail are hostile too."""

from __future__ import annotations

from typing import Any

from lotse_portal.api.audit import OPERATIONS, SERVICES, AuditSearch

HOSTILE = "<script>alert(1)</script>"  # as test_pages.HOSTILE
ENTRY = {
    "id": "e1",
    "tenant": "lindenau",
    "at": "2026-12-01T10:15:00Z",
    "actor": HOSTILE,
    "roles": ["coordinator"],
    "action": "GET /tenants/{tenant}/volunteers/{volunteer_id}",
    "operation": "read",
    "resource_type": "volunteers",
    "resource_id": HOSTILE,
    "fields": ["contact.email", "home_area"],
    "service": "matching",
}
AUDIT_PAGES: dict[str, dict[str, Any]] = {
    "console_audit.html": {
        "path": "/console/audit",
        "search": AuditSearch(actor=HOSTILE),
        "errors": {},
        "entries": [ENTRY],
        "operations": OPERATIONS,
        "services": SERVICES,
        "next_cursor": "abc",
    },
}
