"""Every field of every event is marked personal or not personal, and the marking is published."""

from __future__ import annotations

import json

import pytest
from pydantic import Field

from lotse_contracts.asyncapi import asyncapi_document
from lotse_contracts.base import Contract, EventData
from lotse_contracts.event_types import EVENT_TYPES
from lotse_contracts.events.values import Email
from lotse_contracts.personal_data import (
    NOT_PERSONAL,
    PERSONAL_DATA_KEY,
    DataCategory,
    PersonalField,
    Purpose,
    RetentionRule,
    personal,
    walk_markings,
)
from lotse_contracts.schemas import event_schema


def test_every_field_of_every_event_is_marked_personal_or_not() -> None:
    unmarked = [
        f"{event_type}: {marked.path}"
        for event_type, model in EVENT_TYPES.items()
        for marked in walk_markings(model)
        if marked.marking is None
    ]

    assert unmarked == [], (
        "mark each field with json_schema_extra=personal(...) or NOT_PERSONAL (lotse_contracts.personal_data)"
    )


class _Contact(Contract):
    email: Email = Field(
        json_schema_extra=personal(
            DataCategory.CONTACT_DATA, Purpose.NOTIFICATION, retention=RetentionRule.WITHDRAWN_VOLUNTEERS
        )
    )
    nickname: str = Field(examples=["Mo"])


class _Registered(EventData):
    event_type = "de.lotse.test.registered.v1"

    contact: _Contact = Field(examples=[{"email": "a@b.de", "nickname": "Mo"}])
    count: int = Field(examples=[1], json_schema_extra=NOT_PERSONAL)


def test_an_unmarked_field_is_found_also_inside_a_nested_model() -> None:
    found = {marked.path: marked.marking for marked in walk_markings(_Registered)}

    assert found["contact.nickname"] is None
    assert isinstance(found["contact.email"], PersonalField)
    assert found["count"] is False


def test_a_field_marked_as_a_whole_is_not_walked_into() -> None:
    paths = [marked.path for marked in walk_markings(EVENT_TYPES["de.lotse.registry.volunteer.registered.v1"])]

    assert "home_area" in paths
    assert not any(path.startswith("home_area.") for path in paths)
    assert "contact.email" in paths


@pytest.mark.parametrize(
    ("event_type", "definition", "field", "category"),
    [
        ("de.lotse.registry.volunteer.registered.v1", "VolunteerContact", "email", "contact_data"),
        ("de.lotse.registry.volunteer.registered.v1", "VolunteerRegistered", "home_area", "location"),
        ("de.lotse.registry.need.opened.v1", "NeedOpened", "description", "free_text"),
        ("de.lotse.matching.proposal.proposed.v1", "MatchProposed", "reasons", "engagement"),
        # Sealed values are personal as a whole: readable once opened, until the key is destroyed.
        ("de.lotse.registry.volunteer.registered.v3", "VolunteerRegisteredFullySealed", "profile", "contact_data"),
        (
            "de.lotse.registry.volunteer.availability_changed.v2",
            "VolunteerAvailabilityChangedSealed",
            "availability",
            "availability",
        ),
        ("de.lotse.matching.proposal.proposed.v2", "MatchProposedSealed", "fit", "engagement"),
    ],
)
def test_the_marking_is_in_the_published_schema(event_type: str, definition: str, field: str, category: str) -> None:
    schema = event_schema(event_type)

    marking = schema["$defs"][definition]["properties"][field][PERSONAL_DATA_KEY]

    assert marking["category"] == category
    assert marking["retention"] in {rule.value for rule in RetentionRule}


def test_a_sealed_value_is_marked_as_a_whole_and_says_the_erasure_destroys_its_key() -> None:
    for event_type, field in (
        ("de.lotse.registry.volunteer.registered.v3", "profile"),
        ("de.lotse.registry.volunteer.profile_updated.v3", "profile"),
        ("de.lotse.registry.volunteer.availability_changed.v2", "availability"),
        ("de.lotse.matching.proposal.proposed.v2", "fit"),
    ):
        found = {marked.path: marked.marking for marked in walk_markings(EVENT_TYPES[event_type])}
        assert not any(path.startswith(f"{field}.") for path in found), event_type
        marking = found[field]
        assert isinstance(marking, PersonalField) and "key is destroyed" in (marking.note or ""), event_type


def test_fields_not_personal_say_so_in_the_schema_and_the_asyncapi_document() -> None:
    need_id = event_schema("de.lotse.registry.need.opened.v1")["$defs"]["NeedOpened"]["properties"]["need_id"]

    assert need_id[PERSONAL_DATA_KEY] is False
    assert f'"{PERSONAL_DATA_KEY}": {{"category": "contact_data"' in json.dumps(asyncapi_document())
