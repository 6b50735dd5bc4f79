"""Matching events, produced by the matching service.

All of them concern one need's staffing: the envelope `subject` is the need
id and `version` the matching service's version of that need's staffing, so
one need's proposals, answers and staffing stay in order on one key.

`MatchProposed`, `ProposalAccepted`, `ProposalDeclined` and `VolunteerSteppedBack`
are read ignoring unknown fields: the first of the two releases that add who of
the coordination office proposed, recorded an answer or released a volunteer
(`proposed_by`, `recorded_by` and `recorded_at`, `released_by`; matching keeps
them on its proposals meanwhile).

How well and why a volunteer fits (score, reasons, distance) describes the
volunteer: since issue 18 matching publishes `proposal.proposed.v2`, with that
fit sealed with the volunteer's data key, so that the volunteer's erasure makes
it unreadable on the topic too; `.v1` is still read while it is retained.
"""

from __future__ import annotations

from enum import StrEnum
from uuid import UUID

from pydantic import AwareDatetime, Field

from lotse_contracts.base import Contract, EventData
from lotse_contracts.events.partner import DeclineReason
from lotse_contracts.events.values import (
    EXAMPLE_NEED_ID,
    EXAMPLE_ORGANISATION_ID,
    EXAMPLE_PROPOSAL_ID,
    EXAMPLE_VOLUNTEER_ID,
)
from lotse_contracts.personal_data import NOT_PERSONAL, DataCategory, Purpose, RetentionRule, personal
from lotse_contracts.sealed import EXAMPLE_SEALED, Sealed

# The record of processing (lotse_contracts.personal_data): who was proposed for what, why, and
# how they answered is about the volunteer.
_KEPT = RetentionRule.PROPOSALS_OF_CLOSED_NEEDS
VOLUNTEER_REFERENCE = personal(
    DataCategory.IDENTIFIER, Purpose.MATCHING, Purpose.NOTIFICATION, Purpose.COORDINATION, retention=_KEPT
)
ENGAGEMENT = personal(DataCategory.ENGAGEMENT, Purpose.MATCHING, Purpose.COORDINATION, retention=_KEPT)
MATCH_REASONS = personal(
    DataCategory.ENGAGEMENT,
    Purpose.MATCHING,
    Purpose.NOTIFICATION,
    retention=_KEPT,
    note="name the volunteer's languages, checked certificates and distance",
)
DISTANCE = personal(DataCategory.LOCATION, Purpose.MATCHING, retention=_KEPT, note="derived from the home area")
SEALED_FIT = personal(
    DataCategory.ENGAGEMENT,
    Purpose.MATCHING,
    Purpose.NOTIFICATION,
    retention=_KEPT,
    note="score, reasons and distance, sealed with the volunteer's data key: unreadable once the key is destroyed",
)


class NeedStaffing(EventData):
    subject_field = "need_id"

    need_id: UUID = Field(
        description="The need; also the envelope subject.", examples=[EXAMPLE_NEED_ID], json_schema_extra=NOT_PERSONAL
    )


class VolunteerOfNeed(NeedStaffing):
    volunteer_id: UUID = Field(
        description="The volunteer.", examples=[EXAMPLE_VOLUNTEER_ID], json_schema_extra=VOLUNTEER_REFERENCE
    )


class ProposalOfNeed(VolunteerOfNeed):
    proposal_id: UUID = Field(
        description="The proposal.", examples=[EXAMPLE_PROPOSAL_ID], json_schema_extra=NOT_PERSONAL
    )


class ReasonCode(StrEnum):
    SKILLS = "skills"
    LANGUAGE = "language"
    DISTANCE = "distance"
    AVAILABILITY = "availability"
    CERTIFICATE = "certificate"
    ORGANISATION = "organisation"


class MatchReason(Contract):
    """Why matching thinks this volunteer fits; shown to the volunteer."""

    code: ReasonCode = Field(
        description="Which criterion fits.", examples=["language"], json_schema_extra=MATCH_REASONS
    )
    detail: str = Field(
        max_length=200,
        description="Human-readable explanation.",
        examples=["speaks ar at level b2 or better"],
        json_schema_extra=MATCH_REASONS,
    )


class MatchFit(Contract):
    """How well and why the volunteer fits the need (``proposal.proposed.v1``'s score, reasons and
    distance): it names the volunteer's languages, checked certificates and distance, so
    ``proposal.proposed.v2`` carries it sealed with the volunteer's data key."""

    score: float = Field(
        ge=0,
        le=1,
        description="How well the volunteer fits, 1 is best.",
        examples=[0.82],
        strict=True,
        json_schema_extra=ENGAGEMENT,
    )
    reasons: list[MatchReason] = Field(
        min_length=1,
        description="Why the volunteer fits.",
        examples=[[{"code": "language", "detail": "speaks ar at level b2 or better"}]],
        json_schema_extra=MATCH_REASONS,
    )
    distance_km: float | None = Field(
        default=None,
        ge=0,
        description="Distance from the volunteer's home area, in km.",
        examples=[3.4],
        strict=True,
        json_schema_extra=DISTANCE,
    )


class MatchProposed(ProposalOfNeed, MatchFit, extra="ignore"):
    """Matching proposes a need to a volunteer; the volunteer decides."""

    event_type = "de.lotse.matching.proposal.proposed.v1"

    organisation_id: UUID = Field(
        description="Organisation that owns the need.",
        examples=[EXAMPLE_ORGANISATION_ID],
        json_schema_extra=NOT_PERSONAL,
    )
    expires_at: AwareDatetime = Field(
        description="When the proposal expires unanswered.",
        examples=["2026-11-28T09:00:00+01:00"],
        json_schema_extra=ENGAGEMENT,
    )
    accept_url: str | None = Field(
        default=None,
        max_length=2000,
        description=(
            "Deprecated, never set: an answer link is a capability and is kept out of topics. Notifications signs "
            "the volunteer's links itself when it sends the proposal mail."
        ),
        examples=[None],
        json_schema_extra=NOT_PERSONAL,
    )
    decline_url: str | None = Field(
        default=None,
        max_length=2000,
        description="Deprecated, never set: see accept_url.",
        examples=[None],
        json_schema_extra=NOT_PERSONAL,
    )


class MatchProposedSealed(ProposalOfNeed, extra="ignore"):
    """Matching proposes a need to a volunteer; ``proposal.proposed.v1`` with the fit sealed with the
    volunteer's data key (the message key `<tenant>:<need_id>` is the additional data)."""

    event_type = "de.lotse.matching.proposal.proposed.v2"

    organisation_id: UUID = Field(
        description="Organisation that owns the need.",
        examples=[EXAMPLE_ORGANISATION_ID],
        json_schema_extra=NOT_PERSONAL,
    )
    fit: Sealed[MatchFit] | None = Field(
        default=None,
        description=(
            "Score, reasons and distance, sealed with the volunteer's data key. Absent when the volunteer's key "
            "was already destroyed as they were proposed (they are erased; the proposal is withdrawn)."
        ),
        examples=[EXAMPLE_SEALED],
        json_schema_extra=SEALED_FIT,
    )
    expires_at: AwareDatetime = Field(
        description="When the proposal expires unanswered.",
        examples=["2026-11-28T09:00:00+01:00"],
        json_schema_extra=ENGAGEMENT,
    )

    def unsealed(self, fit: MatchFit) -> MatchProposed:
        """The event as ``proposal.proposed.v1`` has it, opened."""
        return MatchProposed.model_validate({**self.model_dump(exclude={"fit"}), **fit.model_dump()})


class AnswerChannel(StrEnum):
    VOLUNTEER_APP = "volunteer_app"
    PARTNER = "partner"
    COORDINATION_OFFICE = "coordination_office"


class ProposalAccepted(ProposalOfNeed, extra="ignore"):
    """The volunteer accepted the proposal and commits to the need."""

    event_type = "de.lotse.matching.proposal.accepted.v1"

    answered_via: AnswerChannel = Field(
        description="Where the volunteer answered.", examples=["volunteer_app"], json_schema_extra=ENGAGEMENT
    )


class ProposalDeclined(ProposalOfNeed, extra="ignore"):
    """The volunteer declined the proposal."""

    event_type = "de.lotse.matching.proposal.declined.v1"

    answered_via: AnswerChannel = Field(
        description="Where the volunteer answered.", examples=["partner"], json_schema_extra=ENGAGEMENT
    )
    reason: DeclineReason | None = Field(
        default=None, description="Why, if the volunteer said.", examples=["too_far"], json_schema_extra=ENGAGEMENT
    )


class ProposalExpired(ProposalOfNeed):
    """The proposal expired unanswered."""

    event_type = "de.lotse.matching.proposal.expired.v1"


class WithdrawReason(StrEnum):
    NEED_STAFFED = "need_staffed"
    NEED_CANCELLED = "need_cancelled"
    NEED_CLOSED = "need_closed"
    NEED_CHANGED = "need_changed"
    VOLUNTEER_WITHDRAWN = "volunteer_withdrawn"


class ProposalWithdrawn(ProposalOfNeed):
    """Matching takes back an open proposal, e.g. once the need is staffed."""

    event_type = "de.lotse.matching.proposal.withdrawn.v1"

    reason: WithdrawReason = Field(
        description="Why the proposal was withdrawn.", examples=["need_staffed"], json_schema_extra=ENGAGEMENT
    )


class VolunteerSteppedBack(VolunteerOfNeed, extra="ignore"):
    """A volunteer who had accepted no longer helps with the need."""

    event_type = "de.lotse.matching.volunteer.stepped_back.v1"


class VolunteerPickedNeed(VolunteerOfNeed):
    """A volunteer took an open need themselves, without a proposal."""

    event_type = "de.lotse.matching.volunteer.picked_need.v1"


class NeedStaffed(NeedStaffing):
    """The need has as many committed volunteers as it asks for."""

    event_type = "de.lotse.matching.need.staffed.v1"

    volunteer_ids: list[UUID] = Field(
        min_length=1,
        description="Volunteers who committed.",
        examples=[[EXAMPLE_VOLUNTEER_ID]],
        json_schema_extra=VOLUNTEER_REFERENCE,
    )


class UnstaffedReason(StrEnum):
    NO_CANDIDATES = "no_candidates"
    ALL_DECLINED = "all_declined"
    PROPOSALS_EXPIRED = "proposals_expired"
    VOLUNTEER_STEPPED_BACK = "volunteer_stepped_back"
    START_APPROACHING = "start_approaching"


class NeedUnstaffed(NeedStaffing):
    """Escalation: the need lacks volunteers; the owning organisation should act."""

    event_type = "de.lotse.matching.need.unstaffed.v1"

    organisation_id: UUID = Field(
        description="Organisation to escalate to.", examples=[EXAMPLE_ORGANISATION_ID], json_schema_extra=NOT_PERSONAL
    )
    reason: UnstaffedReason = Field(
        description="Why nobody is found.", examples=["all_declined"], json_schema_extra=NOT_PERSONAL
    )
    volunteers_committed: int = Field(
        ge=0, description="Volunteers committed so far.", examples=[0], strict=True, json_schema_extra=NOT_PERSONAL
    )
    volunteers_needed: int = Field(
        ge=1, description="Volunteers the need asks for.", examples=[1], strict=True, json_schema_extra=NOT_PERSONAL
    )
