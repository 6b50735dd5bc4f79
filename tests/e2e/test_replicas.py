"""Replicas (issue 19): three replicas of matching and two each of registry and notifications
while a partner streams needs and volunteers answer (the fault scenario's stream,
fault_stream.py), every HTTP request going to the replicas in turn. During the stream the matching
replica that owns the municipality is SIGKILLed for good and another joins, and the registry's
first replica (the one that held the outbox relay's lease) is SIGKILLed for good.

Afterwards nothing is lost and nothing done twice, exactly as in the fault test; the replicas that
ran throughout did part of the work (the consumer groups gave them partitions, a relay's lease
moved); and the municipality was matched by exactly one replica at any time: the intervals in
which the replicas held its partition of the work topic, from their logs, never overlap.
"""

from __future__ import annotations

import itertools
import json
import re
import time
from collections import Counter
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo import MongoClient

from lotse_cli.supervisor import Platform
from lotse_matching.ownership import DIRECTORY, partition_of
from tests.e2e.fault_stream import Fault, FaultPlan, new_slug, run_fault_stream
from tests.support.tcp_proxy import TcpProxy

pytestmark = [pytest.mark.faults, pytest.mark.timeout(600)]

REPLICAS = {"matching": 3, "registry": 2, "notifications": 2}
Interval = tuple[str, datetime, datetime]  # replica, from, until


def metric_total(platform: Platform, replica: str, metric: str) -> float:
    """The sum of a counter over its labels, as the replica's /metrics tells it."""
    text = httpx.get(f"{platform.replica_url(replica)}/metrics", timeout=10).text
    labels = "" if "{" in metric else r"(?:\{[^}]*\})?"
    pattern = re.compile(rf"^{re.escape(metric)}{labels} ([0-9.e+]+)$", re.MULTILINE)
    return sum(float(value) for value in pattern.findall(text))


def owner_of(platform: Platform, tenant: str) -> str:
    """The matching replica that holds the tenant's partition of the work topic (its directory entry)."""
    deadline = time.monotonic() + 60
    client: MongoClient[dict[str, Any]]
    with MongoClient(platform.stack.mongo_url) as client:
        while time.monotonic() < deadline:
            entry: Any = client["matching"][DIRECTORY].find_one({"_id": partition_of(tenant)})
            url = entry["url"] if entry is not None else None
            owners = [name for name in platform.replicas["matching"] if platform.replica_url(name) == url]
            if owners:
                return owners[0]
            time.sleep(0.2)
    raise AssertionError(f"no matching replica holds the partition of {tenant}")


def holdings(log_dir: Path, partition: int, killed: dict[str, datetime], end: datetime) -> list[Interval]:
    """When each matching replica held ``partition``: from "work partitions taken" naming it to
    the next "given up" naming it, or to its SIGKILL, or to ``end``."""
    intervals: list[Interval] = []
    for log in sorted(log_dir.glob("matching*.log")):
        replica, since = log.stem, None
        for line in log.read_text(errors="replace").splitlines():
            if not line.startswith("{"):
                continue
            entry = json.loads(line)
            if partition not in entry.get("partitions", []):
                continue
            at = datetime.fromisoformat(entry["timestamp"])
            if entry["event"] == "work partitions taken" and since is None:
                since = at
            elif entry["event"] == "work partitions given up" and since is not None:
                intervals.append((replica, since, at))
                since = None
        if since is not None:
            intervals.append((replica, since, killed.get(replica, end)))
    return sorted(intervals, key=lambda interval: interval[1])


def test_replicas_lose_nothing_do_nothing_twice_and_match_a_tenant_on_one_replica_at_a_time(
    platform: Platform, broker_proxy: TcpProxy
) -> None:
    platform.add_replicas([service for service, count in REPLICAS.items() for _ in range(count - 1)])
    started = {service: list(platform.replicas[service]) for service in REPLICAS}
    published_before = metric_total(platform, started["registry"][1], "lotse_outbox_published_total")
    slug = new_slug()
    killed: dict[str, datetime] = {}

    def kill(name: str) -> None:
        platform.kill_replica(name)
        killed[name] = datetime.now(UTC)

    def kill_the_owner() -> str:
        name = owner_of(platform, slug)
        kill(name)
        return name

    # The registry's first replica holds the outbox relay's lease (it started first).
    faults: list[Fault] = [
        ("SIGKILL the matching replica of the municipality (for good)", kill_the_owner),
        ("matching replica added", partial(platform.add_replica, "matching")),
        ("SIGKILL registry (for good)", partial(kill, "registry")),
    ]
    plan = FaultPlan(needs=10, volunteers=4, to_staff=5, replayed=2, rounds=1)
    report = run_fault_stream(platform, broker_proxy, plan, faults, slug=slug)
    print(f"\n{report.summary()}")

    # The same promises as with one replica each (test_faults.py).
    statuses = {need["need_id"]: need["status"] for need in report.registry_needs}
    assert Counter(statuses.values()) == {"staffed": plan.to_staff, "open": plan.needs - plan.to_staff}
    assert {need for need, status in statuses.items() if status == "staffed"} == set(report.accepted)
    assert {view["proposal_id"] for view in report.proposal_views} == set(report.proposals.values())
    assert sorted(d["trigger_event_id"] for d in report.deliveries) == sorted(report.proposals)
    assert {d["status"] for d in report.deliveries} <= {"sent", "cancelled"}
    assert len(report.accept_links) == report.sent_emails
    assert report.office_staffed_mails == plan.to_staff
    assert report.dead_letters == [
        "lotse-matching-partner: malformed_json",
        "registry.partner: malformed_json",
        "registry.partner: tenant_mismatch",
    ]
    assert report.foreign_dead_letters == []
    assert report.duplicate_effects == 0
    assert report.lost == 0

    # Matching lost one replica and gained one, the registry lost one; the replicas that ran
    # throughout took part.
    assert len(killed) == 2
    assert {service: len(platform.replicas[service]) for service in REPLICAS} == {**REPLICAS, "registry": 1}
    for service in REPLICAS:
        for replica in (name for name in started[service] if name not in killed):
            assert metric_total(platform, replica, "lotse_messages_processed_total") > 0, replica
    # The volunteers' requests reached every matching replica; those not matching for the
    # municipality sent them on to the one that does.
    forwarded = sum(
        metric_total(platform, replica, 'lotse_matching_forwarded_requests_total{outcome="forwarded"}')
        for replica in platform.replicas["matching"]
    )
    assert forwarded > 0
    # The registry publishes an event for every need; once its first replica died, the relay's
    # lease went to another, which published the rest.
    registry_published = sum(
        metric_total(platform, replica, "lotse_outbox_published_total") for replica in platform.replicas["registry"]
    )
    assert registry_published > published_before

    # The municipality's partition moved from the killed replica to another, and no two replicas
    # ever held it at the same time.
    intervals = holdings(platform.stack.log_dir, partition_of(slug), killed, datetime.now(UTC))
    owners = [replica for replica, _, _ in intervals]
    assert len(set(owners)) >= 2 and owners[-1] not in killed, intervals
    for (_, _, until), (_, since, _) in itertools.pairwise(intervals):
        assert until <= since, intervals
    # The interval that ended with the SIGKILL, and the next owner's.
    dead = next(index for index, (replica, _, until) in enumerate(intervals) if until == killed.get(replica))
    taken_over = intervals[dead + 1][1] - intervals[dead][2]
    assert taken_over.total_seconds() > 0, intervals
    print(f"the municipality's partition was taken over {taken_over.total_seconds():.1f} s after its replica died")
