"""Webhooks cannot reach inside: a notifications service in production mode on the real broker and
database, a partner receiver on loopback that must receive nothing, and a resolver the test
controls (so that a name can resolve to an internal address without touching DNS)."""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import pytest_asyncio

from lotse_devstack import Stack
from lotse_devstack.smtp_sink import SmtpSink
from lotse_runtime.destinations import IPAddress
from tests.integration.notifications.support import (
    Running,
    WebhookReceiver,
    need_opened,
    onboarded,
    service_settings,
    serving,
)
from tests.support.waiting import eventually

pytestmark = pytest.mark.asyncio(loop_scope="module")

PUBLIC_ADDRESS = "93.184.216.34"


@dataclass
class FakeDns:
    """Names resolve to what the test says, at the moment it asks."""

    names: dict[str, list[str]] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)

    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        self.asked.append(host)
        if host not in self.names:
            raise OSError("Name or service not known")
        return [ipaddress.ip_address(address) for address in self.names[host]]


@dataclass
class Production(Running):
    dns: FakeDns = field(kw_only=True)

    async def listed(self, tenant: str, status: str) -> list[dict[str, Any]]:
        response = await self.http.get("/deliveries", params={"status": status}, headers=self.coordinator(tenant))
        assert response.status_code == 200, response.text
        return response.json()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def production(stack: Stack, smtp_sink: SmtpSink) -> AsyncIterator[Production]:
    prefix = f"w{uuid.uuid4().hex[:6]}"
    development = service_settings(stack, smtp_sink, prefix, retry_base_seconds=0.2, retry_max_seconds=1.0)
    # Production behaviour, with the secrets development generated for the test.
    settings = development.model_copy(update={"env": "production"})
    dns = FakeDns()
    async with serving(Production, stack, settings, prefix, resolver=dns.resolve, dns=dns) as running:
        yield running


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as started:
        yield started


def _refused_url(response: httpx.Response) -> bool:
    return (
        response.status_code == 422
        and response.headers["content-type"].startswith("application/problem+json")
        and [error["field"] for error in response.json()["errors"]] == ["url"]
    )


async def test_webhooks_to_internal_addresses_are_refused_at_registration(
    production: Production, receiver: WebhookReceiver
) -> None:
    tenant = production.new_tenant()
    coordinator = production.coordinator(tenant)
    port = receiver.server.server_address[1]
    production.dns.names |= {"inside.partner.example": ["10.0.0.1"], "partner.example": [PUBLIC_ADDRESS]}
    inside = [
        "http://169.254.169.254/",
        "https://169.254.169.254/latest/meta-data/",
        "http://localhost:27017/",
        "https://inside.partner.example/hook",  # a name that resolves to 10.0.0.1
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "https://[::ffff:127.0.0.1]/",
        receiver.url,  # plain http to loopback: development only
        f"https://127.0.0.1:{port}/lotse-events",
        "https://unknown.partner.example/hook",  # does not resolve: refused in the same words
    ]
    messages = set()
    for url in inside:
        response = await production.http.post("/webhooks", json={"url": url, "secret": "s" * 32}, headers=coordinator)
        assert _refused_url(response), (url, response.status_code, response.text)
        messages.add(response.json()["errors"][0]["message"])
    assert len(messages) == 1  # one answer for all: no oracle on what exists inside
    assert (await production.http.get("/webhooks", headers=coordinator)).json() == []

    public = {"url": "https://partner.example/hook", "secret": "s" * 32}
    assert (await production.http.post("/webhooks", json=public, headers=coordinator)).status_code == 201
    assert receiver.connections == 0 and receiver.calls == []


async def test_a_name_that_resolves_inside_at_delivery_is_not_connected_to(
    production: Production, receiver: WebhookReceiver
) -> None:
    """DNS rebinding: public when registered, the receiver on loopback when delivered."""
    tenant = production.new_tenant()
    coordinator = production.coordinator(tenant)
    name = f"rebinding-{uuid.uuid4().hex[:8]}.example"
    production.dns.names[name] = [PUBLIC_ADDRESS]
    url = f"https://{name}:{receiver.server.server_address[1]}/lotse-events"
    registered = await production.http.post("/webhooks", json={"url": url, "secret": "s" * 32}, headers=coordinator)
    assert registered.status_code == 201, registered.text
    production.dns.names[name] = [PUBLIC_ADDRESS, "127.0.0.1"]  # now one of them points inside

    await production.publish(onboarded(tenant), need_opened(tenant))

    async def dead() -> list[dict[str, Any]]:
        return await production.listed(tenant, "dead")

    (delivery,) = await eventually(dead, what="the webhook delivery to fail")
    assert delivery["channel"] == "webhook" and delivery["attempts"] == 1  # not retried either
    assert (delivery["reason"], delivery["error"]) == ("destination_not_allowed", "destination not allowed")
    assert name in production.dns.asked
    assert receiver.connections == 0 and receiver.calls == []


async def test_a_webhook_stored_before_the_rules_is_checked_again_when_delivered(
    production: Production, receiver: WebhookReceiver
) -> None:
    tenant = production.new_tenant()
    await production.app.state.store.add_webhook(tenant, receiver.url, "s" * 32, [])

    await production.publish(onboarded(tenant), need_opened(tenant))

    async def dead() -> list[dict[str, Any]]:
        return await production.listed(tenant, "dead")

    (delivery,) = await eventually(dead, what="the webhook delivery to fail")
    assert (delivery["reason"], delivery["error"]) == ("destination_not_allowed", "destination not allowed")
    assert receiver.connections == 0 and receiver.calls == []
