"""Matching's use cases (service.py) on an in-memory store: which events a change appends to the
outbox, with which versions, and what it leaves stored.

The same use cases run on MongoDB and Kafka in tests/integration/matching; here each rule of a
proposal round is checked without them, on a clock the test moves.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from lotse_contracts import (
    AcceptProposal,
    Envelope,
    MatchProposed,
    NeedStaffed,
    NeedUnstaffed,
    ProposalAccepted,
    ProposalDeclined,
    ProposalExpired,
    ProposalWithdrawn,
    VolunteerPickedNeed,
    VolunteerSteppedBack,
)
from lotse_contracts.events.matching import AnswerChannel, UnstaffedReason, WithdrawReason
from lotse_contracts.events.partner import DeclineReason
from lotse_contracts.topics import PROPOSALS
from lotse_matching.domain import Outcome
from lotse_matching.schedule import WEEKDAYS
from lotse_matching.sealing import NoPersonKeys, PersonKeys
from lotse_matching.service import PARTNER_CONSUMER, Matching
from lotse_matching.settings import MatchingSettings
from lotse_matching.store import NeedRecord, NeedStatus, Proposal, ProposalKind, ProposalStatus, StaffingState
from tests.support import events
from tests.unit.matching.fakes import FakeStore, FakeUnitOfWork

TENANT = "musterstadt"
START = datetime(2026, 11, 25, 9, tzinfo=UTC)  # a Wednesday; the need's first Tuesday is 1 December
CENTRE = (52.52, 13.405)
KM_LAT = 1 / 111.195  # degrees of latitude per km
ANSWER = timedelta(hours=1)
SETTINGS = MatchingSettings(
    proposals_per_round=2, answer_seconds=int(ANSWER.total_seconds()), unstaffed_after_seconds=30 * 24 * 3600
)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


@dataclass
class World:
    matching: Matching
    store: FakeStore
    units: FakeUnitOfWork
    clock: Clock

    def events(self, need_id: str) -> list[Envelope[Any]]:
        """The need's events in the outbox, in the order they were appended."""
        assert {row.topic for row in self.store.outbox} <= {PROPOSALS.name}
        return [row.event for row in self.store.outbox if row.event.subject == need_id]

    def kinds(self, need_id: str, since: int = 0) -> tuple[type[Any], ...]:
        """The classes of the need's events, from the ``since``-th on."""
        return tuple(type(event.data) for event in self.events(need_id)[since:])

    async def need(self, need_id: str) -> NeedRecord:
        record = await self.store.need_record(TENANT, need_id)
        assert record is not None
        return record

    async def proposal(self, proposal_id: Any) -> Proposal:
        record = await self.store.proposal_record(TENANT, str(proposal_id))
        assert record is not None
        return record

    async def volunteer(self, km_north: float, *, arabic: bool = True) -> str:
        """A volunteer free all week, ``km_north`` of the needs' place, speaking Arabic (C1) or not."""
        volunteer_id = str(uuid.uuid4())
        languages = [{"language": "de", "level": "native"}] + ([{"language": "ar", "level": "c1"}] if arabic else [])
        event = events.volunteer_registered(
            TENANT,
            volunteer_id,
            skills=["accompaniment"],
            languages=languages,
            home_area={"point": {"lat": CENTRE[0] + km_north * KM_LAT, "lon": CENTRE[1]}},
            travel_radius_km=10,
            certificates=[],
            organisation_id=None,
            availability={
                "weekly_slots": [{"weekday": day, "start": "08:00", "end": "20:00"} for day in WEEKDAYS],
                "periods": [],
                "unavailable": [],
                "max_concurrent_engagements": 2,
            },
        )
        await self.matching.apply(event, self.matching.volunteer_registered)
        return volunteer_id

    async def open_need(self, needed: int = 1) -> str:
        """A need for Arabic (B2) on Tuesday afternoons from 1 December, at the centre."""
        event = events.need_opened(
            TENANT,
            required_skills=["accompaniment"],
            languages=[{"language": "ar", "min_level": "b2"}],
            place={"point": {"lat": CENTRE[0], "lon": CENTRE[1]}, "district": "Mitte"},
            schedule={
                "kind": "weekly",
                "slots": [{"weekday": "tuesday", "start": "16:00", "end": "18:00"}],
                "starts_on": "2026-12-01",
            },
            volunteers_needed=needed,
            certificate_required=None,
        )
        await self.matching.apply(event, self.matching.need_opened)
        return event.subject

    async def accept(self, proposed: Envelope[Any]) -> Outcome:
        data = proposed.data
        return await self.matching.answer(
            TENANT, str(data.proposal_id), "accept", AnswerChannel.VOLUNTEER_APP, volunteer_id=str(data.volunteer_id)
        )

    async def decline(self, proposed: Envelope[Any]) -> Outcome:
        data = proposed.data
        return await self.matching.answer(
            TENANT,
            str(data.proposal_id),
            "decline",
            AnswerChannel.VOLUNTEER_APP,
            volunteer_id=str(data.volunteer_id),
            reason=DeclineReason.TOO_FAR,
        )


async def world_of(settings: MatchingSettings = SETTINGS, person_keys: PersonKeys | None = None) -> World:
    store, clock = FakeStore(), Clock()
    units = FakeUnitOfWork(store)
    keys = NoPersonKeys() if person_keys is None else person_keys
    matching = Matching(settings, None, store, clock, person_keys=keys, transactions=units)
    await matching.apply(events.tenant_onboarded(TENANT), matching.tenant_onboarded)
    return World(matching, store, units, clock)


def proposed_volunteers(found: list[Envelope[Any]]) -> list[str]:
    return [str(event.data.volunteer_id) for event in found if isinstance(event.data, MatchProposed)]


def versions(found: list[Envelope[Any]]) -> list[int]:
    return [event.version for event in found]


async def test_an_opened_need_gets_k_proposals_best_first_with_reasons() -> None:
    world = await world_of()
    near, middle, far = [await world.volunteer(km) for km in (0.5, 1.5, 3.0)]
    no_arabic = await world.volunteer(0.1, arabic=False)
    need_id = await world.open_need()

    found = world.events(need_id)
    assert proposed_volunteers(found) == [near, middle] and versions(found) == [1, 2]
    assert no_arabic not in proposed_volunteers(found) and far not in proposed_volunteers(found)
    first = found[0].data
    details = [reason.detail for reason in first.reasons]
    assert "about 1 km away" in details and "speaks Arabic (C1)" in details and "free on Tuesday afternoons" in details
    assert first.score > found[1].data.score and first.expires_at == START + ANSWER
    assert world.units.wakes >= 1, "a commit that appended events wakes the relay"

    stored = await world.proposal(first.proposal_id)
    assert (stored.kind, stored.status, stored.volunteer_id) == (ProposalKind.PROPOSAL, ProposalStatus.OPEN, near)
    assert list(stored.reasons) == first.reasons
    assert (stored.distance_km, first.distance_km) == (0.5, 1.0), "exact for the office, rough in the mail"
    assert stored.event_id == str(found[0].id), "the event to erase with the volunteer"
    need = await world.need(need_id)
    assert (need.status, need.staffing.state, need.staffing.version) == (NeedStatus.OPEN, StaffingState.OPEN, 2)
    assert need_id in world.matching.index(TENANT).open_needs


async def test_a_redelivered_registry_event_changes_nothing() -> None:
    world = await world_of()
    await world.volunteer(0.5)
    event = events.need_opened(TENANT, volunteers_needed=1)
    await world.matching.apply(event, world.matching.need_opened)
    before = (world.store.snapshot(), len(world.store.outbox))
    await world.matching.apply(event, world.matching.need_opened)
    assert (world.store.snapshot(), len(world.store.outbox)) == before


async def test_acceptances_up_to_the_need_staff_it() -> None:
    world = await world_of()
    for km in (0.5, 1.5, 3.0):
        await world.volunteer(km)
    need_id = await world.open_need(needed=2)
    first, second = world.events(need_id)

    assert await world.accept(first) is Outcome.ACCEPTED
    assert world.kinds(need_id, 2) == (ProposalAccepted,)
    need = await world.need(need_id)
    assert need.staffing.committed == [str(first.data.volunteer_id)] and need.staffing.state is StaffingState.OPEN

    assert await world.accept(second) is Outcome.ACCEPTED
    found = world.events(need_id)
    assert world.kinds(need_id, 2) == (ProposalAccepted, ProposalAccepted, NeedStaffed)
    assert found[-1].data.volunteer_ids == [first.data.volunteer_id, second.data.volunteer_id]
    assert versions(found) == [1, 2, 3, 4, 5]
    need = await world.need(need_id)
    assert need.staffing.state is StaffingState.STAFFED and not need.is_open
    accepted = await world.proposal(second.data.proposal_id)
    assert (accepted.status, accepted.answered_via, accepted.answered_at) == (
        ProposalStatus.ACCEPTED,
        AnswerChannel.VOLUNTEER_APP,
        START,
    )
    index = world.matching.index(TENANT)
    assert need_id not in index.open_needs
    assert [e.need_id for e in index.engagements[str(first.data.volunteer_id)]] == [need_id]


async def test_staffing_withdraws_the_open_proposals_and_later_answers_change_nothing() -> None:
    world = await world_of()
    for km in (0.5, 1.5):
        await world.volunteer(km)
    need_id = await world.open_need()
    first, second = world.events(need_id)

    assert await world.accept(first) is Outcome.ACCEPTED
    assert world.kinds(need_id, 2) == (ProposalAccepted, NeedStaffed, ProposalWithdrawn)
    withdrawn = world.events(need_id)[-1].data
    assert withdrawn.proposal_id == second.data.proposal_id and withdrawn.reason is WithdrawReason.NEED_STAFFED
    stored = await world.proposal(second.data.proposal_id)
    assert (stored.status, stored.withdraw_reason) == (ProposalStatus.WITHDRAWN, WithdrawReason.NEED_STAFFED)

    outbox = len(world.store.outbox)
    assert await world.accept(second) is Outcome.NO_LONGER_NEEDED
    assert await world.accept(first) is Outcome.ALREADY_ACCEPTED
    assert len(world.store.outbox) == outbox


async def test_a_decline_asks_the_next_candidate_and_the_last_one_escalates() -> None:
    world = await world_of()
    near, middle, far = [await world.volunteer(km) for km in (0.5, 1.5, 3.0)]
    need_id = await world.open_need()
    first, second = world.events(need_id)

    assert await world.decline(first) is Outcome.DECLINED
    assert world.kinds(need_id, 2) == (ProposalDeclined, MatchProposed)
    declined, asked = world.events(need_id)[2:]
    assert declined.data.reason is DeclineReason.TOO_FAR and declined.data.answered_via is AnswerChannel.VOLUNTEER_APP
    assert str(asked.data.volunteer_id) == far
    assert (await world.proposal(first.data.proposal_id)).status is ProposalStatus.DECLINED
    assert await world.decline(first) is Outcome.ALREADY_DECLINED

    assert await world.decline(second) is Outcome.DECLINED
    assert world.kinds(need_id, 4) == (ProposalDeclined,)
    assert await world.decline(asked) is Outcome.DECLINED
    assert world.kinds(need_id, 5) == (ProposalDeclined, NeedUnstaffed)
    unstaffed = world.events(need_id)[-1].data
    assert unstaffed.reason is UnstaffedReason.ALL_DECLINED
    assert (unstaffed.volunteers_committed, unstaffed.volunteers_needed) == (0, 1)
    assert (await world.need(need_id)).staffing.state is StaffingState.UNSTAFFED
    assert {near, middle, far} == set(proposed_volunteers(world.events(need_id)))
    assert versions(world.events(need_id)) == list(range(1, 8))


async def test_a_partner_answer_counts_once() -> None:
    world = await world_of()
    await world.volunteer(0.5)
    need_id = await world.open_need()
    (proposed,) = world.events(need_id)
    answer = events.accept_proposal(
        TENANT,
        proposed.data.proposal_id,
        need_id=proposed.data.need_id,
        volunteer_id=proposed.data.volunteer_id,
    )
    assert isinstance(answer.data, AcceptProposal)

    async def partner_accepts() -> Outcome:
        return await world.matching.answer(
            TENANT,
            str(proposed.data.proposal_id),
            "accept",
            AnswerChannel.PARTNER,
            volunteer_id=str(proposed.data.volunteer_id),
            need_id=need_id,
            cause=answer,
        )

    assert await partner_accepts() is Outcome.ACCEPTED
    assert await partner_accepts() is Outcome.DUPLICATE
    assert world.kinds(need_id, 1) == (ProposalAccepted, NeedStaffed)
    caused = world.events(need_id)[1:]
    assert all((e.correlationid, e.causationid) == (answer.correlationid, str(answer.id)) for e in caused)
    assert (PARTNER_CONSUMER, TENANT, str(answer.id)) in world.store.data.inbox


async def test_a_volunteer_picks_an_open_need_that_fits_them() -> None:
    world = await world_of()
    for km in (0.5, 1.5):
        await world.volunteer(km)
    far = await world.volunteer(3.0)
    no_arabic = await world.volunteer(0.1, arabic=False)
    need_id = await world.open_need()

    offered = world.matching.open_needs_for(TENANT, far)
    assert [found for found, _ in offered] == [need_id]
    assert "speaks Arabic (C1)" in [reason.detail for reason in offered[0][1].reasons]
    assert world.matching.open_needs_for(TENANT, no_arabic) == []
    assert await world.matching.pick(TENANT, no_arabic, need_id) is Outcome.NOT_A_FIT
    assert len(world.events(need_id)) == 2

    assert await world.matching.pick(TENANT, far, need_id) is Outcome.PICKED
    assert world.kinds(need_id, 2) == (VolunteerPickedNeed, NeedStaffed, ProposalWithdrawn, ProposalWithdrawn)
    assert world.events(need_id)[3].data.volunteer_ids == [uuid.UUID(far)]
    (pick,) = await world.store.proposal_records_of_volunteer(TENANT, far)
    assert (pick.kind, pick.status, pick.expires_at, pick.score) == (
        ProposalKind.PICK,
        ProposalStatus.ACCEPTED,
        None,
        None,
    )
    assert await world.matching.pick(TENANT, far, need_id) is Outcome.ALREADY_ACCEPTED
    assert world.matching.open_needs_for(TENANT, far) == []


async def test_stepping_back_reopens_the_need_and_asks_the_next_person() -> None:
    world = await world_of()
    near, _, far = [await world.volunteer(km) for km in (0.5, 1.5, 3.0)]
    need_id = await world.open_need()
    first, _ = world.events(need_id)
    await world.accept(first)
    assert (await world.need(need_id)).staffing.state is StaffingState.STAFFED

    assert await world.matching.step_back(TENANT, far, need_id) is Outcome.NOT_FOUND
    assert await world.matching.step_back(TENANT, near, need_id) is Outcome.STEPPED_BACK
    assert world.kinds(need_id, 5) == (VolunteerSteppedBack, MatchProposed)
    assert proposed_volunteers(world.events(need_id)[5:]) == [far], "the withdrawn and the one who left are not asked"
    need = await world.need(need_id)
    assert (need.staffing.state, need.staffing.committed) == (StaffingState.OPEN, [])
    assert (await world.proposal(first.data.proposal_id)).status is ProposalStatus.STEPPED_BACK
    index = world.matching.index(TENANT)
    assert need_id in index.open_needs and not index.engagements.get(near)


async def test_stepping_back_with_nobody_left_escalates() -> None:
    world = await world_of()
    near = await world.volunteer(0.5)
    need_id = await world.open_need()
    assert await world.matching.pick(TENANT, near, need_id) is Outcome.ACCEPTED, "their open proposal counts"
    assert world.kinds(need_id) == (MatchProposed, ProposalAccepted, NeedStaffed)

    assert await world.matching.step_back(TENANT, near, need_id) is Outcome.STEPPED_BACK
    assert world.kinds(need_id, 3) == (VolunteerSteppedBack, NeedUnstaffed)
    assert world.events(need_id)[-1].data.reason is UnstaffedReason.VOLUNTEER_STEPPED_BACK
    assert (await world.need(need_id)).staffing.state is StaffingState.UNSTAFFED


async def test_unanswered_proposals_expire_and_the_next_person_is_asked() -> None:
    world = await world_of()
    for km in (0.5, 1.5, 3.0):
        await world.volunteer(km)
    need_id = await world.open_need()
    first, second = world.events(need_id)

    world.clock.now = START + ANSWER - timedelta(seconds=1)
    assert await world.matching.tick() == 0
    world.clock.now = START + ANSWER
    assert await world.accept(first) is Outcome.EXPIRED, "answered too late, before the timer came by"
    assert await world.matching.tick() == 1
    assert world.kinds(need_id, 2) == (ProposalExpired, ProposalExpired, MatchProposed)
    assert {(await world.proposal(p.data.proposal_id)).status for p in (first, second)} == {ProposalStatus.EXPIRED}
    assert await world.matching.tick() == 0, "what expired is not found again"

    world.clock.now += ANSWER
    assert await world.matching.tick() == 1
    assert world.kinds(need_id, 5) == (ProposalExpired, NeedUnstaffed)
    assert world.events(need_id)[-1].data.reason is UnstaffedReason.PROPOSALS_EXPIRED
    assert versions(world.events(need_id)) == list(range(1, 8))


async def test_a_need_not_staffed_in_time_is_escalated_once() -> None:
    patient = SETTINGS.model_copy(update={"answer_seconds": 10 * 24 * 3600, "unstaffed_after_seconds": 7 * 24 * 3600})
    world = await world_of(patient)
    await world.volunteer(0.5)
    need_id = await world.open_need()
    assert (await world.need(need_id)).staffing.escalate_at == START + timedelta(days=7)

    world.clock.now = START + timedelta(days=7)
    assert await world.matching.tick() == 1
    assert world.kinds(need_id, 1) == (NeedUnstaffed,)
    assert world.events(need_id)[-1].data.reason is UnstaffedReason.PROPOSALS_EXPIRED
    need = await world.need(need_id)
    assert need.staffing.escalated and need.staffing.state is StaffingState.UNSTAFFED
    assert await world.matching.tick() == 0
    assert len(world.events(need_id)) == 2
