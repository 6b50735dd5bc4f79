"""``python -m lotse_notifications`` runs the service: readiness, a welcome email through the SMTP
sink, and a clean stop on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pymongo import MongoClient

from lotse_contracts import topics_for_tenants
from lotse_devstack import Stack, ensure_topics
from lotse_devstack.processes import free_port
from lotse_devstack.smtp_sink import SmtpSink
from tests.integration.notifications.support import onboarded, publish, registered, wait_for_mail
from tests.support.waiting import eventually


@pytest.fixture
def running_process(
    stack: Stack, smtp_sink: SmtpSink, tmp_path: Path
) -> Iterator[tuple[str, str, subprocess.Popen[bytes], Path]]:
    port, run = free_port(), uuid.uuid4().hex[:8]
    database = f"notifications_process_{run}"
    environment = {
        **os.environ,
        "LOTSE_KAFKA_BOOTSTRAP": stack.kafka_bootstrap,
        "LOTSE_MONGO_URL": stack.mongo_url,
        "LOTSE_DATABASE": database,
        "LOTSE_CONSUMER_GROUP": f"notifications-process-{run}",
        "LOTSE_TENANT_PATTERN": f"p{run}",
        "LOTSE_HTTP_PORT": str(port),
        "LOTSE_SMTP_PORT": str(smtp_sink.smtp_port),
        "LOTSE_WORKER_POLL_SECONDS": "0.1",
    }
    log = tmp_path / "notifications.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "lotse_notifications"], env=environment, stdout=output, stderr=subprocess.STDOUT
        )
    try:
        yield f"http://127.0.0.1:{port}", f"p{run}", process, log
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        with MongoClient(stack.mongo_url) as client:
            client.drop_database(database)


async def test_the_entry_point_sends_a_welcome_email_and_stops_cleanly(
    running_process: tuple[str, str, subprocess.Popen[bytes], Path], stack: Stack, smtp_sink: SmtpSink
) -> None:
    url, tenant, process, log = running_process
    await ensure_topics(stack.kafka_bootstrap, topics_for_tenants([]))
    async with httpx.AsyncClient(base_url=url, timeout=5) as http:

        async def ready() -> bool:
            try:
                return (await http.get("/ready")).status_code == 200
            except httpx.TransportError:
                return False

        await eventually(ready, timeout=60, interval=0.2, what="the notifications process to be ready")
        spec = (await http.get("/openapi.json")).json()
        assert spec["info"]["title"] == "Lotse notifications" and "/me/messages" in spec["paths"]
    volunteer = registered(tenant, language="en")
    await publish(stack.kafka_bootstrap, onboarded(tenant), volunteer)
    welcome = await wait_for_mail(smtp_sink, volunteer.data.contact.email, "welcome", timeout=60)
    assert welcome["subject"] == f"Welcome, {volunteer.data.contact.display_name}!"
    process.terminate()
    # uvicorn shuts down gracefully, then re-raises the signal it caught.
    assert process.wait(timeout=30) in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in log.read_text()
