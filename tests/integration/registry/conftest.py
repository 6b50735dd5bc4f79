"""A running registry (HTTP API in process, its consumers and relay on the real broker and
database) per test module, with its own database, consumer groups and tenant prefix."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio

from lotse_devstack import Stack
from lotse_registry.app import create_app
from lotse_registry.settings import RegistrySettings
from lotse_runtime.auth import Role
from tests.support import tokens
from tests.support.running import RunningService, own_settings, serving


class RunningRegistry(RunningService[RegistrySettings]):
    """The registry under test, with the tokens of its callers."""

    def token(self, *roles: Role, tenant: str | None = None, subject: str | None = None, org: str | None = None) -> str:
        return tokens.issue(subject or str(uuid.uuid4()), roles, tenant=tenant, organisation=org)

    def auth(self, *roles: Role, **claims: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(*roles, **claims)}"}


def registry_settings(stack: Stack, prefix: str, **overrides: Any) -> RegistrySettings:
    values: dict[str, Any] = {
        **own_settings(stack, "registry", prefix),
        # Only this module's tenants: other tests' partner topics are none of its business.
        "partner_topic_pattern": rf"^lotse\.partner\.{prefix}-[a-z0-9-]+\.inbound\.v1$",
        "topic_metadata_refresh_ms": 1000,
        "relay_poll_seconds": 0.05,
    }
    values.update(overrides)
    return RegistrySettings(**values)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def registry(stack: Stack) -> AsyncIterator[RunningRegistry]:
    prefix = "r" + uuid.uuid4().hex[:8]
    settings = registry_settings(stack, prefix)
    async with serving(RunningRegistry, stack, create_app(settings), settings, prefix) as running:
        yield running
