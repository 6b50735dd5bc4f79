"""The rules of logged hours (matching's ``hours.py``), without a database: which days a volunteer
may log for a need, the checks of an entry, the yearly totals, and the statistics' sums that are
withheld below five volunteers."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from lotse_contracts.events.matching import UnstaffedReason
from lotse_matching.hours import (
    Commitment,
    HoursDraft,
    HoursRules,
    Rule,
    check,
    commitment,
    may_still_log,
    minutes_on,
    yearly_totals,
)
from lotse_matching.statistics import by_category, by_month, confirmed_hours_by
from lotse_matching.store import (
    HoursEntry,
    HoursState,
    NeedRecord,
    NeedStatus,
    Proposal,
    ProposalKind,
    ProposalStatus,
    Staffing,
    StaffingState,
)

BERLIN = ZoneInfo("Europe/Berlin")
RULES = HoursRules(max_minutes_per_day=12 * 60, log_days=90)
VOLUNTEER = str(uuid.uuid4())
ORGANISATION = str(uuid.uuid4())
ASKED = datetime(2026, 11, 20, 9, tzinfo=UTC)
WEEKLY: dict[str, Any] = {
    "kind": "weekly",
    "slots": [{"weekday": "tuesday", "start": "16:00:00", "end": "18:00:00"}],
    "starts_on": "2026-12-01",
}


def need(schedule: dict[str, Any] = WEEKLY, *, status: NeedStatus = NeedStatus.OPEN, **staffing: object) -> NeedRecord:
    values: dict[str, object] = {
        "version": 2,
        "state": StaffingState.STAFFED,
        "committed": [VOLUNTEER],
        "opened_at": ASKED,
        "escalate_at": ASKED + timedelta(days=7),
        "escalate_reason": UnstaffedReason.PROPOSALS_EXPIRED,
        "escalated": False,
        **staffing,
    }
    return NeedRecord(
        tenant="musterstadt",
        need_id=str(uuid.uuid4()),
        version=1,
        status=status,
        details={"organisation_id": ORGANISATION, "category": "translation", "schedule": schedule},
        staffing=Staffing(**values),  # type: ignore[arg-type]
    )


def proposal(
    record: NeedRecord, status: ProposalStatus, *, at: datetime = ASKED, answered: datetime | None = None
) -> Proposal:
    return Proposal(
        id=str(uuid.uuid4()),
        tenant=record.tenant,
        need_id=record.need_id,
        volunteer_id=VOLUNTEER,
        kind=ProposalKind.PROPOSAL,
        status=status,
        reasons=(),
        proposed_at=at,
        expires_at=at + timedelta(days=3),
        answered_at=answered or at + timedelta(hours=1),
        answered_via=None,
    )


def entry(
    day: date,
    minutes: int,
    state: HoursState = HoursState.CONFIRMED,
    *,
    volunteer_id: str = VOLUNTEER,
    organisation_id: str = ORGANISATION,
    category: str = "translation",
) -> HoursEntry:
    logged = datetime(day.year, day.month, day.day, 20, tzinfo=UTC)
    return HoursEntry(
        id=str(uuid.uuid4()),
        tenant="musterstadt",
        volunteer_id=volunteer_id,
        need_id=str(uuid.uuid4()),
        organisation_id=organisation_id,
        category=category,
        day=day,
        minutes=minutes,
        note="",
        state=state,
        logged_at=logged,
        updated_at=logged,
    )


def draft(day: date, minutes: int = 120) -> HoursDraft:
    return HoursDraft(str(uuid.uuid4()), day, minutes)


def rules_broken(
    day: date, found: Commitment | None, *, minutes: int = 120, same_day: int = 0, today: date
) -> list[tuple[str, Rule]]:
    return [(r.field, r.rule) for r in check(draft(day, minutes), found, same_day, today, RULES)]


def test_only_a_volunteer_who_committed_to_the_need_may_log_for_it() -> None:
    record = need()
    for status in (ProposalStatus.OPEN, ProposalStatus.DECLINED, ProposalStatus.EXPIRED, ProposalStatus.WITHDRAWN):
        assert commitment(record, [proposal(record, status)], VOLUNTEER, BERLIN) is None, status
    assert commitment(record, [proposal(record, ProposalStatus.ACCEPTED)], str(uuid.uuid4()), BERLIN) is None
    found = commitment(record, [proposal(record, ProposalStatus.ACCEPTED)], VOLUNTEER, BERLIN)
    assert found is not None and (found.first_day, found.last_day) == (date(2026, 12, 1), None)
    assert rules_broken(date(2026, 12, 8), None, today=date(2026, 12, 9)) == [("need_id", Rule.NOT_COMMITTED)]


def test_a_day_is_not_in_the_future_nor_before_the_need_or_the_ask_nor_too_long_ago() -> None:
    record = need()
    found = commitment(record, [proposal(record, ProposalStatus.ACCEPTED)], VOLUNTEER, BERLIN)
    today = date(2026, 12, 9)
    assert rules_broken(date(2026, 12, 8), found, today=today) == []
    assert rules_broken(today, found, today=today) == []
    assert rules_broken(date(2026, 12, 10), found, today=today) == [("date", Rule.IN_FUTURE)]
    assert rules_broken(date(2026, 11, 30), found, today=today) == [("date", Rule.BEFORE_ENGAGEMENT)]
    # A weekly need that started long before the volunteer was asked: not before the ask.
    later = commitment(
        record, [proposal(record, ProposalStatus.ACCEPTED, at=datetime(2027, 1, 5, 8, tzinfo=UTC))], VOLUNTEER, BERLIN
    )
    assert later is not None and later.first_day == date(2027, 1, 5)
    assert rules_broken(date(2027, 1, 4), later, today=date(2027, 1, 9)) == [("date", Rule.BEFORE_ENGAGEMENT)]
    # 90 days back is still fine, 91 not.
    far = date(2027, 6, 1)
    assert rules_broken(far - timedelta(days=90), found, today=far) == []
    assert rules_broken(far - timedelta(days=91), found, today=far) == [("date", Rule.TOO_LONG_AGO)]


def test_a_one_off_need_is_its_own_days_in_the_tenants_zone() -> None:
    # 23:30 UTC on 31 December is New Year's Day in Berlin.
    one_off: dict[str, Any] = {
        "kind": "one_off",
        "start": "2026-12-31T23:30:00+00:00",
        "end": "2027-01-01T02:00:00+00:00",
    }
    record = need(one_off)
    found = commitment(record, [proposal(record, ProposalStatus.ACCEPTED)], VOLUNTEER, BERLIN)
    assert found is not None and (found.first_day, found.last_day) == (date(2027, 1, 1), date(2027, 1, 1))
    today = date(2027, 1, 5)
    assert rules_broken(date(2027, 1, 1), found, today=today) == []
    assert rules_broken(date(2026, 12, 31), found, today=today) == [("date", Rule.BEFORE_ENGAGEMENT)]
    assert rules_broken(date(2027, 1, 2), found, today=today) == [("date", Rule.AFTER_ENGAGEMENT)]


def test_a_closed_need_and_a_step_back_end_the_days_and_logging_stays_open_for_90_days() -> None:
    closed_at = datetime(2027, 2, 10, 12, tzinfo=UTC)
    record = need(status=NeedStatus.CLOSED, state=StaffingState.CLOSED, closed_at=closed_at)
    found = commitment(record, [proposal(record, ProposalStatus.ACCEPTED)], VOLUNTEER, BERLIN)
    assert found is not None and found.last_day == date(2027, 2, 10)
    assert rules_broken(date(2027, 2, 10), found, today=date(2027, 3, 1)) == []
    assert rules_broken(date(2027, 2, 11), found, today=date(2027, 3, 1)) == [("date", Rule.AFTER_ENGAGEMENT)]
    assert may_still_log(found, date(2027, 2, 10) + timedelta(days=90), RULES)
    assert not may_still_log(found, date(2027, 2, 10) + timedelta(days=91), RULES)

    stepped = need(committed=[])
    back = proposal(stepped, ProposalStatus.STEPPED_BACK, answered=datetime(2027, 1, 12, 9, tzinfo=UTC))
    found = commitment(stepped, [back], VOLUNTEER, BERLIN)
    assert found is not None and found.last_day == date(2027, 1, 12)
    assert rules_broken(date(2027, 1, 13), found, today=date(2027, 1, 20)) == [("date", Rule.AFTER_ENGAGEMENT)]
    # Not yet started: nothing to log.
    assert not may_still_log(found, date(2026, 11, 30), RULES)


def test_a_days_entries_add_up_to_twelve_hours_at_most_rejected_ones_aside() -> None:
    day = date(2026, 12, 8)
    earlier = [
        entry(day, 8 * 60, HoursState.PENDING),
        entry(day, 6 * 60, HoursState.REJECTED),
        entry(day - timedelta(days=1), 600),
    ]
    assert minutes_on(earlier, day) == 8 * 60
    assert minutes_on(earlier, day, leaving_out=earlier[0].id) == 0
    record = need()
    found = commitment(record, [proposal(record, ProposalStatus.ACCEPTED)], VOLUNTEER, BERLIN)
    today = date(2026, 12, 9)
    assert rules_broken(day, found, minutes=4 * 60, same_day=8 * 60, today=today) == []
    assert rules_broken(day, found, minutes=4 * 60 + 1, same_day=8 * 60, today=today) == [
        ("minutes", Rule.TOO_MANY_PER_DAY)
    ]
    assert rules_broken(day, found, minutes=12 * 60 + 1, today=today) == [("minutes", Rule.TOO_MANY_PER_DAY)]


def test_yearly_totals_count_confirmed_hours_per_year_and_organisation_and_pending_apart() -> None:
    other = str(uuid.uuid4())
    entries = [
        entry(date(2026, 12, 1), 120),
        entry(date(2026, 12, 8), 90, organisation_id=other),
        entry(date(2026, 12, 15), 60, HoursState.PENDING),
        entry(date(2026, 12, 22), 300, HoursState.REJECTED),
        entry(date(2027, 1, 5), 45),
    ]
    latest, earlier = yearly_totals(entries)
    assert (latest.year, latest.confirmed_minutes, latest.pending_minutes, latest.confirmed_entries) == (2027, 45, 0, 1)
    assert (earlier.year, earlier.confirmed_minutes, earlier.pending_minutes, earlier.confirmed_entries) == (
        2026,
        210,
        60,
        2,
    )
    assert [(o.organisation_id, o.confirmed_minutes) for o in earlier.organisations] == [
        (ORGANISATION, 120),
        (other, 90),
    ]
    assert yearly_totals([entry(date(2026, 1, 1), 60, HoursState.REJECTED)]) == []


def test_confirmed_hours_per_month_and_kind_are_withheld_below_five_volunteers() -> None:
    march = [entry(date(2026, 3, day), 90, volunteer_id=str(uuid.uuid4())) for day in range(1, 6)]
    april = [entry(date(2026, 4, day), 60, volunteer_id=VOLUNTEER) for day in range(1, 10)]
    april.append(entry(date(2026, 4, 20), 600, HoursState.PENDING, volunteer_id=str(uuid.uuid4())))
    childcare = [replace(e, category="childcare") for e in april]
    months = confirmed_hours_by(march + april, by_month)
    assert [(s.key, s.hours, s.volunteers) for s in months] == [("2026-03", 7.5, 5), ("2026-04", None, None)]
    kinds = confirmed_hours_by(march + childcare, by_category)
    assert [(s.key, s.hours, s.volunteers) for s in kinds] == [("childcare", None, None), ("translation", 7.5, 5)]
