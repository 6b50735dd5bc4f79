"""The AsyncAPI 3.0 document of all Lotse topics, generated from the catalogue.

One channel per topic (the partner inbound topic as one channel with a
`{tenant}` parameter), one dead-letter channel per consumed topic, one
message per event type with the full envelope as payload, and the send and
receive operations of each service.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from lotse_contracts import dead_letter
from lotse_contracts.codec import MAX_EVENT_BYTES
from lotse_contracts.envelope import CONTENT_TYPE, envelope_example
from lotse_contracts.event_types import EVENT_TYPES
from lotse_contracts.schemas import event_schema
from lotse_contracts.topics import ALL_TOPICS, Topic, dead_letter_of

ASYNCAPI_VERSION = "3.0.0"
KAFKA_BINDING_VERSION = "0.5.0"
DEAD_LETTER_MESSAGE = "DeadLetter"
SCHEMA_REF = "#/components/schemas/{model}"


def asyncapi_document() -> dict[str, Any]:
    """The AsyncAPI document as a plain dict."""
    schemas: dict[str, Any] = {}
    messages = {_message_name(t): _message(t, schemas) for t in EVENT_TYPES}
    messages[DEAD_LETTER_MESSAGE] = _dead_letter_message()
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for topic in ALL_TOPICS:
        channels[_channel_id(topic)] = _channel(topic, [_message_name(t) for t in topic.event_types])
        _add_operations(operations, topic)
        if topic.consumers:
            channels[_channel_id(topic) + "Dlq"] = _channel(dead_letter_of(topic), [DEAD_LETTER_MESSAGE])
            _add_dead_letter_operations(operations, topic)
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "Lotse events",
            "version": "1.0.0",
            "description": (
                "Events and partner commands of the Lotse platform. Every record value is a CloudEvents 1.0 "
                "event in structured JSON mode; every key is `<tenant>:<aggregate id>` (the event subject). "
                f"Records above {MAX_EVENT_BYTES} bytes are refused by consumers. Records a consumer cannot "
                "process are copied unchanged to `<topic>.dlq` with `lotse.dlq.*` headers; a type the topic's "
                "readers refuse for its personal data (a partner's volunteer registration, accepted over HTTPS only) "
                "is copied with its `data` reduced to the list of its field names."
            ),
        },
        "defaultContentType": CONTENT_TYPE,
        "servers": _servers(),
        "channels": channels,
        "operations": operations,
        "components": {
            "schemas": schemas,
            "messages": messages,
            "securitySchemes": {
                "scram": {
                    "type": "scramSha512",
                    "description": (
                        "SASL_SSL with SCRAM-SHA-512. One credential per service and per partner system; "
                        "ACLs let a partner write only its own tenant's inbound topic."
                    ),
                }
            },
        },
    }


def asyncapi_yaml() -> str:
    return yaml.safe_dump(asyncapi_document(), sort_keys=False, allow_unicode=True, width=120)


def _servers() -> dict[str, Any]:
    return {
        "local": {
            "host": "localhost:9092",
            "protocol": "kafka",
            "description": "Local development broker (embedded Tansu or docker compose Kafka), no authentication.",
        },
        "production": {
            "host": "{bootstrap}",
            "protocol": "kafka-secure",
            "description": "Production Kafka cluster, SASL_SSL.",
            "variables": {
                "bootstrap": {
                    "default": "kafka.lotse.example:9093",
                    "description": "Bootstrap server of the deployment.",
                }
            },
            "security": [{"$ref": "#/components/securitySchemes/scram"}],
        },
    }


def _message_name(event_type: str) -> str:
    return EVENT_TYPES[event_type].__name__


def _message(event_type: str, schemas: dict[str, Any]) -> dict[str, Any]:
    schema = _for_asyncapi(event_schema(event_type, ref_template=SCHEMA_REF))
    for name, definition in schema.pop("$defs", {}).items():
        if schemas.setdefault(name, definition) != definition:
            raise ValueError(f"two different schemas are both named {name!r}")
    for attribute in ("$schema", "$id", "examples"):
        schema.pop(attribute, None)
    schemas[event_type] = schema
    example = envelope_example(EVENT_TYPES[event_type].example(), event_type)
    return {
        "name": _message_name(event_type),
        "title": event_type,
        "summary": schema["description"],
        "contentType": CONTENT_TYPE,
        "correlationId": {"location": "$message.payload#/correlationid"},
        "headers": _cloudevents_headers(),
        "payload": {"$ref": f"#/components/schemas/{event_type}"},
        "bindings": {"kafka": {"key": _key_schema(), "bindingVersion": KAFKA_BINDING_VERSION}},
        "examples": [{"name": "example", "headers": {"content-type": CONTENT_TYPE}, "payload": example}],
    }


def _cloudevents_headers() -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "content-type": {
                "type": "string",
                "const": CONTENT_TYPE,
                "description": "CloudEvents Kafka binding, structured mode: the value is the whole event.",
            }
        },
        "required": ["content-type"],
    }


def _key_schema() -> dict[str, Any]:
    return {
        "type": "string",
        "pattern": "^[a-z][a-z0-9-]{1,39}:.+$",
        "description": "`<tenant>:<subject>`, UTF-8; one aggregate's events share a key and stay in order.",
        "examples": ["musterstadt:5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d"],
    }


def _dead_letter_message() -> dict[str, Any]:
    header_descriptions = {
        dead_letter.REASON: "Failure category, e.g. invalid_data.",
        dead_letter.ERROR: "Human-readable error naming the bad field paths.",
        dead_letter.SOURCE_TOPIC: "Topic the record was read from.",
        dead_letter.SOURCE_PARTITION: "Partition it was read from (decimal).",
        dead_letter.SOURCE_OFFSET: "Offset it had there (decimal).",
        dead_letter.CONSUMER: "Consumer group that gave up on it.",
        dead_letter.FAILED_AT: "When it was dead-lettered (ISO 8601).",
    }
    properties: dict[str, Any] = {
        name: {"type": "string", "description": text} for name, text in header_descriptions.items()
    }
    properties[dead_letter.REDACTED] = {
        "type": "string",
        "const": "true",
        "description": "Only on a redacted letter: the value is the envelope with `data` replaced by its field names.",
    }
    return {
        "name": DEAD_LETTER_MESSAGE,
        "title": "Dead-lettered record",
        "summary": "A record a consumer could not process: original value and key, failure in headers.",
        "contentType": "application/octet-stream",
        "headers": {
            "type": "object",
            "properties": properties,
            "required": list(header_descriptions),
        },
        "payload": {
            "type": "string",
            "format": "binary",
            "description": "The original record value, unchanged, unless the letter is redacted.",
        },
        "bindings": {
            "kafka": {
                "key": {"type": "string", "description": "The original record key, unchanged."},
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        },
    }


def _channel_id(topic: Topic) -> str:
    # "lotse.partner.{tenant}.inbound.v1" -> "partnerInbound"
    words = [w for w in re.split(r"[.{}]+", topic.name) if w not in ("lotse", "v1", "tenant", "", "dlq")]
    return words[0] + "".join(w.capitalize() for w in words[1:]) + ("Dlq" if topic.name.endswith(".dlq") else "")


def _channel(topic: Topic, message_names: list[str]) -> dict[str, Any]:
    binding: dict[str, Any] = {
        "partitions": topic.partitions,
        "topicConfiguration": {"cleanup.policy": [topic.cleanup_policy.value], "retention.ms": topic.retention_ms},
        "bindingVersion": KAFKA_BINDING_VERSION,
    }
    channel: dict[str, Any] = {
        "address": topic.name,
        "title": topic.name,
        "description": f"{topic.description} Key: {topic.key}.",
        "messages": {name: {"$ref": f"#/components/messages/{name}"} for name in message_names},
        "bindings": {"kafka": binding},
    }
    if topic.is_template:
        channel["parameters"] = {
            "tenant": {
                "description": "Tenant slug, `^[a-z][a-z0-9-]{1,39}$`; must equal the `tenant` of every event.",
                "examples": ["musterstadt"],
            }
        }
    else:
        binding["topic"] = topic.name
    return channel


def _add_operations(operations: dict[str, Any], topic: Topic) -> None:
    channel = _channel_id(topic)
    for service in topic.producers:
        operations[f"{service.value}Send{channel[0].upper()}{channel[1:]}"] = _operation(
            "send",
            channel,
            [_message_name(t) for t in topic.accepted_types],  # a refused type is no command to send
            f"{service.value} publishes to {topic.name}.",
        )
    for service in topic.consumers:
        operations[f"{service.value}Receive{channel[0].upper()}{channel[1:]}"] = _operation(
            "receive",
            channel,
            [_message_name(t) for t in topic.types_consumed_by(service)],
            f"{service.value} consumes {topic.name}.",
        )


def _add_dead_letter_operations(operations: dict[str, Any], topic: Topic) -> None:
    channel = _channel_id(topic) + "Dlq"
    for service in topic.consumers:
        operations[f"{service.value}Send{channel[0].upper()}{channel[1:]}"] = _operation(
            "send", channel, [DEAD_LETTER_MESSAGE], f"{service.value} dead-letters what it cannot process."
        )


def _operation(action: str, channel: str, message_names: list[str], summary: str) -> dict[str, Any]:
    return {
        "action": action,
        "channel": {"$ref": f"#/channels/{channel}"},
        "summary": summary,
        "messages": [{"$ref": f"#/channels/{channel}/messages/{name}"} for name in message_names],
    }


def _for_asyncapi(schema: Any) -> Any:
    """Drop pydantic's OpenAPI-style `discriminator` objects, which AsyncAPI schemas reject; oneOf still holds."""
    if isinstance(schema, dict):
        return {k: _for_asyncapi(v) for k, v in schema.items() if not (k == "discriminator" and isinstance(v, dict))}
    if isinstance(schema, list):
        return [_for_asyncapi(item) for item in schema]
    return schema
