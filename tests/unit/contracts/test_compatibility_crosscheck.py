"""The compatibility check agrees with jsoncompat, a maintained JSON Schema compatibility checker.

jsoncompat judges a schema change for two roles, which are the check's two sides:
"serializer" breaks when the new schema admits a value the old one refuses (a new
writer's message reaches an old reader); "deserializer" breaks when the old schema
admits a value the new one refuses (an old writer's message reaches a new reader).
Where the two legitimately differ, `DIFFERENCES` says why.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any, Literal

import jsoncompat
import pytest

from lotse_contracts import EVENT_TYPES
from lotse_contracts.compatibility import Side, compare_schemas
from lotse_contracts.schemas import event_schema

Schema = dict[str, Any]
NEED_OPENED = "de.lotse.registry.need.opened.v1"
Role = Literal["serializer", "deserializer"]
ROLES: dict[Side, Role] = {Side.OLD_READER: "serializer", Side.OLD_WRITER: "deserializer"}


def data(schema: Schema) -> Schema:
    return schema["$defs"]["NeedOpened"]


def volunteers_needed(schema: Schema) -> Schema:
    return data(schema)["properties"]["volunteers_needed"]


def add_optional_field(schema: Schema) -> None:
    data(schema)["properties"]["accessible"] = {"type": "boolean", "default": False}


def add_required_field(schema: Schema) -> None:
    data(schema)["properties"]["priority"] = {"type": "integer"}
    data(schema)["required"].append("priority")


def remove_optional_field(schema: Schema) -> None:
    del data(schema)["properties"]["languages"]


def remove_required_field(schema: Schema) -> None:
    del data(schema)["properties"]["description"]
    data(schema)["required"].remove("description")


def make_field_optional(schema: Schema) -> None:
    data(schema)["required"].remove("description")


def make_field_required(schema: Schema) -> None:
    data(schema)["required"].append("languages")


def add_enum_value(schema: Schema) -> None:
    schema["$defs"]["NeedCategory"]["enum"].append("medical_appointment")


def remove_enum_value(schema: Schema) -> None:
    schema["$defs"]["NeedCategory"]["enum"].remove("leisure")


def tighten_bound(schema: Schema) -> None:
    volunteers_needed(schema)["maximum"] = 10


def loosen_bound(schema: Schema) -> None:
    volunteers_needed(schema)["maximum"] = 100


def drop_bound(schema: Schema) -> None:
    del volunteers_needed(schema)["maximum"]


def change_type(schema: Schema) -> None:
    volunteers_needed(schema)["type"] = "string"


def widen_type(schema: Schema) -> None:
    volunteers_needed(schema)["type"] = "number"


def make_nullable(schema: Schema) -> None:
    field = volunteers_needed(schema)
    field["anyOf"] = [{"type": "integer", "minimum": 1, "maximum": 50}, {"type": "null"}]
    for key in ("type", "minimum", "maximum"):
        del field[key]


def remove_variant(schema: Schema) -> None:
    data(schema)["properties"]["schedule"]["oneOf"].pop()
    del data(schema)["properties"]["schedule"]["discriminator"]["mapping"]["weekly"]


def schedule_as_any_of(schema: Schema) -> None:
    schedule = data(schema)["properties"]["schedule"]
    schedule["anyOf"] = schedule.pop("oneOf")
    del schedule["discriminator"]


def remove_any_of_variant(schema: Schema) -> None:
    data(schema)["properties"]["schedule"]["anyOf"].pop()


def make_readers_tolerant(schema: Schema) -> None:
    del data(schema)["additionalProperties"]


def make_readers_strict(schema: Schema) -> None:
    data(schema)["additionalProperties"] = False


# Each change: (how the old schema looks, how the new one differs from it).
CHANGES: dict[str, tuple[Callable[[Schema], None] | None, Callable[[Schema], None]]] = {
    "add optional field": (None, add_optional_field),
    "add required field": (None, add_required_field),
    "remove optional field": (None, remove_optional_field),
    "remove required field": (None, remove_required_field),
    "field becomes optional": (None, make_field_optional),
    "field becomes required": (None, make_field_required),
    "add enum value": (None, add_enum_value),
    "remove enum value": (None, remove_enum_value),
    "tighten a bound": (None, tighten_bound),
    "loosen a bound": (None, loosen_bound),
    "drop a bound": (None, drop_bound),
    "change a type": (None, change_type),
    "widen integer to number": (None, widen_type),
    "make a field nullable": (None, make_nullable),
    "remove a union variant": (None, remove_variant),
    "remove a union variant, anyOf": (schedule_as_any_of, remove_any_of_variant),
    "make readers tolerant": (None, make_readers_tolerant),
    "add optional field after readers are tolerant": (make_readers_tolerant, add_optional_field),
    "make tolerant readers strict again": (make_readers_tolerant, make_readers_strict),
}

# Where the verdicts differ: (the project's sides, jsoncompat's sides, why the project's holds).
OPEN_OBJECTS = (
    "jsoncompat reads an object without `additionalProperties: false` as one whose writer may send any "
    "field with any value; Lotse's writers are pydantic models that serialise only their declared fields, "
    "so an open object records only that its readers ignore unknown fields"
)
DIFFERENCES: dict[str, tuple[set[Side], set[Side], str]] = {
    # The new, open schema admits unknown fields the old one refuses.
    "make readers tolerant": (set(), {Side.OLD_READER}, OPEN_OBJECTS),
    # The old, open schema admits `accessible` with any value; no old writer sends it at all.
    "add optional field after readers are tolerant": (set(), {Side.OLD_WRITER}, OPEN_OBJECTS),
    # The mirror image: the new, open schema admits the removed field with any value; no new writer
    # (built from the model) sends it at all.
    "remove optional field while readers are tolerant": (set(), {Side.OLD_READER}, OPEN_OBJECTS),
    "remove a union variant": (
        {Side.OLD_WRITER},
        {Side.OLD_READER, Side.OLD_WRITER},
        "jsoncompat does not prove `oneOf` variants exclusive, so it fears a value of the remaining variant "
        "matched two old ones; the schedule variants differ in their `kind` const and never overlap (the same "
        "change written as `anyOf` agrees)",
    ),
}


def library_verdict(old: Schema, new: Schema) -> set[Side]:
    """The sides jsoncompat says break."""
    # jsoncompat resolves `$ref`s against `$id` and fetches nothing; without `$id` they stay local.
    old_text, new_text = (json.dumps({k: v for k, v in s.items() if k != "$id"}) for s in (old, new))
    return {side for side, role in ROLES.items() if not jsoncompat.check_compat(old_text, new_text, role)}


def project_verdict(old: Schema, new: Schema) -> set[Side]:
    return {side for change in compare_schemas(old, new) for side in change.breaks}


@pytest.mark.parametrize("name", list(CHANGES))
def test_the_check_agrees_with_jsoncompat(name: str) -> None:
    prepare, change = CHANGES[name]
    old = event_schema(NEED_OPENED)
    if prepare:
        prepare(old)
    new = copy.deepcopy(old)
    change(new)

    ours, theirs = project_verdict(old, new), library_verdict(old, new)

    if name in DIFFERENCES:
        expected_ours, expected_theirs, why = DIFFERENCES[name]
        assert theirs == expected_theirs, f"jsoncompat changed its verdict; revisit: {why}"
        assert ours == expected_ours, why
    else:
        assert ours == theirs
        assert ours, "every generated change breaks at least one side"


def test_an_unchanged_schema_is_compatible_for_both() -> None:
    schema = event_schema(NEED_OPENED)

    assert project_verdict(schema, schema) == library_verdict(schema, schema) == set()


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_adding_or_removing_any_field_of_any_event_agrees_with_jsoncompat(event_type: str) -> None:
    full = event_schema(event_type)
    model = full["$defs"][EVENT_TYPES[event_type].__name__]
    # Readers of an open data model (extra="ignore") ignore unknown fields: adding or removing an
    # optional field are the known differences from jsoncompat (see DIFFERENCES).
    tolerant = model.get("additionalProperties") is not False
    for name in model["properties"]:
        without = copy.deepcopy(full)
        data_model = without["$defs"][EVENT_TYPES[event_type].__name__]
        del data_model["properties"][name]
        data_model["required"] = [field for field in data_model.get("required", []) if field != name]

        for old, new, change in ((without, full, "added"), (full, without, "removed")):
            ours, theirs = project_verdict(old, new), library_verdict(old, new)
            if tolerant and name not in model.get("required", []):
                known = (
                    "add optional field after readers are tolerant"
                    if change == "added"
                    else ("remove optional field while readers are tolerant")
                )
                expected_ours, expected_theirs, why = DIFFERENCES[known]
                assert (ours, theirs) == (expected_ours, expected_theirs), f"data.{name} {change}: {why}"
            else:
                assert ours == theirs, f"data.{name} {change}"
