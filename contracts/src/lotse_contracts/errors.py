"""The one exception contract parsing raises."""

from __future__ import annotations

from lotse_contracts.dead_letter import DeadLetterReason


class EventValidationError(ValueError):
    """A message is not a valid Lotse event.

    `reason` is one human-readable line naming each bad field path (ready for
    a log line or the `lotse.dlq.error` header); `kind` is the category to put
    in `lotse.dlq.reason`.
    """

    def __init__(self, kind: DeadLetterReason, problems: list[str], event_type: str | None = None) -> None:
        self.kind = kind
        self.problems = tuple(problems)
        self.event_type = event_type
        self.reason = "; ".join(problems)
        super().__init__(self.reason)
