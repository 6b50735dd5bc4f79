"""Commands partner systems publish on their tenant's inbound topic, or send over HTTPS.

A volunteer's registration carries personal data in clear and goes over HTTPS only: on the
inbound topic it is refused (the topic catalogue's ``refused_types``), since a Kafka topic is a
log Lotse cannot erase a person from.

A partner names its needs and volunteers by its own `external_ref`, which is
also the envelope `subject`; the envelope `version` is the partner's own
sequence number per subject, so the registry can drop stale or repeated
commands. Answers to proposals are addressed by proposal id and consumed by
matching.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any
from uuid import UUID

from pydantic import AwareDatetime, Field

from lotse_contracts.base import Contract, EventData
from lotse_contracts.events.needs import CancellationReason, NeedDetails
from lotse_contracts.events.values import (
    EXAMPLE_AVAILABILITY,
    EXAMPLE_CONSENT,
    EXAMPLE_NEED_ID,
    EXAMPLE_ORGANISATION_ID,
    EXAMPLE_PROPOSAL_ID,
    EXAMPLE_VOLUNTEER_ID,
    Availability,
    Consent,
)
from lotse_contracts.events.volunteers import VolunteerProfile
from lotse_contracts.personal_data import NOT_PERSONAL, DataCategory, DataSubject, Purpose, RetentionRule, personal

# The record of processing (lotse_contracts.personal_data).
_VOLUNTEER_DATA = RetentionRule.WITHDRAWN_VOLUNTEERS
PARTNER_REFERENCE = personal(
    DataCategory.IDENTIFIER,
    Purpose.COORDINATION,
    subjects=(DataSubject.VOLUNTEER, DataSubject.REFUGEE_HOUSEHOLD),
    retention=_VOLUNTEER_DATA,
    note="the partner system's id of a volunteer or of a case; kept with its volunteer or need",
)
MANAGING_ORGANISATION = personal(DataCategory.ENGAGEMENT, Purpose.COORDINATION, retention=_VOLUNTEER_DATA)
CONSENT = personal(DataCategory.CONSENT, Purpose.CONSENT_EVIDENCE, retention=_VOLUNTEER_DATA)
AVAILABILITY = personal(DataCategory.AVAILABILITY, Purpose.MATCHING, retention=_VOLUNTEER_DATA)
ANSWERING_VOLUNTEER = personal(
    DataCategory.IDENTIFIER, Purpose.MATCHING, retention=RetentionRule.PROPOSALS_OF_CLOSED_NEEDS
)
ANSWER = personal(DataCategory.ENGAGEMENT, Purpose.MATCHING, retention=RetentionRule.PROPOSALS_OF_CLOSED_NEEDS)


class ExternalRef(EventData):
    subject_field = "external_ref"

    external_ref: str = Field(
        pattern=r"^[A-Za-z0-9._:-]{1,64}$",
        description="The partner system's own id of the need or volunteer; also the envelope subject.",
        examples=["case-2026-00042"],
        json_schema_extra=PARTNER_REFERENCE,
    )


class ReportNeed(NeedDetails, ExternalRef):
    """A partner reports a new need; the registry opens it."""

    event_type = "de.lotse.partner.need.report.v1"


class UpdateNeed(NeedDetails, ExternalRef):
    """A partner replaces the details of a need it reported (full state)."""

    event_type = "de.lotse.partner.need.update.v1"


class CancelNeed(ExternalRef):
    """A partner cancels a need it reported."""

    event_type = "de.lotse.partner.need.cancel.v1"

    reason: CancellationReason = Field(
        description="Why the need is cancelled.", examples=["solved_otherwise"], json_schema_extra=NOT_PERSONAL
    )


class ConsentMethod(StrEnum):
    SIGNED_FORM = "signed_form"
    ONLINE_FORM = "online_form"
    RECORDED_IN_PERSON = "recorded_in_person"


class ConsentProof(Contract):
    """Where the partner keeps evidence of the consent; the evidence stays there."""

    method: ConsentMethod = Field(description="How consent was obtained.", examples=["online_form"])
    reference: str = Field(
        pattern=r"^[A-Za-z0-9._:/-]{1,128}$",
        description="Reference to the evidence in the partner system, e.g. a form submission id.",
        examples=["form-submission/98765"],
    )
    recorded_at: AwareDatetime = Field(
        description="When the partner recorded the consent.", examples=["2026-11-20T09:31:00+01:00"]
    )


EXAMPLE_CONSENT_PROOF: dict[str, Any] = {
    "method": "online_form",
    "reference": "form-submission/98765",
    "recorded_at": "2026-11-20T09:31:00+01:00",
}


class RegisterVolunteer(VolunteerProfile, ExternalRef):
    """A partner (e.g. another volunteer portal) registers a volunteer with consent: over HTTPS only
    (POST /tenants/{tenant}/partner/volunteers/register); refused on the inbound topic."""

    event_type = "de.lotse.partner.volunteer.register.v1"

    organisation_id: UUID | None = Field(
        default=None,
        description="Initiative that manages the volunteer.",
        examples=[EXAMPLE_ORGANISATION_ID],
        json_schema_extra=MANAGING_ORGANISATION,
    )
    consent: Consent = Field(
        description="The consent the volunteer gave.", examples=[EXAMPLE_CONSENT], json_schema_extra=CONSENT
    )
    consent_proof: ConsentProof = Field(
        description="Evidence of the consent.", examples=[EXAMPLE_CONSENT_PROOF], json_schema_extra=CONSENT
    )
    availability: Availability = Field(
        description="When the volunteer can help.", examples=[EXAMPLE_AVAILABILITY], json_schema_extra=AVAILABILITY
    )


class ProposalAnswer(EventData):
    subject_field = "proposal_id"

    proposal_id: UUID = Field(
        description="Proposal being answered; also the subject.",
        examples=[EXAMPLE_PROPOSAL_ID],
        json_schema_extra=NOT_PERSONAL,
    )
    need_id: UUID = Field(
        description="Need of the proposal.", examples=[EXAMPLE_NEED_ID], json_schema_extra=NOT_PERSONAL
    )
    volunteer_id: UUID = Field(
        description="Volunteer who answers.", examples=[EXAMPLE_VOLUNTEER_ID], json_schema_extra=ANSWERING_VOLUNTEER
    )


class AcceptProposal(ProposalAnswer):
    """The volunteer accepts a proposal, answered through a partner system."""

    event_type = "de.lotse.partner.proposal.accept.v1"


class DeclineReason(StrEnum):
    NO_TIME = "no_time"
    TOO_FAR = "too_far"
    NOT_A_FIT = "not_a_fit"
    OTHER = "other"


class DeclineProposal(ProposalAnswer):
    """The volunteer declines a proposal, answered through a partner system."""

    event_type = "de.lotse.partner.proposal.decline.v1"

    reason: DeclineReason | None = Field(
        default=None, description="Why, if the volunteer said.", examples=["no_time"], json_schema_extra=ANSWER
    )
