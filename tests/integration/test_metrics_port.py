"""/metrics on a port of its own (LOTSE_METRICS_PORT), as Kubernetes scrapes it in production: a
running service answers there, not on its API port, and closes the port when it stops."""

from __future__ import annotations

import secrets
import uuid

import httpx
from pydantic import SecretStr

from lotse_devstack import Stack
from lotse_devstack.processes import free_port, port_is_free
from lotse_registry.app import create_app
from tests.integration.registry.conftest import registry_settings


async def test_a_production_service_serves_metrics_on_its_metrics_port_only(stack: Stack) -> None:
    port = free_port()
    settings = registry_settings(
        stack,
        "m" + uuid.uuid4().hex[:8],
        env="production",
        # production refuses to start without its secrets; this one is not in the test environment
        key_encryption_key=SecretStr(secrets.token_urlsafe(32)),
        metrics_port=port,
        run_consumers=False,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient() as scraper:
            scraped = await scraper.get(f"http://127.0.0.1:{port}/metrics")
        assert scraped.status_code == 200
        assert "lotse_outbox_backlog_events" in scraped.text
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://registry") as api:
            assert (await api.get("/metrics")).status_code == 404
            assert (await api.get("/health")).status_code == 200
        await app.state.registry.client.drop_database(settings.database)
    assert port_is_free(port)
