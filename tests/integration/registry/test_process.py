"""``python -m lotse_registry`` starts the service: health, readiness, OpenAPI and its docs, and a
clean stop on SIGTERM."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from lotse_devstack import Stack
from tests.support.service_process import ServiceProcess, service_process


@pytest.fixture
def registry_process(stack: Stack, tmp_path: Path) -> Iterator[ServiceProcess]:
    with service_process("registry", stack, tmp_path) as process:
        yield process


async def test_the_entry_point_serves_health_readiness_and_openapi_and_stops_cleanly(
    registry_process: ServiceProcess,
) -> None:
    await registry_process.ready()
    async with httpx.AsyncClient(base_url=registry_process.url, timeout=5) as http:
        assert (await http.get("/health")).json() == {"status": "ok"}
        spec = (await http.get("/openapi.json")).json()
        assert spec["info"]["title"] == "Lotse registry"
        assert "/tenants/{tenant}/volunteers/{volunteer_id}/erasure" in spec["paths"]
        assert "Idempotency-Key" in str(spec["paths"]["/tenants/{tenant}/needs"]["post"]["parameters"])
        docs = await http.get("/docs")
        assert docs.status_code == 200 and "swagger" in docs.text.lower()
    registry_process.popen.terminate()
    # uvicorn shuts down gracefully, then re-raises the signal it caught.
    assert await registry_process.exits_within(30) in (0, -signal.SIGTERM)
    assert registry_process.logged("shutdown complete")
