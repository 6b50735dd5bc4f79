"""Which failures are waited out (infrastructure) and which count against a message (its own)."""

from __future__ import annotations

import pytest
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError, NotLeaderForPartitionError, RecordTooLargeError
from pymongo.errors import (
    AutoReconnect,
    DuplicateKeyError,
    NetworkTimeout,
    OperationFailure,
    ServerSelectionTimeoutError,
)

from lotse_runtime.failures import is_transient


@pytest.mark.parametrize(
    "error",
    [
        ServerSelectionTimeoutError("no server"),
        AutoReconnect("connection reset"),
        NetworkTimeout("timed out"),
        OperationFailure("write conflict", code=112, details={"errorLabels": ["TransientTransactionError"]}),
        KafkaConnectionError("broker away"),
        KafkaTimeoutError(),
        NotLeaderForPartitionError(),
    ],
)
def test_infrastructure_failures_are_transient(error: Exception) -> None:
    assert is_transient(error)


@pytest.mark.parametrize(
    "error",
    [
        DuplicateKeyError("E11000 duplicate key"),
        OperationFailure("document failed validation", code=121),
        RecordTooLargeError(),
        ValueError("bad data"),
        KeyError("volunteer_id"),
    ],
)
def test_failures_of_the_message_itself_are_not(error: Exception) -> None:
    assert not is_transient(error)
