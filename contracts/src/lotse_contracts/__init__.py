"""Lotse event contracts: the CloudEvents envelope, the v1 events, the topic catalogue.

Consumers let events in through `parse_event`; producers build them with
`new_event` and publish `to_bytes(event)` with key `event.key` on
`topic_for(event.type, event.tenant)`.
"""

from lotse_contracts.codec import MAX_EVENT_BYTES, new_event, parse_event, to_bytes
from lotse_contracts.dead_letter import DeadLetterInfo, DeadLetterReason
from lotse_contracts.envelope import CONTENT_TYPE, SCHEMA_BASE_URL, Envelope, message_key, schema_url
from lotse_contracts.errors import EventValidationError
from lotse_contracts.event_types import EVENT_TYPES
from lotse_contracts.events import *  # noqa: F403 - the data models are part of the public API
from lotse_contracts.events import __all__ as _event_names
from lotse_contracts.topics import (
    PARTNER_INBOUND,
    PARTNER_INBOUND_PATTERN,
    TOPICS,
    Service,
    Topic,
    dead_letter_topic,
    partner_inbound_topic,
    tenant_of_partner_topic,
    topic_for,
    topics_for_tenants,
)

__all__ = [
    "CONTENT_TYPE",
    "EVENT_TYPES",
    "MAX_EVENT_BYTES",
    "PARTNER_INBOUND",
    "PARTNER_INBOUND_PATTERN",
    "SCHEMA_BASE_URL",
    "TOPICS",
    "DeadLetterInfo",
    "DeadLetterReason",
    "Envelope",
    "EventValidationError",
    "Service",
    "Topic",
    "dead_letter_topic",
    "message_key",
    "new_event",
    "parse_event",
    "partner_inbound_topic",
    "schema_url",
    "tenant_of_partner_topic",
    "to_bytes",
    "topic_for",
    "topics_for_tenants",
    *_event_names,
]
