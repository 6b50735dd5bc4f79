"""Delivery events, produced by the notification service.

They name the recipient by id only: addresses stay in the notification
service's contact read model, so the topic holds no contact data.
"""

from __future__ import annotations

from enum import StrEnum
from uuid import UUID

from pydantic import Field

from lotse_contracts.base import EventData
from lotse_contracts.events.values import EXAMPLE_DELIVERY_ID, EXAMPLE_VOLUNTEER_ID, Channel, LanguageCode
from lotse_contracts.personal_data import NOT_PERSONAL, DataCategory, DataSubject, Purpose, RetentionRule, personal

# The record of processing (lotse_contracts.personal_data): what was sent to whom, when the
# recipient is a person.
_RECIPIENTS = (DataSubject.VOLUNTEER, DataSubject.ORGANISATION_CONTACT)
_KEPT = RetentionRule.DELIVERY_LOG
RECIPIENT = personal(DataCategory.IDENTIFIER, Purpose.NOTIFICATION, subjects=_RECIPIENTS, retention=_KEPT)
DELIVERY = personal(DataCategory.COMMUNICATION_PREFERENCES, Purpose.NOTIFICATION, subjects=_RECIPIENTS, retention=_KEPT)
DELIVERY_ERROR = personal(
    DataCategory.FREE_TEXT,
    Purpose.NOTIFICATION,
    subjects=_RECIPIENTS,
    retention=_KEPT,
    note="a mail or SMS server's answer may repeat the address",
)


class RecipientKind(StrEnum):
    VOLUNTEER = "volunteer"
    ORGANISATION = "organisation"
    TENANT = "tenant"
    PARTNER = "partner"


class Delivery(EventData):
    subject_field = "delivery_id"

    delivery_id: UUID = Field(
        description="Id of the delivery; also the subject.",
        examples=[EXAMPLE_DELIVERY_ID],
        json_schema_extra=NOT_PERSONAL,
    )
    recipient_kind: RecipientKind = Field(
        description="Who the message is for.", examples=["volunteer"], json_schema_extra=NOT_PERSONAL
    )
    recipient_id: str = Field(
        max_length=64,
        description="Id of the recipient (volunteer or organisation id, tenant slug or partner system).",
        examples=[EXAMPLE_VOLUNTEER_ID],
        json_schema_extra=RECIPIENT,
    )
    channel: Channel = Field(description="Channel used.", examples=["email"], json_schema_extra=DELIVERY)
    template: str = Field(
        pattern=r"^[a-z][a-z0-9_]{1,63}$",
        description="Template that was rendered.",
        examples=["match_proposed"],
        json_schema_extra=DELIVERY,
    )
    language: LanguageCode = Field(
        description="Language the message was rendered in.", examples=["de"], json_schema_extra=DELIVERY
    )
    trigger_event_id: UUID = Field(
        description="Id of the event that caused this notification.",
        examples=["1b2c3d4e-5f60-4718-9a2b-3c4d5e6f7a8b"],
        json_schema_extra=NOT_PERSONAL,
    )


class NotificationSent(Delivery):
    """A notification was handed to its channel."""

    event_type = "de.lotse.notifications.delivery.sent.v1"


class NotificationFailed(Delivery):
    """A notification could not be delivered."""

    event_type = "de.lotse.notifications.delivery.failed.v1"

    error_code: str = Field(
        pattern=r"^[a-z][a-z0-9_]{1,63}$",
        description="Machine-readable cause.",
        examples=["mailbox_unavailable"],
        json_schema_extra=NOT_PERSONAL,
    )
    error: str = Field(
        max_length=500,
        description="Human-readable cause.",
        examples=["550 mailbox unavailable"],
        json_schema_extra=DELIVERY_ERROR,
    )
    attempts: int = Field(
        ge=1, description="Attempts made so far.", examples=[3], strict=True, json_schema_extra=NOT_PERSONAL
    )
    will_retry: bool = Field(
        description="Whether the service tries again.", examples=[False], strict=True, json_schema_extra=NOT_PERSONAL
    )
