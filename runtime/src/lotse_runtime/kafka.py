"""The Kafka broker connection of a service."""

from __future__ import annotations

import logging
import ssl
from typing import Any

from faststream.kafka import KafkaBroker
from faststream.security import SASLScram256, SASLScram512

from lotse_runtime.consumer import ConsumerOptions, configure_consumers
from lotse_runtime.settings import KafkaSettings, PlatformSettings

DEAD_LETTER_MAX_BYTES = 8 * 1024 * 1024


def make_broker(settings: PlatformSettings, client_id: str) -> KafkaBroker:
    """A FastStream broker with defaults that hold on Apache Kafka and on Tansu alike."""
    broker = KafkaBroker(
        settings.kafka_bootstrap,
        client_id=client_id,
        security=_security(settings),
        # Tansu has no idempotent producer; the outbox and the inbox give the guarantees.
        enable_idempotence=False,
        acks="all",
        # Dead letters keep the original bytes, also of messages above MAX_EVENT_BYTES.
        max_request_size=DEAD_LETTER_MAX_BYTES,
        # FastStream logs every message it receives; that belongs at debug level.
        log_level=logging.DEBUG,
        # A plain logger: its lines go through the service's log configuration (JSON or console,
        # with trace ids) instead of a handler and format of FastStream's own.
        logger=logging.getLogger("lotse.kafka"),
        metadata_max_age_ms=settings.topic_metadata_refresh_ms,
        # On stop, each subscriber waits this long for its handler in hand, then cancels it uncommitted.
        graceful_timeout=settings.shutdown_grace_seconds,
    )
    options = ConsumerOptions(
        max_records=settings.consumer_max_records,
        batch_wait_ms=settings.consumer_batch_wait_ms,
        fetch_max_wait_ms=settings.consumer_fetch_max_wait_ms,
        lanes=settings.consumer_lanes,
        session_timeout_ms=settings.consumer_session_timeout_ms,
    )
    configure_consumers(broker, options)
    return broker


def _security(settings: KafkaSettings) -> SASLScram256 | SASLScram512 | None:
    if settings.kafka_security_protocol == "PLAINTEXT":
        return None
    username, password = _credentials(settings)
    use_ssl = settings.kafka_security_protocol == "SASL_SSL"
    scram = SASLScram256 if settings.kafka_sasl_mechanism == "SCRAM-SHA-256" else SASLScram512
    ssl_context = ssl.create_default_context() if use_ssl else None
    return scram(username, password, ssl_context=ssl_context, use_ssl=use_ssl)


def client_security(settings: KafkaSettings) -> dict[str, Any]:
    """The same login for plain aiokafka clients (the ops CLI), as their keyword arguments."""
    if settings.kafka_security_protocol == "PLAINTEXT":
        return {}
    username, password = _credentials(settings)
    options: dict[str, Any] = {
        "security_protocol": settings.kafka_security_protocol,
        "sasl_mechanism": settings.kafka_sasl_mechanism,
        "sasl_plain_username": username,
        "sasl_plain_password": password,
    }
    if settings.kafka_security_protocol == "SASL_SSL":
        options["ssl_context"] = ssl.create_default_context()
    return options


def _credentials(settings: KafkaSettings) -> tuple[str, str]:
    if not settings.kafka_username or not settings.kafka_password:
        raise ValueError("LOTSE_KAFKA_USERNAME and LOTSE_KAFKA_PASSWORD are needed with SASL")
    return settings.kafka_username, settings.kafka_password
