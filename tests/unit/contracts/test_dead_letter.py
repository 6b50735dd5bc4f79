"""The dead-letter header convention round-trips."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from lotse_contracts import DeadLetterInfo, DeadLetterReason
from lotse_contracts.dead_letter import HEADER_NAMES, MAX_ERROR_CHARS, REDACTED, redact_data


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


def test_a_redacted_letter_says_so_in_a_header_and_others_read_as_before() -> None:
    headers = info(redacted=True).to_headers()

    assert (REDACTED, b"true") in headers
    assert DeadLetterInfo.from_headers(headers).redacted
    assert not DeadLetterInfo.from_headers(info().to_headers()).redacted
    assert REDACTED not in dict(info().to_headers())


def test_redaction_keeps_the_envelope_and_only_the_names_of_the_data_fields() -> None:
    value = json.dumps(
        {
            "specversion": "1.0",
            "type": "de.lotse.partner.volunteer.register.v1",
            "subject": "vol-1",
            "data": {"contact": {"email": "erika@example.org"}, "external_ref": "vol-1", "consent": {}},
        }
    ).encode()

    assert json.loads(redact_data(value)) == {
        "specversion": "1.0",
        "type": "de.lotse.partner.volunteer.register.v1",
        "subject": "vol-1",
        "data": ["consent", "contact", "external_ref"],
    }


@pytest.mark.parametrize(
    ("value", "redacted"),
    [
        (b'{"type": "x", "data_base64": "ZXJpa2E="}', {"type": "x", "data": []}),
        (b'{"type": "x", "data": "erika@example.org"}', {"type": "x", "data": []}),
    ],
)
def test_redaction_copies_no_data_that_is_not_an_object(value: bytes, redacted: dict[str, object]) -> None:
    assert json.loads(redact_data(value)) == redacted


@pytest.mark.parametrize("value", [b"not json erika@example.org", b'["erika@example.org"]'])
def test_redaction_of_what_is_no_envelope_keeps_nothing(value: bytes) -> None:
    assert redact_data(value) == b""
