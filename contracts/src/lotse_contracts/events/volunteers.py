"""Volunteer events, produced by the registry.

Contact data appears only in `registered` and `profile_updated`, because the
notification service needs it there; `erased` carries no personal data at all.
Since issue 18 the registry publishes both sealed with the volunteer's data key:
`.v3` seals everything but the volunteer id, `.v2` (contact and home area only)
and `.v1` (plain) are still read while retained events of older registries last;
`availability_changed.v2` seals the availability the same way.

Certificates come twice: `certificates` in the profile are what the volunteer
declares, and `certificate_checked` / `certificate_check_revoked` say what the
office has seen itself. Only a checked certificate counts for a need that
requires one; the check events carry every check in force (the full state, as
`availability_changed` does), so a reader needs no history to know it.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any
from uuid import UUID

from pydantic import AwareDatetime, Field

from lotse_contracts.base import Contract, EventData
from lotse_contracts.events.values import (
    EXAMPLE_AVAILABILITY,
    EXAMPLE_CONSENT,
    EXAMPLE_HOME_AREA,
    EXAMPLE_ORGANISATION_ID,
    EXAMPLE_QUIET_HOURS,
    EXAMPLE_STAFF_ID,
    EXAMPLE_VOLUNTEER_ID,
    Availability,
    Certificate,
    CertificateKind,
    Channel,
    Consent,
    Email,
    HomeArea,
    IsoDate,
    LanguageCode,
    LanguageSkill,
    OptionalMessageKind,
    QuietHours,
    SkillSlug,
)
from lotse_contracts.personal_data import DataCategory, DataSubject, Purpose, RetentionRule, personal
from lotse_contracts.sealed import EXAMPLE_SEALED, Sealed

# The record of processing (lotse_contracts.personal_data): everything a volunteer event carries
# is about the volunteer; the registry removes it 6 months after withdrawal or at erasure.
_KEPT = RetentionRule.WITHDRAWN_VOLUNTEERS
VOLUNTEER_REFERENCE = personal(
    DataCategory.IDENTIFIER, Purpose.MATCHING, Purpose.NOTIFICATION, Purpose.COORDINATION, retention=_KEPT
)
CONTACT_DATA = personal(DataCategory.CONTACT_DATA, Purpose.NOTIFICATION, Purpose.COORDINATION, retention=_KEPT)
PREFERENCES = personal(DataCategory.COMMUNICATION_PREFERENCES, Purpose.NOTIFICATION, retention=_KEPT)
SKILLS = personal(DataCategory.SKILLS, Purpose.MATCHING, retention=_KEPT)
LANGUAGES = personal(DataCategory.LANGUAGE_SKILLS, Purpose.MATCHING, retention=_KEPT)
HOME_AREA = personal(DataCategory.LOCATION, Purpose.MATCHING, retention=_KEPT)
CERTIFICATES = personal(
    DataCategory.CERTIFICATES,
    Purpose.MATCHING,
    Purpose.COORDINATION,
    retention=_KEPT,
    note="the extended police certificate is data on criminal records (Art. 10): only that it was seen",
)
AVAILABILITY = personal(DataCategory.AVAILABILITY, Purpose.MATCHING, retention=_KEPT)
CONSENT = personal(DataCategory.CONSENT, Purpose.CONSENT_EVIDENCE, retention=_KEPT)
ENGAGEMENT = personal(DataCategory.ENGAGEMENT, Purpose.COORDINATION, retention=_KEPT)
SEALED_PERSONAL = personal(
    DataCategory.CONTACT_DATA,
    Purpose.NOTIFICATION,
    Purpose.MATCHING,
    retention=_KEPT,
    note="contact and home area, sealed with the volunteer's data key: unreadable once the key is destroyed",
)
SEALED_PROFILE = personal(
    DataCategory.CONTACT_DATA,
    Purpose.NOTIFICATION,
    Purpose.MATCHING,
    Purpose.COORDINATION,
    Purpose.CONSENT_EVIDENCE,
    retention=_KEPT,
    note=(
        "the whole profile (contact, home area, skills, languages, radius, certificates; at registration also "
        "organisation, consent and availability), sealed with the volunteer's data key: unreadable once the key "
        "is destroyed"
    ),
)
SEALED_AVAILABILITY = personal(
    DataCategory.AVAILABILITY,
    Purpose.MATCHING,
    retention=_KEPT,
    note="sealed with the volunteer's data key: unreadable once the key is destroyed",
)
CONTACT_PERSON = personal(
    DataCategory.IDENTIFIER,
    Purpose.COORDINATION,
    subjects=(DataSubject.VOLUNTEER, DataSubject.OFFICE_STAFF),
    retention=_KEPT,
)


class VolunteerContact(Contract):
    """How to reach a volunteer; read only by the notification service."""

    display_name: str = Field(
        min_length=1,
        max_length=80,
        description="Name the volunteer wants to be addressed with.",
        examples=["Maria"],
        json_schema_extra=CONTACT_DATA,
    )
    email: Email = Field(json_schema_extra=CONTACT_DATA)
    phone: str | None = Field(
        default=None,
        pattern=r"^\+[1-9][0-9]{6,14}$",
        description="Phone number in E.164 form.",
        examples=["+4915112345678"],
        json_schema_extra=CONTACT_DATA,
    )
    preferred_language: LanguageCode = Field(
        description="Language of notifications.", examples=["de"], json_schema_extra=PREFERENCES
    )
    channels: list[Channel] = Field(
        min_length=1,
        description="Channels the volunteer wants to be notified on.",
        examples=[["email", "in_app"]],
        json_schema_extra=PREFERENCES,
    )
    quiet_hours: QuietHours | None = Field(
        default=None,
        description="Daily window in the tenant's local time without email; absent means none.",
        examples=[EXAMPLE_QUIET_HOURS],
        json_schema_extra=PREFERENCES,
    )
    opted_out_of: list[OptionalMessageKind] = Field(
        default_factory=list,
        description=(
            "Optional message kinds the volunteer does not want on any channel. Proposals, confirmations "
            "and cancellations concern their engagement and cannot be opted out of."
        ),
        examples=[["proposal_reminder"]],
        json_schema_extra=PREFERENCES,
    )


EXAMPLE_CONTACT: dict[str, Any] = {
    "display_name": "Maria",
    "email": "maria@example.org",
    "phone": "+4915112345678",
    "preferred_language": "de",
    "channels": ["email", "in_app"],
}


class VolunteerIdentity(EventData):
    subject_field = "volunteer_id"

    volunteer_id: UUID = Field(
        description="Id of the volunteer.", examples=[EXAMPLE_VOLUNTEER_ID], json_schema_extra=VOLUNTEER_REFERENCE
    )


class VolunteerProfile(Contract):
    """What matching needs to know about a volunteer, plus how to reach them."""

    contact: VolunteerContact = Field(description="How to reach the volunteer.", examples=[EXAMPLE_CONTACT])
    skills: list[SkillSlug] = Field(
        description="Skills from the tenant's catalogue.",
        examples=[["driving", "translation"]],
        json_schema_extra=SKILLS,
    )
    languages: list[LanguageSkill] = Field(
        min_length=1,
        description="Languages the volunteer speaks.",
        examples=[[{"language": "de", "level": "native"}, {"language": "ar", "level": "b2"}]],
        json_schema_extra=LANGUAGES,
    )
    home_area: HomeArea = Field(
        description="Where the volunteer starts from.", examples=[EXAMPLE_HOME_AREA], json_schema_extra=HOME_AREA
    )
    travel_radius_km: int = Field(
        ge=0,
        le=200,
        description="How far the volunteer is willing to travel, in km.",
        examples=[10],
        strict=True,
        json_schema_extra=HOME_AREA,
    )
    certificates: list[Certificate] = Field(
        default_factory=list,
        description="Certificates the volunteer has shown.",
        examples=[[{"kind": "extended_police_certificate", "issued_on": "2026-03-01", "valid_until": "2031-03-01"}]],
        json_schema_extra=CERTIFICATES,
    )


class VolunteerRegistration(VolunteerProfile):
    """Everything a registration says about the volunteer: ``registered.v1`` but the id, sealed whole
    in ``registered.v3``."""

    organisation_id: UUID | None = Field(
        default=None,
        description="Initiative that manages the volunteer; absent if registered directly with the municipality.",
        examples=[EXAMPLE_ORGANISATION_ID],
        json_schema_extra=ENGAGEMENT,
    )
    consent: Consent = Field(
        description="The consent the volunteer gave.", examples=[EXAMPLE_CONSENT], json_schema_extra=CONSENT
    )
    availability: Availability = Field(
        description="When the volunteer can help.", examples=[EXAMPLE_AVAILABILITY], json_schema_extra=AVAILABILITY
    )


class VolunteerRegistered(VolunteerRegistration, VolunteerIdentity):
    """A volunteer registered with consent."""

    event_type = "de.lotse.registry.volunteer.registered.v1"


class VolunteerProfileUpdated(VolunteerProfile, VolunteerIdentity):
    """The volunteer's profile changed; carries the full profile, not a diff."""

    event_type = "de.lotse.registry.volunteer.profile_updated.v1"


class VolunteerPersonalData(Contract):
    """The part of a profile that identifies the person, sealed on the topics (issue 18)."""

    contact: VolunteerContact = Field(description="How to reach the volunteer.", examples=[EXAMPLE_CONTACT])
    home_area: HomeArea = Field(description="Where the volunteer starts from.", examples=[EXAMPLE_HOME_AREA])


class SealedVolunteerProfile(Contract):
    """A profile whose contact and home area are sealed with the volunteer's data key: after the
    volunteer's erasure (the key destroyed) nobody can read them from the topic any more."""

    personal: Sealed[VolunteerPersonalData] = Field(
        description="Contact and home area, sealed with the volunteer's data key.",
        examples=[EXAMPLE_SEALED],
        json_schema_extra=SEALED_PERSONAL,
    )
    skills: list[SkillSlug] = Field(
        description="Skills from the tenant's catalogue.",
        examples=[["driving", "translation"]],
        json_schema_extra=SKILLS,
    )
    languages: list[LanguageSkill] = Field(
        min_length=1,
        description="Languages the volunteer speaks.",
        examples=[[{"language": "de", "level": "native"}, {"language": "ar", "level": "b2"}]],
        json_schema_extra=LANGUAGES,
    )
    travel_radius_km: int = Field(
        ge=0,
        le=200,
        description="How far the volunteer is willing to travel, in km.",
        examples=[10],
        strict=True,
        json_schema_extra=HOME_AREA,
    )
    certificates: list[Certificate] = Field(
        default_factory=list,
        description="Certificates the volunteer has shown.",
        examples=[[{"kind": "extended_police_certificate", "issued_on": "2026-03-01", "valid_until": "2031-03-01"}]],
        json_schema_extra=CERTIFICATES,
    )

    def _with(self, personal: VolunteerPersonalData) -> dict[str, Any]:
        return {**self.model_dump(exclude={"personal"}), **personal.model_dump()}


class VolunteerRegisteredSealed(SealedVolunteerProfile, VolunteerIdentity):
    """A volunteer registered with consent; ``registered.v1`` with the personal fields sealed."""

    event_type = "de.lotse.registry.volunteer.registered.v2"

    organisation_id: UUID | None = Field(
        default=None,
        description="Initiative that manages the volunteer; absent if registered directly with the municipality.",
        examples=[EXAMPLE_ORGANISATION_ID],
        json_schema_extra=ENGAGEMENT,
    )
    consent: Consent = Field(
        description="The consent the volunteer gave.", examples=[EXAMPLE_CONSENT], json_schema_extra=CONSENT
    )
    availability: Availability = Field(
        description="When the volunteer can help.", examples=[EXAMPLE_AVAILABILITY], json_schema_extra=AVAILABILITY
    )

    def unsealed(self, personal: VolunteerPersonalData) -> VolunteerRegistered:
        """The event as ``registered.v1`` has it, with the personal fields opened."""
        return VolunteerRegistered.model_validate(self._with(personal))


class VolunteerProfileUpdatedSealed(SealedVolunteerProfile, VolunteerIdentity):
    """The volunteer's profile changed; ``profile_updated.v1`` with the personal fields sealed."""

    event_type = "de.lotse.registry.volunteer.profile_updated.v2"

    def unsealed(self, personal: VolunteerPersonalData) -> VolunteerProfileUpdated:
        """The event as ``profile_updated.v1`` has it, with the personal fields opened."""
        return VolunteerProfileUpdated.model_validate(self._with(personal))


class VolunteerRegisteredFullySealed(VolunteerIdentity):
    """A volunteer registered with consent; ``registered.v1`` with everything but the id sealed: after
    the erasure not even their skills, languages or availability can be read from the topic, which
    together (with the need they were proposed for) could single them out."""

    event_type = "de.lotse.registry.volunteer.registered.v3"

    profile: Sealed[VolunteerRegistration] = Field(
        description="The registration (`registered.v1` but the volunteer id), sealed with the volunteer's data key.",
        examples=[EXAMPLE_SEALED],
        json_schema_extra=SEALED_PROFILE,
    )

    def unsealed(self, registration: VolunteerRegistration) -> VolunteerRegistered:
        """The event as ``registered.v1`` has it, opened."""
        return VolunteerRegistered.model_validate({**registration.model_dump(), "volunteer_id": self.volunteer_id})


class VolunteerProfileUpdatedFullySealed(VolunteerIdentity):
    """The volunteer's profile changed; ``profile_updated.v1`` with everything but the id sealed."""

    event_type = "de.lotse.registry.volunteer.profile_updated.v3"

    profile: Sealed[VolunteerProfile] = Field(
        description="The full profile (`profile_updated.v1` without the volunteer id), sealed with the volunteer's "
        "data key.",
        examples=[EXAMPLE_SEALED],
        json_schema_extra=SEALED_PROFILE,
    )

    def unsealed(self, profile: VolunteerProfile) -> VolunteerProfileUpdated:
        """The event as ``profile_updated.v1`` has it, opened."""
        return VolunteerProfileUpdated.model_validate({**profile.model_dump(), "volunteer_id": self.volunteer_id})


class VolunteerAvailabilityChanged(VolunteerIdentity):
    """The volunteer's availability changed; carries the full availability."""

    event_type = "de.lotse.registry.volunteer.availability_changed.v1"

    availability: Availability = Field(
        description="When the volunteer can help.", examples=[EXAMPLE_AVAILABILITY], json_schema_extra=AVAILABILITY
    )


class VolunteerAvailabilityChangedSealed(VolunteerIdentity):
    """The volunteer's availability changed; ``availability_changed.v1`` with the availability sealed
    with the volunteer's data key."""

    event_type = "de.lotse.registry.volunteer.availability_changed.v2"

    availability: Sealed[Availability] = Field(
        description="When the volunteer can help, sealed with the volunteer's data key.",
        examples=[EXAMPLE_SEALED],
        json_schema_extra=SEALED_AVAILABILITY,
    )

    def unsealed(self, availability: Availability) -> VolunteerAvailabilityChanged:
        """The event as ``availability_changed.v1`` has it, opened."""
        return VolunteerAvailabilityChanged(volunteer_id=self.volunteer_id, availability=availability)


class WithdrawalReason(StrEnum):
    CONSENT_WITHDRAWN = "consent_withdrawn"
    NO_LONGER_AVAILABLE = "no_longer_available"
    REMOVED_BY_ORGANISATION = "removed_by_organisation"


class VolunteerWithdrawn(VolunteerIdentity):
    """The volunteer no longer takes part; open proposals must be withdrawn."""

    event_type = "de.lotse.registry.volunteer.withdrawn.v1"

    reason: WithdrawalReason = Field(
        description="Why the volunteer left.", examples=["consent_withdrawn"], json_schema_extra=ENGAGEMENT
    )
    erasure_requested: bool = Field(
        description="True if an erasure follows; consumers may already stop using contact data.",
        examples=[True],
        strict=True,
        json_schema_extra=ENGAGEMENT,
    )


class VolunteerErased(VolunteerIdentity):
    """Every service must delete what it holds about this volunteer. No personal data."""

    event_type = "de.lotse.registry.volunteer.erased.v1"

    erased_at: AwareDatetime = Field(
        description="When the registry erased the volunteer.",
        examples=["2026-11-25T10:00:00+01:00"],
        json_schema_extra=ENGAGEMENT,
    )


class CertificateCheck(Contract):
    """A certificate the office (or the volunteer's organisation) has seen itself."""

    kind: CertificateKind = Field(description="Kind of certificate.", examples=["extended_police_certificate"])
    seen_on: IsoDate = Field(description="Day the certificate was shown.", examples=["2026-11-20"])
    valid_until: IsoDate = Field(
        description="Last day the check counts for, as recorded by whoever saw the certificate.",
        examples=["2031-11-19"],
    )


EXAMPLE_CHECK: dict[str, Any] = {
    "kind": "extended_police_certificate",
    "seen_on": "2026-11-20",
    "valid_until": "2031-11-19",
}


class VolunteerCertificateChecked(VolunteerIdentity):
    """The office recorded that it has seen one of the volunteer's certificates."""

    event_type = "de.lotse.registry.volunteer.certificate_checked.v1"

    check: CertificateCheck = Field(
        description="The check just recorded.", examples=[EXAMPLE_CHECK], json_schema_extra=CERTIFICATES
    )
    checks: list[CertificateCheck] = Field(
        description="Every check in force now, at most one per kind (this one included): the full state.",
        examples=[[EXAMPLE_CHECK]],
        json_schema_extra=CERTIFICATES,
    )


class VolunteerCertificateCheckRevoked(VolunteerIdentity):
    """The office took back its check of a certificate; it no longer counts."""

    event_type = "de.lotse.registry.volunteer.certificate_check_revoked.v1"

    kind: CertificateKind = Field(
        description="Kind of certificate no longer checked.", examples=["first_aid"], json_schema_extra=CERTIFICATES
    )
    checks: list[CertificateCheck] = Field(
        description="Every check still in force, at most one per kind: the full state.",
        examples=[[EXAMPLE_CHECK]],
        json_schema_extra=CERTIFICATES,
    )


class VolunteerCertificateExpiring(VolunteerIdentity):
    """A checked certificate runs out soon: the volunteer and the office are to be told."""

    event_type = "de.lotse.registry.volunteer.certificate_expiring.v1"

    kind: CertificateKind = Field(
        description="Kind of certificate.", examples=["extended_police_certificate"], json_schema_extra=CERTIFICATES
    )
    valid_until: IsoDate = Field(
        description="Last day the check counts for.", examples=["2031-11-19"], json_schema_extra=CERTIFICATES
    )
    weeks_before: int = Field(
        ge=1,
        le=52,
        description="Which notice this is: the number of weeks before the last day it was due.",
        examples=[8],
        strict=True,
        json_schema_extra=CERTIFICATES,
    )


class VolunteerContactPersonChanged(VolunteerIdentity):
    """The volunteer's named contact person at the office changed. Only the staff member's id:
    their name and work address stay in the registry."""

    event_type = "de.lotse.registry.volunteer.contact_person_changed.v1"

    staff_id: UUID | None = Field(
        default=None,
        description="Id of the office staff member who is the volunteer's contact person; absent: none any more.",
        examples=[EXAMPLE_STAFF_ID],
        json_schema_extra=CONTACT_PERSON,
    )
