"""The one settings class of the registry (environment variables prefixed with ``LOTSE_``)."""

from __future__ import annotations

from pydantic import Field

from lotse_contracts import PARTNER_INBOUND_PATTERN
from lotse_runtime.http_guards import HttpGuardSettings
from lotse_runtime.settings import PlatformSettings


class RegistrySettings(PlatformSettings, HttpGuardSettings):
    database: str = Field("registry", description="MongoDB database the registry owns")
    http_host: str = Field("127.0.0.1", description="Address the HTTP API listens on")
    http_port: int = Field(8001, description="Port of the HTTP API")
    consumer_group: str = Field(
        "registry", description="Prefix of the Kafka consumer groups (and inbox consumer names) of the registry"
    )
    partner_topic_pattern: str = Field(
        PARTNER_INBOUND_PATTERN,
        description="Anchored regex of the partner inbound topics the registry subscribes to (all tenants)",
    )
    run_consumers: bool = Field(True, description="Consume partner commands and matching outcomes in this process")
    run_relay: bool = Field(True, description="Run the outbox relay in this process")
    relay_poll_seconds: float = Field(0.5, description="Outbox relay poll interval when not woken")
    page_size_max: int = Field(200, description="Largest page a list endpoint returns")
