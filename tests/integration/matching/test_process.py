"""``python -m lotse_matching`` starts the service: health, readiness, OpenAPI, and a clean stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pymongo import MongoClient

from lotse_devstack import Stack
from tests.support.waiting import eventually


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def running_process(stack: Stack, tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes], Path]]:
    port, run = free_port(), uuid.uuid4().hex[:8]
    database = f"matching_process_{run}"
    environment = {
        **os.environ,
        "LOTSE_KAFKA_BOOTSTRAP": stack.kafka_bootstrap,
        "LOTSE_MONGO_URL": stack.mongo_url,
        "LOTSE_DATABASE": database,
        "LOTSE_CONSUMER_GROUP": f"matching-process-{run}",
        "LOTSE_PARTNER_CONSUMER_GROUP": f"matching-partner-process-{run}",
        "LOTSE_HTTP_PORT": str(port),
    }
    log = tmp_path / "matching.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "lotse_matching"], env=environment, stdout=output, stderr=subprocess.STDOUT
        )
    try:
        yield f"http://127.0.0.1:{port}", process, log
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        with MongoClient(stack.mongo_url) as client:
            client.drop_database(database)


async def test_the_entry_point_serves_health_readiness_and_openapi_and_stops_cleanly(
    running_process: tuple[str, subprocess.Popen[bytes], Path],
) -> None:
    url, process, log = running_process
    async with httpx.AsyncClient(base_url=url, timeout=5) as http:

        async def ready() -> bool:
            try:
                return (await http.get("/ready")).status_code == 200
            except httpx.TransportError:
                return False

        await eventually(ready, timeout=60, interval=0.2, what="the matching process to be ready")
        assert (await http.get("/health")).json() == {"status": "ok"}
        spec = (await http.get("/openapi.json")).json()
        assert spec["info"]["title"] == "Lotse matching"
        assert "/answers/{token}" in spec["paths"] and "/volunteers/me/open-needs" in spec["paths"]
        page = await http.get("/answers/not-a-token", params={"choice": "accept"})
        assert page.status_code == 400 and "ungültig" in page.text
    process.terminate()
    # uvicorn shuts down gracefully, then re-raises the signal it caught.
    assert process.wait(timeout=30) in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in log.read_text()
