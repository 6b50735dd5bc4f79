"""Request bodies of the HTTP API, built from the contract models so HTTP and Kafka agree."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from lotse_contracts import Availability, TenantOnboarded
from lotse_contracts.events.needs import CancellationReason, NeedOutcome
from lotse_contracts.events.organisations import OrganisationKind, OrganisationState
from lotse_contracts.events.values import Consent, ConsentPurpose, Email, TenantSlug
from lotse_contracts.events.volunteers import VolunteerContact, VolunteerProfile, WithdrawalReason
from lotse_registry.domain import RevocationReason

_org = OrganisationState.model_fields


class TenantOnboarding(TenantOnboarded):
    """What a platform admin gives to onboard a municipality."""

    slug: TenantSlug
    default_search_radius_km: int = Field(
        10,
        ge=1,
        le=200,
        description="How far matching looks around a need by default, in km.",
        examples=[10],
        strict=True,
    )
    coordination_phone: str | None = Field(
        None, pattern=r"^\+[1-9][0-9]{6,14}$", description="Phone of the coordination office (E.164).", examples=[None]
    )


class OrganisationBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, _org["name"]]
    kind: Annotated[OrganisationKind, _org["kind"]]
    contact_email: Annotated[str, _org["contact_email"]]
    districts: Annotated[list[str], _org["districts"]]


class ConsentGiven(BaseModel):
    """The consent the volunteer gives now; the registry records the time."""

    model_config = ConfigDict(extra="forbid")

    purposes: Annotated[list[ConsentPurpose], Consent.model_fields["purposes"]]
    text_version: Annotated[str, Consent.model_fields["text_version"]]


class VolunteerRegistration(VolunteerProfile):
    """Self-registration, or registration by an initiative or the coordination office."""

    organisation_id: UUID | None = Field(
        None, description="Initiative that manages the volunteer; absent if registered with the municipality."
    )
    consent: ConsentGiven = Field(description="The consent the volunteer gives with this registration.")
    availability: Availability = Field(description="When the volunteer can help.")


class Withdrawal(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: WithdrawalReason = Field(WithdrawalReason.CONSENT_WITHDRAWN, description="Why the volunteer leaves.")


class NeedCancellation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: CancellationReason


class NeedClosing(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: NeedOutcome


class Revocation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: RevocationReason = Field(
        RevocationReason.RECORDED_IN_ERROR, description="Why the check no longer counts.", examples=["withdrawn"]
    )


class StaffMember(BaseModel):
    """A member of the office's staff, as they give it themselves: how volunteers reach them."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=80, description="Name volunteers know them by.", examples=["Jana Weber"])
    email: Email = Field(description="Work e-mail address.", examples=["j.weber@musterstadt.de"])
    phone: Annotated[str | None, VolunteerContact.model_fields["phone"]] = None


class ContactPerson(BaseModel):
    model_config = ConfigDict(extra="forbid")

    staff_id: UUID | None = Field(
        description="The staff member who is the volunteer's contact person at the office; null for none."
    )
