"""Matching's use cases for logged hours (service.py) on the in-memory store: a volunteer logs,
corrects and deletes hours for a need they committed to, the office or the need's initiative
confirms or rejects them, nothing changes after a confirmation, an erasure deletes them.

The same use cases run on MongoDB behind the HTTP API in tests/integration/matching/test_hours.py.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Any

from lotse_contracts import Envelope, MatchProposed, NeedClosed, VolunteerErased
from lotse_matching.hours import HoursDraft, HoursOutcome, Rule
from lotse_matching.service import OfficeScope
from lotse_matching.store import Actor, HoursState, Proposal, ProposalStatus
from lotse_runtime.auth import Role
from tests.support import events
from tests.unit.matching.test_service import START, TENANT, World, world_of

# The need (tests.unit.matching.test_service): weekly on Tuesdays, 16:00-18:00, from 1 December 2026.
FIRST_TUESDAY = date(2026, 12, 1)
COORDINATOR = OfficeScope(TENANT, Actor("office-1", Role.COORDINATOR.value), None)


async def engaged(world: World) -> tuple[str, str, str]:
    """A volunteer who accepted the need's proposal, the need and an initiative admin's organisation."""
    volunteer_id = await world.volunteer(0.5)
    need_id = await world.open_need()
    (proposed,) = [e for e in world.events(need_id) if isinstance(e.data, MatchProposed)]
    await world.accept(proposed)
    need = await world.need(need_id)
    return volunteer_id, need_id, need.organisation_id


def at(day: date, hour: int = 20) -> datetime:
    """A moment on ``day`` (UTC, an evening in Berlin)."""
    return START.replace(year=day.year, month=day.month, day=day.day, hour=hour)


def initiative(organisation_id: str) -> OfficeScope:
    return OfficeScope(TENANT, Actor("initiative-1", Role.INITIATIVE_ADMIN.value), organisation_id)


def rules(refusals: Any) -> list[tuple[str, Rule]]:
    return [(r.field, r.rule) for r in refusals]


async def test_a_volunteer_logs_hours_for_a_need_they_committed_to_and_only_for_that() -> None:
    world = await world_of()
    volunteer_id, need_id, _ = await engaged(world)
    bystander = await world.volunteer(3.0)  # proposed at most, never committed
    world.clock.now = at(FIRST_TUESDAY + timedelta(days=1))
    outbox = len(world.store.outbox)

    logged = await world.matching.log_hours(
        TENANT, volunteer_id, HoursDraft(need_id, FIRST_TUESDAY, 150, "Elternabend")
    )
    assert logged.outcome is HoursOutcome.LOGGED and logged.entry is not None
    (stored,) = await world.store.hours_of_volunteer(TENANT, volunteer_id)
    assert (stored.need_id, stored.day, stored.minutes, stored.note, stored.state) == (
        need_id,
        FIRST_TUESDAY,
        150,
        "Elternabend",
        HoursState.PENDING,
    )
    assert stored.category == "accompaniment_to_authorities" and stored.decided_by is None
    assert len(world.store.outbox) == outbox, "hours are no event (yet)"

    for who, need in ((bystander, need_id), (volunteer_id, str(uuid.uuid4()))):
        refused = await world.matching.log_hours(TENANT, who, HoursDraft(need, FIRST_TUESDAY, 60))
        assert refused.outcome is HoursOutcome.INVALID and rules(refused.refusals) == [("need_id", Rule.NOT_COMMITTED)]
    unknown = await world.matching.log_hours(TENANT, str(uuid.uuid4()), HoursDraft(need_id, FIRST_TUESDAY, 60))
    assert unknown.outcome is HoursOutcome.NOT_FOUND
    assert await world.store.hours_of_volunteer(TENANT, bystander) == []


async def test_future_days_days_before_the_need_and_more_than_twelve_hours_a_day_are_refused() -> None:
    world = await world_of()
    volunteer_id, need_id, _ = await engaged(world)
    world.clock.now = at(FIRST_TUESDAY + timedelta(days=7), hour=12)
    today = FIRST_TUESDAY + timedelta(days=7)

    def log(day: date, minutes: int = 120) -> Any:
        return world.matching.log_hours(TENANT, volunteer_id, HoursDraft(need_id, day, minutes))

    assert rules((await log(today + timedelta(days=1))).refusals) == [("date", Rule.IN_FUTURE)]
    assert rules((await log(FIRST_TUESDAY - timedelta(days=1))).refusals) == [("date", Rule.BEFORE_ENGAGEMENT)]
    assert (await log(today, 8 * 60)).outcome is HoursOutcome.LOGGED
    assert rules((await log(today, 4 * 60 + 1)).refusals) == [("minutes", Rule.TOO_MANY_PER_DAY)]
    assert (await log(today, 4 * 60)).outcome is HoursOutcome.LOGGED
    assert len(await world.store.hours_of_volunteer(TENANT, volunteer_id)) == 2


async def test_the_volunteer_corrects_and_deletes_until_the_office_confirms_who_and_when_recorded() -> None:
    world = await world_of()
    volunteer_id, need_id, _ = await engaged(world)
    world.clock.now = at(FIRST_TUESDAY + timedelta(days=1))
    first = (await world.matching.log_hours(TENANT, volunteer_id, HoursDraft(need_id, FIRST_TUESDAY, 60))).entry
    second = (await world.matching.log_hours(TENANT, volunteer_id, HoursDraft(need_id, FIRST_TUESDAY, 30))).entry
    assert first is not None and second is not None

    corrected = await world.matching.correct_hours(
        TENANT, volunteer_id, first.id, HoursDraft(need_id, FIRST_TUESDAY, 120, "mit Vorbereitung")
    )
    assert corrected.outcome is HoursOutcome.CORRECTED and corrected.entry is not None
    assert (corrected.entry.minutes, corrected.entry.note, corrected.entry.logged_at) == (
        120,
        "mit Vorbereitung",
        first.logged_at,
    )
    assert (await world.matching.delete_hours(TENANT, volunteer_id, second.id)).outcome is HoursOutcome.DELETED
    # Someone else's entry is not found, whoever asks.
    other = str(uuid.uuid4())
    assert (await world.matching.delete_hours(TENANT, other, first.id)).outcome is HoursOutcome.NOT_FOUND
    assert (
        await world.matching.correct_hours(TENANT, other, first.id, HoursDraft(need_id, FIRST_TUESDAY, 5))
    ).outcome is HoursOutcome.NOT_FOUND

    world.clock.now += timedelta(hours=3)
    confirmed = await world.matching.decide_hours(COORDINATOR, first.id, confirm=True)
    assert confirmed.outcome is HoursOutcome.CONFIRMED and confirmed.entry is not None
    (stored,) = await world.store.hours_of_volunteer(TENANT, volunteer_id)
    assert (stored.state, stored.decided_by, stored.decided_at) == (
        HoursState.CONFIRMED,
        COORDINATOR.actor,
        world.clock.now,
    )

    again = HoursDraft(need_id, FIRST_TUESDAY, 10)
    assert (
        await world.matching.correct_hours(TENANT, volunteer_id, first.id, again)
    ).outcome is HoursOutcome.ALREADY_CONFIRMED
    assert (await world.matching.delete_hours(TENANT, volunteer_id, first.id)).outcome is HoursOutcome.ALREADY_CONFIRMED
    rejected = await world.matching.decide_hours(COORDINATOR, first.id, confirm=False, reason="zu viel")
    assert rejected.outcome is HoursOutcome.ALREADY_DECIDED
    assert (await world.store.hours_of_volunteer(TENANT, volunteer_id)) == [stored]


async def test_a_rejection_says_why_and_a_correction_makes_the_entry_pending_again() -> None:
    world = await world_of()
    volunteer_id, need_id, _ = await engaged(world)
    world.clock.now = at(FIRST_TUESDAY + timedelta(days=1))
    entry = (await world.matching.log_hours(TENANT, volunteer_id, HoursDraft(need_id, FIRST_TUESDAY, 600))).entry
    assert entry is not None
    rejected = await world.matching.decide_hours(
        COORDINATOR, entry.id, confirm=False, reason="Der Termin dauerte 2 Stunden."
    )
    assert rejected.outcome is HoursOutcome.REJECTED and rejected.entry is not None
    assert (rejected.entry.state, rejected.entry.rejection_reason) == (
        HoursState.REJECTED,
        "Der Termin dauerte 2 Stunden.",
    )
    # A rejected entry does not count towards the day's twelve hours.
    other = await world.matching.log_hours(TENANT, volunteer_id, HoursDraft(need_id, FIRST_TUESDAY, 6 * 60))
    assert other.outcome is HoursOutcome.LOGGED

    corrected = await world.matching.correct_hours(
        TENANT, volunteer_id, entry.id, HoursDraft(need_id, FIRST_TUESDAY, 120)
    )
    assert corrected.entry is not None
    assert (corrected.entry.state, corrected.entry.rejection_reason, corrected.entry.decided_by) == (
        HoursState.PENDING,
        None,
        None,
    )


async def test_an_initiative_decides_on_its_own_needs_hours_only_and_nobody_on_their_own() -> None:
    world = await world_of()
    volunteer_id, need_id, organisation_id = await engaged(world)
    world.clock.now = at(FIRST_TUESDAY + timedelta(days=1))
    entry = (await world.matching.log_hours(TENANT, volunteer_id, HoursDraft(need_id, FIRST_TUESDAY, 60))).entry
    assert entry is not None

    elsewhere = initiative(str(uuid.uuid4()))
    assert (await world.matching.decide_hours(elsewhere, entry.id, confirm=True)).outcome is HoursOutcome.NOT_FOUND
    other_tenant = OfficeScope("elsewhere", COORDINATOR.actor, None)
    assert (await world.matching.decide_hours(other_tenant, entry.id, confirm=True)).outcome is HoursOutcome.NOT_FOUND
    themselves = OfficeScope(TENANT, Actor(volunteer_id, Role.COORDINATOR.value), None)
    assert (await world.matching.decide_hours(themselves, entry.id, confirm=True)).outcome is HoursOutcome.OWN_ENTRY
    assert (await world.store.hours_entry(TENANT, entry.id)) == entry

    owner = initiative(organisation_id)
    confirmed = await world.matching.decide_hours(owner, entry.id, confirm=True)
    assert confirmed.outcome is HoursOutcome.CONFIRMED and confirmed.entry is not None
    assert confirmed.entry.decided_by == owner.actor


async def test_after_the_need_closed_its_days_may_be_logged_for_90_days() -> None:
    world = await world_of()
    volunteer_id, need_id, _ = await engaged(world)
    closing_day = FIRST_TUESDAY + timedelta(days=14)
    world.clock.now = at(closing_day, hour=10)
    closed = events.event(NeedClosed, TENANT, need_id, version=2, source=events.REGISTRY, need_id=need_id)
    await world.matching.apply(closed, world.matching.need_closed)
    assert (await world.need(need_id)).staffing.closed_at == world.clock.now
    assert await world.matching.store.engagements_of(TENANT, volunteer_id) == [], "no longer an engagement"

    world.clock.now = at(closing_day + timedelta(days=30))
    (loggable,) = await world.matching.loggable_needs(TENANT, volunteer_id)
    assert (loggable.need_id, loggable.first_day, loggable.last_day) == (need_id, FIRST_TUESDAY, closing_day)
    logged = await world.matching.log_hours(TENANT, volunteer_id, HoursDraft(need_id, closing_day, 120))
    assert logged.outcome is HoursOutcome.LOGGED
    after = await world.matching.log_hours(
        TENANT, volunteer_id, HoursDraft(need_id, closing_day + timedelta(days=1), 60)
    )
    assert rules(after.refusals) == [("date", Rule.AFTER_ENGAGEMENT)]

    world.clock.now = at(closing_day + timedelta(days=91))
    assert await world.matching.loggable_needs(TENANT, volunteer_id) == []
    late = await world.matching.log_hours(TENANT, volunteer_id, HoursDraft(need_id, closing_day, 60))
    assert rules(late.refusals) == [("date", Rule.TOO_LONG_AGO)]


async def test_after_a_step_back_the_days_before_it_may_still_be_logged() -> None:
    world = await world_of()
    volunteer_id, need_id, _ = await engaged(world)
    step_day = FIRST_TUESDAY + timedelta(days=8)
    world.clock.now = at(step_day, hour=9)
    assert (await world.matching.step_back(TENANT, volunteer_id, need_id)).value == "stepped_back"
    theirs: list[Proposal] = await world.store.proposal_records_of_volunteer(TENANT, volunteer_id)
    assert [p.status for p in theirs] == [ProposalStatus.STEPPED_BACK]

    world.clock.now = at(step_day + timedelta(days=2))
    assert (
        await world.matching.log_hours(TENANT, volunteer_id, HoursDraft(need_id, FIRST_TUESDAY, 120))
    ).outcome is HoursOutcome.LOGGED
    later = await world.matching.log_hours(TENANT, volunteer_id, HoursDraft(need_id, step_day + timedelta(days=1), 60))
    assert rules(later.refusals) == [("date", Rule.AFTER_ENGAGEMENT)]


async def test_the_same_entry_sent_twice_is_logged_once_and_its_id_is_not_anyone_elses() -> None:
    world = await world_of()
    volunteer_id, need_id, _ = await engaged(world)
    world.clock.now = at(FIRST_TUESDAY + timedelta(days=1))
    entry_id, draft = str(uuid.uuid4()), HoursDraft(need_id, FIRST_TUESDAY, 90)
    first = await world.matching.log_hours(TENANT, volunteer_id, draft, entry_id)
    repeat = await world.matching.log_hours(TENANT, volunteer_id, draft, entry_id)
    assert (first.outcome, repeat.outcome) == (HoursOutcome.LOGGED, HoursOutcome.UNCHANGED)
    assert repeat.entry == first.entry
    changed = await world.matching.log_hours(TENANT, volunteer_id, HoursDraft(need_id, FIRST_TUESDAY, 30), entry_id)
    assert changed.outcome is HoursOutcome.ID_TAKEN
    assert len(await world.store.hours_of_volunteer(TENANT, volunteer_id)) == 1


async def test_an_erasure_deletes_the_volunteers_hours_and_no_new_ones_are_logged() -> None:
    world = await world_of()
    volunteer_id, need_id, _ = await engaged(world)
    other_id, other_need, _ = await engaged(world)
    world.clock.now = at(FIRST_TUESDAY + timedelta(days=1))
    for minutes in (60, 90):
        assert (await world.matching.log_hours(TENANT, volunteer_id, HoursDraft(need_id, FIRST_TUESDAY, minutes))).entry
    kept = (await world.matching.log_hours(TENANT, other_id, HoursDraft(other_need, FIRST_TUESDAY, 45))).entry
    erased: Envelope[Any] = events.event(
        VolunteerErased, TENANT, volunteer_id, version=3, source=events.REGISTRY, volunteer_id=volunteer_id
    )
    await world.matching.apply(erased, world.matching.volunteer_erased)
    assert await world.store.hours_of_volunteer(TENANT, volunteer_id) == []
    assert await world.store.hours_of_volunteer(TENANT, other_id) == [kept], "only theirs"
    refused = await world.matching.log_hours(TENANT, volunteer_id, HoursDraft(need_id, FIRST_TUESDAY, 60))
    assert refused.outcome is HoursOutcome.NOT_FOUND
