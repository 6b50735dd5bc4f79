"""What a partner system receives by webhook: a projection per event type (issue 18, item 2).

Partners (a municipality's case management, accommodation management, other volunteer portals)
follow a need: whether it is open, changed, staffed, in trouble or over. They get nothing about the
people who help unless their webhook asks for it (``PartnerField``), and never why matching thinks
someone fits: the reasons ("speaks ar (native)", "holds a valid extended police certificate", the
distance from home) describe the volunteer and are for the volunteer and the office only.

- Need events (``de.lotse.registry.need.*``) are forwarded as the registry publishes them: they
  describe the need, never a person (no name or document fields, at most an opaque
  ``household_ref``, see contracts/README.md), and their ``dataschema`` stays the event's.
- Matching events are projected: the need and what happened to its staffing, without volunteer
  ids, proposal ids (each names one volunteer's proposal), scores, distances or reasons. Their
  ``dataschema`` is ``https://schemas.lotse.de/webhooks/<type>.json``, the models below
  (``GET /webhooks/schemas`` answers their JSON Schemas).
- Any other event type is not forwarded (a new event type reaches partners only with a projection
  written for it here).

How someone answered and why (``answered_via``, a decline's or a withdrawal's ``reason``) is the
volunteer's engagement data (the contracts mark it personal): never in the default projection. A
decline's reason is never forwarded: no partner command needs it. Why a proposal was withdrawn
goes with the opt-in only when it is about the need (staffed, cancelled, closed, changed), never
``volunteer_withdrawn`` (it tells that the person asked left Lotse).

The one opt-in, ``volunteer_ids``: proposal and volunteer ids on proposal, answer and staffing
events, and where an answer came from (whether the partner's own answer or the volunteer's
counted). A partner system that registers volunteers itself (``RegisterVolunteer``; over HTTP the
answer names the volunteer id) and relays their proposals to them answers for them with
``AcceptProposal`` / ``DeclineProposal``, which name the proposal and the volunteer: without the
ids it cannot. Match reasons are never forwarded, opt-in or not: no partner command needs them.
"""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from lotse_contracts import (
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
from lotse_contracts.envelope import Envelope
from lotse_contracts.events.matching import AnswerChannel, UnstaffedReason, WithdrawReason

NEED_EVENT_PREFIX = "de.lotse.registry.need."
PARTNER_SCHEMA_BASE_URL = "https://schemas.lotse.de/webhooks/"


class PartnerField(StrEnum):
    """Fields a webhook may ask for beyond the default projection, each for a partner contract."""

    # Proposal and volunteer ids: a partner that registered volunteers answers their proposals
    # (AcceptProposal / DeclineProposal name both).
    VOLUNTEER_IDS = "volunteer_ids"


class PartnerData(BaseModel):
    """The ``data`` of a projected matching event; the envelope ``subject`` is the need id."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    need_id: UUID = Field(description="The need.")


class ProposalIds(PartnerData):
    proposal_id: UUID | None = Field(default=None, description="The proposal; only with the `volunteer_ids` opt-in.")
    volunteer_id: UUID | None = Field(
        default=None, description="The volunteer asked; only with the `volunteer_ids` opt-in."
    )


class ProposedForPartners(ProposalIds):
    """A volunteer was asked to help with the need (no score, distance or reasons)."""

    organisation_id: UUID = Field(description="Organisation that owns the need.")
    expires_at: datetime = Field(description="When the proposal expires unanswered.")


class AcceptedForPartners(ProposalIds):
    """A volunteer accepted a proposal for the need."""

    answered_via: AnswerChannel | None = Field(
        default=None, description="Where the volunteer answered; only with the `volunteer_ids` opt-in."
    )


class DeclinedForPartners(ProposalIds):
    """A volunteer declined a proposal for the need (never why: that is the volunteer's)."""

    answered_via: AnswerChannel | None = Field(
        default=None, description="Where the volunteer answered; only with the `volunteer_ids` opt-in."
    )


class ExpiredForPartners(ProposalIds):
    """A proposal for the need expired unanswered."""


class WithdrawnForPartners(ProposalIds):
    """Matching took back an open proposal for the need."""

    reason: WithdrawReason | None = Field(
        default=None,
        description="Why (about the need): only with the `volunteer_ids` opt-in, never `volunteer_withdrawn`.",
    )


# Why a proposal was withdrawn, as far as it tells about the need and not about the person asked.
NEED_WITHDRAW_REASONS = frozenset(
    reason for reason in WithdrawReason if reason is not WithdrawReason.VOLUNTEER_WITHDRAWN
)


class VolunteerForPartners(PartnerData):
    volunteer_id: UUID | None = Field(default=None, description="The volunteer; only with the `volunteer_ids` opt-in.")


class SteppedBackForPartners(VolunteerForPartners):
    """A volunteer who had committed no longer helps with the need."""


class PickedForPartners(VolunteerForPartners):
    """A volunteer took the open need themselves."""


class StaffedForPartners(PartnerData):
    """The need has as many committed volunteers as it asks for."""

    volunteers_committed: int = Field(ge=1, description="How many volunteers committed.")
    volunteer_ids: list[UUID] | None = Field(
        default=None, description="Who committed; only with the `volunteer_ids` opt-in."
    )


class UnstaffedForPartners(PartnerData):
    """Escalation: the need lacks volunteers (the event carries nothing about people)."""

    organisation_id: UUID = Field(description="Organisation to escalate to.")
    reason: UnstaffedReason = Field(description="Why nobody is found.")
    volunteers_committed: int = Field(ge=0, description="Volunteers committed so far.")
    volunteers_needed: int = Field(ge=1, description="Volunteers the need asks for.")


# The projection of each forwarded matching event type (``GET /webhooks/schemas`` publishes them).
PROJECTIONS: dict[str, type[PartnerData]] = {
    MatchProposed.event_type: ProposedForPartners,
    ProposalAccepted.event_type: AcceptedForPartners,
    ProposalDeclined.event_type: DeclinedForPartners,
    ProposalExpired.event_type: ExpiredForPartners,
    ProposalWithdrawn.event_type: WithdrawnForPartners,
    VolunteerSteppedBack.event_type: SteppedBackForPartners,
    VolunteerPickedNeed.event_type: PickedForPartners,
    NeedStaffed.event_type: StaffedForPartners,
    NeedUnstaffed.event_type: UnstaffedForPartners,
}


def partner_schema_url(event_type: str) -> str:
    return f"{PARTNER_SCHEMA_BASE_URL}{event_type}.json"


def project(data: object, fields: frozenset[PartnerField]) -> PartnerData | None:
    """What a partner with these opt-ins receives of a matching event's data; None: not forwarded."""
    ids = PartnerField.VOLUNTEER_IDS in fields
    match data:
        case MatchProposed():
            return ProposedForPartners(
                need_id=data.need_id,
                organisation_id=data.organisation_id,
                expires_at=data.expires_at,
                proposal_id=data.proposal_id if ids else None,
                volunteer_id=data.volunteer_id if ids else None,
            )
        case ProposalAccepted():
            return AcceptedForPartners(
                need_id=data.need_id,
                answered_via=data.answered_via if ids else None,
                proposal_id=data.proposal_id if ids else None,
                volunteer_id=data.volunteer_id if ids else None,
            )
        case ProposalDeclined():
            return DeclinedForPartners(
                need_id=data.need_id,
                answered_via=data.answered_via if ids else None,
                proposal_id=data.proposal_id if ids else None,
                volunteer_id=data.volunteer_id if ids else None,
            )
        case ProposalExpired():
            return ExpiredForPartners(
                need_id=data.need_id,
                proposal_id=data.proposal_id if ids else None,
                volunteer_id=data.volunteer_id if ids else None,
            )
        case ProposalWithdrawn():
            return WithdrawnForPartners(
                need_id=data.need_id,
                reason=data.reason if ids and data.reason in NEED_WITHDRAW_REASONS else None,
                proposal_id=data.proposal_id if ids else None,
                volunteer_id=data.volunteer_id if ids else None,
            )
        case VolunteerSteppedBack():
            return SteppedBackForPartners(need_id=data.need_id, volunteer_id=data.volunteer_id if ids else None)
        case VolunteerPickedNeed():
            return PickedForPartners(need_id=data.need_id, volunteer_id=data.volunteer_id if ids else None)
        case NeedStaffed():
            return StaffedForPartners(
                need_id=data.need_id,
                volunteers_committed=len(data.volunteer_ids),
                volunteer_ids=list(data.volunteer_ids) if ids else None,
            )
        case NeedUnstaffed():
            return UnstaffedForPartners(
                need_id=data.need_id,
                organisation_id=data.organisation_id,
                reason=data.reason,
                volunteers_committed=data.volunteers_committed,
                volunteers_needed=data.volunteers_needed,
            )
    return None


def for_partner(event: Envelope[Any], fields: frozenset[PartnerField]) -> Envelope[Any] | None:
    """The CloudEvent a partner with these opt-ins receives, or None if it gets none of this type.
    Need events go as published; matching events with their projection and its ``dataschema``."""
    if event.type.startswith(NEED_EVENT_PREFIX):
        return event
    projected = project(event.data, fields)
    if projected is None:
        return None
    # Built without validation (the envelope's dataschema check knows only the topics' schemas) and
    # as Envelope[Any], so that the projection is serialised by its own fields, not the event's.
    attributes = {name: getattr(event, name) for name in Envelope.model_fields}
    attributes.update(data=projected, dataschema=partner_schema_url(event.type))
    return Envelope[Any].model_construct(**attributes)


def without_volunteer(body: str, volunteer_id: str) -> str:
    """A forwarded event's body (as the delivery log keeps it) with an erased volunteer's id taken
    out, and the proposal id beside it (it names their proposal); the rest goes as it was."""
    event = json.loads(body)
    data = event.get("data")
    if isinstance(data, dict):
        if data.get("volunteer_id") == volunteer_id:
            data.pop("volunteer_id")
            data.pop("proposal_id", None)
        if isinstance(data.get("volunteer_ids"), list):
            data["volunteer_ids"] = [other for other in data["volunteer_ids"] if other != volunteer_id]
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False)
