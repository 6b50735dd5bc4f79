"""HTTP API, one module per resource: coordinators manage their tenant's templates and guidance,
webhooks and digest and read the delivery log; volunteers read their in-app inbox. The tenant
always comes from the token, never from the path (``access``)."""

from __future__ import annotations

from fastapi import APIRouter

from lotse_notifications.api import deliveries, digest, inbox, templates, webhooks


def router() -> APIRouter:
    api = APIRouter()
    for resource in (templates, webhooks, digest, deliveries, inbox):
        api.include_router(resource.router)
    return api
