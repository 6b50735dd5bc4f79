"""The one settings class of the registry (environment variables prefixed with ``LOTSE_``)."""

from __future__ import annotations

from pydantic import Field, ValidationInfo, field_validator

from lotse_contracts import PARTNER_INBOUND_PATTERN
from lotse_runtime.connections import ServiceSettings
from lotse_runtime.destinations import url_problem
from lotse_runtime.http_guards import RateText
from lotse_runtime.retention import RetentionSettings
from lotse_runtime.sealed import PersonKeySettings


class RegistrySettings(ServiceSettings, RetentionSettings, PersonKeySettings):
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
    run_timer: bool = Field(True, description="Send the certificate expiry notices from this process")
    notice_interval_seconds: float = Field(
        300.0, gt=0, description="How often the timer looks for certificate expiry notices that are due"
    )
    page_size_max: int = Field(200, description="Largest page a list endpoint returns")
    geocoder_url: str | None = Field(
        None,
        description=(
            "Photon- or Nominatim-compatible search URL for the address search (GET /tenants/{tenant}/places), "
            "e.g. https://photon.komoot.io/api or https://nominatim.example.org/search?format=jsonv2; "
            "off when unset. https to a public host only (plain http to loopback in development)"
        ),
    )
    geocoder_timeout_seconds: float = Field(5.0, gt=0, le=30, description="Deadline of one geocoder request")
    geocoder_max_response_bytes: int = Field(
        256 * 1024, ge=1024, description="Largest geocoder answer read; a larger one is refused"
    )
    geocoder_rate_limit: RateText = Field(
        "30/minute",
        description="Address searches per caller (token subject) in a moving window, e.g. '30/minute'; 429 beyond",
    )

    @field_validator("geocoder_url")
    @classmethod
    def _public_geocoder(cls, value: str | None, info: ValidationInfo) -> str | None:
        # Checked at the start as well as at every connection: a refused URL stops the service
        # naming the variable, rather than failing each search later.
        if value and url_problem(value, info.data.get("env", "production")) is not None:
            raise ValueError("must be an https URL of a host on the public internet (http to loopback in development)")
        return value or None
