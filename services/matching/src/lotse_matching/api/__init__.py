"""HTTP API, one module per resource: ``answers`` (the answer-link pages), ``volunteers`` (the
volunteers' own API: proposals, answers, open needs), ``engagements`` (their engagements and
calendar feed) and ``statistics`` (the office's staffing figures); ``access`` holds the caller and
service dependencies."""

from __future__ import annotations

from fastapi import APIRouter

from lotse_matching.api import answers, engagements, statistics, volunteers

router = APIRouter()
for _resource in (answers, volunteers, engagements, statistics):
    router.include_router(_resource.router)

__all__ = ["router"]
