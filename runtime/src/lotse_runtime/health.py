"""``/health`` (the process lives), ``/ready`` (its broker and database answer), ``/metrics``,
and where ``/metrics`` and the API documents are served."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest, start_http_server

ReadinessCheck = Callable[[], Awaitable[bool]]
CHECK_SECONDS = 3.0


def health_router(checks: Mapping[str, ReadinessCheck], check_seconds: float = CHECK_SECONDS) -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/health", summary="The process is alive")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @router.get(
        "/ready",
        summary="The service can do its work: broker and database answer, the person keys open",
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

    return router


def metrics_router() -> APIRouter:
    """``/metrics`` on the API port (development, or where an operator enables it)."""
    router = APIRouter(tags=["operations"])

    @router.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router


@asynccontextmanager
async def metrics_port(host: str, port: int) -> AsyncIterator[None]:
    """``/metrics`` on a port of its own, for the scraper inside the cluster only, while the
    service runs. prometheus_client's server runs in a thread of its own and sets SO_REUSEADDR."""
    server, thread = start_http_server(port, addr=host)
    try:
        yield
    finally:
        # shutdown() waits for the serving loop to notice (up to half a second): not on the loop.
        await asyncio.to_thread(server.shutdown)
        server.server_close()
        thread.join()


def api_document_urls(enabled: bool) -> dict[str, Any]:
    """``FastAPI(...)`` arguments serving the OpenAPI document, /docs and /redoc, or none of them.
    The document stays available in code (``app.openapi()``) either way."""
    if enabled:
        return {"openapi_url": "/openapi.json", "docs_url": "/docs", "redoc_url": "/redoc"}
    return {"openapi_url": None, "docs_url": None, "redoc_url": None}
