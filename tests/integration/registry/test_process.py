"""``python -m lotse_registry`` starts the service: health, readiness, OpenAPI and its docs."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator

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
def running_process(stack: Stack) -> Iterator[str]:
    port = free_port()
    database = f"registry_process_{uuid.uuid4().hex[:8]}"
    environment = {
        **os.environ,
        "LOTSE_KAFKA_BOOTSTRAP": stack.kafka_bootstrap,
        "LOTSE_MONGO_URL": stack.mongo_url,
        "LOTSE_DATABASE": database,
        "LOTSE_CONSUMER_GROUP": f"registry-process-{uuid.uuid4().hex[:8]}",
        "LOTSE_HTTP_PORT": str(port),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "lotse_registry"], env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        with MongoClient(stack.mongo_url) as client:
            client.drop_database(database)


async def test_the_entry_point_serves_health_readiness_and_openapi(running_process: str) -> None:
    async with httpx.AsyncClient(base_url=running_process, timeout=5) as http:

        async def ready() -> bool:
            try:
                return (await http.get("/ready")).status_code == 200
            except httpx.TransportError:
                return False

        await eventually(ready, timeout=60, interval=0.2, what="the registry process to be ready")
        assert (await http.get("/health")).json() == {"status": "ok"}
        spec = (await http.get("/openapi.json")).json()
        assert spec["info"]["title"] == "Lotse registry"
        assert "/tenants/{tenant}/volunteers/{volunteer_id}/erasure" in spec["paths"]
        assert "Idempotency-Key" in str(spec["paths"]["/tenants/{tenant}/needs"]["post"]["parameters"])
        docs = await http.get("/docs")
        assert docs.status_code == 200 and "swagger" in docs.text.lower()
