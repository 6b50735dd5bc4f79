"""A running registry (HTTP API in process, its consumers and relay on the real broker and
database) per test module, with its own database, consumer groups and tenant prefix."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest_asyncio
from fastapi import FastAPI

from lotse_contracts import topics_for_tenants
from lotse_devstack import Stack, ensure_topics
from lotse_registry.app import create_app
from lotse_registry.settings import RegistrySettings
from lotse_runtime.auth import Role, issue_token


@dataclass
class RunningRegistry:
    app: FastAPI
    http: httpx.AsyncClient
    settings: RegistrySettings
    prefix: str
    counter: list[int] = field(default_factory=lambda: [0])

    def new_tenant_slug(self) -> str:
        self.counter[0] += 1
        return f"{self.prefix}-{self.counter[0]}"

    def token(self, *roles: Role, tenant: str | None = None, subject: str | None = None, org: str | None = None) -> str:
        return issue_token(
            self.settings.auth_config(),
            subject=subject or str(uuid.uuid4()),
            roles=roles,
            tenant=tenant,
            organisation=org,
        )

    def auth(self, *roles: Role, **claims: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(*roles, **claims)}"}

    @property
    def database(self) -> Any:
        return self.app.state.registry.database


def registry_settings(stack: Stack, prefix: str, **overrides: Any) -> RegistrySettings:
    values: dict[str, Any] = {
        "kafka_bootstrap": stack.kafka_bootstrap,
        "mongo_url": stack.mongo_url,
        "database": f"registry_{prefix}",
        "consumer_group": f"registry-{prefix}",
        # Only this module's tenants: other tests' partner topics are none of its business.
        "partner_topic_pattern": rf"^lotse\.partner\.{prefix}-[a-z0-9-]+\.inbound\.v1$",
        "topic_metadata_refresh_ms": 1000,
        "relay_poll_seconds": 0.05,
    }
    values.update(overrides)
    return RegistrySettings(**values)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def registry(stack: Stack) -> AsyncIterator[RunningRegistry]:
    await ensure_topics(stack.kafka_bootstrap, topics_for_tenants([]))
    prefix = "r" + uuid.uuid4().hex[:8]
    settings = registry_settings(stack, prefix)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://registry") as http:
            yield RunningRegistry(app, http, settings, prefix)
        await app.state.registry.client.drop_database(settings.database)
