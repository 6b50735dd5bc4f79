"""HTTP API, one module per resource: ``answers`` (the answer-link pages) and ``volunteers`` (the
volunteers' own API); ``access`` holds the caller and service dependencies."""

from __future__ import annotations

from fastapi import APIRouter

from lotse_matching.api import answers, volunteers

router = APIRouter()
for _resource in (answers, volunteers):
    router.include_router(_resource.router)

__all__ = ["router"]
