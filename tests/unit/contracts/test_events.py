"""Every event type parses, round-trips, and refuses what the schema forbids."""

from __future__ import annotations

import json
import typing
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from lotse_contracts import (
    EVENT_TYPES,
    MAX_EVENT_BYTES,
    DeadLetterReason,
    EventValidationError,
    NeedOpened,
    new_event,
    parse_event,
    to_bytes,
)
from lotse_contracts.envelope import envelope_example
from lotse_contracts.events.values import LanguageLevel


def example_event(event_type: str) -> dict[str, Any]:
    return envelope_example(EVENT_TYPES[event_type].example(), event_type)


def need_opened(**data_changes: Any) -> dict[str, Any]:
    event = example_event(NeedOpened.event_type)
    event["data"].update(data_changes)
    return event


def reason_of(raw: bytes | str) -> EventValidationError:
    with pytest.raises(EventValidationError) as caught:
        parse_event(raw)
    return caught.value


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_each_event_type_round_trips_its_examples(event_type: str) -> None:
    event = parse_event(json.dumps(example_event(event_type)))

    assert isinstance(event.data, EVENT_TYPES[event_type])
    assert parse_event(to_bytes(event)) == event


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_new_event_fills_id_time_schema_and_correlation(event_type: str) -> None:
    data = EVENT_TYPES[event_type].example()
    subject = example_event(event_type)["subject"]

    event = new_event(data=data, tenant="musterstadt", subject=subject, version=1, source="/partners/musterstadt/x")

    assert event.type == event_type
    assert event.dataschema == f"https://schemas.lotse.de/events/{event_type}.json"
    assert event.correlationid == str(event.id)
    assert event.time.tzinfo is not None
    assert event.key == f"musterstadt:{subject}".encode()


def test_new_event_accepts_the_type_as_string_or_model_with_dict_data() -> None:
    data = NeedOpened.example().model_dump(mode="json")
    by_name = new_event(
        NeedOpened.event_type, tenant="t1", subject=data["need_id"], version=2, source="/lotse/registry", data=data
    )
    by_model = new_event(
        NeedOpened, tenant="t1", subject=data["need_id"], version=2, source="/lotse/registry", data=data
    )

    assert by_name.data == by_model.data == NeedOpened.example()


def test_a_refugee_name_is_refused() -> None:
    error = reason_of(json.dumps(need_opened(name="Amina K.")))

    assert error.kind is DeadLetterReason.INVALID_DATA
    assert "data.name: Extra inputs are not permitted" in error.reason


def test_a_household_reference_must_be_opaque() -> None:
    error = reason_of(json.dumps(need_opened(household_ref="Familie Yilmaz")))

    assert error.reason.startswith("data.household_ref: String should match pattern")


def test_malformed_json_is_refused_with_its_cause() -> None:
    error = reason_of(b'{"specversion": "1.0", ')

    assert error.kind is DeadLetterReason.MALFORMED_JSON
    assert error.reason.startswith("malformed JSON")


def test_an_unknown_type_is_named() -> None:
    event = need_opened()
    event["type"] = "de.lotse.registry.need.reopened.v1"

    error = reason_of(json.dumps(event))

    assert error.kind is DeadLetterReason.UNKNOWN_TYPE
    assert error.reason == "type: unknown event type 'de.lotse.registry.need.reopened.v1'"


def test_every_bad_field_is_named_by_its_path() -> None:
    event = need_opened(volunteers_needed=0, languages=[{"language": "ar", "min_level": "fluent"}])

    error = reason_of(json.dumps(event))

    assert "data.volunteers_needed: Input should be greater than or equal to 1" in error.problems
    assert any(p.startswith("data.languages.0.min_level: Input should be") for p in error.problems)
    assert error.kind is DeadLetterReason.INVALID_DATA


def test_envelope_errors_are_told_apart_from_data_errors() -> None:
    event = need_opened()
    event["tenant"] = "Musterstadt"
    event["tenantid"] = "musterstadt"

    error = reason_of(json.dumps(event))

    assert error.kind is DeadLetterReason.INVALID_ENVELOPE
    assert any(p.startswith("tenant: String should match pattern") for p in error.problems)
    assert "tenantid: Extra inputs are not permitted" in error.problems


def test_a_naive_time_is_refused() -> None:
    event = need_opened()
    event["time"] = "2026-11-25T10:00:00"

    assert reason_of(json.dumps(event)).problems[0].startswith("time: Input should have timezone info")


def test_the_dataschema_must_fit_the_type() -> None:
    event = need_opened()
    event["dataschema"] = "https://schemas.lotse.de/events/de.lotse.registry.need.updated.v1.json"

    assert reason_of(json.dumps(event)).reason.startswith("dataschema: must be")


def test_the_subject_must_be_the_aggregate_id() -> None:
    event = need_opened()
    event["subject"] = "someone-else"

    assert "subject 'someone-else' must equal data.need_id" in reason_of(json.dumps(event)).reason


def test_a_partner_may_only_speak_for_its_own_tenant() -> None:
    event = example_event("de.lotse.partner.need.report.v1")
    event["source"] = "/partners/nachbarstadt/case-management"

    assert reason_of(json.dumps(event)).problems[0].startswith("tenant: tenant 'musterstadt' differs")


def test_oversized_messages_are_refused_before_parsing() -> None:
    error = reason_of(b" " * (MAX_EVENT_BYTES + 1))

    assert error.kind is DeadLetterReason.TOO_LARGE


def test_absent_optional_attributes_are_left_out_on_the_wire() -> None:
    event = parse_event(json.dumps(need_opened()))

    assert "causationid" not in json.loads(to_bytes(event))


def test_language_levels_are_ordered_from_a1_to_native() -> None:
    assert [level.value for level in sorted(LanguageLevel, key=lambda level: level.rank)] == [
        "a1",
        "a2",
        "b1",
        "b2",
        "c1",
        "c2",
        "native",
    ]
    assert LanguageLevel.NATIVE.rank > LanguageLevel.B2.rank


def test_erasure_carries_no_personal_data() -> None:
    assert set(EVENT_TYPES["de.lotse.registry.volunteer.erased.v1"].model_fields) == {"volunteer_id", "erased_at"}


def _scalar_fields() -> list[tuple[type[BaseModel], str, type]]:
    """Every int, float and bool field of every contract model, nested value types included."""
    found: dict[tuple[type[BaseModel], str], type] = {}
    pending: list[type[BaseModel]] = [EVENT_TYPES[name] for name in sorted(EVENT_TYPES)]
    seen: set[type[BaseModel]] = set()
    while pending:
        model = pending.pop()
        if model in seen:
            continue
        seen.add(model)
        for name, field in model.model_fields.items():
            for kind in _leaf_types(field.annotation):
                if isinstance(kind, type) and issubclass(kind, BaseModel):
                    pending.append(kind)
                elif kind in (int, float, bool):
                    found[(model, name)] = kind
    return [(model, name, kind) for (model, name), kind in sorted(found.items(), key=lambda item: repr(item[0]))]


def _leaf_types(annotation: Any) -> list[Any]:
    arguments = typing.get_args(annotation)
    if not arguments:
        return [annotation]
    return [leaf for argument in arguments for leaf in _leaf_types(argument)]


@pytest.mark.parametrize(
    ("model", "field", "kind"), _scalar_fields(), ids=lambda value: getattr(value, "__name__", value)
)
def test_numbers_and_yes_no_fields_take_no_other_json_type(model: type[BaseModel], field: str, kind: type) -> None:
    """JSON Schema says integer, number or boolean; pydantic's lax mode would take `false` for a
    number of km or `"yes"` for a flag (the API fuzz found `travel_radius_km: false` accepted as 0)."""
    wrong: list[object] = ["1", "true", *([True, False] if kind is not bool else [1, 0])]
    if kind is int:
        wrong.append(1.5)
    for value in wrong:
        with pytest.raises(ValidationError) as caught:
            model.__pydantic_validator__.validate_assignment(model.model_construct(), field, value)
        assert any(error["loc"][0] == field for error in caught.value.errors()), (field, value)
