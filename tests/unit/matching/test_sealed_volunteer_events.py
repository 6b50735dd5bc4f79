"""Matching reads the volunteer events the registry seals whole (issue 18): a registration
(``registered.v3``) and an availability change (``availability_changed.v2``) opened with the
volunteer's key reach the read model as their plain ``.v1`` would."""

from __future__ import annotations

import uuid
from typing import Any

from lotse_contracts import (
    Availability,
    Envelope,
    VolunteerAvailabilityChangedSealed,
    VolunteerRegistered,
    VolunteerRegisteredFullySealed,
    VolunteerRegistration,
    new_event,
)
from lotse_matching.handlers import registry_handlers
from lotse_runtime.consumer import Delivery
from lotse_runtime.sealed import new_data_key, open_sealed, seal, sealed_part
from tests.support import events
from tests.unit.matching.test_service import TENANT, world_of

DELIVERY = Delivery("lotse.registry.volunteers.v1", 0, 0, None)


class KeysByPerson:
    """A keyring that holds the volunteers' keys and opens their sealed events with them."""

    def __init__(self) -> None:
        self.keys: dict[str, bytes] = {}

    async def opened(self, event: Envelope[Any]) -> Envelope[Any] | None:
        part = sealed_part(event)
        assert part is not None
        return open_sealed(event, self.keys[part[0]])


async def test_a_sealed_registration_and_availability_change_reach_the_read_model_opened() -> None:
    world, keys = await world_of(), KeysByPerson()
    dispatch = registry_handlers(world.matching, keys)
    volunteer_id = str(uuid.uuid4())
    key_id, keys.keys[volunteer_id] = new_data_key()
    plain = events.example_data(VolunteerRegistered, volunteer_id=volunteer_id)
    registration = VolunteerRegistration.model_validate(plain.model_dump(exclude={"volunteer_id"}))
    data_key = keys.keys[volunteer_id]
    registered = VolunteerRegisteredFullySealed(
        volunteer_id=plain.volunteer_id,
        profile=seal(registration, key_id=key_id, data_key=data_key, tenant=TENANT, subject=volunteer_id),
    )
    availability = plain.availability.model_copy(update={"max_concurrent_engagements": 1})
    changed = VolunteerAvailabilityChangedSealed(
        volunteer_id=plain.volunteer_id,
        availability=seal(availability, key_id=key_id, data_key=data_key, tenant=TENANT, subject=volunteer_id),
    )

    await dispatch(
        new_event(data=registered, tenant=TENANT, subject=volunteer_id, version=1, source="/lotse/registry"), DELIVERY
    )
    document = await world.store.volunteer(TENANT, volunteer_id)
    assert document is not None and not document.get("erased")
    assert document["profile"]["languages"] == [skill.model_dump(mode="json") for skill in plain.languages]
    assert document["availability"]["max_concurrent_engagements"] == plain.availability.max_concurrent_engagements

    await dispatch(
        new_event(data=changed, tenant=TENANT, subject=volunteer_id, version=2, source="/lotse/registry"), DELIVERY
    )
    document = await world.store.volunteer(TENANT, volunteer_id)
    assert document is not None
    assert Availability.model_validate(document["availability"]).max_concurrent_engagements == 1
