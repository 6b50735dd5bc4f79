"""The dead-letter record convention.

A message that cannot be processed is copied to `<topic>.dlq`: its value is
the original bytes unchanged and its key the original key, so a replay can
put it back exactly as it was; why it failed and where it came from travel in
headers named below.

Except for a record whose personal data must not be copied (a volunteer's
registration a partner sent on Kafka, which Lotse refuses: a log it cannot
erase a person from): its dead letter is `redacted`, the envelope with `data`
replaced by the list of the data's field names, so the partner still learns
what was refused and why. A redacted letter cannot be replayed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum

from pydantic import AwareDatetime, Field

from lotse_contracts.base import Contract

REASON = "lotse.dlq.reason"
ERROR = "lotse.dlq.error"
SOURCE_TOPIC = "lotse.dlq.source.topic"
SOURCE_PARTITION = "lotse.dlq.source.partition"
SOURCE_OFFSET = "lotse.dlq.source.offset"
CONSUMER = "lotse.dlq.consumer"
FAILED_AT = "lotse.dlq.failed_at"
# Only on a redacted letter (``true``); dead letters written before it existed have none.
REDACTED = "lotse.dlq.redacted"

HEADER_NAMES: tuple[str, ...] = (REASON, ERROR, SOURCE_TOPIC, SOURCE_PARTITION, SOURCE_OFFSET, CONSUMER, FAILED_AT)

# Headers count towards the record size; a stack trace does not belong there.
MAX_ERROR_CHARS = 2000


class DeadLetterReason(StrEnum):
    MALFORMED_JSON = "malformed_json"
    UNKNOWN_TYPE = "unknown_type"
    INVALID_ENVELOPE = "invalid_envelope"
    INVALID_DATA = "invalid_data"
    TOO_LARGE = "too_large"
    TENANT_MISMATCH = "tenant_mismatch"
    NOT_ALLOWED = "not_allowed"
    PROCESSING_FAILED = "processing_failed"


class DeadLetterInfo(Contract):
    """Why and from where a record was dead-lettered."""

    reason: DeadLetterReason = Field(description="Category of the failure.", examples=["invalid_data"])
    error: str = Field(
        description="Human-readable error, naming the bad field paths where known.",
        examples=["data.volunteers_needed: Input should be greater than or equal to 1"],
    )
    source_topic: str = Field(
        description="Topic the record was read from.", examples=["lotse.partner.musterstadt.inbound.v1"]
    )
    source_partition: int = Field(ge=0, description="Partition it was read from.", examples=[2])
    source_offset: int = Field(ge=0, description="Offset it had there.", examples=[1234])
    consumer: str = Field(description="Consumer group that gave up on it.", examples=["registry"])
    failed_at: AwareDatetime = Field(description="When it was dead-lettered.", examples=["2026-11-25T10:00:00+00:00"])
    redacted: bool = Field(
        default=False,
        description="The value is the envelope with `data` replaced by its field names (see `redact_data`).",
        examples=[False],
    )

    def to_headers(self) -> list[tuple[str, bytes]]:
        """Kafka headers describing the failure, all values UTF-8 text."""
        values = {
            REASON: self.reason.value,
            ERROR: self.error[:MAX_ERROR_CHARS],
            SOURCE_TOPIC: self.source_topic,
            SOURCE_PARTITION: str(self.source_partition),
            SOURCE_OFFSET: str(self.source_offset),
            CONSUMER: self.consumer,
            FAILED_AT: self.failed_at.isoformat(),
        }
        if self.redacted:
            values[REDACTED] = "true"
        return [(name, value.encode()) for name, value in values.items()]

    @classmethod
    def from_headers(cls, headers: Iterable[tuple[str, bytes | None]]) -> DeadLetterInfo:
        """Read the failure back from a dead-letter record's headers; other headers are ignored."""
        found = {name: (value or b"").decode() for name, value in headers if name in (*HEADER_NAMES, REDACTED)}
        missing = [name for name in HEADER_NAMES if name not in found]
        if missing:
            raise ValueError(f"not a dead-letter record, headers missing: {', '.join(missing)}")
        return cls(
            reason=DeadLetterReason(found[REASON]),
            error=found[ERROR],
            source_topic=found[SOURCE_TOPIC],
            source_partition=int(found[SOURCE_PARTITION]),
            source_offset=int(found[SOURCE_OFFSET]),
            consumer=found[CONSUMER],
            failed_at=datetime.fromisoformat(found[FAILED_AT]),
            redacted=found.get(REDACTED) == "true",
        )


def redact_data(value: bytes) -> bytes:
    """The record's envelope with ``data`` replaced by the sorted names of the data's fields.

    Every other attribute stays (type, source, subject, id, tenant...), so whoever sent it can
    tell which of its messages was refused; no value of the data is copied. A value that is not a
    JSON object keeps nothing at all.
    """
    try:
        envelope = json.loads(value)
    except ValueError:
        return b""
    if not isinstance(envelope, dict):
        return b""
    data = envelope.pop("data", None)
    envelope.pop("data_base64", None)  # CloudEvents' binary form of the data
    envelope["data"] = sorted(data) if isinstance(data, dict) else []
    return json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode()
