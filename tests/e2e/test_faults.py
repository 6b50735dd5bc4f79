"""Faults: a stream of partner needs and volunteer answers through service crashes (SIGKILL), a
database crash and restart, and cut broker connections (see fault_stream.py for the scenario).

Afterwards every need is in its right state in every read model, every proposal was emailed
exactly once (or cancelled unsent when its need was staffed first), the office heard of each
staffed need once, and the dead-letter topics hold exactly the poison the partner sent.
"""

from __future__ import annotations

from collections import Counter

import pytest

from lotse_cli.supervisor import Platform
from tests.e2e.fault_stream import FaultPlan, run_fault_stream
from tests.support.tcp_proxy import TcpProxy

pytestmark = [pytest.mark.faults, pytest.mark.timeout(600)]


def test_a_stream_through_crashes_database_restarts_and_broker_cuts_loses_nothing_and_does_nothing_twice(
    platform: Platform, broker_proxy: TcpProxy
) -> None:
    plan = FaultPlan(needs=16, volunteers=5, to_staff=8, replayed=3, rounds=1)
    report = run_fault_stream(platform, broker_proxy, plan)
    print(f"\n{report.summary()}")

    # The registry: every need once, exactly the accepted ones staffed, the others still open.
    assert len(report.registry_needs) == plan.needs
    statuses = {need["need_id"]: need["status"] for need in report.registry_needs}
    assert {need for need, status in statuses.items() if status == "staffed"} == set(report.accepted)
    assert Counter(statuses.values()) == {"staffed": plan.to_staff, "open": plan.needs - plan.to_staff}

    # Matching: every proposal on the topic is in the volunteers' views; the accepted ones accepted.
    assert {view["proposal_id"] for view in report.proposal_views} == set(report.proposals.values())
    assert {view["need_id"] for view in report.proposal_views if view["status"] == "accepted"} == set(report.accepted)
    assert {view["need_id"] for view in report.proposal_views} <= set(statuses)

    # Notifications: one email delivery per proposal, sent once or cancelled unsent; each link mailed once.
    assert sorted(d["trigger_event_id"] for d in report.deliveries) == sorted(report.proposals)
    assert {d["status"] for d in report.deliveries} <= {"sent", "cancelled"}
    assert len(report.accept_links) == report.sent_emails
    assert report.office_staffed_mails == plan.to_staff
    assert report.duplicate_effects == 0

    # Dead letters: both consumers of the partner topic refuse the malformed bytes; the registry,
    # which applies needs, refuses the foreign one (matching takes only answers from that topic).
    assert report.dead_letters == [
        "lotse-matching-partner: malformed_json",
        "registry.partner: malformed_json",
        "registry.partner: tenant_mismatch",
    ]
    assert report.foreign_dead_letters == []

    # The partner's replays reached the registry and were ignored as duplicates.
    assert report.duplicates_suppressed["registry.partner"] >= plan.replayed
    assert len(report.faults) == 5 and report.broker_cuts == 1
    assert report.lost == 0
