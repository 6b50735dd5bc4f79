"""A municipality's staffing figures (pure): how long needs took to be staffed, and how many
proposals it took for one acceptance.

Time to staff runs from the moment matching opened the need (``staffing.opened_at``, when the
registry's need reached it) to the commitment that completed its staffing: the latest answer
among the accepted proposals and picks of the volunteers it counts in. Needs that are staffed now,
or were staffed when they were closed, count; a need staffed, stepped back from and staffed again
counts with its last staffing.

Confirmed hours volunteers logged are summed per month of the day worked and per kind of help;
a sum is withheld unless five volunteers or more contributed to it, as the hours of two people
would describe those two.

Every count below five is withheld, and so is every figure computed from fewer than five items
(``lotse_runtime.small_counts``): a median of three needs would describe those three needs.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from lotse_matching.store import (
    HoursEntry,
    HoursState,
    NeedRecord,
    Proposal,
    ProposalKind,
    ProposalStatus,
    StaffingState,
)
from lotse_runtime.small_counts import disclosed, enough

# A proposal that was accepted: stepping back later does not undo that it was accepted.
WAS_ACCEPTED = frozenset({ProposalStatus.ACCEPTED, ProposalStatus.STEPPED_BACK})


@dataclass(frozen=True)
class TimeToStaff:
    staffed_needs: int | None  # withheld below five
    median_hours: float | None
    p75_hours: float | None
    p90_hours: float | None


@dataclass(frozen=True)
class ProposalOutcomes:
    proposals: int | None  # made by matching (picks are not proposals)
    accepted: int | None  # accepted ones, also where the volunteer stepped back later
    declined: int | None
    expired: int | None
    withdrawn: int | None  # the need was staffed or cancelled before an answer
    open: int | None
    picks: int | None  # needs volunteers took themselves
    proposals_per_acceptance: float | None


def staffed_at(need: NeedRecord, proposals: Iterable[Proposal]) -> datetime | None:
    """When the need's staffing was completed; None if it is not staffed (or nobody's answer is left)."""
    staffed = need.staffing.state is StaffingState.STAFFED or (
        need.staffing.state is StaffingState.CLOSED and len(need.staffing.committed) >= need.volunteers_needed
    )
    if not staffed:
        return None
    committed = set(need.staffing.committed)
    answers = [
        p.answered_at
        for p in proposals
        if p.volunteer_id in committed and p.status is ProposalStatus.ACCEPTED and p.answered_at is not None
    ]
    return max(answers, default=None)


def hours_to_staff(needs: Iterable[NeedRecord], proposals: Iterable[Proposal]) -> list[float]:
    """For each staffed need, the hours from its opening to its staffing."""
    by_need: dict[str, list[Proposal]] = {}
    for proposal in proposals:
        by_need.setdefault(proposal.need_id, []).append(proposal)
    found = []
    for need in needs:
        done = staffed_at(need, by_need.get(need.need_id, ()))
        if done is not None:
            found.append(max(0.0, (done - need.staffing.opened_at).total_seconds() / 3600))
    return found


def time_to_staff(hours: list[float]) -> TimeToStaff:
    if not enough(len(hours)):
        return TimeToStaff(disclosed(len(hours)), None, None, None)
    ordered = sorted(hours)
    # Linear between the closest ranks (the spreadsheet's PERCENTILE.INC), so 5 needs suffice.
    quartiles = statistics.quantiles(ordered, n=4, method="inclusive")
    deciles = statistics.quantiles(ordered, n=10, method="inclusive")
    return TimeToStaff(
        staffed_needs=len(ordered),
        median_hours=round(statistics.median(ordered), 1),
        p75_hours=round(quartiles[2], 1),
        p90_hours=round(deciles[8], 1),
    )


def proposal_outcomes(proposals: Iterable[Proposal]) -> ProposalOutcomes:
    asked = [p for p in proposals if p.kind is ProposalKind.PROPOSAL]
    picks = [p for p in proposals if p.kind is ProposalKind.PICK]

    def count(*statuses: ProposalStatus) -> int:
        return sum(1 for p in asked if p.status in statuses)

    accepted = count(*WAS_ACCEPTED)
    ratio = round(len(asked) / accepted, 1) if enough(accepted) and enough(len(asked)) else None
    return ProposalOutcomes(
        proposals=disclosed(len(asked)),
        accepted=disclosed(accepted),
        declined=disclosed(count(ProposalStatus.DECLINED)),
        expired=disclosed(count(ProposalStatus.EXPIRED)),
        withdrawn=disclosed(count(ProposalStatus.WITHDRAWN)),
        open=disclosed(count(ProposalStatus.OPEN)),
        picks=disclosed(len(picks)),
        proposals_per_acceptance=ratio,
    )


@dataclass(frozen=True)
class HoursSum:
    key: str  # a month (YYYY-MM) or a kind of help
    hours: float | None  # confirmed hours, withheld when fewer than five volunteers logged them
    volunteers: int | None  # who logged them, withheld below five


def confirmed_hours_by(entries: Iterable[HoursEntry], key: Callable[[HoursEntry], str]) -> list[HoursSum]:
    """Confirmed hours summed by ``key``, in the order of the keys."""
    minutes: defaultdict[str, int] = defaultdict(int)
    people: defaultdict[str, set[str]] = defaultdict(set)
    for entry in entries:
        if entry.state is HoursState.CONFIRMED:
            minutes[key(entry)] += entry.minutes
            people[key(entry)].add(entry.volunteer_id)
    return [
        HoursSum(
            name,
            round(minutes[name] / 60, 1) if enough(len(people[name])) else None,
            disclosed(len(people[name])),
        )
        for name in sorted(minutes)
    ]


def by_month(entry: HoursEntry) -> str:
    return f"{entry.day.year:04d}-{entry.day.month:02d}"


def by_category(entry: HoursEntry) -> str:
    return entry.category
