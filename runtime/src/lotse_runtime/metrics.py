"""Prometheus metrics of the mechanism, shared by every service (served at ``/metrics``).

Labels never carry personal data or tenant-chosen free text: consumer, topic, reason, relay,
command (a MongoDB command's name).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge
from pymongo.monitoring import CommandFailedEvent, CommandListener, CommandStartedEvent, CommandSucceededEvent

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
RETENTION_DELETED = Counter(
    "lotse_retention_deleted_total", "Records deleted (or erased) by the retention job", ["rule"]
)
RETENTION_ANONYMISED = Counter("lotse_retention_anonymised_total", "Records anonymised by the retention job", ["rule"])
RETENTION_LAST_RUN = Gauge(
    "lotse_retention_last_run_timestamp_seconds", "When the retention job last finished a run", ["job"]
)
RETENTION_FAILURES = Counter(
    "lotse_retention_failures_total", "Retention runs, or steps of one rule for one tenant, that failed", ["job"]
)
MONGO_COMMANDS = Counter(
    "lotse_mongo_commands_total", "MongoDB commands sent (round trips), by command name", ["command"]
)


class MongoCommandCounter(CommandListener):
    """Counts every command a MongoDB client sends (``commitTransaction`` counts transactions).

    Always on: a counter increment per command costs about a microsecond against a round trip of
    a millisecond or more, and the counts say where a service spends its database time
    (``bench/end_to_end.py`` divides them by the needs it sent)."""

    def started(self, event: CommandStartedEvent) -> None:
        MONGO_COMMANDS.labels(event.command_name).inc()

    def succeeded(self, event: CommandSucceededEvent) -> None:
        return

    def failed(self, event: CommandFailedEvent) -> None:
        return
