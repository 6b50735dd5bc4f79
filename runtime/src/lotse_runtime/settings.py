"""The base of each service's settings: one pydantic-settings class per service extends it."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Literal, Self, TypeVar

from pydantic import Field, ValidationError, model_validator
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, SettingsConfigDict

from lotse_runtime import secrets
from lotse_runtime.auth import AuthConfig
from lotse_runtime.secrets import SecretsError
from lotse_runtime.structured_logging import LogFormat

SettingsT = TypeVar("SettingsT", bound="PlatformSettings")
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
    consumer_max_records: int = Field(
        100,
        ge=1,
        le=1000,
        description=(
            "Most records a consumer takes at once; their events are applied in one MongoDB transaction "
            "and their offsets committed once (fewer round trips; a larger batch holds more work in one transaction)"
        ),
    )
    consumer_batch_wait_ms: int = Field(
        50,
        ge=1,
        le=1000,
        description=(
            "How long a consumer waits for records when none are there before it asks again; it takes "
            "whatever has arrived without waiting for a batch to fill, so this adds to idle latency only "
            "(at most this much per hop: FastStream pauses as long after an empty poll, and a record that "
            "arrives meanwhile waits for the pause). Lower is quicker when idle but costs CPU: at 5 ms the "
            "three services of an idle platform kept a fifth of a core busy, at 50 ms a twelfth"
        ),
    )
    consumer_fetch_max_wait_ms: int = Field(
        100,
        ge=1,
        le=5000,
        description=(
            "How long the broker may hold a consumer's fetch open while no records are there (Kafka's "
            "fetch.max.wait.ms); a broker that answers only at the end of it delays a new record by up to this"
        ),
    )
    consumer_session_timeout_ms: int = Field(
        6000,
        ge=6000,
        le=300_000,
        description=(
            "How long a consumer may stay silent before its group gives its partitions to another "
            "(Kafka's session.timeout.ms; heartbeats every third of it). 6 s is Apache Kafka's smallest "
            "by default: a crashed replica's partitions move on sooner, and a new member joins sooner "
            "(on the embedded broker a join takes half of it)"
        ),
    )
    consumer_lanes: int = Field(
        1,
        ge=1,
        le=64,
        description=(
            "How many parts of a batch (records of different partitions and tenants) a consumer applies "
            "side by side, each in a transaction of its own; 1 applies a batch in one transaction"
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
    # The token issuer has no default: a default that works would be a provider nobody runs, and one
    # that does not would fail on the first request instead of at the start.
    jwt_issuer: str | None = Field(
        None,
        description=(
            "Issuer (iss) of the bearer tokens: the OpenID Connect provider, e.g. "
            "https://login.example.org/realms/lotse (`lotse up` starts a local one)"
        ),
    )
    jwt_jwks_url: str | None = Field(
        None,
        description=(
            "The provider's key set (JWKS URL, jwks_uri of its discovery document), e.g. "
            "https://login.example.org/realms/lotse/protocol/openid-connect/certs"
        ),
    )
    jwt_audience: str = Field(
        "lotse", description="Expected audience (aud) of the access tokens: the provider issues them for Lotse"
    )

    @model_validator(mode="after")
    def _provide_secrets(self) -> Self:
        problems = []
        # Before issue 15 small installations signed tokens with one shared key; a deployment that
        # still sets it expects tokens Lotse no longer accepts, so it hears so at once.
        if os.environ.get(f"{secrets.ENV_PREFIX}JWT_HS256_KEY"):
            problems.append(
                "LOTSE_JWT_HS256_KEY is no longer supported: tokens come from an OpenID Connect provider; "
                "set LOTSE_JWT_ISSUER and LOTSE_JWT_JWKS_URL and remove LOTSE_JWT_HS256_KEY"
            )
        unset = [secrets.variable(name) for name in ("jwt_issuer", "jwt_jwks_url") if not getattr(self, name)]
        if unset:
            problems.append(
                f"not set: {', '.join(unset)} (the OpenID Connect provider whose access tokens the service "
                "accepts, in every mode; `lotse up` starts a local one and sets both)"
            )
        for name in ("jwt_issuer", "jwt_jwks_url"):
            value = getattr(self, name)
            if value and not value.startswith(("https://", "http://")):
                problems.append(f"{secrets.variable(name)} must be an http(s) URL")
        try:
            secrets.provide(self, development=self.env == "development", home=self.home)
        except SecretsError as error:
            problems.append(str(error))
        if problems:
            raise SecretsError("; ".join(problems))
        return self

    def auth_config(self) -> AuthConfig:
        # The validator refuses to load settings without them.
        assert self.jwt_issuer is not None and self.jwt_jwks_url is not None
        return AuthConfig(self.jwt_issuer, self.jwt_audience, jwks_url=self.jwt_jwks_url)

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
