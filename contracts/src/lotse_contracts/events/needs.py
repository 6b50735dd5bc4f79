"""Need events, produced by the registry.

Refugee data is minimised by the schema itself: a need has no field for a
name or a document number, only an opaque household reference, and unknown
fields are refused.
"""

from __future__ import annotations

from enum import StrEnum
from uuid import UUID

from pydantic import Field

from lotse_contracts.base import Contract, EventData
from lotse_contracts.events.values import (
    EXAMPLE_NEED_ID,
    EXAMPLE_ORGANISATION_ID,
    EXAMPLE_PLACE,
    EXAMPLE_SCHEDULE,
    CertificateKind,
    HouseholdRef,
    LanguageRequirement,
    Place,
    Schedule,
    SkillSlug,
)
from lotse_contracts.personal_data import NOT_PERSONAL, DataCategory, DataSubject, Purpose, RetentionRule, personal

# The record of processing (lotse_contracts.personal_data): a need names nobody, but its
# description, place, time and languages may still point to the household it is for.
_HOUSEHOLD = (DataSubject.REFUGEE_HOUSEHOLD,)
_KEPT = RetentionRule.CLOSED_NEEDS
NEED_DESCRIPTION = personal(
    DataCategory.FREE_TEXT,
    Purpose.MATCHING,
    Purpose.COORDINATION,
    note="must not name the people helped; may still be about them",
    subjects=_HOUSEHOLD,
    retention=_KEPT,
)
NEED_PLACE = personal(
    DataCategory.LOCATION, Purpose.MATCHING, Purpose.COORDINATION, subjects=_HOUSEHOLD, retention=_KEPT
)
NEED_SCHEDULE = personal(
    DataCategory.AVAILABILITY, Purpose.MATCHING, Purpose.COORDINATION, subjects=_HOUSEHOLD, retention=_KEPT
)
NEED_LANGUAGES = personal(
    DataCategory.LANGUAGE_SKILLS,
    Purpose.MATCHING,
    note="the household's languages may hint at its origin",
    subjects=_HOUSEHOLD,
    retention=_KEPT,
)
HOUSEHOLD_REFERENCE = personal(DataCategory.IDENTIFIER, Purpose.COORDINATION, subjects=_HOUSEHOLD, retention=_KEPT)


class NeedCategory(StrEnum):
    ACCOMPANIMENT_TO_AUTHORITIES = "accompaniment_to_authorities"
    TRANSLATION = "translation"
    CHILDCARE = "childcare"
    TUTORING = "tutoring"
    HOUSING_HELP = "housing_help"
    MOBILITY = "mobility"
    LEISURE = "leisure"
    OTHER = "other"


class NeedDetails(Contract):
    """What a need asks for; shared by registry events and partner commands."""

    organisation_id: UUID = Field(
        description="Organisation that owns the need.",
        examples=[EXAMPLE_ORGANISATION_ID],
        json_schema_extra=NOT_PERSONAL,
    )
    category: NeedCategory = Field(
        description="Kind of help needed.", examples=["accompaniment_to_authorities"], json_schema_extra=NOT_PERSONAL
    )
    description: str = Field(
        min_length=1,
        max_length=2000,
        description="What the help is about. Must not name the people helped.",
        examples=["Begleitung zur Ausländerbehörde, Termin zur Verlängerung des Aufenthaltstitels."],
        json_schema_extra=NEED_DESCRIPTION,
    )
    required_skills: list[SkillSlug] = Field(
        default_factory=list,
        description="Skills a volunteer must have.",
        examples=[["accompaniment"]],
        json_schema_extra=NOT_PERSONAL,
    )
    languages: list[LanguageRequirement] = Field(
        default_factory=list,
        description="Languages a volunteer must speak (each at least at min_level).",
        examples=[[{"language": "ar", "min_level": "b2"}]],
        json_schema_extra=NEED_LANGUAGES,
    )
    place: Place = Field(
        description="Where the help takes place.", examples=[EXAMPLE_PLACE], json_schema_extra=NEED_PLACE
    )
    schedule: Schedule = Field(
        description="When: a one-off time window or a weekly recurrence.",
        examples=[EXAMPLE_SCHEDULE],
        json_schema_extra=NEED_SCHEDULE,
    )
    volunteers_needed: int = Field(
        ge=1,
        le=50,
        description="How many volunteers are needed.",
        examples=[1],
        strict=True,
        json_schema_extra=NOT_PERSONAL,
    )
    certificate_required: CertificateKind | None = Field(
        default=None,
        description="Certificate a volunteer must hold, e.g. for work with children.",
        examples=["extended_police_certificate"],
        json_schema_extra=NOT_PERSONAL,
    )
    household_ref: HouseholdRef | None = Field(
        default=None,
        description=(
            "Opaque reference to the refugee household, meaningful only in the municipality's "
            "case management. The only refugee identifier a need may carry."
        ),
        examples=["hh-7f3k9q2a"],
        json_schema_extra=HOUSEHOLD_REFERENCE,
    )


class NeedIdentity(EventData):
    subject_field = "need_id"

    need_id: UUID = Field(description="Id of the need.", examples=[EXAMPLE_NEED_ID], json_schema_extra=NOT_PERSONAL)


class NeedOpened(NeedDetails, NeedIdentity):
    """A need was opened and is open for matching."""

    event_type = "de.lotse.registry.need.opened.v1"


class NeedUpdated(NeedDetails, NeedIdentity):
    """The need changed; carries the full need, not a diff."""

    event_type = "de.lotse.registry.need.updated.v1"


class CancellationReason(StrEnum):
    NO_LONGER_NEEDED = "no_longer_needed"
    SOLVED_OTHERWISE = "solved_otherwise"
    DUPLICATE = "duplicate"
    OTHER = "other"


class NeedCancelled(NeedIdentity):
    """The need was withdrawn before it was fulfilled."""

    event_type = "de.lotse.registry.need.cancelled.v1"

    reason: CancellationReason = Field(
        description="Why the need was cancelled.", examples=["no_longer_needed"], json_schema_extra=NOT_PERSONAL
    )


class NeedOutcome(StrEnum):
    FULFILLED = "fulfilled"
    PARTIALLY_FULFILLED = "partially_fulfilled"
    NOT_FULFILLED = "not_fulfilled"


class NeedClosed(NeedIdentity):
    """The need is over; its owner recorded how it went."""

    event_type = "de.lotse.registry.need.closed.v1"

    outcome: NeedOutcome = Field(
        description="How the need ended.", examples=["fulfilled"], json_schema_extra=NOT_PERSONAL
    )
