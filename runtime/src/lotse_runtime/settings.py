"""The base of each service's settings: one pydantic-settings class per service extends it."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from lotse_runtime.auth import AuthConfig


class PlatformSettings(BaseSettings):
    """Connections every service needs. Environment variables are prefixed with ``LOTSE_``."""

    model_config = SettingsConfigDict(env_prefix="LOTSE_", extra="ignore")

    env: Literal["development", "production"] = Field(
        "production",
        description=(
            "development: generated local secrets, plain-http webhooks to loopback; set by `lotse up` and the "
            "tests. Anything else runs as production: every secret must be set"
        ),
    )
    home: Path = Field(Path(".lotse"), description="Folder of the local installation (development secrets, data)")

    kafka_bootstrap: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers, comma separated")
    kafka_security_protocol: str = Field("PLAINTEXT", description="PLAINTEXT, SASL_PLAINTEXT or SASL_SSL")
    kafka_sasl_mechanism: str = Field("SCRAM-SHA-512", description="SASL mechanism when SASL is used")
    kafka_username: str | None = Field(None, description="SASL user of this service")
    kafka_password: str | None = Field(None, description="SASL password of this service")
    mongo_url: str = Field(
        "mongodb://127.0.0.1:27017/?directConnection=true",
        description="MongoDB connection string; the server must support transactions (replica set)",
    )
    log_level: str = Field("INFO", description="Log level of the service")
    topic_metadata_refresh_ms: int = Field(
        10_000,
        ge=1000,
        description=(
            "How often the Kafka client refreshes topic metadata; bounds how soon a newly onboarded "
            "tenant's partner topic is consumed by a pattern subscription (Kafka's default: 5 minutes)"
        ),
    )
    shutdown_grace_seconds: float = Field(
        20.0,
        gt=0,
        le=300,
        description=(
            "On SIGTERM, how long the message in hand, the sends in flight and the outbox relay's batch may "
            "take to finish; what still runs then is abandoned uncommitted and done again after the restart. "
            "The process exits at the latest 10 s after this (closing its clients)"
        ),
    )
    jwt_issuer: str = Field("https://auth.lotse.local", description="Expected issuer (iss) of bearer tokens")
    jwt_audience: str = Field("lotse", description="Expected audience (aud) of bearer tokens")
    jwt_dev_key: str | None = Field(
        "lotse-development-key-change-me-0123456789",
        description="HS256 key for development tokens; unset it in production and set LOTSE_JWT_JWKS_URL",
    )
    jwt_jwks_url: str | None = Field(None, description="The OIDC issuer's JWKS URL (production)")

    def auth_config(self) -> AuthConfig:
        # A configured JWKS wins over the development key.
        if self.jwt_jwks_url:
            return AuthConfig(self.jwt_issuer, self.jwt_audience, jwks_url=self.jwt_jwks_url)
        return AuthConfig(self.jwt_issuer, self.jwt_audience, hs256_key=self.jwt_dev_key)
