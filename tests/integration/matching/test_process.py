"""``python -m lotse_matching`` runs the service: health, readiness, OpenAPI, the answer pages,
and a clean stop on SIGTERM."""

from __future__ import annotations

import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from lotse_devstack import Stack
from tests.support.service_process import ServiceProcess, service_process


@pytest.fixture
def matching_process(stack: Stack, tmp_path: Path) -> Iterator[ServiceProcess]:
    with service_process(
        "matching", stack, tmp_path, LOTSE_PARTNER_CONSUMER_GROUP=f"matching-partner-process-{uuid.uuid4().hex[:8]}"
    ) as process:
        yield process


async def test_the_entry_point_serves_health_readiness_and_openapi_and_stops_cleanly(
    matching_process: ServiceProcess,
) -> None:
    await matching_process.ready()
    async with httpx.AsyncClient(base_url=matching_process.url, timeout=5) as http:
        assert (await http.get("/health")).json() == {"status": "ok"}
        spec = (await http.get("/openapi.json")).json()
        assert spec["info"]["title"] == "Lotse matching"
        assert "/answers/{token}" in spec["paths"] and "/volunteers/me/open-needs" in spec["paths"]
        page = await http.get("/answers/not-a-token", params={"choice": "accept"})
        assert page.status_code == 400 and "ungültig" in page.text
    matching_process.popen.terminate()
    # uvicorn shuts down gracefully, then re-raises the signal it caught.
    assert await matching_process.exits_within(30) in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in matching_process.log.read_text()
