"""``/health`` (the process lives), ``/ready`` (its broker and database answer), ``/metrics``."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

ReadinessCheck = Callable[[], Awaitable[bool]]
CHECK_SECONDS = 3.0


def health_router(checks: Mapping[str, ReadinessCheck], check_seconds: float = CHECK_SECONDS) -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/health", summary="The process is alive")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @router.get(
        "/ready",
        summary="The service can do its work: broker and database answer",
        responses={503: {"description": "Not ready: the checks say which connection is missing"}},
    )
    async def ready() -> JSONResponse:
        results: dict[str, str] = {}
        for name, check in checks.items():
            try:
                # A database that is away would hold a ping for its whole server selection timeout.
                results[name] = "ok" if await asyncio.wait_for(check(), check_seconds) else "unavailable"
            except Exception as error:  # noqa: BLE001 - any failure means: not ready
                results[name] = f"unavailable: {type(error).__name__}"
        ready = all(value == "ok" for value in results.values())
        return JSONResponse(
            {"status": "ready" if ready else "not ready", "checks": results}, status_code=200 if ready else 503
        )

    @router.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router
