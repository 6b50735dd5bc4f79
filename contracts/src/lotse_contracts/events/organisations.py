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


class OrganisationKind(StrEnum):
    COORDINATION_OFFICE = "coordination_office"
    INITIATIVE = "initiative"
    ROUND_TABLE = "round_table"
    WELFARE_ASSOCIATION = "welfare_association"
    OTHER = "other"


class OrganisationState(EventData):
    """Everything other services need to know about an organisation."""

    subject_field = "organisation_id"

    organisation_id: UUID = Field(description="Id of the organisation.", examples=[EXAMPLE_ORGANISATION_ID])
    name: str = Field(
        min_length=1, max_length=160, description="Name of the organisation.", examples=["Willkommensinitiative Mitte"]
    )
    kind: OrganisationKind = Field(description="What kind of organisation this is.", examples=["initiative"])
    contact_email: Email = Field(
        description="Functional mailbox of the organisation (not a person's).",
        examples=["kontakt@willkommen-mitte.de"],
    )
    districts: list[str] = Field(
        default_factory=list,
        description="Districts the organisation works in; empty means the whole municipality.",
        examples=[["Mitte", "Nord"]],
    )


class OrganisationRegistered(OrganisationState):
    """An organisation joined the municipality's platform."""

    event_type = "de.lotse.registry.organisation.registered.v1"


class OrganisationUpdated(OrganisationState):
    """An organisation's details changed; carries the full state."""

    event_type = "de.lotse.registry.organisation.updated.v1"
