"""Faults: while a partner streams needs and volunteers answer their proposals, each service is
killed with SIGKILL and restarted, the database is killed and restarted on its on-disk storage,
and every broker connection is cut and later restored.

Afterwards every need is in its right state in every read model, every proposal was emailed
exactly once (or cancelled unsent when its need was staffed first), the office heard of each
staffed need once, and the dead-letter topics hold exactly the poison the partner sent.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka.errors import KafkaError

from lotse_cli.demo import ACCEPT_LINK
from lotse_cli.supervisor import Platform
from lotse_contracts import (
    TOPICS,
    DeadLetterInfo,
    MatchProposed,
    dead_letter_topic,
    parse_event,
    partner_inbound_topic,
)
from lotse_contracts.topics import PROPOSALS
from lotse_runtime.auth import Role
from tests.e2e.journey import Municipality, eventually
from tests.support.kafka import read_to_end
from tests.support.tcp_proxy import TcpProxy

pytestmark = [pytest.mark.faults, pytest.mark.timeout(600)]

NEEDS = 16
TO_STAFF = 8
VOLUNTEERS = 5
ENGAGEMENTS_PER_VOLUNTEER = 2  # what Municipality.register_volunteer offers
REPLAYED = 3
SETTLE_SECONDS = 240


class Answerer:
    """The volunteers, answering their proposals in the matching API as they arrive, and retrying
    as an app would while a service restarts. They accept until TO_STAFF needs are staffed."""

    def __init__(self, town: Municipality, volunteers: list[str]) -> None:
        self.town = town
        self.volunteers = volunteers
        self.accepted: dict[str, str] = {}  # need id -> volunteer id
        self.answers = 0
        self.retries = 0
        self.stopped = threading.Event()

    def run(self) -> None:
        engagements: Counter[str] = Counter()
        while len(self.accepted) < TO_STAFF and not self.stopped.wait(0.3):
            for volunteer in self.volunteers:
                for proposal in self.request("GET", "/volunteers/me/proposals", volunteer):
                    need = proposal["need_id"]
                    if (
                        proposal["status"] != "open"
                        or need in self.accepted
                        or engagements[volunteer] >= ENGAGEMENTS_PER_VOLUNTEER
                        or len(self.accepted) >= TO_STAFF
                    ):
                        continue
                    path = f"/volunteers/me/proposals/{proposal['proposal_id']}/accept"
                    outcome = self.request("POST", path, volunteer)["outcome"]
                    self.answers += 1
                    # "already_accepted": an earlier try went through, but its answer was lost in a crash.
                    if outcome in {"accepted", "already_accepted"}:
                        self.accepted[need] = volunteer
                        engagements[volunteer] += 1

    def request(self, method: str, path: str, volunteer: str) -> Any:
        token = self.town.token(Role.VOLUNTEER, subject=volunteer)
        deadline = time.monotonic() + SETTLE_SECONDS
        while time.monotonic() < deadline:
            try:
                response = self.town.call(method, "matching", path, token)
            except httpx.TransportError:
                response = None  # the service is being restarted
            if response is not None and response.status_code < 500:
                assert response.status_code == 200, (method, path, response.status_code, response.text)
                return response.json()
            self.retries += 1
            time.sleep(0.5)
        raise AssertionError(f"{method} {path} did not succeed within {SETTLE_SECONDS}s")


class Partner:
    """The partner's case management: sends its commands and, as real senders do, sends again
    when the broker does not acknowledge (which is why the platform must suppress duplicates)."""

    def __init__(self, town: Municipality) -> None:
        self.town = town
        self.sent: list[bytes] = []
        self.sends = 0

    def send(self, value: bytes) -> None:
        deadline = time.monotonic() + SETTLE_SECONDS
        while True:
            self.sends += 1
            try:
                self.town.publish(value)
                self.sent.append(value)
                return
            except KafkaError:  # broker unreachable: send the same bytes again
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)


def readiness(platform: Platform, service: str) -> dict[str, Any]:
    try:
        return dict(httpx.get(f"{platform.url(service)}/ready", timeout=5).json()["checks"])
    except (httpx.HTTPError, ValueError, KeyError):
        return {}


def cut_broker_connections(platform: Platform, proxy: TcpProxy) -> None:
    """Cut every broker connection; restore them once the services report the broker missing."""
    proxy.cut()
    eventually(
        "the services to report the broker unavailable",
        lambda: all(readiness(platform, s).get("kafka", "ok") != "ok" for s in ("registry", "matching")),
        60,
    )
    proxy.restore()
    eventually(
        "the services to be ready again",
        lambda: all(readiness(platform, s).get("kafka") == "ok" for s in platform.ports.services()),
        90,
    )


def suppressed_duplicates(log_dir: Path, tenant: str) -> Counter[str]:
    """Per consumer, the duplicates the services ignored for this tenant (their logs survive restarts)."""
    counts: Counter[str] = Counter()
    for log in log_dir.glob("*.log"):
        for line in log.read_text(errors="replace").splitlines():
            if '"duplicate event ignored"' not in line:
                continue
            entry = json.loads(line)
            if entry.get("tenant") == tenant:
                counts[entry["consumer"]] += 1
    return counts


def proposed_events(platform: Platform, tenant: str) -> dict[str, str]:
    """MatchProposed event id -> proposal id, for this tenant."""
    records = asyncio.run(read_to_end(platform.stack.kafka_bootstrap, [PROPOSALS.name]))
    events = (parse_event(record.value) for record in records)
    return {
        str(event.id): str(event.data.proposal_id)
        for event in events
        if event.tenant == tenant and isinstance(event.data, MatchProposed)
    }


def dead_letters(platform: Platform, tenant: str) -> tuple[list[str], list[str]]:
    """"consumer: reason" of this tenant's inbound dead letters, and any shared dead letter naming it."""
    own = asyncio.run(read_to_end(platform.stack.kafka_bootstrap, [dead_letter_topic(partner_inbound_topic(tenant))]))
    shared_topics = [dead_letter_topic(topic.name) for topic in TOPICS if topic.consumers]
    shared = asyncio.run(read_to_end(platform.stack.kafka_bootstrap, shared_topics))
    infos = (DeadLetterInfo.from_headers(record.headers.items()) for record in own)
    reasons = sorted(f"{info.consumer}: {info.reason.value}" for info in infos)
    foreign = [record.topic for record in shared if tenant.encode() in record.value + (record.key or b"")]
    return reasons, foreign


def test_a_stream_through_crashes_database_restarts_and_broker_cuts_loses_nothing_and_does_nothing_twice(
    platform: Platform, broker_proxy: TcpProxy
) -> None:
    town = Municipality(platform, f"faults-{uuid.uuid4().hex[:8]}")
    town.onboard()
    volunteers = [town.register_volunteer(f"Vol{number}", "de") for number in range(VOLUNTEERS)]
    emails = [email for _, email, _ in volunteers]
    partner = Partner(town)
    # A day apart, so that one volunteer can take several of them.
    needs = [town.need_command(f"fault-{number}", days_ahead=3 + 2 * number) for number in range(NEEDS)]
    poison = [b'{"specversion": "1.0", "type": ', town.need_command("foreign", tenant="someone-else")]

    faults: list[tuple[str, Callable[[], None]]] = [
        ("SIGKILL notifications", lambda: platform.crash_and_restart("notifications")),
        ("broker connections cut", lambda: cut_broker_connections(platform, broker_proxy)),
        ("SIGKILL matching", lambda: platform.crash_and_restart("matching")),
        ("SIGKILL database", platform.crash_and_restart_database),
        ("SIGKILL registry", lambda: platform.crash_and_restart("registry")),
    ]
    answerer = Answerer(town, [volunteer_id for volunteer_id, _, _ in volunteers])
    chunk = NEEDS // (len(faults) + 1)
    with ThreadPoolExecutor(max_workers=1) as pool:
        answering = pool.submit(answerer.run)
        # Each fault strikes while the commands just sent (and the answers) are in flight.
        for index, (_, inject) in enumerate(faults):
            for value in needs[index * chunk : (index + 1) * chunk]:
                partner.send(value)
            if index < REPLAYED:
                partner.send(needs[index * chunk])  # the partner sends the same event again
            if index < len(poison):
                partner.send(poison[index])
            inject()
        for value in needs[len(faults) * chunk :]:
            partner.send(value)
        try:
            answering.result(timeout=SETTLE_SECONDS)
        finally:
            answerer.stopped.set()

    # The registry: every need once, exactly the accepted ones staffed.
    def all_needs_settled() -> list[dict[str, Any]] | None:
        found = town.needs()
        staffed = {need["need_id"] for need in found if need["status"] == "staffed"}
        return found if len(found) >= NEEDS and staffed == set(answerer.accepted) else None

    registry_needs = eventually("the registry to hold every need, the accepted ones staffed", all_needs_settled, 180)
    assert len(registry_needs) == NEEDS
    assert Counter(need["status"] for need in registry_needs) == {"staffed": TO_STAFF, "open": NEEDS - TO_STAFF}

    # Matching: every proposal on the topic is in the volunteers' views, the accepted ones accepted.
    proposals = proposed_events(platform, town.slug)
    views = [
        proposal
        for volunteer_id, _, _ in volunteers
        for proposal in answerer.request("GET", "/volunteers/me/proposals", volunteer_id)
    ]
    assert {view["proposal_id"] for view in views} == set(proposals.values())
    accepted_views = {view["need_id"]: view["status"] for view in views if view["status"] == "accepted"}
    assert accepted_views == dict.fromkeys(answerer.accepted, "accepted")
    assert {need["need_id"] for need in registry_needs} >= {view["need_id"] for view in views}

    # Notifications: one email delivery per proposal, sent once or cancelled unsent; each accept link mailed once.
    coordinator = town.token(Role.COORDINATOR)

    def proposal_deliveries_final() -> list[dict[str, Any]] | None:
        response = town.call("GET", "notifications", "/deliveries", coordinator, params={"limit": 500})
        found = [d for d in response.json() if d["kind"] == "match_proposed" and d["channel"] == "email"]
        final = all(d["status"] in {"sent", "cancelled"} for d in found)
        return found if final and {d["trigger_event_id"] for d in found} == set(proposals) else None

    deliveries = eventually("a final email delivery for every proposal", proposal_deliveries_final, 180)
    assert Counter(d["trigger_event_id"] for d in deliveries).most_common(1)[0][1] == 1
    sent = sum(d["status"] == "sent" for d in deliveries)

    def proposal_mails() -> list[str] | None:
        links = [
            match.group(1)
            for address in emails
            for mail in town.mails_to(address)
            if (match := ACCEPT_LINK.search(mail["text"] or ""))
        ]
        return links if len(links) >= sent else None

    links = eventually("every sent proposal email in the mailbox", proposal_mails, 60)
    twice = [link for link, count in Counter(links).items() if count > 1]
    assert twice == []
    assert len(links) == sent

    staffed_mails = eventually(
        "the office to hear of every staffed need",
        lambda: (
            (m := [x for x in town.mails_to(town.office_email) if "besetzt" in x["subject"].lower()])
            and len(m) >= TO_STAFF
            and m
        ),
        120,
    )
    assert len(staffed_mails) == TO_STAFF

    # Dead letters: exactly the poison, nowhere anything else of this tenant.
    reasons, foreign = dead_letters(platform, town.slug)
    # Both consumers of the partner topic refuse the malformed bytes; the registry, which applies
    # needs, refuses the foreign one (matching takes only answers from that topic).
    assert reasons == [
        "lotse-matching-partner: malformed_json",
        "registry.partner: malformed_json",
        "registry.partner: tenant_mismatch",
    ]
    assert foreign == []

    duplicates = suppressed_duplicates(platform.stack.log_dir, town.slug)
    assert duplicates["registry.partner"] >= REPLAYED
    lost = (NEEDS - len(registry_needs)) + len(set(proposals) - {d["trigger_event_id"] for d in deliveries})
    print(
        f"\nfaults injected: {len(faults)} ({', '.join(name for name, _ in faults)}); broker cuts {broker_proxy.cuts}\n"
        f"sent: {NEEDS} needs + {REPLAYED} replays + {len(poison)} poison in {partner.sends} partner sends; "
        f"{answerer.answers} volunteer answers ({answerer.retries} HTTP retries during faults)\n"
        f"processed: {len(registry_needs)} needs in the registry, {TO_STAFF} staffed; {len(proposals)} proposals, "
        f"{sent} proposal emails sent, {len(deliveries) - sent} cancelled unsent; {len(staffed_mails)} office emails\n"
        f"duplicates suppressed: {sum(duplicates.values())} {dict(sorted(duplicates.items()))}; "
        f"duplicate effects: {len(twice)}; dead-lettered: {len(reasons)}, all poison; lost: {lost}"
    )
    assert lost == 0
