"""JSON Schema of each event type: the whole envelope with that type's data.

These schemas are what is published at each event's `dataschema` URL, what
the compatibility check compares against the committed snapshots, and what the
AsyncAPI document embeds.
"""

from __future__ import annotations

from typing import Any

from lotse_contracts.codec import envelope_model
from lotse_contracts.envelope import envelope_example, schema_url
from lotse_contracts.event_types import EVENT_TYPES

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def event_schema(event_type: str, ref_template: str = "#/$defs/{model}") -> dict[str, Any]:
    """The JSON Schema of one event type, with `type` and `dataschema` pinned."""
    model = EVENT_TYPES[event_type]
    schema = envelope_model(event_type).model_json_schema(ref_template=ref_template)
    example = envelope_example(model.example(), event_type)
    schema["title"] = event_type
    schema["description"] = (model.__doc__ or model.__name__).strip().splitlines()[0]
    properties = schema["properties"]
    properties["type"] = {**properties["type"], "const": event_type}
    properties["dataschema"] = {**properties["dataschema"], "const": schema_url(event_type)}
    properties["data"] = {**properties["data"], "examples": [example["data"]]}
    schema["examples"] = [example]
    return {"$schema": JSON_SCHEMA_DIALECT, "$id": schema_url(event_type), **schema}


def event_schemas() -> dict[str, dict[str, Any]]:
    """The JSON Schema of every event type, by type."""
    return {event_type: event_schema(event_type) for event_type in EVENT_TYPES}
