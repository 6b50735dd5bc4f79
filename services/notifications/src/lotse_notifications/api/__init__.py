"""HTTP API, one module per resource: coordinators manage their tenant's templates and guidance,
webhooks, digest and mail preferences and read the delivery log; volunteers read their in-app
inbox; volunteers ask the office questions and coordinators answer them (``threads``); anyone
signed in may ask which channels exist. The tenant always comes from the token, never from the
path (``access``), except in ``audit``: the trail of the path's tenant, for its data-protection
officer (the same routes as the registry's and matching's)."""

from __future__ import annotations

from fastapi import APIRouter

from lotse_notifications.api import (
    audit,
    channels,
    deliveries,
    digest,
    inbox,
    preferences,
    subject_access,
    templates,
    threads,
    webhooks,
)


def router() -> APIRouter:
    api = APIRouter()
    resources = (templates, webhooks, digest, preferences, channels, deliveries, inbox, threads, subject_access, audit)
    for resource in resources:
        api.include_router(resource.router)
    return api
