"""The coordination office's use cases (service.py, office.py) on the in-memory store: which
events an action appends to the outbox, what it records about who did it, which rules it names
when it refuses, and where the dashboard puts each need.

The same actions run over HTTP on MongoDB and Kafka in tests/integration/matching/test_office.py.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from lotse_contracts import (
    MatchProposed,
    NeedCancelled,
    NeedUnstaffed,
    ProposalAccepted,
    ProposalDeclined,
    VolunteerCertificateChecked,
    VolunteerSteppedBack,
)
from lotse_contracts.events.matching import AnswerChannel, UnstaffedReason
from lotse_contracts.events.partner import DeclineReason
from lotse_contracts.events.values import EXAMPLE_ORGANISATION_ID
from lotse_matching.candidates import assess
from lotse_matching.domain import Outcome
from lotse_matching.office import Filters, NextStep, Rule, Situation, Windows, timing
from lotse_matching.profiles import need_from_record
from lotse_matching.schedule import WEEKDAYS
from lotse_matching.service import IdempotentRequest, OfficeScope
from lotse_matching.store import Actor, ProposalStatus, StaffingState
from tests.support import events
from tests.unit.matching.test_service import ANSWER, CENTRE, KM_LAT, START, TENANT, World, proposed_volunteers, world_of

COORDINATOR = Actor("office-subject-1", "coordinator")
OFFICE = OfficeScope(TENANT, COORDINATOR, None)
OTHER_ORGANISATION = str(uuid.uuid4())
WINDOWS = Windows(starting=timedelta(hours=48), expiring=timedelta(hours=48))


def initiative(organisation: str) -> OfficeScope:
    return OfficeScope(TENANT, Actor("initiative-subject", "initiative-admin"), organisation)


async def volunteer(
    world: World,
    km_north: float,
    *,
    languages: tuple[tuple[str, str], ...] = (("de", "native"), ("ar", "c1")),
    radius: int = 10,
    organisation: str | None = None,
    limit: int = 2,
    certificates: tuple[dict[str, str], ...] = (),
) -> str:
    """A volunteer free all week, ``km_north`` of the needs' place."""
    volunteer_id = str(uuid.uuid4())
    event = events.volunteer_registered(
        TENANT,
        volunteer_id,
        skills=["accompaniment"],
        languages=[{"language": code, "level": level} for code, level in languages],
        home_area={"point": {"lat": CENTRE[0] + km_north * KM_LAT, "lon": CENTRE[1]}},
        travel_radius_km=radius,
        certificates=list(certificates),
        organisation_id=organisation,
        availability={
            "weekly_slots": [{"weekday": day, "start": "08:00", "end": "20:00"} for day in WEEKDAYS],
            "periods": [],
            "unavailable": [],
            "max_concurrent_engagements": limit,
        },
    )
    await world.matching.apply(event, world.matching.volunteer_registered)
    return volunteer_id


async def one_off_need(world: World, starts_in: timedelta, *, needed: int = 1, district: str = "Mitte") -> str:
    """A one-off need for Arabic (B2), two hours long, ``starts_in`` from now."""
    start = world.clock.now + starts_in
    event = events.need_opened(
        TENANT,
        required_skills=["accompaniment"],
        languages=[{"language": "ar", "min_level": "b2"}],
        place={"point": {"lat": CENTRE[0], "lon": CENTRE[1]}, "district": district},
        schedule={"kind": "one_off", "start": start.isoformat(), "end": (start + timedelta(hours=2)).isoformat()},
        volunteers_needed=needed,
        certificate_required=None,
    )
    await world.matching.apply(event, world.matching.need_opened)
    return event.subject


def key(name: str, fingerprint: str = "same request") -> IdempotentRequest:
    return IdempotentRequest(caller=COORDINATOR.subject, key=name, fingerprint=fingerprint)


async def test_the_office_proposes_a_volunteer_it_chose_as_a_round_would_with_its_reasons() -> None:
    world = await world_of()
    near, middle, far = [await volunteer(world, km) for km in (0.5, 1.5, 3.0)]
    need_id = await world.open_need()
    assert proposed_volunteers(world.events(need_id)) == [near, middle]

    result = await world.matching.office_propose(OFFICE, need_id, far)

    assert result.outcome is Outcome.PROPOSED and not result.broken
    assert world.kinds(need_id, 2) == (MatchProposed,), "the same event as a round's: the volunteer hears the same"
    proposed = world.events(need_id)[-1].data
    assert str(proposed.volunteer_id) == far and result.proposal_ids == (str(proposed.proposal_id),)
    assert "speaks Arabic (C1)" in [reason.detail for reason in proposed.reasons]
    assert "about 3.5 km away" in [reason.detail for reason in proposed.reasons]
    assert proposed.expires_at == START + ANSWER
    stored = await world.proposal(proposed.proposal_id)
    assert (stored.status, stored.proposed_by, stored.volunteer_id) == (ProposalStatus.OPEN, COORDINATOR, far)
    automatic = await world.proposal(world.events(need_id)[0].data.proposal_id)
    assert automatic.proposed_by is None, "a round's proposal names nobody of the office"


async def test_a_volunteer_who_breaks_hard_rules_is_refused_naming_every_rule_and_nothing_changes() -> None:
    world = await world_of()
    near = await volunteer(world, 0.5)
    far_without_arabic = await volunteer(world, 15.0, languages=(("de", "native"), ("ar", "b1")))
    need_id = await world.open_need()
    outbox = len(world.store.outbox)

    refused = await world.matching.office_propose(OFFICE, need_id, far_without_arabic)
    assert refused.outcome is Outcome.BROKEN_RULES and not refused.proposal_ids
    assert [broken.rule for broken in refused.broken] == [Rule.LANGUAGES, Rule.DISTANCE]
    languages, distance = (broken.detail for broken in refused.broken)
    assert languages == "Arabic B2 needed, speaks B1"
    assert distance == "lives 15.0 km away and travels up to 10 km"

    again = await world.matching.office_propose(OFFICE, need_id, near)
    assert again.outcome is Outcome.BROKEN_RULES
    assert [broken.rule for broken in again.broken] == [Rule.ALREADY_PROPOSED]
    assert len(world.store.outbox) == outbox
    assert [p.volunteer_id for p in await world.store.proposal_records_for_need(TENANT, need_id)] == [near]


async def test_the_dry_run_shows_the_reasons_or_the_broken_rules_without_proposing() -> None:
    world = await world_of()
    for km in (0.5, 0.8):  # the round's two proposals
        await volunteer(world, km)
    fitting = await volunteer(world, 2.0)
    nowhere = await volunteer(world, 1.0, languages=(("de", "native"),), radius=0)
    need_id = await world.open_need()
    outbox, stored = len(world.store.outbox), world.store.snapshot()

    fits = await world.matching.office_check(OFFICE, need_id, fitting)
    assert fits.outcome is Outcome.PROPOSED and not fits.broken and fits.fit is not None
    assert "about 2.5 km away" in [reason.detail for reason in fits.fit.reasons] and 0 < fits.fit.score <= 1
    refused = await world.matching.office_check(OFFICE, need_id, nowhere)
    assert refused.outcome is Outcome.BROKEN_RULES and refused.fit is None
    assert [broken.rule for broken in refused.broken] == [Rule.LANGUAGES, Rule.DISTANCE]

    assert len(world.store.outbox) == outbox and world.store.snapshot() == stored
    proposed = await world.matching.office_propose(OFFICE, need_id, fitting)
    stored_fit = (await world.proposal(proposed.proposal_ids[0])).reasons
    assert list(stored_fit) == list(fits.fit.reasons), "the dry run shows what the proposal says"


async def test_the_rule_assess_names_is_always_among_those_listed() -> None:
    """`assess` decides: whoever it refuses is refused with its rule listed, whoever it lets
    through breaks nothing, across volunteers that break one rule, several or none."""
    world = await world_of()
    ids = [
        await volunteer(world, km, languages=languages, radius=radius)
        for km in (0.5, 12.0)
        for languages in ((("de", "native"), ("ar", "c1")), (("de", "native"),))
        for radius in (0, 20)
    ]
    need_id = await world.open_need()
    index = world.matching.index(TENANT)
    need = need_from_record(await world.need(need_id), index.timezone)
    asked = {p.volunteer_id for p in await world.store.proposal_records_for_need(TENANT, need_id)}
    for volunteer_id in ids:
        verdict = assess(index.volunteers[volunteer_id], need, index.context(world.clock.now, asked))
        found = await world.matching.office_check(OFFICE, need_id, volunteer_id)
        if isinstance(verdict, str):
            expected = Rule.ALREADY_PROPOSED if verdict == "asked_before" else Rule(verdict)
            assert expected in [broken.rule for broken in found.broken], (verdict, found.broken)
        else:
            assert found.broken == () and found.fit is not None


async def test_the_certificate_rule_is_the_matching_rule_only_a_checked_certificate_counts() -> None:
    """The office's check calls the same certificate rule as a round: a certificate the volunteer
    only declares breaks it, one the office checked and still valid on the need's days does not."""
    world = await world_of()
    declared = {"kind": "extended_police_certificate", "issued_on": "2026-03-01", "valid_until": "2031-03-01"}
    volunteer_id = await volunteer(world, 0.5, certificates=(declared,))
    opened = events.need_opened(
        TENANT,
        required_skills=["accompaniment"],
        languages=[],
        place={"point": {"lat": CENTRE[0], "lon": CENTRE[1]}, "district": "Mitte"},
        schedule={
            "kind": "weekly",
            "slots": [{"weekday": "tuesday", "start": "16:00", "end": "18:00"}],
            "starts_on": "2026-12-01",
            "ends_on": "2027-03-01",
        },
        volunteers_needed=1,
        certificate_required="extended_police_certificate",
    )
    await world.matching.apply(opened, world.matching.need_opened)
    need_id = opened.subject
    assert world.events(need_id)[0].data.reason is UnstaffedReason.NO_CANDIDATES

    declared_only = await world.matching.office_check(OFFICE, need_id, volunteer_id)
    assert [broken.rule for broken in declared_only.broken] == [Rule.CERTIFICATE]

    for version, valid_until in ((2, "2027-01-31"), (3, "2027-03-01")):  # short of the need's last day, then not
        check = {"kind": "extended_police_certificate", "seen_on": "2026-11-20", "valid_until": valid_until}
        checked = events.event(
            VolunteerCertificateChecked,
            TENANT,
            volunteer_id,
            version=version,
            source="/lotse/registry",
            volunteer_id=volunteer_id,
            check=check,
            checks=[check],
        )
        await world.matching.apply(checked, world.matching.volunteer_certificates_checked)
        if version == 2:
            too_short = await world.matching.office_check(OFFICE, need_id, volunteer_id)
            assert [broken.rule for broken in too_short.broken] == [Rule.CERTIFICATE]
    # Now it fits: matching proposed them by itself, and the office is told so.
    assert proposed_volunteers(world.events(need_id)) == [volunteer_id]
    found = await world.matching.office_check(OFFICE, need_id, volunteer_id)
    assert [broken.rule for broken in found.broken] == [Rule.ALREADY_PROPOSED]


async def test_an_answer_given_by_phone_is_recorded_with_who_recorded_it_under_the_usual_rules() -> None:
    world = await world_of()
    for km in (0.5, 1.5, 3.0):
        await volunteer(world, km)
    need_id = await world.open_need(needed=2)
    first, second = world.events(need_id)
    world.clock.now = START + timedelta(minutes=10)

    accepted = await world.matching.office_answer(OFFICE, need_id, str(first.data.proposal_id), "accept")
    assert accepted.outcome is Outcome.ACCEPTED and accepted.proposal_ids == (str(first.data.proposal_id),)
    assert world.kinds(need_id, 2) == (ProposalAccepted,)
    assert world.events(need_id)[-1].data.answered_via is AnswerChannel.COORDINATION_OFFICE
    stored = await world.proposal(first.data.proposal_id)
    assert (stored.status, stored.answered_via, stored.recorded_by, stored.answered_at) == (
        ProposalStatus.ACCEPTED,
        AnswerChannel.COORDINATION_OFFICE,
        COORDINATOR,
        world.clock.now,
    )
    assert (await world.need(need_id)).staffing.committed == [str(first.data.volunteer_id)]

    declined = await world.matching.office_answer(
        OFFICE, need_id, str(second.data.proposal_id), "decline", DeclineReason.NO_TIME
    )
    assert declined.outcome is Outcome.DECLINED
    assert world.kinds(need_id, 3) == (ProposalDeclined, MatchProposed), "the next person is asked"
    event = world.events(need_id)[3].data
    assert (event.answered_via, event.reason) == (AnswerChannel.COORDINATION_OFFICE, DeclineReason.NO_TIME)
    stored = await world.proposal(second.data.proposal_id)
    assert (stored.decline_reason, stored.recorded_by) == (DeclineReason.NO_TIME, COORDINATOR)

    outbox = len(world.store.outbox)
    for proposal, outcome in ((first, Outcome.ALREADY_ACCEPTED), (second, Outcome.ALREADY_DECLINED)):
        again = await world.matching.office_answer(OFFICE, need_id, str(proposal.data.proposal_id), "accept")
        assert again.outcome is outcome
    third = world.events(need_id)[-1]
    world.clock.now = START + timedelta(minutes=10) + ANSWER
    late = await world.matching.office_answer(OFFICE, need_id, str(third.data.proposal_id), "accept")
    assert late.outcome is Outcome.EXPIRED
    unknown = await world.matching.office_answer(OFFICE, need_id, str(uuid.uuid4()), "accept")
    assert unknown.outcome is Outcome.NOT_FOUND
    assert len(world.store.outbox) == outbox


async def test_an_answer_for_a_closed_need_changes_nothing() -> None:
    world = await world_of()
    await volunteer(world, 0.5)
    need_id = await world.open_need()
    (proposed,) = world.events(need_id)
    await world.matching.apply(
        events.event(
            NeedCancelled,
            TENANT,
            need_id,
            version=2,
            source="/lotse/registry",
            need_id=need_id,
        ),
        world.matching.need_cancelled,
    )
    outbox = len(world.store.outbox)
    answered = await world.matching.office_answer(OFFICE, need_id, str(proposed.data.proposal_id), "accept")
    assert answered.outcome is Outcome.NO_LONGER_NEEDED and len(world.store.outbox) == outbox


async def test_releasing_a_volunteer_is_their_step_back_by_the_office_and_the_need_goes_round_again() -> None:
    world = await world_of()
    near, _, far = [await volunteer(world, km) for km in (0.5, 1.5, 3.0)]
    need_id = await world.open_need()
    first, _ = world.events(need_id)
    await world.accept(first)
    assert (await world.need(need_id)).staffing.state is StaffingState.STAFFED

    not_theirs = await world.matching.office_release(OFFICE, need_id, far)
    assert not_theirs.outcome is Outcome.NOT_COMMITTED
    unknown = await world.matching.office_release(OFFICE, need_id, str(uuid.uuid4()))
    assert unknown.outcome is Outcome.NOT_FOUND, "no probing for who exists"
    released = await world.matching.office_release(OFFICE, need_id, near)
    assert released.outcome is Outcome.STEPPED_BACK
    assert world.kinds(need_id, 5) == (VolunteerSteppedBack, MatchProposed)
    assert proposed_volunteers(world.events(need_id)[5:]) == [far]
    stored = await world.proposal(first.data.proposal_id)
    assert (stored.status, stored.released_by) == (ProposalStatus.STEPPED_BACK, COORDINATOR)
    need = await world.need(need_id)
    assert (need.staffing.state, need.staffing.committed) == (StaffingState.OPEN, [])
    assert not world.matching.index(TENANT).engagements.get(near)
    assert (await world.matching.office_release(OFFICE, need_id, near)).outcome is Outcome.NOT_COMMITTED


async def test_a_new_round_asks_again_who_declined_but_not_who_stepped_back() -> None:
    world = await world_of()
    near, middle, far = [await volunteer(world, km) for km in (0.5, 1.5, 3.0)]
    need_id = await world.open_need()
    first, _ = world.events(need_id)
    await world.accept(first)  # middle's proposal is withdrawn: staffed
    await world.matching.step_back(TENANT, near, need_id)  # asks far
    for proposal in world.events(need_id):
        if isinstance(proposal.data, MatchProposed) and str(proposal.data.volunteer_id) == far:
            await world.decline(proposal)
    assert world.events(need_id)[-1].data.reason is UnstaffedReason.ALL_DECLINED
    assert (await world.need(need_id)).staffing.state is StaffingState.UNSTAFFED
    world.clock.now = START + timedelta(hours=2)
    before = len(world.events(need_id))

    started = await world.matching.office_round(OFFICE, need_id, key("round-1"))

    assert started.outcome is Outcome.ROUND_STARTED
    assert proposed_volunteers(world.events(need_id)[before:]) == [middle, far], "best first; near stepped back"
    assert list(started.proposal_ids) == [str(e.data.proposal_id) for e in world.events(need_id)[before:]]
    need = await world.need(need_id)
    assert (need.staffing.state, need.staffing.round_started_at, need.staffing.round_started_by) == (
        StaffingState.OPEN,
        world.clock.now,
        COORDINATOR,
    )
    outbox = len(world.store.outbox)
    repeated = await world.matching.office_round(OFFICE, need_id, key("round-1"))
    assert (repeated.outcome, repeated.proposal_ids, repeated.replayed) == (
        Outcome.ROUND_STARTED,
        started.proposal_ids,
        True,
    )
    reused = await world.matching.office_round(OFFICE, need_id, key("round-1", "another request"))
    assert reused.outcome is Outcome.KEY_REUSED
    assert len(world.store.outbox) == outbox, "a repeat under the same key does nothing"

    nobody = await world.matching.office_round(OFFICE, need_id, key("round-2"))
    assert nobody.outcome is Outcome.NO_CANDIDATES and len(world.store.outbox) == outbox, "everyone is asked already"


async def test_a_round_that_finds_nobody_escalates_once() -> None:
    world = await world_of()
    need_id = await world.open_need()
    assert world.kinds(need_id) == (NeedUnstaffed,)
    result = await world.matching.office_round(OFFICE, need_id)
    assert result.outcome is Outcome.NO_CANDIDATES and world.kinds(need_id) == (NeedUnstaffed,)
    arrived = await volunteer(world, 0.5)  # a new volunteer who fits brings the need back to open
    assert proposed_volunteers(world.events(need_id)) == [arrived]


async def test_initiative_admins_act_on_their_own_organisations_needs_and_volunteers_only() -> None:
    world = await world_of()
    ours = await volunteer(world, 0.5, organisation=EXAMPLE_ORGANISATION_ID)
    others = await volunteer(world, 0.7, organisation=OTHER_ORGANISATION)
    need_id = await world.open_need()  # the contract example's organisation
    world.store.data.outbox.clear()
    (proposed,) = [p for p in await world.store.proposal_records_for_need(TENANT, need_id) if p.volunteer_id == ours]

    stranger = initiative(OTHER_ORGANISATION)
    assert (await world.matching.office_need(stranger, need_id)) is None
    for attempt in (
        world.matching.office_check(stranger, need_id, ours),
        world.matching.office_propose(stranger, need_id, ours),
        world.matching.office_answer(stranger, need_id, proposed.id, "decline"),
        world.matching.office_release(stranger, need_id, ours),
        world.matching.office_round(stranger, need_id),
    ):
        assert (await attempt).outcome is Outcome.NOT_FOUND
    assert world.store.outbox == []

    owner = initiative(EXAMPLE_ORGANISATION_ID)
    assert (await world.matching.office_check(owner, need_id, others)).outcome is Outcome.NOT_FOUND
    assert (await world.matching.office_check(owner, need_id, ours)).outcome is Outcome.BROKEN_RULES
    assert (await world.matching.office_answer(owner, need_id, proposed.id, "accept")).outcome is Outcome.ACCEPTED
    stored = await world.proposal(proposed.id)
    assert stored.recorded_by == Actor("initiative-subject", "initiative-admin")
    dashboard = await world.matching.office_dashboard(stranger, Filters(), WINDOWS)
    assert dashboard == []


async def test_the_dashboard_lists_each_need_by_situation_with_its_next_step() -> None:
    world = await world_of()
    for km in (0.5, 1.5):
        await volunteer(world, km)
    soon = await one_off_need(world, timedelta(hours=24), needed=3)  # asks both; one more is needed
    later = await one_off_need(world, timedelta(days=10), district="Nord")  # both asked again (k = 2)
    nobody = await one_off_need(world, timedelta(days=5), needed=1)
    for volunteer_id in list(world.matching.index(TENANT).volunteers):
        # Nobody is left for the third need: both decline it.
        for proposal in await world.store.proposal_records_for_need(TENANT, nobody):
            if proposal.volunteer_id == volunteer_id and proposal.status is ProposalStatus.OPEN:
                await world.matching.office_answer(OFFICE, nobody, proposal.id, "decline")
    world.clock.now = START + timedelta(minutes=30)

    found = {where.record.need_id: where for where in await world.matching.office_dashboard(OFFICE, Filters(), WINDOWS)}

    assert set(found) == {soon, later, nobody}
    assert found[soon].situations == {
        Situation.NOT_FULLY_PROPOSED,
        Situation.WAITING_FOR_ANSWERS,
        Situation.STARTING_SOON,
    }
    assert found[soon].next_step is NextStep.CALL_VOLUNTEER
    assert found[later].situations == {Situation.WAITING_FOR_ANSWERS}
    assert found[later].next_step is NextStep.CALL_VOLUNTEER, "its proposals expire within the hour"
    assert found[nobody].situations == {Situation.UNSTAFFED}
    assert found[nobody].next_step is NextStep.START_NEW_ROUND
    assert len(found[later].open_proposals) == 2 and found[later].next_expiry == START + ANSWER

    narrow = Windows(starting=timedelta(hours=1), expiring=timedelta(minutes=10))
    later_only = await world.matching.office_dashboard(OFFICE, Filters(district="nord"), narrow)
    assert [where.record.need_id for where in later_only] == [later]
    assert later_only[0].next_step is NextStep.WAIT_FOR_ANSWERS
    today = START.date()
    by_date = await world.matching.office_dashboard(
        OFFICE, Filters(starts_from=today + timedelta(days=4), starts_until=today + timedelta(days=6)), WINDOWS
    )
    assert [where.record.need_id for where in by_date] == [nobody]
    by_category = await world.matching.office_dashboard(OFFICE, Filters(category="childcare"), WINDOWS)
    assert by_category == []

    world.clock.now = START + timedelta(days=6)  # the third need's time is over
    await world.matching.tick()
    over = {w.record.need_id: w for w in await world.matching.office_dashboard(OFFICE, Filters(), WINDOWS)}
    assert over[nobody].situations == {Situation.OVER} and over[nobody].next_step is NextStep.CLOSE


async def test_a_need_starting_soon_with_nobody_asked_is_escalated_by_the_office() -> None:
    world = await world_of()
    need_id = await one_off_need(world, timedelta(hours=10))  # nobody is registered
    (where,) = await world.matching.office_dashboard(OFFICE, Filters(), WINDOWS)
    assert where.record.need_id == need_id
    assert where.situations == {Situation.UNSTAFFED, Situation.STARTING_SOON}
    assert where.next_step is NextStep.ESCALATE
    assert where.timing.starts_at == START + timedelta(hours=10)


def test_a_weekly_need_starts_on_its_first_slot_in_the_tenants_zone() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    details: dict[str, Any] = {
        "schedule": {
            "kind": "weekly",
            "slots": [
                {"weekday": "thursday", "start": "09:00:00", "end": "10:00:00"},
                {"weekday": "tuesday", "start": "16:00:00", "end": "18:00:00"},
            ],
            "starts_on": "2026-12-02",  # a Wednesday
            "ends_on": "2026-12-31",
        }
    }
    found = timing(details, berlin, datetime(2026, 11, 25, tzinfo=UTC))
    assert found.starts_at == datetime(2026, 12, 3, 9, tzinfo=berlin) and not found.over
    assert timing(details, berlin, datetime(2027, 1, 1, 12, tzinfo=UTC)).over
    assert date(2026, 12, 3) == found.starts_at.date()
