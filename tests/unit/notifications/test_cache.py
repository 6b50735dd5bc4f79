"""The store's memory of tenants and webhooks: an entry lives ``seconds`` at most, so that a
replica that did not apply a change serves the old value only that long."""

from __future__ import annotations

from lotse_notifications.cache import Expiring


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_an_entry_is_served_until_it_expires_and_then_read_again() -> None:
    clock = Clock()
    cache: Expiring[str, list[str]] = Expiring(5.0, clock)
    cache.put("musterstadt", [])

    clock.now += 4.9
    assert cache.get("musterstadt") == []  # an empty list is a value (no webhooks), not a miss
    clock.now += 0.1
    assert cache.get("musterstadt") is None


def test_a_forgotten_entry_is_read_again_at_once() -> None:
    cache: Expiring[str, str] = Expiring(5.0, Clock())
    cache.put("musterstadt", "de")
    cache.forget("musterstadt")
    cache.forget("nowhere")  # nothing to forget is no error
    assert cache.get("musterstadt") is None
