"""The compatibility check fails on breaking changes and lets additions pass."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from lotse_contracts.compatibility import check_against_snapshots, compare_schemas, write_snapshots
from lotse_contracts.schemas import event_schema

NEED_OPENED = "de.lotse.registry.need.opened.v1"
SNAPSHOTS = Path(__file__).resolve().parents[3] / "contracts" / "schemas"


@pytest.fixture
def old() -> dict[str, Any]:
    return event_schema(NEED_OPENED)


@pytest.fixture
def new(old: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(old)


def data_model(schema: dict[str, Any]) -> dict[str, Any]:
    return schema["$defs"]["NeedOpened"]


def test_an_unchanged_schema_is_compatible(old: dict[str, Any], new: dict[str, Any]) -> None:
    comparison = compare_schemas(NEED_OPENED, old, new)

    assert comparison.breaking == comparison.additions == []


def test_a_changed_type_is_breaking(old: dict[str, Any], new: dict[str, Any]) -> None:
    data_model(new)["properties"]["volunteers_needed"] = {"type": "string", "description": "d", "examples": ["1"]}

    assert compare_schemas(NEED_OPENED, old, new).breaking == [
        f"{NEED_OPENED}: data.volunteers_needed: type changed integer -> string"
    ]


def test_a_removed_or_renamed_field_is_breaking(old: dict[str, Any], new: dict[str, Any]) -> None:
    properties = data_model(new)["properties"]
    properties["summary"] = properties.pop("description")

    breaking = compare_schemas(NEED_OPENED, old, new).breaking

    assert f"{NEED_OPENED}: data.description: field removed" in breaking


def test_a_new_required_field_is_breaking(old: dict[str, Any], new: dict[str, Any]) -> None:
    data_model(new)["properties"]["priority"] = {"type": "integer"}
    data_model(new)["required"].append("priority")

    assert compare_schemas(NEED_OPENED, old, new).breaking == [f"{NEED_OPENED}: data.priority: new required field"]


def test_a_removed_enum_value_is_breaking(old: dict[str, Any], new: dict[str, Any]) -> None:
    new["$defs"]["NeedCategory"]["enum"].remove("leisure")

    assert compare_schemas(NEED_OPENED, old, new).breaking == [
        f"{NEED_OPENED}: data.category: enum value(s) removed: leisure"
    ]


def test_a_tightened_constraint_is_breaking(old: dict[str, Any], new: dict[str, Any]) -> None:
    data_model(new)["properties"]["volunteers_needed"]["maximum"] = 10

    assert compare_schemas(NEED_OPENED, old, new).breaking == [
        f"{NEED_OPENED}: data.volunteers_needed: maximum tightened 50 -> 10"
    ]


def test_a_removed_schedule_variant_is_breaking(old: dict[str, Any], new: dict[str, Any]) -> None:
    data_model(new)["properties"]["schedule"]["oneOf"].pop()

    assert compare_schemas(NEED_OPENED, old, new).breaking == [f"{NEED_OPENED}: data.schedule: variant weekly removed"]


def test_an_additive_optional_field_passes(old: dict[str, Any], new: dict[str, Any]) -> None:
    data_model(new)["properties"]["accessible"] = {"type": "boolean", "default": False}
    new["$defs"]["NeedCategory"]["enum"].append("medical_appointment")

    comparison = compare_schemas(NEED_OPENED, old, new)

    assert comparison.breaking == []
    assert comparison.additions == [
        f"{NEED_OPENED}: data.category: enum value(s) added: medical_appointment",
        f"{NEED_OPENED}: data.accessible: new optional field",
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
    assert result.breaking == ["de.lotse.registry.need.archived.v1: event type removed"]
