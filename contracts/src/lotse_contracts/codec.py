"""Turning bytes into typed events and back.

`parse_event` is the one door through which a consumer lets an event in: it
refuses oversized, malformed, unknown and invalid messages with an
`EventValidationError` whose reason names every bad field path.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from pydantic import BaseModel, ValidationError

from lotse_contracts.base import EventData
from lotse_contracts.dead_letter import DeadLetterReason
from lotse_contracts.envelope import Envelope, schema_url
from lotse_contracts.errors import EventValidationError
from lotse_contracts.event_types import EVENT_TYPES

# The embedded broker does not enforce max.message.bytes, so consumers do.
MAX_EVENT_BYTES = 1_000_000

# Parametrising a generic model is not free; do it once per type. The type argument is a value
# here, which pydantic accepts at run time and a static checker cannot follow.
_ENVELOPES: dict[str, type[Envelope[Any]]] = {
    name: Envelope[model]  # type: ignore[valid-type]
    for name, model in EVENT_TYPES.items()
}


def envelope_model(event_type: str) -> type[Envelope[Any]]:
    """The envelope model of one event type, e.g. for its JSON Schema."""
    return _ENVELOPES[event_type]


def parse_event(raw: bytes | str) -> Envelope[Any]:
    """Parse a structured CloudEvents JSON message into a typed envelope."""
    raw_bytes = raw.encode() if isinstance(raw, str) else raw
    if len(raw_bytes) > MAX_EVENT_BYTES:
        raise EventValidationError(
            DeadLetterReason.TOO_LARGE, [f"message has {len(raw_bytes)} bytes, more than {MAX_EVENT_BYTES}"]
        )
    try:
        document = json.loads(raw_bytes)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EventValidationError(DeadLetterReason.MALFORMED_JSON, [f"malformed JSON: {exc}"]) from exc
    if not isinstance(document, dict):
        raise EventValidationError(
            DeadLetterReason.MALFORMED_JSON, ["malformed event: top level must be a JSON object"]
        )

    event_type = document.get("type")
    if not isinstance(event_type, str):
        raise EventValidationError(DeadLetterReason.INVALID_ENVELOPE, ["type: Field required (a string)"])
    envelope = _ENVELOPES.get(event_type)
    if envelope is None:
        raise EventValidationError(
            DeadLetterReason.UNKNOWN_TYPE, [f"type: unknown event type {event_type!r}"], event_type
        )

    try:
        return envelope.model_validate_json(raw_bytes)
    except ValidationError as exc:
        raise _as_event_error(exc, event_type) from exc


def new_event(
    event_type: str | type[EventData] | None = None,
    *,
    tenant: str,
    subject: str | UUID,
    version: int,
    source: str,
    data: EventData | dict[str, Any],
    correlationid: str | UUID | None = None,
    causationid: str | UUID | None = None,
    id: UUID | None = None,
    time: datetime | None = None,
) -> Envelope[Any]:
    """Build a new event, filling id, time, dataschema and (if absent) the correlation id.

    The type may be given as a string or data model class, or left out when
    `data` is a model instance. A new flow starts with correlationid = its
    first event's id.
    """
    type_name = _type_name(event_type, data)
    event_id = id or uuid4()
    fields = {
        "specversion": "1.0",
        "id": event_id,
        "source": source,
        "type": type_name,
        "subject": str(subject),
        "time": time or datetime.now(UTC),
        "datacontenttype": "application/json",
        "dataschema": schema_url(type_name),
        "tenant": tenant,
        "correlationid": str(correlationid or event_id),
        "causationid": str(causationid) if causationid is not None else None,
        "version": version,
        "data": data,
    }
    try:
        return _ENVELOPES[type_name].model_validate(fields)
    except ValidationError as exc:
        raise _as_event_error(exc, type_name) from exc


def to_bytes(event: Envelope[Any]) -> bytes:
    """Serialise an event as structured CloudEvents JSON (absent attributes are left out)."""
    return event.model_dump_json(exclude_none=True).encode()


def _type_name(event_type: str | type[EventData] | None, data: BaseModel | dict[str, Any]) -> str:
    if isinstance(event_type, str):
        name = event_type
    elif event_type is not None:
        name = event_type.event_type
    elif isinstance(data, EventData):
        name = data.event_type
    else:
        raise EventValidationError(DeadLetterReason.UNKNOWN_TYPE, ["type: give an event type or a data model instance"])
    if name not in _ENVELOPES:
        raise EventValidationError(DeadLetterReason.UNKNOWN_TYPE, [f"type: unknown event type {name!r}"], name)
    return name


def _as_event_error(exc: ValidationError, event_type: str) -> EventValidationError:
    problems = []
    only_data = True
    for error in exc.errors(include_url=False):
        path = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        problems.append(f"{path}: {message}" if path else message)
        only_data = only_data and bool(error["loc"]) and error["loc"][0] == "data"
    kind = DeadLetterReason.INVALID_DATA if only_data else DeadLetterReason.INVALID_ENVELOPE
    return EventValidationError(kind, problems, event_type)
