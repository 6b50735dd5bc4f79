"""Value types shared by several events.

Patterns and enums live here once so every event validates a tenant slug, a
language or a place the same way.
"""

from __future__ import annotations

from datetime import date, time
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BeforeValidator, Field, model_validator

from lotse_contracts.base import Contract


def _iso_text(value: Any) -> Any:
    """Dates and times travel as ISO 8601 text. Pydantic would read a number as seconds since
    1970 (``0`` becomes 1970-01-01), silently storing a client's mistake; refuse it instead."""
    if isinstance(value, int | float):
        raise ValueError("give an ISO 8601 string, not a number")
    return value


IsoDate = Annotated[date, BeforeValidator(_iso_text)]
IsoTime = Annotated[time, BeforeValidator(_iso_text)]
IsoDatetime = Annotated[AwareDatetime, BeforeValidator(_iso_text)]

TENANT_PATTERN = r"^[a-z][a-z0-9-]{1,39}$"
HOUSEHOLD_REF_PATTERN = r"^hh-[A-Za-z0-9]{6,32}$"

TenantSlug = Annotated[
    str,
    Field(
        pattern=TENANT_PATTERN,
        description="Slug of the municipality (tenant): lowercase letters, digits and dashes.",
        examples=["musterstadt"],
    ),
]
LanguageCode = Annotated[
    str,
    Field(
        pattern=r"^[a-z]{2}$",
        description="ISO 639-1 language code.",
        examples=["ar"],
    ),
]
SkillSlug = Annotated[
    str,
    Field(
        pattern=r"^[a-z][a-z0-9_]{1,39}$",
        description=(
            "Skill slug from the tenant's skill catalogue (BASE_SKILLS plus the tenant's "
            "extra skills); the registry checks membership, the schema only the form."
        ),
        examples=["driving"],
    ),
]
Postcode = Annotated[
    str,
    Field(pattern=r"^[0-9]{5}$", description="German postcode (PLZ).", examples=["12345"]),
]
HouseholdRef = Annotated[
    str,
    Field(
        pattern=HOUSEHOLD_REF_PATTERN,
        description=(
            "Opaque reference to a refugee household, meaningful only inside the "
            "municipality's own case management. Never a name or document number."
        ),
        examples=["hh-7f3k9q2a"],
    ),
]
Email = Annotated[
    str,
    Field(
        pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
        max_length=254,
        description="E-mail address.",
        examples=["maria@example.org"],
    ),
]

# The skills every tenant starts with; a tenant extends the list at onboarding.
BASE_SKILLS: tuple[str, ...] = (
    "accompaniment",
    "admin_paperwork",
    "childcare",
    "cooking",
    "driving",
    "handicraft",
    "it_support",
    "legal_knowledge",
    "medical_background",
    "music",
    "sports",
    "translation",
    "tutoring",
)


class LanguageLevel(StrEnum):
    """CEFR level of a language, plus `native`; ordered from weakest to strongest."""

    A1 = "a1"
    A2 = "a2"
    B1 = "b1"
    B2 = "b2"
    C1 = "c1"
    C2 = "c2"
    NATIVE = "native"

    @property
    def rank(self) -> int:
        """Position on the scale, so matching can compare `level.rank >= min.rank`."""
        return list(LanguageLevel).index(self)


class Weekday(StrEnum):
    MONDAY = "monday"
    TUESDAY = "tuesday"
    WEDNESDAY = "wednesday"
    THURSDAY = "thursday"
    FRIDAY = "friday"
    SATURDAY = "saturday"
    SUNDAY = "sunday"


class CertificateKind(StrEnum):
    EXTENDED_POLICE_CERTIFICATE = "extended_police_certificate"
    FIRST_AID = "first_aid"
    MEASLES_IMMUNITY = "measles_immunity"
    DRIVING_LICENCE = "driving_licence"
    INTERPRETER_QUALIFICATION = "interpreter_qualification"


class Channel(StrEnum):
    """A way to reach someone; webhooks reach partner systems, not people."""

    EMAIL = "email"
    SMS = "sms"
    IN_APP = "in_app"
    WEBHOOK = "webhook"


class OptionalMessageKind(StrEnum):
    """Volunteer messages a volunteer may opt out of entirely.

    Only messages the volunteer can do without: the welcome after registration and the reminder
    of a proposal they already received. A proposal, its
    confirmation and the cancellation of a need they committed to concern their engagement and
    are always sent (on the channels they chose), so they are deliberately not in this list.
    """

    WELCOME = "welcome"
    PROPOSAL_REMINDER = "proposal_reminder"


class ConsentPurpose(StrEnum):
    MATCHING = "matching"
    CONTACT = "contact"
    SHARE_WITH_ORGANISATION = "share_with_organisation"
    STATISTICS = "statistics"


class GeoPoint(Contract):
    """A WGS 84 coordinate."""

    lat: float = Field(ge=-90, le=90, description="Latitude in degrees.", examples=[52.52], strict=True)
    lon: float = Field(ge=-180, le=180, description="Longitude in degrees.", examples=[13.405], strict=True)


EXAMPLE_POINT: dict[str, Any] = {"lat": 52.52, "lon": 13.405}


class LanguageSkill(Contract):
    """A language someone speaks, and how well."""

    language: LanguageCode
    level: LanguageLevel = Field(description="Level on the CEFR scale or native.", examples=["native"])


class LanguageRequirement(Contract):
    """A language a need requires, at least at the given level."""

    language: LanguageCode
    min_level: LanguageLevel = Field(
        description="Lowest acceptable level on the CEFR scale or native.", examples=["b2"]
    )


class Certificate(Contract):
    """A certificate a volunteer has shown to their organisation."""

    kind: CertificateKind = Field(description="Kind of certificate.", examples=["extended_police_certificate"])
    issued_on: IsoDate = Field(description="Date of issue.", examples=["2026-03-01"])
    valid_until: IsoDate | None = Field(
        default=None,
        description="Last day of validity; absent if it does not expire.",
        examples=["2031-03-01"],
    )


class Consent(Contract):
    """The consent a volunteer gave, as recorded by the registry."""

    purposes: list[ConsentPurpose] = Field(
        min_length=1,
        description="What the volunteer agreed their data may be used for.",
        examples=[["matching", "contact"]],
    )
    text_version: str = Field(
        pattern=r"^[A-Za-z0-9._-]{1,40}$",
        description="Version of the consent text the volunteer agreed to.",
        examples=["2026-01"],
    )
    given_at: IsoDatetime = Field(description="When consent was given.", examples=["2026-11-20T09:30:00+01:00"])


EXAMPLE_CONSENT: dict[str, Any] = {
    "purposes": ["matching", "contact"],
    "text_version": "2026-01",
    "given_at": "2026-11-20T09:30:00+01:00",
}


class HomeArea(Contract):
    """Where a volunteer starts from: coordinates, a postcode, or both."""

    point: GeoPoint | None = Field(default=None, description="Approximate home coordinates.", examples=[EXAMPLE_POINT])
    postcode: Postcode | None = Field(default=None, description="Home postcode.", examples=["12345"])

    @model_validator(mode="after")
    def _needs_point_or_postcode(self) -> HomeArea:
        if self.point is None and self.postcode is None:
            raise ValueError("give point, postcode or both")
        return self


EXAMPLE_HOME_AREA: dict[str, Any] = {"point": EXAMPLE_POINT, "postcode": "12345"}


class Place(Contract):
    """Where a need takes place."""

    point: GeoPoint = Field(description="Coordinates of the place.", examples=[EXAMPLE_POINT])
    postcode: Postcode | None = Field(default=None, description="Postcode of the place.", examples=["12345"])
    district: str | None = Field(default=None, max_length=80, description="District (Stadtteil).", examples=["Mitte"])


EXAMPLE_PLACE: dict[str, Any] = {"point": EXAMPLE_POINT, "postcode": "12345", "district": "Mitte"}


class WeeklySlot(Contract):
    """A recurring slot in the week, in the tenant's local time."""

    weekday: Weekday = Field(description="Day of the week.", examples=["tuesday"])
    start: IsoTime = Field(description="Local start time.", examples=["16:00:00"])
    end: IsoTime = Field(description="Local end time, after start.", examples=["19:00:00"])

    @model_validator(mode="after")
    def _end_after_start(self) -> WeeklySlot:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


EXAMPLE_SLOT: dict[str, Any] = {"weekday": "tuesday", "start": "16:00:00", "end": "19:00:00"}


class QuietHours(Contract):
    """A daily window in the tenant's local time in which a volunteer gets no email; it may cross
    midnight (21:00-07:00). Messages due inside it are sent when it ends."""

    start: IsoTime = Field(description="Local time the quiet window starts.", examples=["21:00:00"])
    end: IsoTime = Field(
        description="Local time the quiet window ends; earlier than start if it crosses midnight.",
        examples=["07:00:00"],
    )

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHours:
        if self.start == self.end:
            raise ValueError("start and end must differ")
        return self


EXAMPLE_QUIET_HOURS: dict[str, Any] = {"start": "21:00:00", "end": "07:00:00"}


class DateRange(Contract):
    """An inclusive range of days; an absent end means open-ended."""

    start: IsoDate = Field(description="First day.", examples=["2026-12-01"])
    end: IsoDate | None = Field(default=None, description="Last day, inclusive.", examples=["2027-03-31"])

    @model_validator(mode="after")
    def _end_not_before_start(self) -> DateRange:
        if self.end is not None and self.end < self.start:
            raise ValueError("end must not be before start")
        return self


class Availability(Contract):
    """When a volunteer can help and how much at once."""

    weekly_slots: list[WeeklySlot] = Field(
        description="Recurring weekly slots in which the volunteer is available.",
        examples=[[EXAMPLE_SLOT]],
    )
    periods: list[DateRange] = Field(
        default_factory=list,
        description="Date ranges in which the weekly slots apply; empty means from now on.",
        examples=[[{"start": "2026-12-01", "end": "2027-03-31"}]],
    )
    unavailable: list[DateRange] = Field(
        default_factory=list,
        description="Date ranges in which the volunteer is away (holidays).",
        examples=[[{"start": "2026-12-22", "end": "2027-01-06"}]],
    )
    max_concurrent_engagements: int = Field(
        ge=1, le=10, description="How many needs the volunteer helps with at the same time.", examples=[2], strict=True
    )


EXAMPLE_AVAILABILITY: dict[str, Any] = {
    "weekly_slots": [EXAMPLE_SLOT],
    "periods": [{"start": "2026-12-01", "end": "2027-03-31"}],
    "unavailable": [],
    "max_concurrent_engagements": 2,
}


class OneOffWindow(Contract):
    """A need that happens once, within a time window."""

    kind: Literal["one_off"] = Field(description="Schedule discriminator.", examples=["one_off"])
    start: IsoDatetime = Field(description="Start of the window.", examples=["2026-12-03T09:00:00+01:00"])
    end: IsoDatetime = Field(description="End of the window, after start.", examples=["2026-12-03T12:00:00+01:00"])

    @model_validator(mode="after")
    def _end_after_start(self) -> OneOffWindow:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class WeeklyRecurrence(Contract):
    """A need that recurs every week in the given slots."""

    kind: Literal["weekly"] = Field(description="Schedule discriminator.", examples=["weekly"])
    slots: list[WeeklySlot] = Field(
        min_length=1, description="Weekly slots in the tenant's local time.", examples=[[EXAMPLE_SLOT]]
    )
    starts_on: IsoDate = Field(description="First day of the recurrence.", examples=["2026-12-01"])
    ends_on: IsoDate | None = Field(
        default=None, description="Last day of the recurrence; absent means open-ended.", examples=["2027-06-30"]
    )


Schedule = Annotated[OneOffWindow | WeeklyRecurrence, Field(discriminator="kind")]

EXAMPLE_SCHEDULE: dict[str, Any] = {
    "kind": "one_off",
    "start": "2026-12-03T09:00:00+01:00",
    "end": "2026-12-03T12:00:00+01:00",
}


# Example ids, reused so that one example event reads as one consistent story.
EXAMPLE_ORGANISATION_ID = "3f2b6c1e-8d4a-4a57-9b0e-2c6f1d7a9e01"
EXAMPLE_VOLUNTEER_ID = "8c1d2e3f-4a5b-4c6d-8e7f-901a2b3c4d5e"
EXAMPLE_STAFF_ID = "2d3e4f5a-6b7c-4d8e-9f0a-1b2c3d4e5f60"
EXAMPLE_NEED_ID = "5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d"
EXAMPLE_PROPOSAL_ID = "0e1f2a3b-4c5d-4e6f-8a7b-9c0d1e2f3a4b"
EXAMPLE_DELIVERY_ID = "6d7e8f90-1a2b-4c3d-8e4f-5a6b7c8d9e0f"
