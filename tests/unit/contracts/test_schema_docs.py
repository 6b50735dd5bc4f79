"""Every field of every contract is documented with a description and examples."""

from __future__ import annotations

from typing import Any

import pytest

from lotse_contracts import EVENT_TYPES
from lotse_contracts.schemas import event_schema


def undocumented(schema: dict[str, Any]) -> list[str]:
    missing = []
    for model_name, model in {"(envelope)": schema, **schema.get("$defs", {})}.items():
        for field_name, field in model.get("properties", {}).items():
            for attribute in ("description", "examples"):
                if attribute not in field:
                    missing.append(f"{model_name}.{field_name} lacks {attribute}")
    return missing


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_every_field_has_a_description_and_examples(event_type: str) -> None:
    assert undocumented(event_schema(event_type)) == []


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_the_schema_pins_type_and_dataschema(event_type: str) -> None:
    schema = event_schema(event_type)

    assert schema["$id"] == schema["properties"]["dataschema"]["const"]
    assert schema["properties"]["type"]["const"] == event_type
    assert schema["additionalProperties"] is False
