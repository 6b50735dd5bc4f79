"""The HTTP API, one module per resource: tenants, organisations, volunteers, their certificate
checks, the office's staff (and each volunteer's contact person), needs, partner commands,
statistics, places (postcodes, address search), the portal (public tenant facts, portal
settings) and the audit trail (its data-protection officer).

``access`` holds the caller and registry dependencies and the access rules (a caller outside the
path's tenant gets 404, one with the wrong role 403), ``idempotency`` the ``Idempotency-Key``
mechanism every POST honours, ``views`` the JSON form of stored documents and pages, ``models``
the request bodies, ``errors`` the domain errors as problem+json.
"""

from __future__ import annotations

from fastapi import APIRouter

from lotse_registry.api import (
    audit,
    certificates,
    needs,
    organisations,
    partner,
    places,
    portal,
    staff,
    statistics,
    subject_access,
    tenants,
    volunteers,
)
from lotse_registry.api.errors import install_domain_errors

router = APIRouter()
for _resource in (
    tenants,
    organisations,
    volunteers,
    subject_access,
    certificates,
    staff,
    needs,
    partner,
    statistics,
    places,
    portal,
    audit,
):
    router.include_router(_resource.router)
router.include_router(portal.public)

__all__ = ["install_domain_errors", "router"]
