"""Which failures belong to the infrastructure rather than to the message or request at hand.

A database restart or a cut broker connection is no reason to dead-letter an event or to answer
500: the event is waited for until the infrastructure is back, and an HTTP caller is told 503
and to try again.
"""

from __future__ import annotations

from aiokafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError
from pymongo.errors import ConnectionFailure, PyMongoError

# Labels MongoDB puts on errors that the same operation may overcome when tried again.
_TRANSIENT_LABELS = ("TransientTransactionError", "RetryableWriteError", "ResetPool")


def is_transient(error: BaseException) -> bool:
    """True for failures that pass by themselves: unreachable servers, timeouts, failovers."""
    if isinstance(error, ConnectionFailure):  # also AutoReconnect, NetworkTimeout, ServerSelectionTimeoutError
        return True
    if isinstance(error, PyMongoError):
        return any(error.has_error_label(label) for label in _TRANSIENT_LABELS)
    if isinstance(error, KafkaConnectionError | KafkaTimeoutError):
        return True
    return isinstance(error, KafkaError) and bool(getattr(error, "retriable", False))
