"""``python -m lotse_notifications`` runs the service: readiness, a welcome email through the SMTP
sink, and a clean stop on SIGTERM."""

from __future__ import annotations

import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from lotse_contracts import topics_for_tenants
from lotse_devstack import Stack, ensure_topics
from lotse_devstack.smtp_sink import SmtpSink
from tests.integration.notifications.support import onboarded, publish, registered, wait_for_mail
from tests.support.service_process import ServiceProcess, service_process


@pytest.fixture
def notifications_process(stack: Stack, smtp_sink: SmtpSink, tmp_path: Path) -> Iterator[tuple[ServiceProcess, str]]:
    """The process and the one tenant it serves."""
    tenant = f"p{uuid.uuid4().hex[:8]}"
    settings = {
        "LOTSE_TENANT_PATTERN": tenant,
        "LOTSE_SMTP_PORT": str(smtp_sink.smtp_port),
        "LOTSE_WORKER_POLL_SECONDS": "0.1",
    }
    with service_process("notifications", stack, tmp_path, **settings) as process:
        yield process, tenant


async def test_the_entry_point_sends_a_welcome_email_and_stops_cleanly(
    notifications_process: tuple[ServiceProcess, str], stack: Stack, smtp_sink: SmtpSink
) -> None:
    process, tenant = notifications_process
    await ensure_topics(stack.kafka_bootstrap, topics_for_tenants([]))
    await process.ready()
    async with httpx.AsyncClient(base_url=process.url, timeout=5) as http:
        spec = (await http.get("/openapi.json")).json()
        assert spec["info"]["title"] == "Lotse notifications" and "/me/messages" in spec["paths"]
    volunteer = registered(tenant, language="en")
    await publish(stack.kafka_bootstrap, onboarded(tenant), volunteer)
    welcome = await wait_for_mail(smtp_sink, volunteer.data.contact.email, "welcome", timeout=60)
    assert welcome["subject"] == f"Welcome, {volunteer.data.contact.display_name}!"
    process.popen.terminate()
    # uvicorn shuts down gracefully, then re-raises the signal it caught.
    assert await process.exits_within(30) in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in process.log.read_text()
