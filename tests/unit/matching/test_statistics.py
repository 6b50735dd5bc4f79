"""Matching's staffing figures: time to staff from needs staffed by the real use cases (on the
in-memory store), proposals per acceptance, and nothing computed from fewer than five."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta

from lotse_contracts import MatchProposed
from lotse_matching.domain import Outcome
from lotse_matching.statistics import hours_to_staff, proposal_outcomes, staffed_at, time_to_staff
from lotse_matching.store import Proposal, ProposalKind, ProposalStatus, StaffingState
from tests.unit.matching.test_service import START, TENANT, World, world_of


async def _staff_needs(world: World, minutes: list[int]) -> None:
    """One need after the other, each opened at START and accepted ``minutes`` later by a volunteer
    not engaged yet (the needs overlap, so nobody can take two)."""
    engaged: set[str] = set()
    for waited in minutes:
        world.clock.now = START
        need_id = await world.open_need()
        world.clock.now = START + timedelta(minutes=waited)
        for event in world.events(need_id):
            if isinstance(event.data, MatchProposed) and str(event.data.volunteer_id) not in engaged:
                assert await world.accept(event) is Outcome.ACCEPTED
                engaged.add(str(event.data.volunteer_id))
                break
        assert (await world.need(need_id)).staffing.state is StaffingState.STAFFED


async def _world(volunteers: int = 12) -> World:
    world = await world_of()
    for number in range(volunteers):
        await world.volunteer(0.2 + number * 0.1)
    return world


async def test_time_to_staff_is_withheld_for_four_needs_and_shown_for_five() -> None:
    world = await _world()
    await _staff_needs(world, [10, 20, 30, 40])
    needs, proposals = await world.store.staffing_records(TENANT)
    four = time_to_staff(hours_to_staff(needs, proposals))
    assert four.staffed_needs is None and four.median_hours is None and four.p90_hours is None

    await _staff_needs(world, [50])
    needs, proposals = await world.store.staffing_records(TENANT)
    hours = hours_to_staff(needs, proposals)
    assert sorted(round(h * 60) for h in hours) == [10, 20, 30, 40, 50]
    five = time_to_staff(hours)
    # 30 minutes in the middle; 40 and 46 minutes at the 75th and 90th percentile.
    assert (five.staffed_needs, five.median_hours, five.p75_hours, five.p90_hours) == (5, 0.5, 0.7, 0.8)


async def test_an_organisations_records_are_its_own_needs_only() -> None:
    world = await _world()
    await _staff_needs(world, [10])
    needs, proposals = await world.store.staffing_records(TENANT, organisation_id=str(uuid.uuid4()))
    assert needs == [] and proposals == []
    needs, _ = await world.store.staffing_records("another-town")
    assert needs == []


async def test_a_need_counts_with_its_last_staffing_and_a_closed_staffed_need_still_counts() -> None:
    world = await _world()
    await _staff_needs(world, [10])
    needs, proposals = await world.store.staffing_records(TENANT)
    need, accepted = needs[0], [p for p in proposals if p.status is ProposalStatus.ACCEPTED]
    assert staffed_at(need, proposals) == START + timedelta(minutes=10)
    later = replace(accepted[0], answered_at=START + timedelta(hours=3))
    assert staffed_at(need, [*proposals, later]) == START + timedelta(hours=3)
    closed = replace(need, staffing=replace(need.staffing, state=StaffingState.CLOSED))
    assert staffed_at(closed, proposals) == START + timedelta(minutes=10)
    emptied = replace(closed, staffing=replace(closed.staffing, committed=[]))
    assert staffed_at(emptied, proposals) is None
    still_open = replace(need, staffing=replace(need.staffing, state=StaffingState.OPEN))
    assert staffed_at(still_open, proposals) is None


def _proposal(status: ProposalStatus, kind: ProposalKind = ProposalKind.PROPOSAL) -> Proposal:
    return Proposal(
        id=str(uuid.uuid4()),
        tenant=TENANT,
        need_id=str(uuid.uuid4()),
        volunteer_id=str(uuid.uuid4()),
        kind=kind,
        status=status,
        reasons=(),
        proposed_at=START,
        expires_at=None if kind is ProposalKind.PICK else START + timedelta(hours=1),
        answered_at=None if status is ProposalStatus.OPEN else START,
        answered_via=None,
    )


def test_proposals_per_acceptance_needs_five_acceptances() -> None:
    four = [_proposal(ProposalStatus.ACCEPTED) for _ in range(4)] + [_proposal(ProposalStatus.DECLINED)] * 6
    outcomes = proposal_outcomes(four)
    assert (outcomes.proposals, outcomes.accepted, outcomes.declined) == (10, None, 6)
    assert outcomes.proposals_per_acceptance is None

    five = [*four, _proposal(ProposalStatus.STEPPED_BACK)]  # accepted once, stepped back later
    outcomes = proposal_outcomes(five)
    assert (outcomes.proposals, outcomes.accepted, outcomes.proposals_per_acceptance) == (11, 5, 2.2)
    assert outcomes.expired is None and outcomes.withdrawn is None and outcomes.open is None


def test_picks_are_counted_apart_from_proposals() -> None:
    picks = [_proposal(ProposalStatus.ACCEPTED, ProposalKind.PICK) for _ in range(5)]
    outcomes = proposal_outcomes([*picks, _proposal(ProposalStatus.OPEN)])
    assert (outcomes.picks, outcomes.proposals, outcomes.accepted) == (5, None, None)
    assert outcomes.proposals_per_acceptance is None
