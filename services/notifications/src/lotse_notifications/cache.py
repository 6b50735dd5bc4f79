"""Rarely changing read-model data held in memory for a few seconds (issue 17: round trips).

A handler reads the tenant's facts or its webhooks for nearly every event; each read is a
MongoDB round trip. The store keeps what it read here, drops an entry as soon as this process
changes it (the events that change tenants arrive through the same consumer; webhooks change
through this service's API) and lets every entry expire after ``seconds``: with several
replicas, one that did not apply the change serves the old value for at most that long.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

# How long another replica's change may go unseen here.
CACHE_SECONDS = 5.0


class Expiring(Generic[K, V]):
    """Values by key, each for ``seconds`` after it was put (never absence: a missing tenant may
    arrive any moment)."""

    def __init__(self, seconds: float = CACHE_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self.clock = clock
        self._entries: dict[K, tuple[float, V]] = {}

    def get(self, key: K) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, value = entry
        if self.clock() >= expires:
            del self._entries[key]
            return None
        return value

    def put(self, key: K, value: V) -> None:
        self._entries[key] = (self.clock() + self.seconds, value)

    def forget(self, key: K) -> None:
        self._entries.pop(key, None)
