"""Which data is about people, why it is kept, for how long and who receives it (DSGVO Art. 30).

Every field of every event model is marked, either as personal data (`personal(...)`: the data
subjects, the category, the purposes and the retention rule that ends its life in the services)
or explicitly as not personal (`NOT_PERSONAL`), in its pydantic `Field`:

    email: Email = Field(json_schema_extra=CONTACT_DATA)

The marking travels into the exported JSON Schemas and the AsyncAPI document as the property's
`x-personal-data` keyword (an object, or `false`), so a partner reading the schema sees it too. A
field whose type is a contract model may instead leave the marking to that model's fields. A test
(`tests/unit/contracts/test_personal_data.py`) fails for a field without a marking, so a new
personal field cannot be forgotten.

What the services keep in their databases is declared in `lotse_contracts.data_stores` with the
same vocabulary. `lotse privacy report` turns both into the tenant's record of processing
activities and a data map.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from pydantic.fields import FieldInfo

PERSONAL_DATA_KEY = "x-personal-data"


class DataSubject(StrEnum):
    """Whose data it is."""

    VOLUNTEER = "volunteer"
    # Never named in Lotse: a need's place, time and description may still point to a household.
    REFUGEE_HOUSEHOLD = "refugee_household"
    OFFICE_STAFF = "office_staff"
    ORGANISATION_CONTACT = "organisation_contact"


class DataCategory(StrEnum):
    """Categories of personal data (Art. 30(1)(c))."""

    IDENTIFIER = "identifier"  # random ids and references, pseudonymous on their own
    CONTACT_DATA = "contact_data"
    COMMUNICATION_PREFERENCES = "communication_preferences"
    LOCATION = "location"
    LANGUAGE_SKILLS = "language_skills"
    SKILLS = "skills"
    CERTIFICATES = "certificates"
    AVAILABILITY = "availability"
    CONSENT = "consent"
    ENGAGEMENT = "engagement"  # proposals, answers, commitments, hours given
    FREE_TEXT = "free_text"  # written by people; may be about third persons
    ACCOUNT = "account"  # sign-in sessions and roles


CATEGORY_TITLES: dict[DataCategory, str] = {
    DataCategory.IDENTIFIER: "identifiers (random ids, opaque references)",
    DataCategory.CONTACT_DATA: "contact data (name to address, e-mail, phone)",
    DataCategory.COMMUNICATION_PREFERENCES: "communication preferences (language, channels, quiet hours)",
    DataCategory.LOCATION: "location (home area, place of a need)",
    DataCategory.LANGUAGE_SKILLS: "language skills",
    DataCategory.SKILLS: "skills",
    DataCategory.CERTIFICATES: "certificates (incl. the extended police certificate, Art. 10 DSGVO)",
    DataCategory.AVAILABILITY: "availability and appointments",
    DataCategory.CONSENT: "consent and its evidence",
    DataCategory.ENGAGEMENT: "engagement (proposals, answers, commitments, hours)",
    DataCategory.FREE_TEXT: "free text, possibly about third persons",
    DataCategory.ACCOUNT: "account (sign-in session, roles)",
}


class Purpose(StrEnum):
    """Purposes of the processing (Art. 30(1)(b))."""

    MATCHING = "matching"
    NOTIFICATION = "notification"
    COORDINATION = "coordination"
    CONSENT_EVIDENCE = "consent_evidence"
    SIGN_IN = "sign_in"


PURPOSE_TITLES: dict[Purpose, str] = {
    Purpose.MATCHING: "propose suitable needs to volunteers, with reasons (Art. 6(1)(a) consent)",
    Purpose.NOTIFICATION: "tell volunteers and offices what concerns them (Art. 6(1)(a) consent)",
    Purpose.COORDINATION: "the office coordinates needs, volunteers and engagements (Art. 6(1)(e))",
    Purpose.CONSENT_EVIDENCE: "prove the consent given (Art. 7(1))",
    Purpose.SIGN_IN: "sign people in and keep their session (Art. 6(1)(b), 32)",
}


class RetentionRule(StrEnum):
    """The rule that ends the life of a piece of data in the services' databases.

    The first five are the retention jobs' periods (`lotse_runtime.retention.Period`, this name
    plus `_days`), with per-tenant overrides; `lotse privacy report` reads their periods there.
    """

    WITHDRAWN_VOLUNTEERS = "withdrawn_volunteers"
    CLOSED_NEEDS = "closed_needs"
    PROPOSALS_OF_CLOSED_NEEDS = "proposals_of_closed_needs"
    DELIVERY_LOG = "delivery_log"
    INBOX = "inbox"
    SHORT_LIVED = "short_lived"  # a time-to-live index or a job of hours or days
    SESSION_EXPIRY = "session_expiry"
    TENANT_LIFETIME = "tenant_lifetime"  # functional data, kept while the tenant uses Lotse
    AUDIT_TRAIL = "audit_trail"  # the audit trail's own period (`lotse_runtime.audit`)
    NO_RULE_YET = "no_rule_yet"  # nothing removes it yet: said so, to be closed


RETENTION_RULE_TEXT: dict[RetentionRule, str] = {
    RetentionRule.WITHDRAWN_VOLUNTEERS: (
        "kept while the volunteer takes part; erased at their request, or after the period once they withdrew"
    ),
    RetentionRule.CLOSED_NEEDS: (
        "description, exact place and household reference removed the period after it ended "
        "(notifications deletes its copy of the need with its proposals then)"
    ),
    RetentionRule.PROPOSALS_OF_CLOSED_NEEDS: "reasons, distance and score removed the period after the need ended",
    RetentionRule.DELIVERY_LOG: "deliveries deleted the period after they finished",
    RetentionRule.INBOX: "processed-event ids deleted after the dedup window",
    RetentionRule.SHORT_LIVED: "expires by itself within hours or days",
    RetentionRule.SESSION_EXPIRY: "deleted at sign-out or when the session expires",
    RetentionRule.TENANT_LIFETIME: "kept while the municipality uses Lotse; changed or removed by its office",
    RetentionRule.AUDIT_TRAIL: "audit entries expire the period after they were written (a time-to-live index)",
    RetentionRule.NO_RULE_YET: "no job removes it yet: kept until the tenant is removed (a gap to close)",
}


class PersonalField(BaseModel):
    """The marking of a personal field: whose, what, why, and which rule removes it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    subjects: tuple[DataSubject, ...]
    category: DataCategory
    purposes: tuple[Purpose, ...]
    retention: RetentionRule
    note: str | None = None


def personal(
    category: DataCategory,
    *purposes: Purpose,
    retention: RetentionRule,
    subjects: tuple[DataSubject, ...] = (DataSubject.VOLUNTEER,),
    note: str | None = None,
) -> dict[str, Any]:
    """The `json_schema_extra` of a personal field."""
    marking = PersonalField(subjects=subjects, category=category, purposes=purposes, retention=retention, note=note)
    return {PERSONAL_DATA_KEY: marking.model_dump(mode="json", exclude_none=True)}


# The `json_schema_extra` of a field that holds nothing about a person.
NOT_PERSONAL: dict[str, Any] = {PERSONAL_DATA_KEY: False}


def marking_of(field: FieldInfo) -> PersonalField | Literal[False] | None:
    """A field's marking: personal, explicitly not personal (False), or None if unmarked."""
    extra = field.json_schema_extra
    if not isinstance(extra, dict) or PERSONAL_DATA_KEY not in extra:
        return None
    value = extra[PERSONAL_DATA_KEY]
    if value is False:
        return False
    return PersonalField.model_validate(value)


@dataclass(frozen=True)
class FieldMarking:
    """One leaf of an event's data: its path (`contact.email`) and its marking (None: unmarked)."""

    model: str
    path: str
    marking: PersonalField | Literal[False] | None


def walk_markings(model: type[BaseModel], prefix: str = "") -> Iterator[FieldMarking]:
    """Every marked field of a model, and every unmarked one; an unmarked field whose type is a
    model is walked into instead, so its own fields carry the markings."""
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        marking = marking_of(field)
        nested = _models_in(field.annotation)
        if marking is None and nested:
            for inner in nested:
                yield from walk_markings(inner, f"{path}.")
            continue
        yield FieldMarking(model.__name__, path, marking)


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models a field's type contains (`X`, `list[X]`, `X | None`, `Annotated[...]`)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _models_in(typing.get_args(annotation)[0])
    if origin is None and not isinstance(annotation, types.UnionType):
        return []
    found: list[type[BaseModel]] = []
    for argument in typing.get_args(annotation):
        for model in _models_in(argument):
            if model not in found:
                found.append(model)
    return found
