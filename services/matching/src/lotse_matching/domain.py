"""One need's staffing: proposals, answers, staffed and unstaffed, as changes to one need.

A `NeedWork` holds a need's record, its proposals and its staffing state for the length of one
MongoDB transaction; every method changes that state and emits the matching events, each with
the next staffing version of the need. `save` writes it all, events into the outbox, in the
caller's transaction. The in-memory index changes only after the commit (`after`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from enum import StrEnum
from functools import partial
from typing import Any

from lotse_contracts import (
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
    new_event,
)
from lotse_contracts.base import EventData
from lotse_contracts.events.matching import AnswerChannel, UnstaffedReason, WithdrawReason
from lotse_contracts.events.partner import DeclineReason
from lotse_contracts.topics import PROPOSALS
from lotse_matching import audited
from lotse_matching.candidates import Candidate, Engagement, Need, assess, candidate
from lotse_matching.index import TenantIndex
from lotse_matching.office import BrokenRule, Standing, broken_rules
from lotse_matching.profiles import need_from_record
from lotse_matching.schedule import find_overlap
from lotse_matching.sealing import PersonKeys, for_the_topic
from lotse_matching.settings import MatchingSettings
from lotse_matching.store import (
    Actor,
    Document,
    MatchingStore,
    NeedRecord,
    NeedStatus,
    Proposal,
    ProposalKind,
    ProposalStatus,
    Staffing,
    StaffingState,
    Transaction,
)

SOURCE = "/lotse/matching"


class Outcome(StrEnum):
    ACCEPTED = "accepted"
    DECLINED = "declined"
    PICKED = "picked"
    STEPPED_BACK = "stepped_back"
    ALREADY_ACCEPTED = "already_accepted"
    ALREADY_DECLINED = "already_declined"
    NO_LONGER_NEEDED = "no_longer_needed"
    EXPIRED = "expired"
    LIMIT_REACHED = "limit_reached"
    NOT_A_FIT = "not_a_fit"
    NOT_FOUND = "not_found"
    DUPLICATE = "duplicate"
    # the office's actions
    PROPOSED = "proposed"
    BROKEN_RULES = "broken_rules"
    NOT_COMMITTED = "not_committed"
    ROUND_STARTED = "round_started"
    NO_CANDIDATES = "no_candidates"
    KEY_REUSED = "key_reused"


def new_staffing(details: Document, now: datetime, settings: MatchingSettings, tenant: str) -> Staffing:
    _, _, unstaffed_after = settings.policy(tenant)
    escalate_at, reason = now + timedelta(seconds=unstaffed_after), UnstaffedReason.PROPOSALS_EXPIRED
    schedule = details["schedule"]
    if schedule["kind"] == "one_off":
        before_start = datetime.fromisoformat(schedule["start"]) - timedelta(seconds=settings.start_lead_seconds)
        if before_start < escalate_at:
            escalate_at, reason = before_start, UnstaffedReason.START_APPROACHING
    return Staffing(
        version=0,
        state=StaffingState.OPEN,
        committed=[],
        opened_at=now,
        escalate_at=escalate_at,
        escalate_reason=reason,
        escalated=False,
    )


class NeedWork:
    def __init__(
        self,
        *,
        record: NeedRecord,
        proposals: list[Proposal],
        index: TenantIndex,
        settings: MatchingSettings,
        now: datetime,
        cause: Envelope[Any] | None,
        is_new: bool = False,
    ) -> None:
        self.record = record
        self.tenant = record.tenant
        self.need_id = record.need_id
        self.base_version: int | None = None if is_new else record.staffing.version
        self.proposals: dict[str, Proposal] = {p.id: p for p in proposals}
        self.index = index
        self.settings = settings
        self.now = now
        self.cause = cause
        self.events: list[Envelope[Any]] = []
        self.after: list[Callable[[], None]] = []
        self._changed: set[str] = set()
        self._need: Need | None = None
        # As loaded, for the audit trail's changed fields (proposals are replaced whole, never changed).
        self._loaded_need = None if is_new else record.to_document()
        self._loaded_proposals = dict(self.proposals)

    # -- reading --------------------------------------------------------------------------------

    @property
    def staffing(self) -> Staffing:
        return self.record.staffing

    @property
    def committed(self) -> list[str]:
        return self.record.staffing.committed

    @property
    def needed(self) -> int:
        return self.record.volunteers_needed

    @property
    def is_open(self) -> bool:
        return self.record.is_open

    def need(self) -> Need:
        if self._need is None:
            self._need = need_from_record(self.record, self.index.timezone)
        return self._need

    def open_proposals(self, volunteer_id: str | None = None) -> list[Proposal]:
        return [
            p
            for p in self.proposals.values()
            if p.status is ProposalStatus.OPEN and (volunteer_id is None or p.volunteer_id == volunteer_id)
        ]

    def excluded(self) -> set[str]:
        """Who is not asked for this need: who has an open proposal, is committed, stepped back or
        was released, and everybody asked in the current round. Before the office starts a round
        by hand the round is the whole life of the need, so nobody is asked twice."""
        since = self.staffing.round_started_at
        staying = (ProposalStatus.OPEN, ProposalStatus.ACCEPTED, ProposalStatus.STEPPED_BACK)
        asked = {
            p.volunteer_id
            for p in self.proposals.values()
            if since is None or p.status in staying or p.proposed_at >= since
        }
        return asked | set(self.committed)

    def standing(self, volunteer_id: str) -> Standing:
        if volunteer_id in self.committed:
            return Standing.COMMITTED
        if self.open_proposals(volunteer_id):
            return Standing.PROPOSED
        if volunteer_id not in self.excluded():
            return Standing.NONE
        theirs = [p for p in self.proposals.values() if p.volunteer_id == volunteer_id]
        if any(p.status is ProposalStatus.STEPPED_BACK for p in theirs):
            return Standing.LEFT
        return Standing.ASKED

    # -- changing -------------------------------------------------------------------------------

    def emit(self, data: EventData) -> None:
        self.staffing.version += 1
        self.events.append(
            new_event(
                data=data,
                tenant=self.tenant,
                subject=self.need_id,
                version=self.staffing.version,
                source=SOURCE,
                correlationid=self.cause.correlationid if self.cause else None,
                causationid=self.cause.id if self.cause else None,
            )
        )

    def _set(
        self,
        proposal: Proposal,
        status: ProposalStatus,
        *,
        via: AnswerChannel | None = None,
        withdrawn: WithdrawReason | None = None,
        declined: DeclineReason | None = None,
        recorded_by: Actor | None = None,
        released_by: Actor | None = None,
    ) -> None:
        """The proposal answered (or ended) now; an unanswered channel or reason stays as it was,
        and so does who of the office recorded the answer or released the volunteer."""
        self.proposals[proposal.id] = replace(
            proposal,
            status=status,
            answered_at=self.now,
            answered_via=proposal.answered_via if via is None else via,
            withdraw_reason=proposal.withdraw_reason if withdrawn is None else withdrawn,
            decline_reason=proposal.decline_reason if declined is None else declined,
            recorded_by=proposal.recorded_by if recorded_by is None else recorded_by,
            released_by=proposal.released_by if released_by is None else released_by,
        )
        self._changed.add(proposal.id)

    def top_up(self, trigger: UnstaffedReason | None = None) -> int:
        """Propose the best candidates until k proposals are open; escalate if nobody is left."""
        if not self.is_open:
            return 0
        still_needed = self.needed - len(self.committed)
        if still_needed <= 0:
            self.check_staffed()
            return 0
        per_round, answer_seconds, _ = self.settings.policy(self.tenant)
        room = max(per_round, still_needed) - len(self.open_proposals())
        created = 0
        if room > 0:
            for found in self.index.top_k(self.need(), self.index.context(self.now, self.excluded()), room):
                self._propose(found, answer_seconds)
                created += 1
        if not self.open_proposals() and self.staffing.state is not StaffingState.UNSTAFFED:
            self.staffing.state = StaffingState.UNSTAFFED
            self.emit(self._unstaffed(trigger or self._why_unstaffed()))
        elif created and self.staffing.state is StaffingState.UNSTAFFED:
            self.staffing.state = StaffingState.OPEN
        return created

    def _propose(self, found: Candidate, answer_seconds: int, proposed_by: Actor | None = None) -> str:
        proposal_id = str(uuid.uuid4())
        expires_at = self.now + timedelta(seconds=answer_seconds)
        self.emit(
            MatchProposed(
                need_id=uuid.UUID(self.need_id),
                volunteer_id=uuid.UUID(found.volunteer_id),
                proposal_id=uuid.UUID(proposal_id),
                organisation_id=uuid.UUID(self.record.organisation_id),
                score=found.score,
                reasons=list(found.reasons),
                # The proposal mail goes to the volunteer, who has not committed: the rough distance.
                distance_km=found.rough_distance_km,
                expires_at=expires_at,
                # No answer links: a capability on a topic outlives the mail (notifications signs them).
            )
        )
        self.proposals[proposal_id] = Proposal(
            id=proposal_id,
            tenant=self.tenant,
            need_id=self.need_id,
            volunteer_id=found.volunteer_id,
            kind=ProposalKind.PROPOSAL,
            status=ProposalStatus.OPEN,
            score=found.score,
            reasons=found.reasons,
            distance_km=found.distance_km,
            proposed_at=self.now,
            expires_at=expires_at,
            answered_at=None,
            answered_via=None,
            event_id=str(self.events[-1].id),  # erased with the volunteer
            proposed_by=proposed_by,
        )
        self._changed.add(proposal_id)
        volunteer_id, at = found.volunteer_id, self.now
        self.after.append(lambda: self.index.record_ask(volunteer_id, at))
        return proposal_id

    def _why_unstaffed(self) -> UnstaffedReason:
        ended = sorted(
            (p for p in self.proposals.values() if p.status in (ProposalStatus.DECLINED, ProposalStatus.EXPIRED)),
            # Declined and expired proposals were answered, so `answered_at` is set.
            key=lambda p: (p.answered_at or p.proposed_at, p.id),
        )
        if not ended:
            return UnstaffedReason.NO_CANDIDATES
        return (
            UnstaffedReason.PROPOSALS_EXPIRED
            if ended[-1].status is ProposalStatus.EXPIRED
            else UnstaffedReason.ALL_DECLINED
        )

    def _unstaffed(self, reason: UnstaffedReason) -> NeedUnstaffed:
        return NeedUnstaffed(
            need_id=uuid.UUID(self.need_id),
            organisation_id=uuid.UUID(self.record.organisation_id),
            reason=reason,
            volunteers_committed=len(self.committed),
            volunteers_needed=self.needed,
        )

    def accept(self, proposal: Proposal, via: AnswerChannel, recorded_by: Actor | None = None) -> Outcome:
        volunteer_id = proposal.volunteer_id
        if not self._may_commit(volunteer_id):
            return Outcome.LIMIT_REACHED
        self._set(proposal, ProposalStatus.ACCEPTED, via=via, recorded_by=recorded_by)
        self.emit(ProposalAccepted(**self._ids(proposal), answered_via=via))
        self._commit(volunteer_id)
        return Outcome.ACCEPTED

    def pick(self, volunteer_id: str) -> Outcome:
        """A volunteer takes the need themselves; an open proposal for it counts as accepted."""
        if volunteer_id in self.committed:
            return Outcome.ALREADY_ACCEPTED
        if not self.is_open:
            return Outcome.NO_LONGER_NEEDED
        mine = self.open_proposals(volunteer_id)
        if mine:
            return self.accept(mine[0], AnswerChannel.VOLUNTEER_APP)
        volunteer = self.index.volunteers.get(volunteer_id)
        if volunteer is None or isinstance(assess(volunteer, self.need(), self.index.context(self.now)), str):
            return Outcome.NOT_A_FIT
        pick_id = str(uuid.uuid4())
        self.proposals[pick_id] = Proposal(
            id=pick_id,
            tenant=self.tenant,
            need_id=self.need_id,
            volunteer_id=volunteer_id,
            kind=ProposalKind.PICK,
            status=ProposalStatus.ACCEPTED,
            reasons=(),
            proposed_at=self.now,
            expires_at=None,
            answered_at=self.now,
            answered_via=AnswerChannel.VOLUNTEER_APP,
        )
        self._changed.add(pick_id)
        self.emit(VolunteerPickedNeed(need_id=uuid.UUID(self.need_id), volunteer_id=uuid.UUID(volunteer_id)))
        self._commit(volunteer_id)
        return Outcome.PICKED

    def _may_commit(self, volunteer_id: str) -> bool:
        """Re-checked at the moment of the answer: the volunteer's own limit and no overlap."""
        volunteer = self.index.volunteers.get(volunteer_id)
        if volunteer is None or not volunteer.active:
            return False
        others = [e for e in self.index.engagements.get(volunteer_id, ()) if e.need_id != self.need_id]
        if len(others) >= volunteer.max_engagements:
            return False
        return not any(find_overlap(self.need().pieces, e.pieces) for e in others)

    def _commit(self, volunteer_id: str) -> None:
        self.committed.append(volunteer_id)
        engagement = Engagement(self.need_id, self.need().pieces)
        self.after.append(lambda: self.index.add_engagement(volunteer_id, engagement))
        self.check_staffed()

    def check_staffed(self) -> None:
        if len(self.committed) >= self.needed and self.staffing.state is not StaffingState.STAFFED:
            self.staffing.state = StaffingState.STAFFED
            self.emit(
                NeedStaffed(need_id=uuid.UUID(self.need_id), volunteer_ids=[uuid.UUID(v) for v in self.committed])
            )
            self.withdraw_open(WithdrawReason.NEED_STAFFED)

    def decline(
        self, proposal: Proposal, via: AnswerChannel, reason: DeclineReason | None, recorded_by: Actor | None = None
    ) -> Outcome:
        self._set(proposal, ProposalStatus.DECLINED, via=via, declined=reason, recorded_by=recorded_by)
        self.emit(ProposalDeclined(**self._ids(proposal), answered_via=via, reason=reason))
        self.top_up()
        return Outcome.DECLINED

    def expire_overdue(self) -> int:
        overdue = [p for p in self.open_proposals() if p.expires_at is not None and p.expires_at <= self.now]
        for proposal in overdue:
            self._set(proposal, ProposalStatus.EXPIRED)
            self.emit(ProposalExpired(**self._ids(proposal)))
        if overdue:
            self.top_up()
        return len(overdue)

    def withdraw_open(self, reason: WithdrawReason, volunteer_id: str | None = None) -> None:
        for proposal in self.open_proposals(volunteer_id):
            self._set(proposal, ProposalStatus.WITHDRAWN, withdrawn=reason)
            self.emit(ProposalWithdrawn(**self._ids(proposal), reason=reason))

    def step_back(self, volunteer_id: str, released_by: Actor | None = None) -> Outcome:
        """The volunteer steps back, or the office releases them (``released_by``): the need goes
        round again."""
        if volunteer_id not in self.committed:
            return Outcome.NOT_FOUND
        self.committed.remove(volunteer_id)
        for proposal in list(self.proposals.values()):
            if proposal.volunteer_id == volunteer_id and proposal.status is ProposalStatus.ACCEPTED:
                self._set(proposal, ProposalStatus.STEPPED_BACK, released_by=released_by)
        self.emit(VolunteerSteppedBack(need_id=uuid.UUID(self.need_id), volunteer_id=uuid.UUID(volunteer_id)))
        self.after.append(lambda: self.index.end_engagement(volunteer_id, self.need_id))
        if self.staffing.state is StaffingState.STAFFED:
            self.staffing.state = StaffingState.OPEN
        if self.record.status is NeedStatus.OPEN:
            self.top_up(UnstaffedReason.VOLUNTEER_STEPPED_BACK)
        return Outcome.STEPPED_BACK

    def need_changed(self) -> None:
        """The need's details changed: proposals that no longer fit are withdrawn, then top up."""
        self._need = None
        context = self.index.context(self.now)
        for proposal in self.open_proposals():
            volunteer = self.index.volunteers.get(proposal.volunteer_id)
            if volunteer is None or isinstance(assess(volunteer, self.need(), context), str):
                self._set(proposal, ProposalStatus.WITHDRAWN, withdrawn=WithdrawReason.NEED_CHANGED)
                self.emit(ProposalWithdrawn(**self._ids(proposal), reason=WithdrawReason.NEED_CHANGED))
        engagement = Engagement(self.need_id, self.need().pieces)
        for volunteer_id in list(self.committed):
            self.after.append(partial(self.index.add_engagement, volunteer_id, engagement))
        if len(self.committed) >= self.needed:
            self.check_staffed()
        else:
            if self.staffing.state is StaffingState.STAFFED:
                self.staffing.state = StaffingState.OPEN
            self.top_up()

    def close(self, status: NeedStatus, reason: WithdrawReason) -> None:
        """Cancelled or closed: open proposals are withdrawn and engagements end."""
        self.record.status = status
        self.withdraw_open(reason)
        self.staffing.state = StaffingState.CLOSED
        self.staffing.closed_at = self.now
        for volunteer_id in list(self.committed):
            self.after.append(partial(self.index.end_engagement, volunteer_id, self.need_id))

    # -- the office's actions ----------------------------------------------------------------------

    def check(self, volunteer_id: str) -> tuple[list[BrokenRule], Candidate | None]:
        """Every hard rule the volunteer breaks for this need, or their fit with score and reasons,
        exactly as a proposal round would find it. The volunteer must be in the index."""
        volunteer = self.index.volunteers[volunteer_id]
        context = self.index.context(self.now, self.excluded())
        broken = broken_rules(volunteer, self.need(), context, self.standing(volunteer_id))
        return broken, None if broken else candidate(volunteer, self.need(), context)

    def propose_chosen(self, volunteer_id: str, by: Actor) -> tuple[Outcome, list[BrokenRule], str | None]:
        """The office proposes a volunteer it chose, under the hard rules of every proposal; the
        proposal is like a round's (the same event, so the volunteer hears of it the same way)."""
        if not self.is_open:
            return Outcome.NO_LONGER_NEEDED, [], None
        broken, fit = self.check(volunteer_id)
        if fit is None:
            return Outcome.BROKEN_RULES, broken, None
        _, answer_seconds, _ = self.settings.policy(self.tenant)
        proposal_id = self._propose(fit, answer_seconds, proposed_by=by)
        if self.staffing.state is StaffingState.UNSTAFFED:
            self.staffing.state = StaffingState.OPEN
        return Outcome.PROPOSED, [], proposal_id

    def new_round(self, by: Actor) -> tuple[Outcome, list[str]]:
        """The office starts a proposal round now: who was asked before (and declined, let the
        proposal expire or had it withdrawn) may be asked again; who stepped back is not."""
        if not self.is_open:
            return Outcome.NO_LONGER_NEEDED, []
        self.staffing.round_started_at, self.staffing.round_started_by = self.now, by
        before = set(self.proposals)
        self.top_up()
        created = sorted(set(self.proposals) - before, key=lambda p: (-(self.proposals[p].score or 0), p))
        return (Outcome.ROUND_STARTED if created else Outcome.NO_CANDIDATES), created

    def escalate(self) -> bool:
        if not self.is_open or self.staffing.escalated or len(self.committed) >= self.needed:
            return False
        self.staffing.state = StaffingState.UNSTAFFED
        self.staffing.escalated = True
        self.emit(self._unstaffed(self.staffing.escalate_reason))
        return True

    def _ids(self, proposal: Proposal) -> dict[str, uuid.UUID]:
        return {
            "need_id": uuid.UUID(self.need_id),
            "volunteer_id": uuid.UUID(proposal.volunteer_id),
            "proposal_id": uuid.UUID(proposal.id),
        }

    # -- writing --------------------------------------------------------------------------------

    async def save(self, store: MatchingStore, transaction: Transaction, keys: PersonKeys) -> None:
        changed = [self.proposals[proposal_id] for proposal_id in sorted(self._changed)]
        await store.put_proposals(changed, transaction.session)
        await store.put_need(self.record, self.base_version, transaction.session)
        self._audit(changed, transaction)
        # A proposal goes with its fit sealed with the volunteer's key (``sealing``: the keys in one
        # read); the outbox entries in one write (a round asks several volunteers at once).
        sealed = await for_the_topic(self.tenant, self.events, keys)
        await transaction.append_events([(PROPOSALS.name, event) for event in sealed])
        self.after.append(self._refresh_open_need)

    def _audit(self, changed: list[Proposal], transaction: Transaction) -> None:
        """Note the proposals and the need this work wrote (field names only), each about its data
        subject: a proposal about its volunteer, the need about itself."""
        for proposal in changed:
            loaded = self._loaded_proposals.get(proposal.id)
            before = None if loaded is None else loaded.to_document()
            fields = audited.written_fields(before, proposal.to_document())
            transaction.audit(
                self.tenant,
                audited.operation_of(before),
                audited.PROPOSALS,
                proposal.id,
                fields,
                subject_id=proposal.volunteer_id,
            )
        fields = audited.written_fields(self._loaded_need, self.record.to_document())
        if fields:
            operation = audited.operation_of(self._loaded_need)
            transaction.audit(self.tenant, operation, audited.NEEDS, self.need_id, fields, subject_id=self.need_id)

    def _refresh_open_need(self) -> None:
        if self.is_open:
            self.index.open_needs[self.need_id] = self.need()
        else:
            self.index.open_needs.pop(self.need_id, None)
