"""A sealed event whose key is destroyed is about an erased volunteer: matching records the
erasure, so the volunteer's later events change nothing instead of being dead-lettered."""

from __future__ import annotations

import uuid
from typing import Any

from lotse_contracts import (
    Envelope,
    VolunteerAvailabilityChanged,
    VolunteerPersonalData,
    VolunteerRegistered,
    VolunteerRegisteredSealed,
    new_event,
)
from lotse_matching.handlers import registry_handlers
from lotse_runtime.consumer import Delivery
from lotse_runtime.sealed import new_data_key, seal
from tests.support import events
from tests.unit.matching.test_service import TENANT, world_of

DELIVERY = Delivery("lotse.registry.volunteers.v1", 0, 0, None)


class DestroyedKeys:
    """A keyring in which every person's key was destroyed (all of them are erased)."""

    async def opened(self, event: Envelope[Any]) -> Envelope[Any] | None:
        return None


def sealed_registration(volunteer_id: str) -> Envelope[Any]:
    plain = events.example_data(VolunteerRegistered, volunteer_id=volunteer_id)
    key_id, data_key = new_data_key()
    personal = VolunteerPersonalData(contact=plain.contact, home_area=plain.home_area)
    sealed = seal(personal, key_id=key_id, data_key=data_key, tenant=TENANT, subject=volunteer_id)
    data = VolunteerRegisteredSealed.model_validate(
        {**plain.model_dump(exclude={"contact", "home_area"}), "personal": sealed}
    )
    return new_event(data=data, tenant=TENANT, subject=volunteer_id, version=1, source="/lotse/registry")


async def test_a_registration_that_does_not_open_erases_and_later_events_change_nothing() -> None:
    world = await world_of()
    dispatch = registry_handlers(world.matching, DestroyedKeys())
    volunteer_id = str(uuid.uuid4())

    await dispatch(sealed_registration(volunteer_id), DELIVERY)
    document = await world.store.volunteer(TENANT, volunteer_id)
    assert document is not None and document["erased"] and "profile" not in document

    # Without the erased record this raised UnknownAggregate: retried, then dead-lettered.
    later = events.event(
        VolunteerAvailabilityChanged,
        TENANT,
        volunteer_id,
        version=2,
        source="/lotse/registry",
        volunteer_id=volunteer_id,
    )
    await dispatch(later, DELIVERY)
    assert await world.store.volunteer(TENANT, volunteer_id) == document
