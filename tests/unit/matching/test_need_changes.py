"""A changed need keeps its proposals consistent (issue 16, item 3: the office edits needs): on the
registry's NeedUpdated matching withdraws the open proposals that break the changed need's hard
rules (a certificate now required that the office has not checked, a time the volunteer is not
free), keeps those that still fit and the people who said yes, and asks more people when more
are needed. On the in-memory store; tests/integration/matching has the same on MongoDB and Kafka.
"""

from __future__ import annotations

from typing import Any

from lotse_contracts import Envelope, MatchProposed, NeedUpdated, ProposalWithdrawn, VolunteerCertificateChecked
from lotse_contracts.events.matching import WithdrawReason
from lotse_matching.store import ProposalStatus, StaffingState
from tests.support import events
from tests.support.events import REGISTRY
from tests.unit.matching.test_service import CENTRE, TENANT, World, proposed_volunteers, world_of

POLICE = "extended_police_certificate"
TUESDAY = {
    "kind": "weekly",
    "slots": [{"weekday": "tuesday", "start": "16:00", "end": "18:00"}],
    "starts_on": "2026-12-01",
}


def _details(**changes: Any) -> dict[str, Any]:
    """The need of ``World.open_need`` with ``changes``: the full need, as NeedUpdated carries it."""
    return {
        "required_skills": ["accompaniment"],
        "languages": [{"language": "ar", "min_level": "b2"}],
        "place": {"point": {"lat": CENTRE[0], "lon": CENTRE[1]}, "district": "Mitte"},
        "schedule": TUESDAY,
        "volunteers_needed": 1,
        "certificate_required": None,
        **changes,
    }


async def _update(world: World, need_id: str, version: int, **changes: Any) -> None:
    record = await world.need(need_id)
    details = {**_details(**changes), "organisation_id": record.organisation_id}
    event = events.event(NeedUpdated, TENANT, need_id, version=version, source=REGISTRY, need_id=need_id, **details)
    await world.matching.apply(event, world.matching.need_updated)


async def _check(world: World, volunteer_id: str, kind: str = POLICE) -> None:
    """The office records that it has seen the volunteer's certificate."""
    check = {"kind": kind, "seen_on": "2026-11-20", "valid_until": "2031-11-19"}
    event = events.event(
        VolunteerCertificateChecked,
        TENANT,
        volunteer_id,
        version=2,
        source=REGISTRY,
        volunteer_id=volunteer_id,
        check=check,
        checks=[check],
    )
    await world.matching.apply(event, world.matching.volunteer_certificates_checked)


def _withdrawn(found: list[Envelope[Any]]) -> list[str]:
    return [str(event.data.volunteer_id) for event in found if isinstance(event.data, ProposalWithdrawn)]


async def test_a_certificate_now_required_withdraws_those_the_office_has_not_checked_and_asks_no_one_unchecked() -> (
    None
):
    world = await world_of()
    near, middle, far = [await world.volunteer(km) for km in (0.5, 1.5, 3.0)]
    await _check(world, middle)
    need_id = await world.open_need()
    assert proposed_volunteers(world.events(need_id)) == [near, middle]

    await _update(world, need_id, 2, certificate_required=POLICE)
    after = world.events(need_id)[2:]
    assert _withdrawn(after) == [near], "the checked volunteer's proposal stays"
    assert {event.data.reason for event in after if isinstance(event.data, ProposalWithdrawn)} == {
        WithdrawReason.NEED_CHANGED
    }
    assert proposed_volunteers(after) == [], f"{far} has no checked certificate: never asked"
    statuses = {p.volunteer_id: p.status for p in (await world.store.proposal_records_for_need(TENANT, need_id))}
    assert statuses == {near: ProposalStatus.WITHDRAWN, middle: ProposalStatus.OPEN}


async def test_a_new_time_the_volunteers_are_not_free_withdraws_their_proposals() -> None:
    world = await world_of()
    for km in (0.5, 1.5):
        await world.volunteer(km)
    need_id = await world.open_need()
    late = {**TUESDAY, "slots": [{"weekday": "tuesday", "start": "21:00", "end": "22:00"}]}  # they are free 8 to 20

    await _update(world, need_id, 2, schedule=late)
    after = world.events(need_id)[2:]
    assert len(_withdrawn(after)) == 2 and not proposed_volunteers(after)
    assert (await world.need(need_id)).staffing.state is StaffingState.UNSTAFFED


async def test_more_volunteers_needed_asks_more_people_and_those_who_said_yes_stay() -> None:
    world = await world_of()
    near, middle, far, farther = [await world.volunteer(km) for km in (0.5, 1.5, 3.0, 4.0)]
    need_id = await world.open_need()
    first, _ = world.events(need_id)
    await world.accept(first)
    assert (await world.need(need_id)).staffing.state is StaffingState.STAFFED

    await _update(world, need_id, 2, volunteers_needed=3)
    after = world.events(need_id)[5:]  # proposed twice, accepted, staffed, the other withdrawn
    assert [type(event.data) for event in after] == [MatchProposed, MatchProposed]
    assert set(proposed_volunteers(after)) == {far, farther}, "the withdrawn one is not asked again"
    need = await world.need(need_id)
    assert need.staffing.committed == [near] and need.staffing.state is StaffingState.OPEN
    assert middle not in proposed_volunteers(after), "nobody is asked twice in a round (the office may start one)"


async def test_a_change_that_still_fits_everyone_keeps_every_proposal() -> None:
    world = await world_of()
    for km in (0.5, 1.5, 3.0):
        await world.volunteer(km)
    need_id = await world.open_need()
    before = len(world.events(need_id))

    await _update(world, need_id, 2, languages=[{"language": "ar", "min_level": "b1"}])
    assert len(world.events(need_id)) == before
