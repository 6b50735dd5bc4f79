"""The fault scenario: a partner streams needs and volunteers answer their proposals while each
service is killed with SIGKILL and restarted, the database is killed and restarted on its on-disk
storage, and every broker connection is cut and later restored. It returns what every read model,
the mailbox and the dead-letter topics hold once the platform has settled.

Run by the fault test (which asserts on the report) and, larger, by ``make bench``.
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
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from aiokafka.errors import KafkaError
from pymongo import MongoClient

from lotse_cli.demo import ACCEPT_LINK
from lotse_cli.supervisor import Platform
from lotse_contracts import (
    TOPICS,
    DeadLetterInfo,
    MatchProposed,
    MatchProposedSealed,
    dead_letter_topic,
    parse_event,
    partner_inbound_topic,
)
from lotse_contracts.topics import PROPOSALS
from lotse_runtime.auth import Role
from tests.e2e.journey import Municipality, eventually
from tests.support.kafka import read_to_end
from tests.support.tcp_proxy import TcpProxy

ENGAGEMENTS_PER_VOLUNTEER = 2  # what Municipality.register_volunteer offers
PROPOSALS_PER_NEED = 3  # matching's default proposals per round
SETTLE_SECONDS = 240
# The notifications API lists at most this many deliveries; a larger stream (the benchmark's)
# reads its delivery log from the service's database instead.
DELIVERIES_API_LIMIT = 500
POISON_REFS = ("malformed", "foreign")


@dataclass(frozen=True)
class FaultPlan:
    needs: int = 16
    volunteers: int = 5
    to_staff: int = 8
    replayed: int = 3
    rounds: int = 1  # how often the five faults strike; 0 runs the same stream without faults


@dataclass
class FaultReport:
    plan: FaultPlan
    partner_sends: int
    answers: int
    http_retries: int
    accepted: dict[str, str]  # need id -> volunteer id
    registry_needs: list[dict[str, Any]]
    proposals: dict[str, str]  # MatchProposed event id -> proposal id
    proposal_views: list[dict[str, Any]]  # every volunteer's proposals in the matching API
    deliveries: list[dict[str, Any]]  # the proposal email deliveries in the notifications API
    accept_links: list[str]  # one per proposal email in the mailbox
    office_staffed_mails: int
    dead_letters: list[str]  # "consumer: reason" of this tenant's inbound dead letters
    foreign_dead_letters: list[str]  # shared dead-letter topics holding anything of this tenant
    duplicates_suppressed: Counter[str]
    settled_seconds: float
    faults: list[str] = field(default_factory=list)
    broker_cuts: int = 0
    sent_emails: int = field(init=False)

    def __post_init__(self) -> None:
        self.sent_emails = sum(d["status"] == "sent" for d in self.deliveries)

    @property
    def duplicate_effects(self) -> int:
        twice = sum(count - 1 for count in Counter(self.accept_links).values() if count > 1)
        return twice + max(self.office_staffed_mails - len(self.accepted), 0)

    @property
    def lost(self) -> int:
        missing_needs = self.plan.needs - len(self.registry_needs)
        unmailed = set(self.proposals) - {d["trigger_event_id"] for d in self.deliveries}
        unseen = set(self.proposals.values()) - {view["proposal_id"] for view in self.proposal_views}
        return max(missing_needs, 0) + len(unmailed) + len(unseen)

    def summary(self) -> str:
        plan = self.plan
        return (
            f"faults injected: {len(self.faults)} ({', '.join(self.faults) or 'none'}); "
            f"broker cuts {self.broker_cuts}\n"
            f"sent: {plan.needs} needs + {plan.replayed} replays + {len(POISON_REFS)} poison in "
            f"{self.partner_sends} partner sends; {self.answers} volunteer answers "
            f"({self.http_retries} HTTP retries during faults)\n"
            f"processed: {len(self.registry_needs)} needs in the registry, {len(self.accepted)} staffed; "
            f"{len(self.proposals)} proposals, {self.sent_emails} proposal emails sent, "
            f"{len(self.deliveries) - self.sent_emails} cancelled unsent; {self.office_staffed_mails} office emails\n"
            f"duplicates suppressed: {sum(self.duplicates_suppressed.values())} "
            f"{dict(sorted(self.duplicates_suppressed.items()))}; duplicate effects: {self.duplicate_effects}; "
            f"dead-lettered: {len(self.dead_letters)}, all poison; lost: {self.lost}; "
            f"settled {self.settled_seconds:.0f} s after the first send"
        )


class Answerer:
    """The volunteers, answering their proposals in the matching API as they arrive, and retrying
    as an app would while a service restarts. They accept until ``to_staff`` needs are staffed."""

    def __init__(self, town: Municipality, volunteers: list[str], to_staff: int) -> None:
        self.town = town
        self.volunteers = volunteers
        self.to_staff = to_staff
        self.accepted: dict[str, str] = {}  # need id -> volunteer id
        self.answers = 0
        self.retries = 0
        self.stopped = threading.Event()

    def run(self) -> None:
        engagements: Counter[str] = Counter()
        while len(self.accepted) < self.to_staff and not self.stopped.wait(0.3):
            for volunteer in self.volunteers:
                for proposal in self.request("GET", "/volunteers/me/proposals", volunteer):
                    need = proposal["need_id"]
                    if (
                        proposal["status"] != "open"
                        or need in self.accepted
                        or engagements[volunteer] >= ENGAGEMENTS_PER_VOLUNTEER
                        or len(self.accepted) >= self.to_staff
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
        self.sends = 0

    def send(self, value: bytes) -> None:
        deadline = time.monotonic() + SETTLE_SECONDS
        while True:
            self.sends += 1
            try:
                self.town.publish(value)
                return
            except KafkaError:  # broker unreachable: send the same bytes again
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)


def poll_interval(plan: FaultPlan) -> float:
    """How often to look whether the platform has settled: a long stream's checks read thousands
    of records, and looking twice a second would take the database from the platform it measures."""
    return max(0.5, plan.needs / 1000)


def proposal_deliveries_pending(platform: Platform, town: Municipality, plan: FaultPlan) -> bool:
    """Whether a long stream's proposal emails are still being delivered (one indexed count),
    before ``proposal_deliveries`` reads them all."""
    if plan.needs * PROPOSALS_PER_NEED < DELIVERIES_API_LIMIT:
        return False
    client: MongoClient[dict[str, Any]] = MongoClient(platform.stack.mongo_url)
    with client:
        unfinished = {"tenant": town.slug, "status": "pending", "kind": "match_proposed"}
        return client["notifications"]["deliveries"].count_documents(unfinished, limit=1) > 0


def proposal_deliveries(
    platform: Platform, town: Municipality, coordinator: str, plan: FaultPlan
) -> list[dict[str, Any]]:
    """The proposal email deliveries of the town: from the notifications API, or, for a stream
    with more proposals than it lists, from the delivery log in the service's database."""
    query = {"kind": "match_proposed", "channel": "email"}
    if plan.needs * PROPOSALS_PER_NEED < DELIVERIES_API_LIMIT:
        params = {**query, "limit": DELIVERIES_API_LIMIT}
        return list(town.call("GET", "notifications", "/deliveries", coordinator, params=params).json())
    client: MongoClient[dict[str, Any]] = MongoClient(platform.stack.mongo_url)
    with client:
        log = client["notifications"]["deliveries"]
        found: list[dict[str, Any]] = list(log.find({"tenant": town.slug, **query}, {"payload": 0}))
    return [{"status": d["status"], "trigger_event_id": d["trigger_event_id"]} for d in found]


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


def proposed_events(platform: Platform, tenant: str) -> dict[str, MatchProposed | MatchProposedSealed]:
    """Proposal event id -> its data, for this tenant (sealed or not: its ids are readable)."""
    records = asyncio.run(read_to_end(platform.stack.kafka_bootstrap, [PROPOSALS.name]))
    events = (parse_event(record.value) for record in records)
    return {
        str(event.id): event.data
        for event in events
        if event.tenant == tenant and isinstance(event.data, MatchProposed | MatchProposedSealed)
    }


def dead_letters(platform: Platform, tenant: str) -> tuple[list[str], list[str]]:
    """ "consumer: reason" of this tenant's inbound dead letters, and any shared dead letter naming it."""
    own = asyncio.run(read_to_end(platform.stack.kafka_bootstrap, [dead_letter_topic(partner_inbound_topic(tenant))]))
    shared_topics = [dead_letter_topic(topic.name) for topic in TOPICS if topic.consumers]
    shared = asyncio.run(read_to_end(platform.stack.kafka_bootstrap, shared_topics))
    infos = (DeadLetterInfo.from_headers(record.headers.items()) for record in own)
    reasons = sorted(f"{info.consumer}: {info.reason.value}" for info in infos)
    foreign = [record.topic for record in shared if tenant.encode() in record.value + (record.key or b"")]
    return reasons, foreign


def need_days(count: int) -> list[int]:
    """Days ahead of ``count`` distinct weekdays, so that one volunteer can take several needs
    (a long stream's needs reach years ahead: on a day used twice, a volunteer's second yes would
    be refused for the overlap, which the answerers do not expect)."""
    today = datetime.now(UTC)
    return [day for day in range(3, 3 + 2 * count + 7) if (today + timedelta(days=day)).weekday() < 5][:count]


def settle_seconds(plan: FaultPlan, base: float) -> float:
    """How long to wait for the platform to settle: ``base`` for the test's stream, more for a longer one."""
    return base + 0.5 * plan.needs


Fault = tuple[str, Callable[[], object]]


def new_slug() -> str:
    return f"faults-{uuid.uuid4().hex[:8]}"


def every_fault(platform: Platform, proxy: TcpProxy) -> list[Fault]:
    """The five faults of the scenario: each service and the database SIGKILLed and restarted,
    every broker connection cut."""
    return [
        ("SIGKILL notifications", lambda: platform.crash_and_restart("notifications")),
        ("broker connections cut", lambda: cut_broker_connections(platform, proxy)),
        ("SIGKILL matching", lambda: platform.crash_and_restart("matching")),
        ("SIGKILL database", platform.crash_and_restart_database),
        ("SIGKILL registry", lambda: platform.crash_and_restart("registry")),
    ]


def run_fault_stream(
    platform: Platform, proxy: TcpProxy, plan: FaultPlan, faults: list[Fault] | None = None, slug: str | None = None
) -> FaultReport:
    """The stream of the municipality ``slug`` (a new one by default) with ``faults`` striking one
    after another (by default ``every_fault``, ``plan.rounds`` times)."""
    faults = every_fault(platform, proxy) * plan.rounds if faults is None else faults
    town = Municipality(platform, slug or new_slug())
    town.onboard()
    volunteers = [town.register_volunteer(f"Vol{number}", "de") for number in range(plan.volunteers)]
    partner = Partner(town)
    needs = [town.need_command(f"fault-{number}", days_ahead=days) for number, days in enumerate(need_days(plan.needs))]
    poison = [b'{"specversion": "1.0", "type": ', town.need_command("foreign", tenant="someone-else")]
    # Each fault strikes while the commands just sent (and the answers) are in flight; replays and
    # poison go out early, between the needs.
    chunks = [needs[index :: len(faults) + 1] for index in range(len(faults) + 1)]
    extras = [needs[index] for index in range(plan.replayed)] + poison
    answerer = Answerer(town, [volunteer_id for volunteer_id, _, _ in volunteers], plan.to_staff)
    cuts_before = proxy.cuts
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=1) as pool:
        answering = pool.submit(answerer.run)
        for index, chunk in enumerate(chunks):
            for value in chunk:
                partner.send(value)
            for value in extras[index :: len(chunks)]:
                partner.send(value)
            if index < len(faults):
                faults[index][1]()
        try:
            answering.result(timeout=settle_seconds(plan, SETTLE_SECONDS))
        finally:
            answerer.stopped.set()
    emails = [email for _, email, _ in volunteers]
    report = settled(platform, town, plan, answerer, partner, emails, started)
    report.faults = [name for name, _ in faults]
    report.broker_cuts = proxy.cuts - cuts_before
    return report


def settled(
    platform: Platform,
    town: Municipality,
    plan: FaultPlan,
    answerer: Answerer,
    partner: Partner,
    emails: list[str],
    started: float,
) -> FaultReport:
    """Wait until the platform has settled, then collect what each part of it holds."""

    def registry_settled() -> list[dict[str, Any]] | None:
        found = town.needs()
        staffed = {need["need_id"] for need in found if need["status"] == "staffed"}
        return found if len(found) >= plan.needs and staffed == set(answerer.accepted) else None

    interval = poll_interval(plan)
    registry_needs = eventually(
        "the registry to hold every need, the accepted ones staffed",
        registry_settled,
        settle_seconds(plan, 180),
        interval,
    )
    coordinator = town.token(Role.COORDINATOR)
    every_need = {need["need_id"] for need in registry_needs}

    def every_proposal_delivered() -> (
        tuple[dict[str, MatchProposed | MatchProposedSealed], list[dict[str, Any]]] | None
    ):
        # Matching has proposed for every need, and each proposal on the topic has its final delivery.
        if proposal_deliveries_pending(platform, town, plan):
            return None
        proposed = proposed_events(platform, town.slug)
        found = proposal_deliveries(platform, town, coordinator, plan)
        final = all(d["status"] in {"sent", "cancelled"} for d in found)
        proposed_needs = {str(data.need_id) for data in proposed.values()}
        mailed = {d["trigger_event_id"] for d in found} >= set(proposed)
        return (proposed, found) if final and mailed and proposed_needs >= every_need else None

    proposed, deliveries = eventually(
        "a final email delivery for every proposal", every_proposal_delivered, settle_seconds(plan, 180), interval
    )
    proposals = {event_id: str(data.proposal_id) for event_id, data in proposed.items()}
    sent = sum(d["status"] == "sent" for d in deliveries)

    addresses = set(emails)
    links_found: list[str] = []
    read_up_to = ""

    def accept_links() -> list[str] | None:
        # The mailbox read once, a part at a time (a long stream's is too large to read per
        # address, or in one answer while the sink is busy): the messages after the last read.
        nonlocal read_up_to
        params = {"detail": "1", "after": read_up_to}
        for mail in httpx.get(f"{platform.mailbox_url}/messages", params=params, timeout=120).json():
            read_up_to = max(read_up_to, mail["id"])
            if set(mail["to"]) & addresses and (match := ACCEPT_LINK.search(mail["text"] or "")):
                links_found.append(match.group(1))
        return list(links_found) if len(links_found) >= sent else None

    links = eventually("every sent proposal email in the mailbox", accept_links, settle_seconds(plan, 60), interval)

    def office_told() -> list[dict[str, Any]] | None:
        told = [mail for mail in town.mails_to(town.office_email) if "besetzt" in mail["subject"].lower()]
        return told if len(told) >= len(answerer.accepted) else None

    office = eventually("the office to hear of every staffed need", office_told, 120)
    settled_seconds = time.monotonic() - started
    views = [
        view
        for volunteer_id in answerer.volunteers
        for view in answerer.request("GET", "/volunteers/me/proposals", volunteer_id)
    ]
    reasons, foreign = dead_letters(platform, town.slug)
    return FaultReport(
        plan=plan,
        partner_sends=partner.sends,
        answers=answerer.answers,
        http_retries=answerer.retries,
        accepted=dict(answerer.accepted),
        registry_needs=registry_needs,
        proposals=proposals,
        proposal_views=views,
        deliveries=deliveries,
        accept_links=links,
        office_staffed_mails=len(office),
        dead_letters=reasons,
        foreign_dead_letters=foreign,
        duplicates_suppressed=suppressed_duplicates(platform.stack.log_dir, town.slug),
        settled_seconds=settled_seconds,
    )
