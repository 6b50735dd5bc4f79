"""Hours volunteers log for their engagements (pure): which days a volunteer may log for a need,
the checks of an entry, and the yearly totals a volunteer shows for the Ehrenamtskarte.

A volunteer logs hours only for a need they committed to (accepted a proposal or took it
themselves; also after they stepped back or the need was closed, for the days before). A day
worked lies

- not in the future (the tenant's calendar day),
- not before the need started, nor before the volunteer was asked or took the need,
- not after the need's last scheduled day, the day it was closed or cancelled, or the day the
  volunteer stepped back (or was released),
- at most ``log_days`` (90) days back: after an engagement ended there is that long to log it,
  and the office is not asked to confirm what nobody remembers;

and the volunteer's entries of one day (rejected ones aside) add up to at most
``max_minutes_per_day`` (12 hours). Whether a Land's Ehrenamtskarte asks for 250 hours a year or 5
a week is not Lotse's rule: the volunteer sees confirmed totals per year and per organisation.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from lotse_matching.store import HoursEntry, HoursState, NeedRecord, NeedStatus, Proposal, ProposalStatus

MAX_NOTE = 200
MAX_REASON = 300
COMMITTED = frozenset({ProposalStatus.ACCEPTED, ProposalStatus.STEPPED_BACK})


@dataclass(frozen=True, slots=True)
class HoursRules:
    max_minutes_per_day: int = 12 * 60
    log_days: int = 90


@dataclass(frozen=True, slots=True)
class HoursDraft:
    """What a volunteer logs (or corrects an entry to)."""

    need_id: str
    day: date
    minutes: int
    note: str = ""


@dataclass(frozen=True, slots=True)
class Commitment:
    """A need the volunteer committed to, and the days on which they may have worked for it."""

    need: NeedRecord
    first_day: date
    last_day: date | None  # None: still running, with no last day scheduled

    @property
    def need_id(self) -> str:
        return self.need.need_id


class HoursOutcome(StrEnum):
    LOGGED = "logged"
    CORRECTED = "corrected"
    UNCHANGED = "unchanged"  # a repeat of a logging with the same entry id and content
    DELETED = "deleted"
    CONFIRMED = "confirmed"
    REJECTED = "rejected"
    INVALID = "invalid"  # the entry breaks a rule; the refusals say which
    NOT_FOUND = "not_found"
    ALREADY_CONFIRMED = "already_confirmed"  # the volunteer can no longer change it
    ALREADY_DECIDED = "already_decided"  # the office decided it before
    OWN_ENTRY = "own_entry"  # nobody confirms their own hours
    ID_TAKEN = "id_taken"  # an entry id given for a new entry belongs to another one


class Rule(StrEnum):
    """Why an entry is refused; ``field`` says which field of the request it is about."""

    NOT_COMMITTED = "not_committed"
    IN_FUTURE = "in_future"
    BEFORE_ENGAGEMENT = "before_engagement"
    AFTER_ENGAGEMENT = "after_engagement"
    TOO_LONG_AGO = "too_long_ago"
    TOO_MANY_PER_DAY = "too_many_per_day"


@dataclass(frozen=True, slots=True)
class Refusal:
    field: str
    rule: Rule
    message: str  # in English; the portal shows its own text for the rule


def local_day(moment: datetime, timezone: ZoneInfo) -> date:
    return moment.astimezone(timezone).date()


def scheduled_days(schedule: dict[str, object], timezone: ZoneInfo) -> tuple[date, date | None]:
    """The need's first and last scheduled day in the tenant's zone (a weekly need without an end: None)."""
    if schedule["kind"] == "one_off":
        start, end = datetime.fromisoformat(str(schedule["start"])), datetime.fromisoformat(str(schedule["end"]))
        return local_day(start, timezone), local_day(end, timezone)
    ends_on = schedule.get("ends_on")
    return date.fromisoformat(str(schedule["starts_on"])), date.fromisoformat(str(ends_on)) if ends_on else None


def commitment(
    need: NeedRecord, proposals: Sequence[Proposal], volunteer_id: str, timezone: ZoneInfo
) -> Commitment | None:
    """The volunteer's commitment to the need from the need's proposals and picks, or None if they
    never committed to it."""
    theirs = [p for p in proposals if p.volunteer_id == volunteer_id and p.status in COMMITTED and not p.erased]
    if not theirs:
        return None
    first, last = scheduled_days(need.details["schedule"], timezone)
    # Asked or took it on that day at the earliest (an acceptance's time is replaced by a step back's).
    first = max(first, local_day(min(p.proposed_at for p in theirs), timezone))
    ends = [last] if last is not None else []
    committed_now = volunteer_id in need.staffing.committed and any(p.status is ProposalStatus.ACCEPTED for p in theirs)
    stepped_back = [p.answered_at for p in theirs if p.status is ProposalStatus.STEPPED_BACK and p.answered_at]
    if not committed_now and stepped_back:
        ends.append(local_day(max(stepped_back), timezone))
    if need.status is not NeedStatus.OPEN and need.staffing.closed_at is not None:
        ends.append(local_day(need.staffing.closed_at, timezone))
    return Commitment(need, first, min(ends, default=None))


def may_still_log(found: Commitment, today: date, rules: HoursRules) -> bool:
    """Whether any day of the commitment is still open for logging."""
    earliest = today - timedelta(days=rules.log_days)
    return found.first_day <= today and (found.last_day is None or found.last_day >= earliest)


def check(
    draft: HoursDraft,
    found: Commitment | None,
    same_day_minutes: int,
    today: date,
    rules: HoursRules,
) -> list[Refusal]:
    """Every rule the entry breaks (none: it may be logged). ``same_day_minutes``: the volunteer's
    other entries of that day, rejected ones and the entry being corrected left out."""
    refusals = []
    if found is None:
        refusals.append(Refusal("need_id", Rule.NOT_COMMITTED, "you did not commit to this need"))
    day = draft.day
    if day > today:
        refusals.append(Refusal("date", Rule.IN_FUTURE, "the day lies in the future"))
    elif day < today - timedelta(days=rules.log_days):
        refusals.append(
            Refusal("date", Rule.TOO_LONG_AGO, f"hours are logged within {rules.log_days} days of the day worked")
        )
    elif found is not None and day < found.first_day:
        refusals.append(
            Refusal("date", Rule.BEFORE_ENGAGEMENT, f"the engagement began on {found.first_day.isoformat()}")
        )
    elif found is not None and found.last_day is not None and day > found.last_day:
        refusals.append(Refusal("date", Rule.AFTER_ENGAGEMENT, f"the engagement ended on {found.last_day.isoformat()}"))
    if same_day_minutes + draft.minutes > rules.max_minutes_per_day:
        left = max(0, rules.max_minutes_per_day - same_day_minutes)
        refusals.append(
            Refusal(
                "minutes",
                Rule.TOO_MANY_PER_DAY,
                f"at most {rules.max_minutes_per_day} minutes a day; {left} are left on {day.isoformat()}",
            )
        )
    return refusals


def minutes_on(entries: Iterable[HoursEntry], day: date, leaving_out: str | None = None) -> int:
    """What the entries of that day add up to, rejected ones and ``leaving_out`` aside."""
    return sum(
        e.minutes for e in entries if e.day == day and e.state is not HoursState.REJECTED and e.id != leaving_out
    )


@dataclass(frozen=True, slots=True)
class OrganisationTotal:
    organisation_id: str
    confirmed_minutes: int


@dataclass(frozen=True, slots=True)
class YearTotal:
    year: int
    confirmed_minutes: int
    pending_minutes: int
    confirmed_entries: int
    organisations: tuple[OrganisationTotal, ...]  # confirmed minutes per organisation, most first


def yearly_totals(entries: Iterable[HoursEntry]) -> list[YearTotal]:
    """The volunteer's confirmed (and still pending) minutes per calendar year of the day worked,
    the latest year first; per organisation of the needs, confirmed only."""
    confirmed: defaultdict[int, int] = defaultdict(int)
    pending: defaultdict[int, int] = defaultdict(int)
    counted: defaultdict[int, int] = defaultdict(int)
    by_organisation: defaultdict[int, defaultdict[str, int]] = defaultdict(lambda: defaultdict(int))
    for entry in entries:
        year = entry.day.year
        if entry.state is HoursState.CONFIRMED:
            confirmed[year] += entry.minutes
            counted[year] += 1
            by_organisation[year][entry.organisation_id] += entry.minutes
        elif entry.state is HoursState.PENDING:
            pending[year] += entry.minutes
    return [
        YearTotal(
            year,
            confirmed[year],
            pending[year],
            counted[year],
            tuple(
                OrganisationTotal(organisation, minutes)
                for organisation, minutes in sorted(by_organisation[year].items(), key=lambda item: (-item[1], item[0]))
            ),
        )
        for year in sorted(set(confirmed) | set(pending), reverse=True)
    ]
