"""Crypto-shredding: sealed personal fields open with their person's key only, and a consumer
applies an erased person's sealed event without the personal data."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import uuid4

import pytest

from lotse_contracts import (
    Envelope,
    VolunteerPersonalData,
    VolunteerRegistered,
    VolunteerRegisteredSealed,
    new_event,
    parse_event,
    to_bytes,
)
from lotse_runtime.consumer import Delivery
from lotse_runtime.sealed import (
    KeyEncryptionKey,
    SealingError,
    new_data_key,
    plain_envelope,
    seal,
    unseal,
    unsealing,
)

KEK = KeyEncryptionKey("a-key-encryption-key-of-thirty-two-chars")
TENANT = "musterstadt"
DELIVERY = Delivery("lotse.registry.volunteers.v1", 0, 0, None)


def _sealed_registration() -> tuple[Envelope[Any], bytes, VolunteerRegistered]:
    plain = VolunteerRegistered.example()
    subject = str(plain.volunteer_id)
    key_id, data_key = new_data_key()
    personal = VolunteerPersonalData(contact=plain.contact, home_area=plain.home_area)
    sealed = seal(personal, key_id=key_id, data_key=data_key, tenant=TENANT, subject=subject)
    data = VolunteerRegisteredSealed.model_validate(
        {**plain.model_dump(exclude={"contact", "home_area"}), "personal": sealed}
    )
    event = new_event(data=data, tenant=TENANT, subject=subject, version=1, source="/lotse/registry")
    return event, data_key, plain


def test_a_sealed_event_carries_no_personal_value_and_opens_with_its_key_only() -> None:
    event, data_key, plain = _sealed_registration()
    wire = to_bytes(event)
    assert plain.contact.email.encode() not in wire
    assert plain.contact.display_name.encode() not in wire
    assert plain.contact.phone and plain.contact.phone.encode() not in wire
    assert plain.home_area.point and str(plain.home_area.point.lat).encode() not in wire

    received = parse_event(wire)
    assert isinstance(received.data, VolunteerRegisteredSealed)
    personal = unseal(
        received.data.personal, VolunteerPersonalData, data_key=data_key, tenant=TENANT, subject=event.subject
    )
    assert received.data.unsealed(personal) == plain
    _, other_key = new_data_key()
    with pytest.raises(SealingError):
        unseal(received.data.personal, VolunteerPersonalData, data_key=other_key, tenant=TENANT, subject=event.subject)
    # Bound to the person: copied into another volunteer's event, it does not open.
    with pytest.raises(SealingError):
        unseal(received.data.personal, VolunteerPersonalData, data_key=data_key, tenant=TENANT, subject=str(uuid4()))


def test_a_wrapped_key_opens_with_the_platform_key_and_its_own_id_only() -> None:
    key_id, data_key = new_data_key()
    wrapped = KEK.wrap(key_id, data_key)
    assert KEK.unwrap(key_id, wrapped) == data_key
    with pytest.raises(SealingError):
        KeyEncryptionKey("another-key-encryption-key-of-32-chars").unwrap(key_id, wrapped)
    with pytest.raises(SealingError):
        KEK.unwrap(uuid4(), wrapped)


class FixedKeyring:
    def __init__(self, opened: Envelope[Any] | None) -> None:
        self.result = opened

    async def opened(self, event: Envelope[Any]) -> Envelope[Any] | None:
        return self.result


def test_an_opened_event_goes_to_the_plain_handler_and_an_erased_persons_to_the_other() -> None:
    event, _, plain = _sealed_registration()
    seen: list[tuple[str, Envelope[Any]]] = []

    async def handle(received: Envelope[Any], delivery: Delivery) -> None:
        seen.append(("plain", received))

    async def erased(received: Envelope[Any], delivery: Delivery) -> None:
        seen.append(("erased", received))

    opened = plain_envelope(event, plain)

    async def deliver() -> None:
        await unsealing(FixedKeyring(opened), handle, erased)(event, DELIVERY)
        await unsealing(FixedKeyring(None), handle, erased)(event, DELIVERY)

    asyncio.run(deliver())

    (first, received), (second, untouched) = seen
    assert first == "plain" and received.type == VolunteerRegistered.event_type
    assert received.id == event.id  # the same inbox record: applied once, sealed or not
    assert received.data == plain
    assert second == "erased" and untouched is event
