"""Organisation events, produced by the registry.

Organisations are coordination offices, initiatives and round tables. Both
events carry the full state, so the compacted topic keeps what is current.
"""

from __future__ import annotations

from enum import StrEnum
from uuid import UUID

from pydantic import Field

from lotse_contracts.base import EventData
from lotse_contracts.events.values import EXAMPLE_ORGANISATION_ID, Email
from lotse_contracts.personal_data import NOT_PERSONAL, DataCategory, DataSubject, Purpose, RetentionRule, personal

# The record of processing (lotse_contracts.personal_data): a functional mailbox is meant, but a
# small initiative's may be a person's own address, so it is treated as personal data.
FUNCTIONAL_MAILBOX = personal(
    DataCategory.CONTACT_DATA,
    Purpose.NOTIFICATION,
    Purpose.COORDINATION,
    subjects=(DataSubject.ORGANISATION_CONTACT,),
    retention=RetentionRule.TENANT_LIFETIME,
    note="a functional mailbox; personal where it names a person",
)


class OrganisationKind(StrEnum):
    COORDINATION_OFFICE = "coordination_office"
    INITIATIVE = "initiative"
    ROUND_TABLE = "round_table"
    WELFARE_ASSOCIATION = "welfare_association"
    OTHER = "other"


class OrganisationState(EventData):
    """Everything other services need to know about an organisation."""

    subject_field = "organisation_id"

    organisation_id: UUID = Field(
        description="Id of the organisation.", examples=[EXAMPLE_ORGANISATION_ID], json_schema_extra=NOT_PERSONAL
    )
    name: str = Field(
        min_length=1,
        max_length=160,
        description="Name of the organisation.",
        examples=["Willkommensinitiative Mitte"],
        json_schema_extra=NOT_PERSONAL,
    )
    kind: OrganisationKind = Field(
        description="What kind of organisation this is.", examples=["initiative"], json_schema_extra=NOT_PERSONAL
    )
    contact_email: Email = Field(
        description="Functional mailbox of the organisation (not a person's).",
        examples=["kontakt@willkommen-mitte.de"],
        json_schema_extra=FUNCTIONAL_MAILBOX,
    )
    districts: list[str] = Field(
        default_factory=list,
        description="Districts the organisation works in; empty means the whole municipality.",
        examples=[["Mitte", "Nord"]],
        json_schema_extra=NOT_PERSONAL,
    )


class OrganisationRegistered(OrganisationState):
    """An organisation joined the municipality's platform."""

    event_type = "de.lotse.registry.organisation.registered.v1"


class OrganisationUpdated(OrganisationState):
    """An organisation's details changed; carries the full state."""

    event_type = "de.lotse.registry.organisation.updated.v1"
