"""Issue 18: a proposal's fit (score, reasons, distance) describes the volunteer, so it goes into the
outbox sealed with the volunteer's key (``proposal.proposed.v2``), with the event id the proposal
record keeps; without a key ever issued it goes as before, and an erased volunteer's has no fit."""

from __future__ import annotations

import json
from collections.abc import Collection

from lotse_contracts import MatchProposed, MatchProposedSealed, parse_event, to_bytes
from lotse_runtime.sealed import KEY_DESTROYED, KeyDestroyed, PersonKey, new_data_key, open_sealed
from tests.unit.matching.test_service import world_of


class Keys:
    """Matching's keyring as ``current_keys`` sees it: a key per volunteer, some destroyed."""

    def __init__(self) -> None:
        self.keys: dict[str, PersonKey | KeyDestroyed] = {}
        self.reads = 0

    def issue(self, volunteer_id: str) -> PersonKey:
        key_id, data_key = new_data_key()
        self.keys[volunteer_id] = PersonKey(key_id=key_id, data_key=data_key)
        return PersonKey(key_id=key_id, data_key=data_key)

    async def current_keys(self, tenant: str, person_ids: Collection[str]) -> dict[str, PersonKey | KeyDestroyed]:
        self.reads += 1
        return {person_id: self.keys[person_id] for person_id in person_ids if person_id in self.keys}


async def test_a_proposal_goes_sealed_with_its_volunteers_key_and_opens_as_before() -> None:
    keys = Keys()
    world = await world_of(person_keys=keys)
    near, middle = await world.volunteer(0.5), await world.volunteer(1.5)
    near_key = keys.issue(near)
    keys.keys[middle] = KEY_DESTROYED  # erased just now: volunteer.erased has not come yet
    need_id = await world.open_need()

    first, second = world.events(need_id)
    assert isinstance(first.data, MatchProposedSealed) and first.type == MatchProposedSealed.event_type
    wire = json.loads(to_bytes(first))
    assert "fit" in wire["data"] and not {"reasons", "score", "distance_km"} & set(wire["data"])
    assert "Arabic" not in json.dumps(wire) and "km away" not in json.dumps(wire)
    opened = open_sealed(parse_event(to_bytes(first)), near_key.data_key)
    assert isinstance(opened.data, MatchProposed) and opened.id == first.id
    details = [reason.detail for reason in opened.data.reasons]
    assert "speaks Arabic (C1)" in details and opened.data.distance_km == 1.0
    stored = await world.proposal(opened.data.proposal_id)
    assert stored.event_id == str(first.id), "the event to erase with the volunteer"
    assert list(stored.reasons) == opened.data.reasons, "matching's own record keeps them, for its pages"

    assert isinstance(second.data, MatchProposedSealed) and str(second.data.volunteer_id) == middle
    assert second.data.fit is None, "nothing about an erased volunteer is published"
    assert keys.reads == 1, "the round's keys in one read"


async def test_a_volunteer_known_only_from_unsealed_events_is_proposed_as_before() -> None:
    world = await world_of(person_keys=Keys())  # no key ever issued: a registry before issue 18
    await world.volunteer(0.5)
    need_id = await world.open_need()

    (proposed,) = world.events(need_id)
    assert isinstance(proposed.data, MatchProposed) and proposed.data.reasons
