"""Counting the MongoDB round trips a piece of code costs.

On the embedded database every command costs a millisecond or more, so the number of commands
an event's handler sends is what its cost is made of (issue 17). ``CommandCounter`` is a PyMongo
command listener; ``counting_client`` makes a client that reports to one, to hand to the service
under test in place of the client its app would make. ``counter.measure()`` collects the commands
sent inside a block: their names in order, so that a failing bound says which command came.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from pymongo import AsyncMongoClient, monitoring


@dataclass
class Commands:
    """The commands sent while one measurement ran, in the order they were sent."""

    names: list[str] = field(default_factory=list)

    @property
    def round_trips(self) -> int:
        return len(self.names)

    @property
    def transactions(self) -> int:
        return self.names.count("commitTransaction")

    def summary(self) -> str:
        counted = Counter(self.names)
        return f"{self.round_trips} round trips ({', '.join(f'{name} {n}' for name, n in sorted(counted.items()))})"


class CommandCounter(monitoring.CommandListener):
    """Records the name of every command its client sends, into the measurements running."""

    def __init__(self) -> None:
        self._running: list[Commands] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        for commands in self._running:
            commands.names.append(event.command_name)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    @contextmanager
    def measure(self) -> Iterator[Commands]:
        commands = Commands()
        self._running.append(commands)
        try:
            yield commands
        finally:
            self._running.remove(commands)


def counting_client(url: str) -> tuple[AsyncMongoClient[dict[str, Any]], CommandCounter]:
    """A client as a service makes it (time zone aware) whose commands ``counter`` sees."""
    counter = CommandCounter()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(url, tz_aware=True, event_listeners=[counter])
    return client, counter
