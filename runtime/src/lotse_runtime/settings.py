"""The base of each service's settings: one pydantic-settings class per service extends it."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Literal, Self, TypeVar

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, SettingsConfigDict

from lotse_runtime import secrets
from lotse_runtime.auth import AuthConfig
from lotse_runtime.secrets import SecretsError
from lotse_runtime.structured_logging import LogFormat

SettingsT = TypeVar("SettingsT", bound="PlatformSettings")
# The HS256 key's minimum length, as RFC 7518 asks (a key as long as the hash).
MIN_HS256_KEY_LENGTH = 32
# sysexits.h: configuration error.
EX_CONFIG = 78


class KafkaSettings(BaseSettings):
    """The broker login alone: what the operations CLI needs, without a service's secrets."""

    model_config = SettingsConfigDict(env_prefix="LOTSE_", extra="ignore")

    kafka_bootstrap: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers, comma separated")
    kafka_security_protocol: str = Field("PLAINTEXT", description="PLAINTEXT, SASL_PLAINTEXT or SASL_SSL")
    kafka_sasl_mechanism: str = Field("SCRAM-SHA-512", description="SASL mechanism when SASL is used")
    kafka_username: str | None = Field(None, description="SASL user of this service")
    kafka_password: str | None = Field(None, description="SASL password of this service")


class PlatformSettings(KafkaSettings):
    """Connections every service needs. Environment variables are prefixed with ``LOTSE_``."""

    env: Literal["development", "production"] = Field(
        "production",
        description=(
            "development: generated local secrets, plain-http webhooks to loopback; set by `lotse up` and the "
            "tests. production (the default): every secret must be set, or the service refuses to start"
        ),
    )
    home: Path = Field(Path(".lotse"), description="Folder of the local installation (development secrets, data)")

    mongo_url: str = Field(
        "mongodb://127.0.0.1:27017/?directConnection=true",
        description="MongoDB connection string; the server must support transactions (replica set)",
    )
    log_level: str = Field("INFO", description="Log level of the service")
    log_format: LogFormat = Field(
        "json", description="json: one JSON object per line (production); console: one readable line (`lotse up`)"
    )
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
    jwt_hs256_key: SecretStr | None = Field(
        None,
        description=(
            "HS256 key of the bearer tokens, at least 32 characters, when no LOTSE_JWT_JWKS_URL is set. "
            "Development generates one per installation"
        ),
    )
    jwt_jwks_url: str | None = Field(None, description="The OIDC issuer's JWKS URL (production)")

    @model_validator(mode="after")
    def _provide_secrets(self) -> Self:
        # Exactly one way to verify tokens: the issuer's key set, or a shared HS256 key.
        if self.jwt_jwks_url and self.jwt_hs256_key is not None:
            raise SecretsError("set only one of LOTSE_JWT_JWKS_URL or LOTSE_JWT_HS256_KEY")
        secrets.provide(
            self,
            development=self.env == "development",
            home=self.home,
            not_needed=["jwt_hs256_key"] if self.jwt_jwks_url else [],
            alternatives={"jwt_hs256_key": "LOTSE_JWT_JWKS_URL"},
        )
        if self.jwt_hs256_key is not None and len(self.jwt_hs256_key.get_secret_value()) < MIN_HS256_KEY_LENGTH:
            raise SecretsError(
                f"LOTSE_JWT_HS256_KEY is shorter than {MIN_HS256_KEY_LENGTH} characters; "
                f"choose a random value, e.g. {secrets.HOW_TO_CHOOSE}"
            )
        return self

    def auth_config(self) -> AuthConfig:
        if self.jwt_jwks_url:
            return AuthConfig(self.jwt_issuer, self.jwt_audience, jwks_url=self.jwt_jwks_url)
        assert self.jwt_hs256_key is not None  # the validator provides it or refuses to load
        return AuthConfig(self.jwt_issuer, self.jwt_audience, hs256_key=self.jwt_hs256_key.get_secret_value())

    # --- operations endpoints: what a service shows beyond its API ------------------------------

    api_docs: bool | None = Field(
        None,
        description=(
            "Serve the OpenAPI document and its pages (/openapi.json, /docs, /redoc). "
            "Default: on in development, off in production"
        ),
    )
    metrics_on_api_port: bool | None = Field(
        None,
        description=(
            "Serve /metrics on the API port as well. Default: on in development, off in production "
            "(use LOTSE_METRICS_PORT there)"
        ),
    )
    metrics_port: int | None = Field(
        None,
        ge=1,
        le=65535,
        description="Serve /metrics on this port of its own, for the scraper only (not exposed with the API)",
    )
    metrics_host: str = Field("127.0.0.1", description="Address the metrics port listens on (0.0.0.0 in a container)")

    def serves_api_docs(self) -> bool:
        return self.api_docs if self.api_docs is not None else self.env == "development"

    def serves_metrics_on_api_port(self) -> bool:
        return self.metrics_on_api_port if self.metrics_on_api_port is not None else self.env == "development"


def load_settings(settings_class: type[SettingsT], service: str) -> SettingsT:
    """The service's settings from the environment; if they are missing or refused, one line on
    stderr naming the variables, and exit with EX_CONFIG (no traceback: an operator reads this)."""
    try:
        return settings_class()
    except ValidationError as error:
        reasons = [_reason(problem) for problem in error.errors()]
        print(f"{service}: refusing to start: {'; '.join(reasons)}", file=sys.stderr)
        raise SystemExit(EX_CONFIG) from None


def _reason(problem: ErrorDetails) -> str:
    cause = problem.get("ctx", {}).get("error")
    if isinstance(cause, SecretsError):
        return str(cause)
    names = [str(part) for part in problem["loc"] if isinstance(part, str)]
    where = secrets.variable(names[0]) if names else "settings"
    return f"{where}: {problem['msg']}"
