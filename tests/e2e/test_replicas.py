"""Replicas (issue 19): registry and notifications run as two replicas each while a partner streams
needs and volunteers answer (the fault scenario's stream, fault_stream.py), every HTTP request
going to the replicas in turn. During the stream the first replica of each (the one that held the
outbox relay's lease) is SIGKILLed for good and a new replica joins.

Afterwards nothing is lost and nothing done twice, exactly as in the fault test, and the replica
that ran throughout did part of the work: it consumed events (the consumer group gave it
partitions) and its relay published once the first one died (the lease moved)."""

from __future__ import annotations

import re
from collections import Counter
from functools import partial

import httpx
import pytest

from lotse_cli.supervisor import Platform
from tests.e2e.fault_stream import Fault, FaultPlan, run_fault_stream
from tests.support.tcp_proxy import TcpProxy

pytestmark = [pytest.mark.faults, pytest.mark.timeout(600)]

SCALED = ("registry", "notifications")


def metric_total(platform: Platform, replica: str, metric: str) -> float:
    """The sum of a counter over its labels, as the replica's /metrics tells it."""
    text = httpx.get(f"{platform.replica_url(replica)}/metrics", timeout=10).text
    pattern = re.compile(rf"^{metric}(?:\{{[^}}]*\}})? ([0-9.e+]+)$", re.MULTILINE)
    return sum(float(value) for value in pattern.findall(text))


def test_two_replicas_each_lose_nothing_and_do_nothing_twice_while_one_dies_and_another_joins(
    platform: Platform, broker_proxy: TcpProxy
) -> None:
    second = {service: platform.add_replica(service) for service in SCALED}
    published_before = metric_total(platform, second["registry"], "lotse_outbox_published_total")
    faults: list[Fault] = []
    for service in SCALED:
        faults += [
            (f"SIGKILL {service} (for good)", partial(platform.kill_replica, service)),
            (f"{service} replica added", partial(platform.add_replica, service)),
        ]
    plan = FaultPlan(needs=16, volunteers=5, to_staff=8, replayed=3, rounds=1)
    report = run_fault_stream(platform, broker_proxy, plan, faults)
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

    # The replica that ran throughout shared the consuming and took over the relay.
    for service in SCALED:
        assert platform.replicas[service] == [second[service], f"{service}-3"]
        assert metric_total(platform, second[service], "lotse_messages_processed_total") > 0, service
    # The registry publishes an event for every need; once its first replica died, the relay's
    # lease went to another, which published the rest (notifications publishes only delivery outcomes).
    registry_published = sum(
        metric_total(platform, replica, "lotse_outbox_published_total") for replica in platform.replicas["registry"]
    )
    assert registry_published > published_before
