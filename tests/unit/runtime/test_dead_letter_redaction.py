"""What a dead letter copies: the record unchanged, or, for personal data Lotse refuses to keep in
a log (a handler's ``RejectEvent(..., redact=True)``, a type the catalogue refuses on the topic),
the envelope with the data's field names only."""

from __future__ import annotations

import json
from typing import Any

from lotse_contracts import DeadLetterInfo, Envelope, RegisterVolunteer, partner_inbound_topic, to_bytes
from lotse_contracts.dead_letter import DeadLetterReason
from lotse_runtime.consumer import Delivery, EventPipeline, RejectEvent, RetryPolicy
from tests.support import events

TENANT = "musterstadt"
EMAIL = "erika.mustermann@example.org"


class Sink:
    """The dead letters the pipeline writes, as it hands them to the broker."""

    def __init__(self) -> None:
        self.letters: list[tuple[bytes, bytes | None, str, DeadLetterInfo]] = []

    async def __call__(self, value: bytes, key: bytes | None, topic: str, info: DeadLetterInfo) -> None:
        self.letters.append((value, key, topic, info))


def registration() -> Envelope[RegisterVolunteer]:
    contact = {**RegisterVolunteer.example().contact.model_dump(mode="json"), "email": EMAIL}
    return events.register_volunteer(TENANT, "vol-1", system="portal", contact=contact)


async def dead_letter_of(value: bytes, topic: str, *, redact: bool) -> tuple[bytes, bytes | None, str, DeadLetterInfo]:
    async def refuse(event: Envelope[Any], delivery: Delivery) -> None:
        raise RejectEvent(DeadLetterReason.NOT_ALLOWED, "refused here", redact=redact)

    sink = Sink()
    pipeline = EventPipeline("test", refuse, sink, RetryPolicy(first_backoff_seconds=0.01))
    await pipeline.handle(value, Delivery(topic, 0, 7, b"musterstadt:vol-1"))
    (letter,) = sink.letters
    return letter


async def test_a_refusal_with_redaction_copies_the_envelope_with_the_data_field_names_only() -> None:
    event = events.tenant_onboarded(TENANT, coordination_email=EMAIL)

    value, key, topic, info = await dead_letter_of(to_bytes(event), "lotse.registry.tenants.v1", redact=True)

    assert EMAIL.encode() not in value
    letter = json.loads(value)
    assert letter["data"] == sorted(event.data.model_dump())
    assert {k: v for k, v in letter.items() if k != "data"} == {
        k: v for k, v in json.loads(to_bytes(event)).items() if k != "data"
    }
    assert (key, topic) == (b"musterstadt:vol-1", "lotse.registry.tenants.v1.dlq")
    assert info.redacted and info.reason == DeadLetterReason.NOT_ALLOWED and info.error == "refused here"


async def test_a_refusal_without_redaction_copies_the_record_unchanged() -> None:
    event = events.tenant_onboarded(TENANT, coordination_email=EMAIL)

    value, _, _, info = await dead_letter_of(to_bytes(event), "lotse.registry.tenants.v1", redact=False)

    assert value == to_bytes(event) and not info.redacted


async def test_a_type_the_catalogue_refuses_on_the_topic_is_redacted_whatever_the_failure() -> None:
    """An invalid registration never reaches a handler; its dead letter still copies no personal value."""
    invalid = to_bytes(registration()).replace(b'"travel_radius_km":', b'"travel_radius_km":-')
    assert invalid != to_bytes(registration())

    value, _, _, info = await dead_letter_of(invalid, partner_inbound_topic(TENANT), redact=False)

    assert info.reason == DeadLetterReason.INVALID_DATA and info.redacted
    assert EMAIL.encode() not in value and json.loads(value)["data"] == sorted(RegisterVolunteer.model_fields)


async def test_the_same_invalid_bytes_elsewhere_are_copied_unchanged() -> None:
    invalid = to_bytes(registration()).replace(b'"travel_radius_km":', b'"travel_radius_km":-')

    value, _, _, info = await dead_letter_of(invalid, "lotse.registry.needs.v1", redact=False)

    assert value == invalid and not info.redacted
