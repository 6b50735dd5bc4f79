"""One need's staffing: proposals, answers, staffed and unstaffed, as changes to one need.

A `NeedWork` holds a need, its proposals and its staffing state for the length of one MongoDB
transaction; every method changes that state and emits the matching events, each with the
next staffing version of the need. `save` writes it all, events into the outbox, in the
caller's transaction. The in-memory index changes only after the commit (`after`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from enum import StrEnum
from functools import partial
from typing import Any

from lotse_contracts import (
    Envelope,
    MatchProposed,
    MatchReason,
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
from lotse_matching.candidates import Candidate, Engagement, Need, assess
from lotse_matching.index import TenantIndex
from lotse_matching.profiles import need_from_document
from lotse_matching.schedule import find_overlap
from lotse_matching.settings import MatchingSettings
from lotse_matching.store import Document, NeedStatus, ProposalStatus, StaffingState, Store
from lotse_runtime.unit_of_work import Transaction

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


def new_staffing(details: dict[str, Any], now: datetime, settings: MatchingSettings, tenant: str) -> Document:
    _, _, unstaffed_after = settings.policy(tenant)
    escalate_at, reason = now + timedelta(seconds=unstaffed_after), UnstaffedReason.PROPOSALS_EXPIRED
    schedule = details["schedule"]
    if schedule["kind"] == "one_off":
        before_start = datetime.fromisoformat(schedule["start"]) - timedelta(seconds=settings.start_lead_seconds)
        if before_start < escalate_at:
            escalate_at, reason = before_start, UnstaffedReason.START_APPROACHING
    return {
        "version": 0,
        "state": StaffingState.OPEN.value,
        "committed": [],
        "opened_at": now,
        "escalate_at": escalate_at,
        "escalate_reason": reason.value,
        "escalated": False,
    }


class NeedWork:
    def __init__(
        self,
        *,
        document: Document,
        proposals: list[Document],
        index: TenantIndex,
        settings: MatchingSettings,
        now: datetime,
        cause: Envelope[Any] | None,
        is_new: bool = False,
    ) -> None:
        self.document = document
        self.tenant: str = document["tenant"]
        self.need_id: str = document["need_id"]
        self.base_version: int | None = None if is_new else document["staffing"]["version"]
        self.proposals: dict[str, Document] = {p["_id"]: p for p in proposals}
        self.index = index
        self.settings = settings
        self.now = now
        self.cause = cause
        self.events: list[Envelope[Any]] = []
        self.after: list[Callable[[], None]] = []
        self._changed: set[str] = set()
        self._need: Need | None = None

    # -- reading --------------------------------------------------------------------------------

    @property
    def staffing(self) -> Document:
        staffing: Document = self.document["staffing"]
        return staffing

    @property
    def committed(self) -> list[str]:
        committed: list[str] = self.staffing["committed"]
        return committed

    @property
    def needed(self) -> int:
        return int(self.document["details"]["volunteers_needed"])

    @property
    def is_open(self) -> bool:
        return bool(self.document["status"] == NeedStatus.OPEN and self.staffing["state"] != StaffingState.STAFFED)

    def need(self) -> Need:
        if self._need is None:
            self._need = need_from_document(self.document, self.index.timezone)
        return self._need

    def open_proposals(self, volunteer_id: str | None = None) -> list[Document]:
        return [
            p
            for p in self.proposals.values()
            if p["status"] == ProposalStatus.OPEN and (volunteer_id is None or p["volunteer_id"] == volunteer_id)
        ]

    # -- changing -------------------------------------------------------------------------------

    def emit(self, data: EventData) -> None:
        self.staffing["version"] += 1
        self.events.append(
            new_event(
                data=data,
                tenant=self.tenant,
                subject=self.need_id,
                version=self.staffing["version"],
                source=SOURCE,
                correlationid=self.cause.correlationid if self.cause else None,
                causationid=self.cause.id if self.cause else None,
            )
        )

    def _set(self, proposal: Document, status: ProposalStatus, **fields: Any) -> None:
        proposal.update(status=status.value, answered_at=self.now, **fields)
        self._changed.add(proposal["_id"])

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
            asked = {p["volunteer_id"] for p in self.proposals.values()} | set(self.committed)
            for found in self.index.top_k(self.need(), self.index.context(self.now, asked), room):
                self._propose(found, answer_seconds)
                created += 1
        if not self.open_proposals() and self.staffing["state"] != StaffingState.UNSTAFFED:
            self.staffing["state"] = StaffingState.UNSTAFFED.value
            self.emit(self._unstaffed(trigger or self._why_unstaffed()))
        elif created and self.staffing["state"] == StaffingState.UNSTAFFED:
            self.staffing["state"] = StaffingState.OPEN.value
        return created

    def _propose(self, found: Candidate, answer_seconds: int) -> None:
        proposal_id = str(uuid.uuid4())
        expires_at = self.now + timedelta(seconds=answer_seconds)
        self.proposals[proposal_id] = {
            "_id": proposal_id,
            "tenant": self.tenant,
            "need_id": self.need_id,
            "volunteer_id": found.volunteer_id,
            "kind": "proposal",
            "status": ProposalStatus.OPEN.value,
            "score": found.score,
            "reasons": [reason.model_dump(mode="json") for reason in found.reasons],
            "distance_km": found.distance_km,
            "proposed_at": self.now,
            "expires_at": expires_at,
            "answered_at": None,
            "answered_via": None,
        }
        self._changed.add(proposal_id)
        self.emit(
            MatchProposed(
                need_id=uuid.UUID(self.need_id),
                volunteer_id=uuid.UUID(found.volunteer_id),
                proposal_id=uuid.UUID(proposal_id),
                organisation_id=uuid.UUID(self.document["details"]["organisation_id"]),
                score=found.score,
                reasons=list(found.reasons),
                distance_km=found.distance_km,
                expires_at=expires_at,
                # No answer links: a capability on a topic outlives the mail (notifications signs them).
            )
        )
        self.proposals[proposal_id]["event_id"] = str(self.events[-1].id)  # erased with the volunteer
        volunteer_id, at = found.volunteer_id, self.now
        self.after.append(lambda: self.index.record_ask(volunteer_id, at))

    def _why_unstaffed(self) -> UnstaffedReason:
        ended = sorted(
            (p for p in self.proposals.values() if p["status"] in (ProposalStatus.DECLINED, ProposalStatus.EXPIRED)),
            key=lambda p: (p["answered_at"], p["_id"]),
        )
        if not ended:
            return UnstaffedReason.NO_CANDIDATES
        return (
            UnstaffedReason.PROPOSALS_EXPIRED
            if ended[-1]["status"] == ProposalStatus.EXPIRED
            else UnstaffedReason.ALL_DECLINED
        )

    def _unstaffed(self, reason: UnstaffedReason) -> NeedUnstaffed:
        return NeedUnstaffed(
            need_id=uuid.UUID(self.need_id),
            organisation_id=uuid.UUID(self.document["details"]["organisation_id"]),
            reason=reason,
            volunteers_committed=len(self.committed),
            volunteers_needed=self.needed,
        )

    def accept(self, proposal: Document, via: AnswerChannel) -> Outcome:
        volunteer_id = proposal["volunteer_id"]
        if not self._may_commit(volunteer_id):
            return Outcome.LIMIT_REACHED
        self._set(proposal, ProposalStatus.ACCEPTED, answered_via=via.value)
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
        self.proposals[pick_id] = {
            "_id": pick_id,
            "tenant": self.tenant,
            "need_id": self.need_id,
            "volunteer_id": volunteer_id,
            "kind": "pick",
            "status": ProposalStatus.ACCEPTED.value,
            "reasons": [],
            "proposed_at": self.now,
            "expires_at": None,
            "answered_at": self.now,
            "answered_via": AnswerChannel.VOLUNTEER_APP.value,
        }
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
        if len(self.committed) >= self.needed and self.staffing["state"] != StaffingState.STAFFED:
            self.staffing["state"] = StaffingState.STAFFED.value
            self.emit(
                NeedStaffed(need_id=uuid.UUID(self.need_id), volunteer_ids=[uuid.UUID(v) for v in self.committed])
            )
            self.withdraw_open(WithdrawReason.NEED_STAFFED)

    def decline(self, proposal: Document, via: AnswerChannel, reason: DeclineReason | None) -> Outcome:
        self._set(proposal, ProposalStatus.DECLINED, answered_via=via.value)
        self.emit(ProposalDeclined(**self._ids(proposal), answered_via=via, reason=reason))
        self.top_up()
        return Outcome.DECLINED

    def expire_overdue(self) -> int:
        overdue = [p for p in self.open_proposals() if p["expires_at"] <= self.now]
        for proposal in overdue:
            self._set(proposal, ProposalStatus.EXPIRED)
            self.emit(ProposalExpired(**self._ids(proposal)))
        if overdue:
            self.top_up()
        return len(overdue)

    def withdraw_open(self, reason: WithdrawReason, volunteer_id: str | None = None) -> None:
        for proposal in self.open_proposals(volunteer_id):
            self._set(proposal, ProposalStatus.WITHDRAWN, withdraw_reason=reason.value)
            self.emit(ProposalWithdrawn(**self._ids(proposal), reason=reason))

    def step_back(self, volunteer_id: str) -> Outcome:
        if volunteer_id not in self.committed:
            return Outcome.NOT_FOUND
        self.committed.remove(volunteer_id)
        for proposal in self.proposals.values():
            if proposal["volunteer_id"] == volunteer_id and proposal["status"] == ProposalStatus.ACCEPTED:
                self._set(proposal, ProposalStatus.STEPPED_BACK)
        self.emit(VolunteerSteppedBack(need_id=uuid.UUID(self.need_id), volunteer_id=uuid.UUID(volunteer_id)))
        self.after.append(lambda: self.index.end_engagement(volunteer_id, self.need_id))
        if self.staffing["state"] == StaffingState.STAFFED:
            self.staffing["state"] = StaffingState.OPEN.value
        if self.document["status"] == NeedStatus.OPEN:
            self.top_up(UnstaffedReason.VOLUNTEER_STEPPED_BACK)
        return Outcome.STEPPED_BACK

    def need_changed(self) -> None:
        """The need's details changed: proposals that no longer fit are withdrawn, then top up."""
        self._need = None
        context = self.index.context(self.now)
        for proposal in self.open_proposals():
            volunteer = self.index.volunteers.get(proposal["volunteer_id"])
            if volunteer is None or isinstance(assess(volunteer, self.need(), context), str):
                self._set(proposal, ProposalStatus.WITHDRAWN, withdraw_reason=WithdrawReason.NEED_CHANGED.value)
                self.emit(ProposalWithdrawn(**self._ids(proposal), reason=WithdrawReason.NEED_CHANGED))
        engagement = Engagement(self.need_id, self.need().pieces)
        for volunteer_id in list(self.committed):
            self.after.append(partial(self.index.add_engagement, volunteer_id, engagement))
        if len(self.committed) >= self.needed:
            self.check_staffed()
        else:
            if self.staffing["state"] == StaffingState.STAFFED:
                self.staffing["state"] = StaffingState.OPEN.value
            self.top_up()

    def close(self, status: NeedStatus, reason: WithdrawReason) -> None:
        """Cancelled or closed: open proposals are withdrawn and engagements end."""
        self.document["status"] = status.value
        self.withdraw_open(reason)
        self.staffing["state"] = StaffingState.CLOSED.value
        for volunteer_id in list(self.committed):
            self.after.append(partial(self.index.end_engagement, volunteer_id, self.need_id))

    def escalate(self) -> bool:
        if not self.is_open or self.staffing["escalated"] or len(self.committed) >= self.needed:
            return False
        self.staffing.update(state=StaffingState.UNSTAFFED.value, escalated=True)
        self.emit(self._unstaffed(UnstaffedReason(self.staffing["escalate_reason"])))
        return True

    def _ids(self, proposal: Document) -> dict[str, uuid.UUID]:
        return {
            "need_id": uuid.UUID(self.need_id),
            "volunteer_id": uuid.UUID(proposal["volunteer_id"]),
            "proposal_id": uuid.UUID(proposal["_id"]),
        }

    # -- writing --------------------------------------------------------------------------------

    async def save(self, store: Store, transaction: Transaction) -> None:
        for proposal_id in sorted(self._changed):
            await store.put_proposal(self.proposals[proposal_id], transaction.session)
        await store.put_need(self.document, self.base_version, transaction.session)
        for event in self.events:
            await transaction.append_event(PROPOSALS.name, event)
        self.after.append(self._refresh_open_need)

    def _refresh_open_need(self) -> None:
        if self.is_open:
            self.index.open_needs[self.need_id] = self.need()
        else:
            self.index.open_needs.pop(self.need_id, None)


def reasons_of(proposal: Document) -> list[MatchReason]:
    return [MatchReason.model_validate(reason) for reason in proposal.get("reasons") or []]
