"""What the coordination office sees, as pure rules without I/O: which hard rules a volunteer it
chose would break, and where each open need stands on its dashboard, with the next thing to do.

`candidates.assess` stays the single source of truth for whether a volunteer may be proposed; it
stops at the first rule that fails. The office is shown every rule that fails, so `broken_rules`
checks each rule on its own with the same helpers (`certificate_valid`, `haversine_km`,
`find_overlap`), and always follows `assess`'s verdict: a volunteer `assess` lets through breaks
nothing, and the rule `assess` names is always among those listed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import TypeAdapter

from lotse_contracts.events.values import OneOffWindow, Schedule, WeeklyRecurrence
from lotse_matching.candidates import (
    LANGUAGE_NAMES,
    LEVELS,
    MatchContext,
    Need,
    Volunteer,
    assess,
    certificate_valid,
    haversine_km,
)
from lotse_matching.schedule import WEEKDAYS, find_overlap
from lotse_matching.store import NeedRecord, Proposal, StaffingState

_SCHEDULE: TypeAdapter[OneOffWindow | WeeklyRecurrence] = TypeAdapter(Schedule)


# -- the hard rules, one by one -----------------------------------------------------------------


class Rule(StrEnum):
    """A hard rule a volunteer breaks for a need (a code the portal translates)."""

    TENANT = "tenant"
    CONSENT = "consent"
    ALREADY_PROPOSED = "already_proposed"
    ALREADY_COMMITTED = "already_committed"
    STEPPED_BACK = "stepped_back"
    ASKED_BEFORE = "asked_before"
    SKILLS = "skills"
    LANGUAGES = "languages"
    CERTIFICATE = "certificate"
    DISTANCE = "distance"
    AVAILABILITY = "availability"
    LIMIT = "limit"
    ENGAGEMENT_OVERLAP = "engagement_overlap"
    OTHER = "other"  # a rule `assess` knows and this module does not (yet)


class Standing(StrEnum):
    """Where the volunteer stands with this need already."""

    NONE = "none"
    PROPOSED = "proposed"  # has an open proposal
    COMMITTED = "committed"
    LEFT = "left"  # stepped back or was released: not asked again for this need
    ASKED = "asked"  # declined, let expire or was withdrawn in the current round


@dataclass(frozen=True, slots=True)
class BrokenRule:
    rule: Rule
    detail: str  # English, for people; the portal shows its own text for the rule


# `assess`'s codes for what its exclusion covers: every standing but NONE.
_STANDING_RULES = {
    Standing.PROPOSED: (Rule.ALREADY_PROPOSED, "has an open proposal for this need"),
    Standing.COMMITTED: (Rule.ALREADY_COMMITTED, "is already committed to this need"),
    Standing.LEFT: (Rule.STEPPED_BACK, "stepped back from this need or was released from it"),
    Standing.ASKED: (
        Rule.ASKED_BEFORE,
        "was asked for this need in the current round already (start a new round to ask again)",
    ),
}


def broken_rules(volunteer: Volunteer, need: Need, context: MatchContext, standing: Standing) -> list[BrokenRule]:
    """Every hard rule the volunteer breaks for the need, in `assess`'s order; empty if `assess`
    would propose them. ``context.excluded`` must hold the volunteer unless `standing` is NONE."""
    verdict = assess(volunteer, need, context)
    if not isinstance(verdict, str):
        return []
    found = list(_each_rule(volunteer, need, context, standing))
    named = {broken.rule for broken in found}
    if _rule_of(verdict, standing) not in named:
        # `assess` is the authority: a rule it applies that is not checked one by one here.
        found.insert(0, BrokenRule(_rule_of(verdict, standing), f"breaks the rule {verdict}"))
    return found


def _rule_of(verdict: str, standing: Standing) -> Rule:
    if verdict == "asked_before":
        return _STANDING_RULES[standing][0] if standing in _STANDING_RULES else Rule.ALREADY_COMMITTED
    try:
        return Rule(verdict)
    except ValueError:
        return Rule.OTHER


def _each_rule(volunteer: Volunteer, need: Need, context: MatchContext, standing: Standing) -> Iterable[BrokenRule]:
    if volunteer.tenant != need.tenant:
        yield BrokenRule(Rule.TENANT, "belongs to another municipality")
    if not volunteer.active:
        yield BrokenRule(
            Rule.CONSENT, "is not open for matching: no consent to matching, withdrawn, or no profile or times yet"
        )
    if standing in _STANDING_RULES:
        yield BrokenRule(*_STANDING_RULES[standing])
    missing = sorted(need.required_skills - volunteer.skills)
    if missing:
        yield BrokenRule(Rule.SKILLS, "lacks the skills needed: " + ", ".join(missing))
    short = [
        f"{LANGUAGE_NAMES.get(code, code)} {_level(rank)} needed, speaks {_level(volunteer.languages.get(code, -1))}"
        for code, rank in need.languages
        if volunteer.languages.get(code, -1) < rank
    ]
    if short:
        yield BrokenRule(Rule.LANGUAGES, "; ".join(short))
    if need.certificate is not None and not certificate_valid(volunteer, need, context.today):
        kind = need.certificate.replace("_", " ")
        yield BrokenRule(Rule.CERTIFICATE, f"holds no valid {kind} for the need's dates")
    if volunteer.point is None:
        yield BrokenRule(Rule.DISTANCE, "lives where only a postcode is known, so the distance cannot be checked")
    else:
        distance = haversine_km(volunteer.point, need.point)
        # As `assess` checks it: the radius against the need's cell; the office reads the exact distance.
        if haversine_km(volunteer.point, need.area) > volunteer.travel_radius_km:
            yield BrokenRule(
                Rule.DISTANCE, f"lives {distance:.1f} km away and travels up to {volunteer.travel_radius_km:g} km"
            )
    if not volunteer.hours & need.hours or find_overlap(need.pieces, volunteer.pieces, volunteer.unavailable) is None:
        yield BrokenRule(Rule.AVAILABILITY, "is not available at the need's time")
    engagements = [e for e in context.engagements.get(volunteer.id, ()) if e.need_id != need.id]
    if len(engagements) >= volunteer.max_engagements:
        yield BrokenRule(
            Rule.LIMIT, f"has {len(engagements)} engagements, as many as they chose ({volunteer.max_engagements})"
        )
    if any(find_overlap(need.pieces, engagement.pieces) for engagement in engagements):
        yield BrokenRule(Rule.ENGAGEMENT_OVERLAP, "has another engagement at the same time")


def _level(rank: int) -> str:
    if rank < 0:
        return "none"
    level = LEVELS[rank]
    return "native" if level.value == "native" else level.value.upper()


# -- the dashboard --------------------------------------------------------------------------------


class NextStep(StrEnum):
    """The next thing the office does about a need (a code the portal translates)."""

    PROPOSE_MORE = "propose_more"  # fewer people asked than still needed: propose someone, or a new round
    WAIT_FOR_ANSWERS = "wait_for_answers"  # enough people asked, with time to answer
    CALL_VOLUNTEER = "call_volunteer"  # an answer is due soon or the need starts soon: ask by phone
    START_NEW_ROUND = "start_new_round"  # nobody is left to ask in this round
    ESCALATE = "escalate"  # starts soon and nobody is asked: find help beyond Lotse, tell the organisation
    CLOSE = "close"  # its time is over: close it with its outcome


class Situation(StrEnum):
    """The dashboard's lists of needs (a need may be in several)."""

    NOT_FULLY_PROPOSED = "not_fully_proposed"
    WAITING_FOR_ANSWERS = "waiting_for_answers"
    STARTING_SOON = "starting_soon"
    UNSTAFFED = "unstaffed"
    OVER = "over"


@dataclass(frozen=True, slots=True)
class Timing:
    """When a need starts (its first occurrence) and whether its time is over, in the tenant's zone."""

    starts_at: datetime
    over: bool


def timing(details: dict[str, Any], timezone: ZoneInfo, now: datetime) -> Timing:
    schedule = _SCHEDULE.validate_python(details["schedule"])
    if isinstance(schedule, OneOffWindow):
        return Timing(schedule.start, schedule.end <= now)
    first = min(_first_day(schedule.starts_on, WEEKDAYS.index(slot.weekday)) for slot in schedule.slots)
    start = min(slot.start for slot in schedule.slots if WEEKDAYS.index(slot.weekday) == first.weekday())
    today = now.astimezone(timezone).date()
    return Timing(
        datetime.combine(first, start, tzinfo=timezone), schedule.ends_on is not None and schedule.ends_on < today
    )


def _first_day(starts_on: date, weekday: int) -> date:
    return starts_on + timedelta(days=(weekday - starts_on.weekday()) % 7)


@dataclass(frozen=True, slots=True)
class Filters:
    """The dashboard's filters; None filters nothing. The dates are the need's first day in the
    tenant's zone, both inclusive; a district matches whatever its case."""

    organisation_id: str | None = None
    category: str | None = None
    district: str | None = None
    starts_from: date | None = None
    starts_until: date | None = None

    def match(self, record: NeedRecord, when: Timing, timezone: ZoneInfo) -> bool:
        details = record.details
        district = (details.get("place") or {}).get("district")
        day = when.starts_at.astimezone(timezone).date()
        return (
            (self.organisation_id is None or record.organisation_id == self.organisation_id)
            and (self.category is None or details["category"] == self.category)
            and (self.district is None or (district or "").casefold() == self.district.casefold())
            and (self.starts_from is None or day >= self.starts_from)
            and (self.starts_until is None or day <= self.starts_until)
        )


@dataclass(frozen=True, slots=True)
class Windows:
    """How far ahead the dashboard looks: needs starting and proposals expiring within these."""

    starting: timedelta
    expiring: timedelta


@dataclass(frozen=True, slots=True)
class NeedSituation:
    record: NeedRecord
    open_proposals: tuple[Proposal, ...]
    timing: Timing
    situations: frozenset[Situation]
    next_step: NextStep

    @property
    def next_expiry(self) -> datetime | None:
        expiries = [p.expires_at for p in self.open_proposals if p.expires_at is not None]
        return min(expiries, default=None)


def situation(
    record: NeedRecord, open_proposals: Sequence[Proposal], timezone: ZoneInfo, now: datetime, windows: Windows
) -> NeedSituation | None:
    """Where a need open at the registry stands; None for a staffed need whose time is not over
    (nothing to do)."""
    when = timing(record.details, timezone, now)
    state = record.staffing.state
    committed, needed, asked = len(record.staffing.committed), record.volunteers_needed, len(open_proposals)
    lacking = committed < needed and state is not StaffingState.STAFFED
    soon = lacking and now <= when.starts_at <= now + windows.starting
    expiring = any(p.expires_at is not None and p.expires_at <= now + windows.expiring for p in open_proposals)
    found: set[Situation] = set()
    if when.over:
        found.add(Situation.OVER)
    elif state is StaffingState.UNSTAFFED:
        found.add(Situation.UNSTAFFED)
    elif lacking:
        if committed + asked < needed:
            found.add(Situation.NOT_FULLY_PROPOSED)
        if asked:
            found.add(Situation.WAITING_FOR_ANSWERS)
    if soon and not when.over:
        found.add(Situation.STARTING_SOON)
    if not found:
        return None
    if when.over:
        step = NextStep.CLOSE
    elif asked and (soon or expiring):
        step = NextStep.CALL_VOLUNTEER
    elif asked:
        step = NextStep.PROPOSE_MORE if committed + asked < needed else NextStep.WAIT_FOR_ANSWERS
    elif soon:
        step = NextStep.ESCALATE
    elif state is StaffingState.UNSTAFFED:
        step = NextStep.START_NEW_ROUND
    else:
        step = NextStep.PROPOSE_MORE
    return NeedSituation(record, tuple(open_proposals), when, frozenset(found), step)
