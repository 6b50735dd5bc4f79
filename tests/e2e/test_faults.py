"""Faults: each service is killed with SIGKILL and restarted while partner needs stream in.
Afterwards no need is missing anywhere and every proposal was emailed exactly once."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections import Counter

import pytest

from lotse_cli.demo import ACCEPT_LINK
from lotse_cli.supervisor import Platform
from lotse_contracts import MatchProposed, parse_event
from lotse_contracts.topics import PROPOSALS
from tests.e2e.journey import Municipality, eventually
from tests.support.kafka import read_all

pytestmark = pytest.mark.faults

NEEDS = 16
VOLUNTEERS = 5


def proposals_of(platform: Platform, tenant: str) -> set[str]:
    records = asyncio.run(read_all(platform.stack.kafka_bootstrap, PROPOSALS.name, expected=10**9, timeout=3))
    proposed = set()
    for record in records:
        event = parse_event(record.value)
        if event.tenant == tenant and isinstance(event.data, MatchProposed):
            proposed.add(str(event.data.proposal_id))
    return proposed


def test_crashed_services_lose_nothing_and_send_no_proposal_twice(platform: Platform) -> None:
    town = Municipality(platform, f"faults-{uuid.uuid4().hex[:8]}")
    town.onboard()
    emails = [town.register_volunteer(f"Vol{number}", "de")[1] for number in range(VOLUNTEERS)]

    def stream(first: int, last: int) -> None:
        for number in range(first, last):
            town.publish(town.need_command(f"fault-{number}"))

    crashes = ["notifications", "matching", "registry"]
    streamer = threading.Thread(target=stream, args=(0, NEEDS // 2))
    streamer.start()
    for service in crashes:
        platform.crash_and_restart(service)
    streamer.join()
    stream(NEEDS // 2, NEEDS)

    # Every need reached the registry (the partner's commands were applied once each) ...
    def all_needs() -> list[dict[str, object]] | None:
        needs = town.needs()
        return needs if len(needs) >= NEEDS else None

    needs = eventually("every need in the registry", all_needs, 180)
    assert len(needs) == NEEDS

    # ... matching proposed volunteers for each of them ...
    def proposed_for_every_need() -> set[str] | None:
        proposed = proposals_of(platform, town.slug)
        return proposed if len(proposed) >= NEEDS else None

    proposed = eventually("proposals for every need", proposed_for_every_need, 180)

    # ... and each proposal reached its volunteer exactly once.
    def all_emailed() -> list[str] | None:
        links = [
            match.group(1)
            for address in emails
            for mail in town.mails_to(address)
            if (match := ACCEPT_LINK.search(mail["text"] or ""))
        ]
        return links if len(set(links)) >= len(proposals_of(platform, town.slug)) else None

    links = eventually("an email for every proposal", all_emailed, 180)
    final = proposals_of(platform, town.slug)
    duplicates = [link for link, count in Counter(links).items() if count > 1]
    print(
        f"\nfaults: {len(crashes)} services killed and restarted; needs sent {NEEDS}, in registry {len(needs)}; "
        f"proposals {len(final)}, proposal emails {len(links)}, duplicates {len(duplicates)}, "
        f"lost {NEEDS - len(needs)}"
    )
    assert len(final) >= len(proposed)
    assert duplicates == []
    assert len(links) == len(final)
