"""HTTP API, one module per resource: ``answers`` (the answer-link pages), ``volunteers`` (the
volunteers' own API: proposals, answers, open needs), ``engagements`` (their engagements and
calendar feed), ``hours`` (hours they log, confirmed by the office or the initiative),
``statistics`` (the office's staffing and hours figures) and ``office`` (the coordination
office's console: dashboard, a need's staffing, the office's actions) and ``audit`` (the trail, for
the tenant's data-protection officer); ``access`` holds the caller and service dependencies and who
may use the office's console."""

from __future__ import annotations

from fastapi import APIRouter

from lotse_matching.api import answers, audit, engagements, hours, office, statistics, subject_access, volunteers

router = APIRouter()
for _resource in (answers, volunteers, engagements, hours, statistics, office, subject_access, audit):
    router.include_router(_resource.router)

__all__ = ["router"]
