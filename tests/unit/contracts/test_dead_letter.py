"""The dead-letter header convention round-trips."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from lotse_contracts import DeadLetterInfo, DeadLetterReason
from lotse_contracts.dead_letter import HEADER_NAMES, MAX_ERROR_CHARS


def info(**changes: object) -> DeadLetterInfo:
    values: dict[str, object] = {
        "reason": DeadLetterReason.INVALID_DATA,
        "error": "data.volunteers_needed: Input should be greater than or equal to 1",
        "source_topic": "lotse.partner.musterstadt.inbound.v1",
        "source_partition": 2,
        "source_offset": 1234,
        "consumer": "registry",
        "failed_at": datetime(2026, 11, 25, 10, 0, tzinfo=UTC),
    }
    return DeadLetterInfo.model_validate(values | changes)


def test_headers_round_trip() -> None:
    headers = info().to_headers()

    assert [name for name, _ in headers] == list(HEADER_NAMES)
    assert all(isinstance(value, bytes) for _, value in headers)
    assert DeadLetterInfo.from_headers([("content-type", b"x"), *headers]) == info()


def test_long_errors_are_cut_to_keep_headers_small() -> None:
    headers = dict(info(error="x" * 10_000).to_headers())

    assert len(headers["lotse.dlq.error"]) == MAX_ERROR_CHARS


def test_a_record_without_the_headers_is_not_a_dead_letter() -> None:
    with pytest.raises(ValueError, match=r"lotse\.dlq\.reason"):
        DeadLetterInfo.from_headers([])
