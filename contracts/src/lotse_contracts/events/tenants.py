"""Tenant (municipality) events, produced by the registry.

The envelope `subject` of a tenant event is the tenant slug itself.
"""

from __future__ import annotations

from pydantic import Field

from lotse_contracts.base import EventData
from lotse_contracts.events.organisations import FUNCTIONAL_MAILBOX
from lotse_contracts.events.values import Email, LanguageCode, SkillSlug
from lotse_contracts.personal_data import NOT_PERSONAL


class TenantOnboarded(EventData):
    """A municipality was onboarded; carries its full settings (the topic is compacted)."""

    event_type = "de.lotse.registry.tenant.onboarded.v1"

    name: str = Field(
        min_length=1,
        max_length=120,
        description="Display name of the municipality.",
        examples=["Stadt Musterstadt"],
        json_schema_extra=NOT_PERSONAL,
    )
    municipality_key: str = Field(
        pattern=r"^[0-9]{8}$",
        description="Official municipality key (Amtlicher Gemeindeschlüssel, AGS).",
        examples=["11000000"],
        json_schema_extra=NOT_PERSONAL,
    )
    default_language: LanguageCode = Field(
        description="Language used when a recipient has no preference.", examples=["de"], json_schema_extra=NOT_PERSONAL
    )
    supported_languages: list[LanguageCode] = Field(
        min_length=1,
        description="Languages the municipality's notification templates exist in.",
        examples=[["de", "en", "ar", "uk"]],
        json_schema_extra=NOT_PERSONAL,
    )
    timezone: str = Field(
        pattern=r"^[A-Za-z_]+(/[A-Za-z_+-]+)*$",
        description="IANA time zone in which weekly slots are meant.",
        examples=["Europe/Berlin"],
        json_schema_extra=NOT_PERSONAL,
    )
    extra_skills: list[SkillSlug] = Field(
        default_factory=list,
        description="Skills this municipality adds to the base skill catalogue.",
        examples=[["bicycle_repair"]],
        json_schema_extra=NOT_PERSONAL,
    )
    coordination_email: Email = Field(
        description="Functional mailbox of the coordination office; receives escalations.",
        examples=["ehrenamt@musterstadt.de"],
        json_schema_extra=FUNCTIONAL_MAILBOX,
    )
