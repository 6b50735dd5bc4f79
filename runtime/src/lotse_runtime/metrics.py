"""Prometheus metrics of the mechanism, shared by every service (served at ``/metrics``).

Labels never carry personal data or tenant-chosen free text: consumer, topic, reason, relay.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

MESSAGES_CONSUMED = Counter("lotse_messages_consumed_total", "Messages received from Kafka", ["consumer", "topic"])
MESSAGES_PROCESSED = Counter("lotse_messages_processed_total", "Messages processed successfully", ["consumer", "topic"])
MESSAGES_DEAD_LETTERED = Counter(
    "lotse_messages_dead_lettered_total", "Messages written to a dead-letter topic", ["consumer", "topic", "reason"]
)
PROCESSING_RETRIES = Counter(
    "lotse_processing_retries_total", "Attempts repeated after a processing error", ["consumer", "topic"]
)
DUPLICATES_SUPPRESSED = Counter(
    "lotse_duplicates_suppressed_total", "Events seen before by the same consumer and ignored", ["consumer"]
)
CONSUMER_LAG = Gauge(
    "lotse_consumer_lag_messages", "Messages behind the partition's high watermark", ["consumer", "topic", "partition"]
)
OUTBOX_PUBLISHED = Counter("lotse_outbox_published_total", "Outbox events published to Kafka", ["relay"])
OUTBOX_BACKLOG = Gauge("lotse_outbox_backlog_events", "Outbox events not yet published", ["relay"])
OUTBOX_OLDEST_AGE = Gauge(
    "lotse_outbox_oldest_pending_age_seconds", "Age of the oldest unpublished outbox event", ["relay"]
)
