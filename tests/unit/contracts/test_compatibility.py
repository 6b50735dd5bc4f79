"""The compatibility check judges each change from both sides of its topic: old readers and old writers."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, Field, ValidationError

from lotse_contracts import EVENT_TYPES
from lotse_contracts.compatibility import (
    CheckResult,
    Parties,
    check_against_snapshots,
    compare_schemas,
    judge,
    parties,
    write_snapshots,
)
from lotse_contracts.events import NeedOpened
from lotse_contracts.schemas import event_schema

NEED_OPENED = "de.lotse.registry.need.opened.v1"
NEEDS = f"lotse.registry.needs.v1 {NEED_OPENED}"
OLD_READERS = "breaks old reader (matching, notifications)"
OLD_WRITERS = "breaks old writer (registry)"
SNAPSHOTS = Path(__file__).resolve().parents[3] / "contracts" / "schemas"


class NeedOpenedTolerant(NeedOpened, extra="ignore"):
    """Step one of adding a field: the readers of need.opened ignore unknown fields."""


class NeedOpenedAccessible(NeedOpenedTolerant):
    """Step two: the new optional field."""

    accessible: bool = Field(default=False, description="Step-free place.", examples=[True])


def schema_of(model: type[BaseModel], event_type: str = NEED_OPENED) -> dict[str, Any]:
    """The event's published schema with its data model replaced by `model`, as pydantic generates it."""
    schema = event_schema(event_type)
    data = model.model_json_schema(ref_template="#/$defs/{model}")
    data.pop("$defs", None)
    schema["$defs"][EVENT_TYPES[event_type].__name__] = data
    return schema


def check(old: dict[str, Any], new: dict[str, Any], event_type: str = NEED_OPENED) -> CheckResult:
    return judge(event_type, compare_schemas(old, new), parties(event_type))


@pytest.fixture
def old() -> dict[str, Any]:
    return event_schema(NEED_OPENED)


@pytest.fixture
def new(old: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(old)


def data_model(schema: dict[str, Any], name: str = "NeedOpened") -> dict[str, Any]:
    return schema["$defs"][name]


def test_an_unchanged_schema_is_compatible(old: dict[str, Any], new: dict[str, Any]) -> None:
    assert compare_schemas(old, new) == []


def test_the_catalogue_names_who_writes_and_who_reads() -> None:
    assert parties(NEED_OPENED) == Parties("lotse.registry.needs.v1", ("registry",), ("matching", "notifications"))
    assert parties("de.lotse.partner.proposal.accept.v1") == Parties(
        "lotse.partner.{tenant}.inbound.v1", ("partner",), ("matching",)
    )
    assert parties("de.lotse.notifications.delivery.sent.v1").readers == ()


def test_a_new_optional_field_breaks_strict_old_readers(old: dict[str, Any], new: dict[str, Any]) -> None:
    data_model(new)["properties"]["accessible"] = {"type": "boolean", "default": False}

    result = check(old, new)

    assert result.breaking == [
        f"{NEEDS}: data.accessible: new optional field: {OLD_READERS}: it refuses unknown fields"
    ]


def test_a_new_optional_field_on_the_model_is_refused_as_is() -> None:
    class NeedOpenedAccessibleAsIs(NeedOpened):
        accessible: bool = Field(default=False, description="Step-free place.", examples=[True])

    result = check(event_schema(NEED_OPENED), schema_of(NeedOpenedAccessibleAsIs))

    assert result.breaking == [
        f"{NEEDS}: data.accessible: new optional field: {OLD_READERS}: it refuses unknown fields"
    ]


def test_making_readers_tolerant_and_adding_the_field_in_one_release_is_refused() -> None:
    result = check(event_schema(NEED_OPENED), schema_of(NeedOpenedAccessible))

    assert result.breaking == [
        f"{NEEDS}: data.accessible: new optional field: {OLD_READERS}: it refuses unknown fields"
    ]


def test_making_readers_tolerant_is_compatible() -> None:
    result = check(event_schema(NEED_OPENED), schema_of(NeedOpenedTolerant))

    assert result.breaking == []
    assert result.compatible == [f"{NEEDS}: data: readers now ignore unknown fields"]


def test_after_readers_are_tolerant_a_new_optional_field_is_allowed() -> None:
    result = check(schema_of(NeedOpenedTolerant), schema_of(NeedOpenedAccessible))

    assert result.breaking == []
    assert result.compatible == [f"{NEEDS}: data.accessible: new optional field"]


def test_a_tolerant_snapshot_does_not_excuse_a_new_required_field() -> None:
    class NeedOpenedPriority(NeedOpenedTolerant):
        priority: int = Field(description="Urgency.", examples=[1])

    result = check(schema_of(NeedOpenedTolerant), schema_of(NeedOpenedPriority))

    assert result.breaking == [f"{NEEDS}: data.priority: new required field: {OLD_WRITERS}: it does not send the field"]


def test_making_readers_strict_again_breaks_old_writers() -> None:
    result = check(schema_of(NeedOpenedTolerant), event_schema(NEED_OPENED))

    assert result.breaking == [
        f"{NEEDS}: data: unknown fields now refused: {OLD_WRITERS}: it may send fields its tolerant reader ignored"
    ]


def test_a_tolerant_model_really_ignores_unknown_fields_and_a_strict_one_refuses_them() -> None:
    document = {**NeedOpened.example().model_dump(mode="json"), "accessible": True}

    assert NeedOpenedTolerant.model_validate(document) == NeedOpenedTolerant.model_validate(
        NeedOpened.example().model_dump(mode="json")
    )
    with pytest.raises(ValidationError, match="accessible"):
        NeedOpened.model_validate(document)


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_every_schema_records_how_its_readers_treat_unknown_fields(event_type: str) -> None:
    """The check trusts `additionalProperties: false` as "readers refuse unknown fields": it must be true."""
    model = EVENT_TYPES[event_type]
    data_schema = event_schema(event_type)["$defs"][model.__name__]
    document = {**model.example().model_dump(mode="json"), "an_unknown_field": 1}

    try:
        model.model_validate(document)
        refused = False
    except ValidationError:
        refused = True

    assert refused == (data_schema.get("additionalProperties") is False)


def test_a_new_enum_value_breaks_old_readers(old: dict[str, Any], new: dict[str, Any]) -> None:
    new["$defs"]["NeedCategory"]["enum"].append("medical_appointment")

    assert check(old, new).breaking == [
        f"{NEEDS}: data.category: enum value(s) added: medical_appointment: {OLD_READERS}: "
        "it refuses values it does not know"
    ]


def test_a_change_only_old_readers_refuse_is_compatible_on_a_topic_nobody_reads() -> None:
    event_type = "de.lotse.notifications.delivery.sent.v1"
    old = event_schema(event_type)
    new = copy.deepcopy(old)
    new["$defs"]["RecipientKind"]["enum"].append("interpreter")

    result = check(old, new, event_type)

    assert result.breaking == []
    assert result.compatible == [
        f"lotse.notifications.deliveries.v1 {event_type}: data.recipient_kind: enum value(s) added: interpreter "
        "(no old reader to break)"
    ]


def test_a_partner_command_names_partner_writers_and_service_readers() -> None:
    event_type = "de.lotse.partner.proposal.accept.v1"
    old = event_schema(event_type)
    new = copy.deepcopy(old)
    data = data_model(new, "AcceptProposal")
    data["properties"]["channel"] = {"type": "string"}
    data["required"].append("channel")

    assert check(old, new, event_type).breaking == [
        f"lotse.partner.{{tenant}}.inbound.v1 {event_type}: data.channel: new required field: "
        "breaks old reader (matching): it refuses unknown fields",
        f"lotse.partner.{{tenant}}.inbound.v1 {event_type}: data.channel: new required field: "
        "breaks old writer (partner): it does not send the field",
    ]


def test_a_changed_type_breaks_both_sides(old: dict[str, Any], new: dict[str, Any]) -> None:
    data_model(new)["properties"]["volunteers_needed"]["type"] = "string"

    assert check(old, new).breaking == [
        f"{NEEDS}: data.volunteers_needed: type changed integer -> string: {OLD_READERS}: "
        "it refuses the newly allowed type",
        f"{NEEDS}: data.volunteers_needed: type changed integer -> string: {OLD_WRITERS}: "
        "it sends a type the new reader refuses",
    ]


def test_a_nullable_field_breaks_old_readers_only(old: dict[str, Any], new: dict[str, Any]) -> None:
    field = data_model(new)["properties"]["volunteers_needed"]
    field["anyOf"] = [{"type": "integer", "minimum": 1, "maximum": 50}, {"type": "null"}]
    for key in ("type", "minimum", "maximum"):
        del field[key]

    assert check(old, new).breaking == [
        f"{NEEDS}: data.volunteers_needed: type changed integer -> integer|null: {OLD_READERS}: "
        "it refuses the newly allowed type"
    ]


def test_a_removed_or_renamed_field_breaks_both_sides(old: dict[str, Any], new: dict[str, Any]) -> None:
    properties = data_model(new)["properties"]
    properties["summary"] = properties.pop("description")

    breaking = check(old, new).breaking

    assert f"{NEEDS}: data.description: field removed: {OLD_READERS}: it requires the field" in breaking
    assert (
        f"{NEEDS}: data.description: field removed: {OLD_WRITERS}: "
        "it still sends the field, and the new reader refuses unknown fields"
    ) in breaking


def test_a_field_becoming_optional_breaks_old_readers(old: dict[str, Any], new: dict[str, Any]) -> None:
    data_model(new)["required"].remove("description")

    assert check(old, new).breaking == [
        f"{NEEDS}: data.description: field became optional: {OLD_READERS}: it requires the field"
    ]


def test_a_removed_enum_value_breaks_old_writers(old: dict[str, Any], new: dict[str, Any]) -> None:
    new["$defs"]["NeedCategory"]["enum"].remove("leisure")

    assert check(old, new).breaking == [
        f"{NEEDS}: data.category: enum value(s) removed: leisure: {OLD_WRITERS}: it still sends them"
    ]


def test_a_tightened_bound_breaks_old_writers(old: dict[str, Any], new: dict[str, Any]) -> None:
    data_model(new)["properties"]["volunteers_needed"]["maximum"] = 10

    assert check(old, new).breaking == [
        f"{NEEDS}: data.volunteers_needed: maximum tightened 50 -> 10: {OLD_WRITERS}: "
        "it may send values now out of bounds"
    ]


def test_a_loosened_bound_breaks_old_readers(old: dict[str, Any], new: dict[str, Any]) -> None:
    data_model(new)["properties"]["volunteers_needed"]["maximum"] = 100

    assert check(old, new).breaking == [
        f"{NEEDS}: data.volunteers_needed: maximum loosened 50 -> 100: {OLD_READERS}: it still enforces 50"
    ]


def test_a_removed_schedule_variant_breaks_old_writers(old: dict[str, Any], new: dict[str, Any]) -> None:
    data_model(new)["properties"]["schedule"]["oneOf"].pop()

    assert check(old, new).breaking == [
        f"{NEEDS}: data.schedule: variant weekly removed: {OLD_WRITERS}: it still sends it"
    ]


def test_the_code_is_compatible_with_the_committed_snapshots() -> None:
    result = check_against_snapshots(SNAPSHOTS)

    assert result.breaking == []
    assert result.new_types == [], "run `uv run lotse contracts check --update` and commit contracts/schemas"


def test_a_type_without_snapshot_is_new_and_a_vanished_one_breaking(tmp_path: Path) -> None:
    write_snapshots(tmp_path)
    (tmp_path / f"{NEED_OPENED}.json").unlink()
    (tmp_path / "de.lotse.registry.need.archived.v1.json").write_text(json.dumps({"type": "object"}))

    result = check_against_snapshots(tmp_path)

    assert result.new_types == [NEED_OPENED]
    assert result.breaking == [
        "de.lotse.registry.need.archived.v1: event type removed: breaks old writer: "
        "its events are still sent or retained, and readers now refuse an unknown type"
    ]
