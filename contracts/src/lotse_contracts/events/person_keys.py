"""Person keys, produced by the registry (crypto-shredding, issue 18).

One key per person, on a compacted topic keyed like the person's own events. The value is the
data key wrapped with the platform's key-encryption key, never the key in clear: the topic alone
opens nothing. When a person is erased the registry deletes the key and writes a tombstone (a
record with the same key and no value); consumers delete their copy on it.
"""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import Field

from lotse_contracts.base import EventData
from lotse_contracts.events.values import EXAMPLE_VOLUNTEER_ID
from lotse_contracts.personal_data import NOT_PERSONAL, DataCategory, Purpose, RetentionRule, personal
from lotse_contracts.sealed import BASE64URL, EXAMPLE_KEY_ID

# The key opens the volunteer's sealed fields; it is destroyed at their erasure.
PERSON = personal(
    DataCategory.IDENTIFIER, Purpose.MATCHING, Purpose.NOTIFICATION, retention=RetentionRule.WITHDRAWN_VOLUNTEERS
)
KEY = personal(
    DataCategory.IDENTIFIER,
    Purpose.MATCHING,
    Purpose.NOTIFICATION,
    retention=RetentionRule.WITHDRAWN_VOLUNTEERS,
    note="wrapped; destroyed (tombstone) to shred the volunteer's sealed fields",
)


class PersonKeyIssued(EventData):
    """The data key that seals a person's personal fields on the topics."""

    event_type = "de.lotse.registry.person_key.issued.v1"
    subject_field = "person_id"

    person_id: UUID = Field(
        description="Id of the person (a volunteer) the key belongs to.",
        examples=[EXAMPLE_VOLUNTEER_ID],
        json_schema_extra=PERSON,
    )
    key_id: UUID = Field(
        description="Id of the key, as sealed values name it.",
        examples=[EXAMPLE_KEY_ID],
        json_schema_extra=NOT_PERSONAL,
    )
    algorithm: Literal["A256GCM"] = Field(
        description="What the key is for: AES-256-GCM.", examples=["A256GCM"], json_schema_extra=NOT_PERSONAL
    )
    wrapped_key: str = Field(
        min_length=22,
        max_length=200,
        pattern=BASE64URL,
        description=(
            "The 256-bit data key encrypted with the platform's key-encryption key (AES-256-GCM, "
            "nonce first, additional data the key id), base64url without padding."
        ),
        examples=["c2VjcmV0LWtleS1tYXRlcmlhbC13cmFwcGVkLWZvci10aGUtZXhhbXBsZQ"],
        json_schema_extra=KEY,
    )
